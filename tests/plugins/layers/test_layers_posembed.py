"""framework_plugins._layers.posembed: sin-cos tables against the closed form."""

from __future__ import annotations

import math

import pytest
import torch

from framework_plugins._layers.posembed import sincos_1d, sincos_2d


def test_1d_matches_closed_form():
    table = sincos_1d(torch.arange(7), 8)
    for pos in range(7):
        for i in range(4):
            angle = pos / 10000 ** (i / 4)
            assert table[pos, i].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert table[pos, 4 + i].item() == pytest.approx(math.cos(angle), abs=1e-6)


def test_2d_encodes_row_then_column():
    table = sincos_2d((3, 4), 16)
    assert table.shape == (12, 16)
    rows, cols = sincos_1d(torch.arange(3), 8), sincos_1d(torch.arange(4), 8)
    for r in range(3):
        for c in range(4):
            torch.testing.assert_close(table[r * 4 + c], torch.cat([rows[r], cols[c]]))


def test_odd_widths_are_refused():
    with pytest.raises(ValueError, match="even"):
        sincos_1d(torch.arange(3), 5)
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_2d((2, 2), 6)
