"""Views share work: each modality is encoded once per distinct mask in a step."""

from __future__ import annotations

import pytest
import torch

from framework import data as data_lib
from framework.assemble import assemble
from framework.validation import RecipeValidationError
from tests.helpers import tiny_recipe

VIEWS = ('views={"full": {}, "masked": {"image": {"type": "random_patches", "ratio": 0.5}}, '
         '"masked_text": {"image_from": "masked", "text": {"type": "mlm", "ratio": 0.25}}, '
         '"text_only": {"text": {"type": "mlm", "ratio": 0.25}}}')


def context(recipe, registry):
    dataset = data_lib.build_dataset(recipe, registry)
    tokenizer = data_lib.build_tokenizer(recipe, registry, dataset)
    model, _ = assemble(recipe, registry, tokenizer)
    loader, sampler = data_lib.build_train_loader(recipe, dataset, tokenizer, rank=0, world_size=1, micro_batch=4,
                                                  seed=0)
    batch = next(data_lib.iterate_forever(loader, sampler))
    return model, model.context(batch, torch.Generator().manual_seed(0))


def count_calls(module: torch.nn.Module) -> list[int]:
    calls = [0]
    module.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def test_image_from_shares_the_mask_and_the_encoding(registry):
    model, ctx = context(tiny_recipe(VIEWS, 'objectives=[{"type": "itc", "view": "full"}]'), registry)
    image_calls, text_calls = count_calls(model.image_encoder), count_calls(model.text_encoder)
    views = {name: ctx.view(name) for name in ("full", "masked", "masked_text", "text_only")}
    assert views["masked_text"].image_mask is views["masked"].image_mask
    assert views["masked_text"].image is views["masked"].image
    assert views["text_only"].image is views["full"].image  # unmasked images are shared too
    assert views["masked_text"].text_mask is not None and views["masked"].text_mask is None
    assert image_calls == [2] and text_calls == [3]  # images: full, masked; texts: full, two masks


def test_image_from_needs_a_view_that_masks_the_image(registry):
    with pytest.raises(RecipeValidationError) as err:  # refused by validation, before any build
        tiny_recipe('views={"full": {}, "bad": {"image_from": "full"}, '
                    '"both": {"image_from": "full", "image": {"type": "random_patches"}}}',
                    'objectives=[{"type": "itc", "view": "full"}]')
    assert "$.views.bad.image_from: view 'full' has no image masker of its own to share" in str(err.value)
    assert "$.views.both.image_from: a view takes its image mask from another view or masks it itself" in str(err.value)
