"""Evaluators on an untrained tiny model: ITM re-ranking against a per-pair reference,
logistic regression on separable data, zero-shot prompts, reconstruction pictures."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from framework.evaluate import EvalModel, EvalModelError, run_tasks
from framework.evaluate.embed import contrastive_heads, embed_dataset
from framework.evaluate.pictures import grid_size
from framework_plugins.evaluators.linear_probe import fit_logistic_regression
from framework_plugins.evaluators.retrieval import RERANKED, match_probability, rerank
from framework_plugins.evaluators.zero_shot import class_embeddings
from tests.helpers import tiny_recipe

SMALL_DATA = ('data.train={"type": "synthetic_shapes", "samples": 64, "image_size": 32}',)
ITM = json.dumps([{"type": "itc", "view": "full", "embed_dim": 32}, {"type": "itm", "view": "full"}])


@pytest.fixture(scope="module")
def model(registry) -> EvalModel:
    return EvalModel.from_recipe(tiny_recipe(*SMALL_DATA), registry)


@pytest.fixture(scope="module")
def itm_model(registry) -> EvalModel:
    return EvalModel.from_recipe(tiny_recipe(*SMALL_DATA, f"objectives={ITM}"), registry)


@torch.no_grad()
def test_rerank_scores_top_k_by_itm_and_keeps_the_rest(itm_model):
    heads = contrastive_heads(itm_model)
    data = embed_dataset(itm_model, heads, itm_model.dataset("eval"), batch_size=16, max_samples=6, keep_tokens=True)
    itm = itm_model.objective("itm")
    scores = data.image @ data.text.t()  # [6,M]
    k = 3
    out = rerank(itm_model, itm, scores, data.image_tokens, data.text_tokens, k=k, batch_size=4,
                 images_are_queries=True)
    top = scores.topk(k, dim=1).indices
    for i in range(scores.shape[0]):
        for j in range(scores.shape[1]):
            if j in top[i]:
                image = data.image_tokens
                pair_image = type(image)(image.tokens[i:i + 1], image.layout, None, image.grid)
                pair_text = type(data.text_tokens)(data.text_tokens.tokens[j:j + 1],
                                                   data.text_tokens.attention_mask[j:j + 1])
                want = RERANKED + match_probability(itm_model, itm, pair_image, pair_text)[0]
                assert out[i, j].item() == pytest.approx(want.item(), abs=1e-5)
            else:
                assert out[i, j] == scores[i, j]
    assert (out.topk(k, dim=1).values >= RERANKED).all()  # re-ranked candidates come first


def test_retrieval_with_reranking_runs_end_to_end(itm_model, tmp_path):
    task = {"type": "retrieval", "max_samples": 8, "rerank_k": 4, "batch_size": 8}
    results = run_tasks(itm_model, [task], tmp_path, report=False)["retrieval"]
    assert results["images"] == 8 and results["captions"] >= 8
    assert all(0.0 <= results[f"{d}_r{k}"] <= 100.0 for d in ("i2t", "t2i") for k in (1, 5, 10))


def test_rerank_needs_an_itm_objective(model, tmp_path):
    with pytest.raises(EvalModelError, match="objective of type 'itm'"):
        run_tasks(model, [{"type": "retrieval", "max_samples": 4, "rerank_k": 2}], tmp_path, report=False)


def test_logistic_regression_separates_separable_classes():
    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 8, generator=generator) * 4
    y = torch.randint(0, 4, (200,), generator=generator)
    x = centres[y] + torch.randn(200, 8, generator=generator) * 0.3
    linear = fit_logistic_regression(x, y, classes=4, weight_decay=1e-4, steps=50)
    assert (linear(x).argmax(1) == y).all()


def test_linear_probe_reports_accuracies(model, tmp_path):
    task = {"type": "linear_probe", "max_train_samples": 48, "max_samples": 32, "steps": 20}
    results = run_tasks(model, [task], tmp_path, report=False)["linear_probe"]
    assert 0.0 <= results["top1"] <= 100.0 and results["train_top1"] >= results["majority_top1"] / 2


def test_class_embeddings_average_prompts_and_are_normalised(model):
    heads = contrastive_heads(model)
    weights = class_embeddings(model, heads, ["red circle", "blue square", "green triangle"], ["a {}", "the {}"], 8)
    assert weights.shape == (3, heads.text_proj.out_features)
    assert torch.allclose(weights.norm(dim=-1), torch.ones(3), atol=1e-5)


def test_zero_shot_without_class_names_says_how_to_fix(model, tmp_path):
    manifest = tmp_path / "m.jsonl"
    image = tmp_path / "a.png"
    Image.new("RGB", (32, 32), "red").save(image)
    manifest.write_text(json.dumps({"image": str(image), "captions": ["a red square"]}) + "\n")
    task = {"type": "zero_shot", "dataset": {"type": "manifest", "path": str(manifest)}}
    with pytest.raises(EvalModelError, match="needs class names"):
        run_tasks(model, [task], tmp_path, report=False)


@pytest.mark.parametrize("samples,cell", [(3, 64), (2, 40)])
def test_reconstruction_png_has_the_stated_size(model, tmp_path, samples, cell):
    task = {"type": "reconstruction", "samples": samples, "cell": cell}
    results = run_tasks(model, [task], tmp_path, report=False)["reconstruction"]
    with Image.open(tmp_path / "reconstruction" / "reconstruction.png") as picture:
        picture.load()
        assert picture.size == grid_size(samples, 3, cell) and picture.mode == "RGB"
    assert results["samples"] == samples and results["mse_masked"] > 0


def test_reconstruction_needs_a_pixel_objective(itm_model, tmp_path):
    with pytest.raises(EvalModelError, match="mim objective with a pixels target"):
        run_tasks(itm_model, [{"type": "reconstruction"}], tmp_path, report=False)
