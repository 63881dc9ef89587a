"""linear_probe ``features: fused``: the fusion's image stream for the image alone (M3AE's linear evaluation)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from framework.evaluate import EvalModel, EvalModelError, run_tasks
from framework.recipe import load_recipe
from framework.registry import default_registry
from framework.types import TextEncoding
from framework.validation import validate_recipe
from framework_plugins.evaluators.linear_probe import fused_image_alone

RECIPES = Path(__file__).resolve().parents[3] / "recipes"
SMALL = ('data.train={"type": "synthetic_shapes", "samples": 64, "image_size": 32}',)


def model_of(recipe: str) -> EvalModel:
    registry = default_registry()
    path = RECIPES / recipe
    return EvalModel.from_recipe(validate_recipe(load_recipe(path, SMALL), registry, source=str(path)), registry)


@pytest.fixture(scope="module")
def m3ae() -> EvalModel:
    return model_of("m3ae-tiny.json")


@torch.no_grad()
def test_fused_features_equal_the_fusion_with_an_all_padding_caption(m3ae):
    images = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    image = m3ae.encode_images(images)
    alone = fused_image_alone(m3ae, image).tokens
    texts = m3ae.encode_texts(["a red square", "two circles", "x"])
    padded = TextEncoding(texts.tokens, torch.zeros_like(texts.attention_mask))  # no text token may be attended
    torch.testing.assert_close(alone, m3ae.model.fusion(image, padded).image)
    assert alone.shape == image.tokens.shape and not torch.allclose(alone, image.tokens)


def test_probe_on_fused_features_runs(m3ae, tmp_path):
    task = {"max_train_samples": 48, "max_samples": 32, "steps": 20}
    fused = run_tasks(m3ae, [{"type": "linear_probe", "features": "fused", **task}], tmp_path, report=False)
    assert 0.0 <= fused["linear_probe"]["top1"] <= 100.0


def test_a_fusion_that_needs_text_is_refused_for_fused_features(tmp_path):
    albef_like = model_of("tiny.json")  # cross-attention: text queries, no image stream of its own
    with pytest.raises(EvalModelError, match="encodes an image without text"):
        run_tasks(albef_like, [{"type": "linear_probe", "features": "fused", "steps": 2, "max_train_samples": 8,
                                "max_samples": 8}], tmp_path, report=False)
