"""Mask pictures: greyed patches land where the mask says, captions are laid out, PNG is readable."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from framework.pictures.masks import (
    GREY,
    draw_mask_grid,
    grey_out,
    masked_caption_text,
    text_mask_captions,
)
from framework.types import MaskingOutput, TextMaskingOutput


def test_grey_out_touches_only_masked_patches() -> None:
    images = torch.rand(2, 3, 8, 12, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(2, 6, dtype=torch.bool)
    mask[0, 1] = mask[1, 5] = True  # patch (0, 1) of sample 0 and patch (1, 2) of sample 1
    out = grey_out(images, mask, 4)
    expected = images.clone()
    expected[0, :, 0:4, 4:8] = 0.3 * images[0, :, 0:4, 4:8] + 0.7 * GREY
    expected[1, :, 4:8, 8:12] = 0.3 * images[1, :, 4:8, 8:12] + 0.7 * GREY
    assert torch.allclose(out, expected)
    with pytest.raises(ValueError, match="pass the patch size"):
        grey_out(images, mask, 2)


def test_masked_caption_text_marks_masked_and_dropped() -> None:
    assert masked_caption_text(["a", "red", "cube"], [False, True, True], [True, True, False]) == "a [red] _"


class WordTokenizer:
    """The one tokenizer method the captions need: ids back to tokens."""

    vocab = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "a", "red", "cube"]

    def convert_ids_to_tokens(self, ids: list[int]) -> list[str]:
        return [self.vocab[i] for i in ids]


def test_text_mask_captions_skip_special_and_padding() -> None:
    ids = torch.tensor([[1, 4, 3, 6, 2, 0]])
    view = TextMaskingOutput(input_ids=ids, labels=torch.full_like(ids, -100),
                             mask=torch.tensor([[0, 0, 1, 0, 0, 0]]).bool())
    attention = torch.tensor([[1, 1, 1, 1, 1, 0]])
    special = torch.tensor([[1, 0, 0, 0, 1, 1]])
    assert text_mask_captions(WordTokenizer(), view, attention, special) == ["a [[MASK]] cube"]
    dropped = TextMaskingOutput(input_ids=ids, labels=ids, mask=view.mask, ids_keep=torch.tensor([[0, 1, 4]]))
    assert text_mask_captions(WordTokenizer(), dropped, attention, special) == ["a _ _"]


def test_draw_mask_grid_writes_png(tmp_path) -> None:
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(2, 16, dtype=torch.bool)
    mask[:, 0] = True  # top-left 8x8 patch
    path = draw_mask_grid(images, [MaskingOutput(mask=mask), None], 8, captions=["a red cube", "a blue ball " * 8],
                          masked_captions=[None, ["a [MASK] cube", "a blue [MASK]"]], path=tmp_path / "out" / "m.png",
                          view_names=["masked_image", "masked_text"])
    picture = Image.open(path).convert("RGB")
    cell = 128  # 32 px enlarged 4x
    assert picture.size[0] == 3 * (cell + 6) + 6
    top, left = 14 + 6, 6
    original = picture.getpixel((left + 2, top + 2))
    masked = picture.getpixel((left + cell + 6 + 2, top + 2))
    assert abs(masked[0] - round(255 * (0.3 * images[0, 0, 0, 0].item() + 0.7 * GREY))) <= 1
    assert abs(original[0] - round(255 * images[0, 0, 0, 0].item())) <= 1
    assert picture.getpixel((left + 2 * (cell + 6) + 2, top + 2)) == original  # the text view keeps the image


def test_draw_mask_grid_checks_view_counts(tmp_path) -> None:
    images = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="one of each per view"):
        draw_mask_grid(images, [None], 4, masked_captions=[None, None], path=tmp_path / "m.png")


def test_a_paper_recipe_is_pictured_without_its_data_or_weights(tmp_path, capsys):
    """m3ae-small names a CC12M manifest that is not here: the picture falls back to synthetic
    shapes at the recipe's size and says so."""
    from framework.cli import main

    out = tmp_path / "masks.png"
    assert main(["masks", "m3ae-small", "--out", str(out), "--samples", "2"]) == 0
    assert out.is_file() and "synthetic shapes at 224 px" in capsys.readouterr().err
