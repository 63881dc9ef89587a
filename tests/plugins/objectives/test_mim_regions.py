"""RMIM scores masked patches overlapping the caption's boxes, the whole image without boxes."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from framework.registry import BuildContext
from framework.types import MaskingOutput
from tests.helpers import registry_of


def test_masked_in_boxes_weights_match_a_hand_count():
    from framework_plugins import decoders, objectives, targets

    registry = registry_of(objectives, "objectives")
    registry.register_plugin(targets, name="targets", distribution="framework==test")
    registry.register_plugin(decoders, name="decoders", distribution="framework==test")
    context = BuildContext(registry, {"patch_size": 8, "grid": (2, 2), "image_width": 4, "fused_image_width": 4})
    mim = registry.build("objective", {"type": "mim", "name": "mim", "view": "v", "source": "encoder",
                                       "target": {"type": "pixels"}, "positions": "masked_in_boxes"}, context)
    # sample 0: one box over the top-left patch only; sample 1: no boxes
    batch = {"image": torch.zeros(2, 3, 16, 16), "input_ids": torch.zeros(2, 4, dtype=torch.long),
             "boxes": torch.tensor([[[0.0, 0.0, 6.0, 6.0]], [[0.0, 0.0, 0.0, 0.0]]]),
             "box_mask": torch.tensor([[True], [False]])}
    masked = torch.tensor([[True, True, False, True], [True, False, True, False]])
    view = SimpleNamespace(image_mask=MaskingOutput(mask=masked))
    ctx = SimpleNamespace(batch=batch, batch_size=2, view=lambda name: view)
    expected = torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 1.0, 0.0]])
    assert torch.equal(mim._weights(ctx), expected)
