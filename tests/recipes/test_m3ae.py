"""M3AE recipes: parameter counts against a hand computation, the spec's settings, the encoder
seeing only visible tokens, and tiny tokenizer / M3AE / discrete / unpaired runs with falling losses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from framework.assemble import assemble
from framework.engine import param_groups, peak_lr
from framework.inspect_model import params_by_component
from framework.recipe import diff, load_recipe
from framework.train import Trainer
from framework.validation import validate_recipe
from framework_plugins.data.synthetic import SyntheticShapes
from framework_plugins.image_tokenizers.pictures import draw_reconstructions
from tests.helpers import RECIPES

VOCAB = 30522


class BertBaseVocabulary:
    """What assembly reads from a tokenizer: bert-base-uncased's size and special ids."""

    pad_token_id, mask_token_id, cls_token_id = 0, 103, 101
    all_special_ids = [0, 100, 101, 102, 103]

    def __len__(self) -> int:
        return VOCAB


def recipe(name: str, *overrides: str, registry) -> dict[str, Any]:
    return validate_recipe(load_recipe(RECIPES / name, overrides), registry, source=name)


def block_params(width: int) -> int:
    """Pre-norm block: qkv + proj (with biases), 4x MLP, two LayerNorms = 12 w^2 + 13 w."""
    return (3 * width * width + 3 * width) + (width * width + width) + (8 * width * width + 5 * width) + 4 * width


def hand_count(width: int, depth: int) -> dict[str, int]:
    """M3AE at encoder ``width`` x ``depth``: 16 px patches, bert vocabulary, 512x8 decoder."""
    dec = 512
    return {
        "image_encoder": (768 * width + width) + width + width,  # patch projection, type embedding, [CLS]
        "text_encoder": VOCAB * width + width,  # token table, type embedding
        "fusion": depth * block_params(width) + 2 * width,  # blocks + final LayerNorm
        "decoders.m3ae": 2 * (width * dec + dec) + 2 * dec + 2 * dec + 8 * block_params(dec) + 2 * dec,
        "objectives.image": dec * 768 + 768,  # linear pixel head
        "objectives.text": dec * VOCAB + VOCAB,  # linear vocabulary head
    }


@pytest.mark.parametrize("name,width,depth", [("m3ae-small.json", 384, 12), ("m3ae.json", 768, 12),
                                              ("m3ae-large.json", 1024, 24)])
def test_parameter_counts_match_a_hand_computation(registry, name, width, depth):
    with torch.device("meta"):  # shapes only: no memory for the large model's weights
        student, _ = assemble(recipe(name, registry=registry), registry, BertBaseVocabulary())
    counts = params_by_component(student, None)
    expected = hand_count(width, depth)
    assert {k: counts[k] for k in expected} == expected
    assert counts["total (trained)"] == sum(expected.values())


def test_base_recipe_follows_the_spec(registry):
    r = recipe("m3ae.json", registry=registry)
    assert r["views"]["masked"]["image"] == {"type": "random_patches", "ratio": 0.75, "shared_across_batch": True}
    assert r["views"]["masked"]["text"] == {"type": "drop", "ratio": 0.75, "shared_across_batch": True}
    weights = {o["name"]: o["weight"] for o in r["objectives"]}
    assert weights == {"image": 1.0, "text": 0.1}
    assert r["optim"]["betas"] == [0.9, 0.95] and r["optim"]["weight_decay"] == 0.05
    assert peak_lr(r) == pytest.approx(1.5e-4 * r["train"]["global_batch"] / 256)
    decoder = r["model"]["decoders"]["m3ae"]
    assert (decoder["width"], decoder["depth"], decoder["heads"], decoder["with_text"]) == (512, 8, 16, True)


def test_size_variants_change_only_widths_and_size(registry):
    for name in ("m3ae-small.json", "m3ae-large.json"):
        changed = {line.split(":")[0][2:]
                   for line in diff(load_recipe(RECIPES / "m3ae.json"), load_recipe(RECIPES / name))}
        assert changed - {"$.description"} == {"$.model.image_encoder.width", "$.model.text_encoder.width",
                                               "$.model.fusion.size"}


def test_text_ratio_sweep_changes_only_the_text_ratio(registry):
    ratios = []
    for path in sorted(RECIPES.glob("m3ae-text-ratio-*.json")):
        r = recipe(path.name, registry=registry)
        changed = {line.split(":")[0][2:] for line in diff(load_recipe(RECIPES / "m3ae-tiny.json"), load_recipe(path))}
        assert changed - {"$.description"} <= {"$.views.masked.text.ratio"}
        ratios.append(r["views"]["masked"]["text"]["ratio"])
    assert sorted(ratios) == [0.15, 0.3, 0.5, 0.75, 0.9]


def test_encoder_sees_only_visible_tokens(registry):
    """The unified transformer's sequence is kept patches + kept caption positions + [CLS]."""
    r = recipe("m3ae-tiny.json", registry=registry)
    tokenizer = BertBaseVocabulary()
    student, _ = assemble(r, registry, tokenizer)
    lengths = []
    student.fusion.blocks[0].register_forward_pre_hook(lambda module, args: lengths.append(args[0].shape[1]))
    b, t = 4, r["data"]["max_text_len"]
    batch = {"image": torch.randn(b, 3, 32, 32), "input_ids": torch.randint(1000, 2000, (b, t)),
             "attention_mask": torch.ones(b, t, dtype=torch.long),
             "special_tokens_mask": torch.zeros(b, t, dtype=torch.long)}
    student(batch, torch.Generator().manual_seed(0))
    kept_patches, kept_text = int(16 * (1 - 0.75)), int(t * (1 - 0.75))
    assert lengths == [1 + kept_patches + kept_text]


def test_no_weight_decay_on_decoder_tokens_and_embedding_table(registry):
    student, _ = assemble(recipe("m3ae-tiny.json", registry=registry), registry, BertBaseVocabulary())
    groups = param_groups(student, {"lr_multipliers": {}, "weight_decay": 0.05}, 1e-3)
    no_decay = {n for g in groups if g["weight_decay"] == 0 for n in g["names"]}
    assert {"decoders.m3ae.image_mask_token", "decoders.m3ae.text_mask_token", "decoders.m3ae.type_embed",
            "text_encoder.embed.weight"} <= no_decay


def test_no_weight_decay_on_encoder_cls_and_type_embeddings(registry):
    student, _ = assemble(recipe("m3ae-tiny.json", registry=registry), registry, BertBaseVocabulary())
    groups = param_groups(student, {"lr_multipliers": {}, "weight_decay": 0.05}, 1e-3)
    no_decay = {n for g in groups if g["weight_decay"] == 0 for n in g["names"]}
    assert {"image_encoder.cls_token", "image_encoder.type_embed", "text_encoder.type_embed"} <= no_decay


# --- tiny training runs ----------------------------------------------------------------

def metrics(run_dir: Path) -> list[dict[str, float]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def train(name: str, run_dir: Path, registry, *overrides: str) -> list[dict[str, float]]:
    r = recipe(name, "train.log_every=5", *overrides, registry=registry)
    Trainer(r, run_dir, registry, progress=False).run()
    return metrics(run_dir)


@pytest.fixture(scope="module")
def vq_run(tmp_path_factory, registry) -> tuple[Path, list[dict[str, float]]]:
    run_dir = tmp_path_factory.mktemp("tokenizer-vq")
    return run_dir, train("tokenizer-vq-tiny.json", run_dir, registry, "train.steps=60")


@pytest.mark.slow
def test_tokenizer_recipe_reconstructs_better_and_uses_many_codes(vq_run, registry):
    _, rows = vq_run
    key = "tokenizer_training/reconstruction"
    assert rows[-1][key] < 0.5 * rows[0][key]
    assert rows[-1]["tokenizer_training/codes_used"] > 16
    assert rows[-1]["tokenizer_training/perplexity"] > 8


@pytest.mark.slow
def test_tokenizer_reconstruction_picture(vq_run, registry, tmp_path):
    run_dir, _ = vq_run
    r = recipe("tokenizer-vq-tiny.json", registry=registry)
    from framework.registry import BuildContext
    from framework_plugins.targets.discrete_tokens import load_frozen_tokenizer

    context = BuildContext(registry, {"image_size": 32, "mean": r["data"]["mean"], "std": r["data"]["std"]})
    tokenizer = load_frozen_tokenizer(str(run_dir), None, context)
    images = torch.randn(3, 3, 32, 32)
    path = draw_reconstructions(tokenizer, images, r["data"]["mean"], r["data"]["std"], tmp_path / "recon.png")
    from PIL import Image

    assert Image.open(path).size == (2 * (96 + 4) + 4, 3 * (96 + 4) + 4)


@pytest.mark.slow
def test_tiny_recipe_losses_fall(tmp_path, registry):
    rows = train("m3ae-tiny.json", tmp_path, registry, "train.steps=30")
    assert rows[-1]["image"] < rows[0]["image"] and rows[-1]["text"] < rows[0]["text"]


@pytest.mark.slow
def test_discrete_recipe_losses_fall(tmp_path, registry, vq_run):
    run_dir, _ = vq_run
    rows = train("m3ae-discrete.json", tmp_path, registry, "train.steps=30", f"objectives.0.target.tokenizer={run_dir}")
    assert rows[-1]["image"] < rows[0]["image"] and rows[-1]["text"] < rows[0]["text"]


def write_unpaired_files(root: Path, count: int = 64) -> tuple[Path, Path]:
    """Captions and PNG images of synthetic scenes other than the paired source's."""
    text = SyntheticShapes(samples=count, image_size=32, seed=1, max_shapes=2, split="train")
    images = SyntheticShapes(samples=count, image_size=32, seed=2, max_shapes=2, split="train")
    (root / "images").mkdir(parents=True)
    (root / "captions.txt").write_text("\n".join(text[i]["captions"][0] for i in range(count)) + "\n")
    for i in range(count):
        images[i]["image"].save(root / "images" / f"{i:03d}.png")
    return root / "captions.txt", root / "images"


@pytest.mark.slow
def test_unpaired_recipe_losses_fall(tmp_path, registry):
    captions, images = write_unpaired_files(tmp_path / "data")
    rows = train("m3ae-unpaired.json", tmp_path / "run", registry, "train.steps=30",
                 f"data.train.sources.1.path={captions}", f"data.train.sources.2.path={images}")
    assert rows[-1]["image"] < rows[0]["image"] and rows[-1]["text"] < rows[0]["text"]
    assert rows[-1]["text/unpaired_loss"] > 0 and rows[-1]["image/unpaired_loss"] > 0
