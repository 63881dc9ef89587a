"""MAMO recipes: paper parameter counts, what each ablation recipe changes, and tiny training runs
of the main recipe and the Table 9 MIM-target variants with falling losses."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from framework.assemble import assemble
from framework.inspect_model import params_by_component
from framework.recipe import apply_override, deep_merge, diff, load_recipe, read_json
from framework.train import Trainer
from framework.validation import validate_recipe
from tests.helpers import RECIPES
from tests.recipes.chance import assert_objectives_learn

TABLE9 = {"features": "mamo-mim-features.json", "pixels": "mamo-mim-pixels.json", "tokens": "mamo-mim-tokens.json"}
MIM, MRM = "$.objectives[3]", "$.objectives[2]"
TASKS = ("$.objectives", "$.model.teacher.modules")
ABLATIONS = {  # recipe -> JSON paths it may change relative to mamo-ablation.json (besides its description)
    "mamo-mim-features.json": (),
    "mamo-mim-pixels.json": (MIM, "$.model.decoders"),
    "mamo-mim-tokens.json": (MIM,),
    "mamo-mim-decoder.json": (MIM, "$.model.decoders"),
    "mamo-mim-decoder-4.json": (MIM, "$.model.decoders"),
    "mamo-mim-decoder-6.json": (MIM, "$.model.decoders"),
    "mamo-mrm-image.json": (f"{MRM}.modalities",),
    "mamo-mrm-text.json": (f"{MRM}.modalities",),
    "mamo-mrm-no-predictor.json": (f"{MRM}.predictor", f"{MRM}.with_predictor"),
    "mamo-mrm-online-target.json": (f"{MRM}.target", "$.model.teacher.modules"),
    "mamo-no-mrm.json": TASKS,  # Table 6 row 3
    "mamo-tasks-itc-itm.json": TASKS,  # Table 6 rows 1, 2, 4, 5
    "mamo-tasks-itc-itm-mlm.json": TASKS,
    "mamo-tasks-itc-itm-mrm.json": TASKS,
    "mamo-tasks-itc-itm-mrm-mlm.json": TASKS,
}
PRETRAINED = ("image_encoder", "text_encoder", "fusion")


class BertBaseVocabulary:
    """Just what assembly reads from a tokenizer: bert-base-uncased's size and special ids."""

    pad_token_id, mask_token_id, cls_token_id = 0, 103, 101
    all_special_ids = [0, 100, 101, 102, 103]

    def __len__(self) -> int:
        return 30522


def resolved(name: str) -> dict[str, Any]:
    return load_recipe(RECIPES / name)


def changed_paths(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """JSON paths of every difference between two recipes, descriptions left out."""
    lines = [line.split(":")[0][2:] for line in diff(a, b)]
    return [path for path in lines if path != "$.description"]


def without_pretrained_files(recipe: dict[str, Any]) -> dict[str, Any]:
    """A copy with random init where the recipe names local checkpoints (not present here)."""
    recipe = copy.deepcopy(recipe)
    for slot in PRETRAINED:
        recipe["model"][slot]["checkpoint"] = None
    return recipe


def test_paper_size_parameter_counts(registry):
    """Sec. 4.2: ViT-B/16 has 85.9M parameters and BERT-base 110.1M: text encoder, the 6 fusion
    layers and BERT's MLM head (decoder tied to the word embeddings), plus the pooler we omit."""
    recipe = validate_recipe(without_pretrained_files(resolved("mamo.json")), registry)
    torch.manual_seed(0)
    student, teacher = assemble(recipe, registry, BertBaseVocabulary())
    counts = params_by_component(student, teacher)
    assert counts["image_encoder"] == pytest.approx(85.9e6, rel=0.001)
    d, vocab = 768, 30522
    head = student.objectives["mlm"].head
    assert head.decoder.weight is student.text_encoder.input_embeddings().weight
    # transform + LayerNorm + bias: the tied part counts once
    assert counts["objectives.mlm"] == d * d + d + 2 * d + vocab
    pooler = d * d + d
    bert_base = counts["text_encoder"] + counts["fusion"] + counts["objectives.mlm"] + pooler
    assert bert_base == pytest.approx(110.1e6, rel=0.001)
    ema = ("image_encoder", "text_encoder", "fusion", "objectives.mrm")
    assert counts["teacher (EMA, not trained)"] == sum(counts[k] for k in ema) - sum(
        p.numel() for p in student.objectives["mrm"].predictor.parameters())


@pytest.mark.parametrize("name", sorted(ABLATIONS))
def test_ablation_recipes_validate_and_change_only_their_component(registry, name):
    validate_recipe(without_pretrained_files(resolved(name)), registry, source=name)
    changed = changed_paths(resolved("mamo-ablation.json"), resolved(name))
    allowed = ABLATIONS[name]
    assert all(path.startswith(allowed) for path in changed), changed
    assert bool(changed) == bool(allowed)


def test_ablation_regime_is_mamo_for_10_epochs(registry):
    """Sec. 4.4: ablations train 'a shorter training scheduler of 10 epochs' (mamo.json: 40)."""
    assert changed_paths(resolved("mamo.json"), resolved("mamo-ablation.json")) == ["$.train.steps"]
    full, short = resolved("mamo.json")["train"], resolved("mamo-ablation.json")["train"]
    assert short["steps"] == round(full["steps"] / 4)
    depths = {name: resolved(name)["model"]["decoders"]["mim"]["depth"] for name in
              ("mamo-mim-decoder.json", "mamo-mim-decoder-4.json", "mamo-mim-decoder-6.json")}
    assert sorted(depths.values()) == [2, 4, 6]  # Table 10's rows beside depth 0 (the MLP)
    rows = {name: sorted(o["type"] for o in resolved(name)["objectives"]) for name in
            ("mamo-tasks-itc-itm.json", "mamo-tasks-itc-itm-mlm.json", "mamo-no-mrm.json",
             "mamo-tasks-itc-itm-mrm.json", "mamo-tasks-itc-itm-mrm-mlm.json", "mamo-ablation.json")}
    assert list(rows.values()) == [  # Table 6's six rows in order
        ["itc", "itm"], ["itc", "itm", "mlm"], ["itc", "itm", "mim", "mlm"], ["itc", "itm", "mrm"],
        ["itc", "itm", "mlm", "mrm"], ["itc", "itm", "mim", "mlm", "mrm"]]


def test_fusion_is_bert_layers_7_to_12_over_both_modalities(registry):
    """Sec. 3.1: text encoder and fusion are the first and last 6 layers of BERT-base, the fusion
    run over the concatenated visual and linguistic tokens."""
    model = resolved("mamo.json")["model"]
    assert model["fusion"]["type"] == "bert_concat" and model["fusion"]["layers"] == [6, 12]
    assert model["text_encoder"]["layers"] == [0, 6]
    assert model["fusion"]["checkpoint"] == model["text_encoder"]["checkpoint"]


def test_table9_recipes_differ_only_in_the_mim_target(registry):
    recipes = {k: resolved(v) for k, v in TABLE9.items()}
    for name, recipe in recipes.items():
        validate_recipe(without_pretrained_files(recipe), registry, source=TABLE9[name])
    targets = {k: r["objectives"][3]["target"]["type"] for k, r in recipes.items()}
    assert targets == {"features": "teacher_features", "pixels": "pixels", "tokens": "discrete_tokens"}
    for name in ("pixels", "tokens"):
        changed = changed_paths(recipes["features"], recipes[name])
        assert any(path.startswith(f"{MIM}.target") for path in changed)
        assert all(path.startswith((MIM, "$.model.decoders")) for path in changed), changed
    assert recipes["pixels"]["model"]["decoders"]["mim"]["depth"] == 4  # "a 4-layer transformer decoder"


# --- tiny training runs --------------------------------------------------------------------

TINY_DECODER = ("model.decoders.mim.width=64", "model.decoders.mim.heads=4", "model.decoders.mim.depth=1")
STEPS = 30
RUN = (f"train.steps={STEPS}", "train.log_every=1", "schedule.warmup_steps=4")


def tiny(name: str, *overrides: str, registry: Any) -> dict[str, Any]:
    """Recipe ``name`` at the sizes and data of mamo-tiny.json (its own keys merged on top)."""
    sizes = {k: v for k, v in read_json(RECIPES / "mamo-tiny.json").items()
             if k not in ("$schema", "extends", "description", "objectives")}  # each variant keeps its objectives
    recipe = deep_merge(resolved(name), sizes)
    for override in (*RUN, *overrides):
        recipe = apply_override(recipe, override)
    return validate_recipe(recipe, registry, source=f"tiny {name}")


def train(recipe: dict[str, Any], run_dir: Path, registry: Any) -> list[dict[str, float]]:
    Trainer(recipe, run_dir, registry, progress=False).run()
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def assert_losses_fall(records: list[dict[str, float]], names: tuple[str, ...]) -> None:
    """Mean of the last 8 steps below the mean of the first 8, for the total and each name."""
    for name in ("loss", *names):
        first = sum(r[name] for r in records[:8]) / 8
        last = sum(r[name] for r in records[-8:]) / 8
        assert last < first, f"{name} did not fall: first steps {first:.4f}, last steps {last:.4f}"


@pytest.fixture(scope="module")
def dvae_tokenizer(tmp_path_factory, registry) -> Path:
    """A tiny dVAE (8 px codes) trained briefly, for the visual-tokens MIM target."""
    path = RECIPES / "tokenizer-dvae-tiny.json"
    recipe = validate_recipe(load_recipe(path, ["train.steps=8", "train.log_every=4"]), registry, source=str(path))
    run_dir = tmp_path_factory.mktemp("dvae")
    Trainer(recipe, run_dir, registry, progress=False).run()
    return run_dir


@pytest.mark.slow
def test_tiny_recipe_trains_with_falling_losses_and_a_moving_target(tmp_path, registry):
    # the recipe's own 120 steps, not STEPS: ITC is still at chance after 30 steps from random init
    # and leaves it from about step 40 (issue 19 item 3)
    recipe = validate_recipe(load_recipe(RECIPES / "mamo-tiny.json", ["train.log_every=1"]), registry)
    records = train(recipe, tmp_path, registry)
    assert len(records) == recipe["train"]["steps"]
    assert_losses_fall(records, ("mim", "mlm", "mrm"))
    assert all(r["mrm/image_target_std"] > 0 and r["mrm/text_target_std"] > 0 for r in records)
    # ITM with hard negatives stays at its prior (accuracy 2/3) from random init: issue 19 item 3
    assert_objectives_learn(records, recipe, vocab_size=recipe["data"]["tokenizer"]["vocab_size"],
                            not_yet=("itm",))


@pytest.mark.slow
def test_table9_pixels_variant_trains_with_falling_losses(tmp_path, registry):
    records = train(tiny(TABLE9["pixels"], *TINY_DECODER, registry=registry), tmp_path, registry)
    assert_losses_fall(records, ("mim", "mlm"))


@pytest.mark.slow
def test_table9_tokens_variant_trains_with_falling_losses(tmp_path, registry, dvae_tokenizer):
    recipe = tiny(TABLE9["tokens"], f"objectives.3.target.tokenizer={dvae_tokenizer}",
                  "objectives.3.target.num_codes=256", registry=registry)
    records = train(recipe, tmp_path, registry)
    assert_losses_fall(records, ("mim", "mlm"))
