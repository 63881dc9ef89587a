"""framework_plugins._layers.projection: identity for equal widths, a linear map otherwise."""

from __future__ import annotations

import torch

from framework_plugins._layers.projection import projection


def test_projection_is_identity_for_equal_widths():
    assert isinstance(projection(8, 8), torch.nn.Identity) and isinstance(
        projection(8, 4), torch.nn.Linear
    )
