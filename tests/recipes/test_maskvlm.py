"""MaskVLM recipes: paper-size parameter counts and one CPU step, what each ablation changes, and
the tiny recipe training with every loss falling under ZeRO-2 on 2 processes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from framework.assemble import assemble
from framework.inspect_model import params_by_component
from framework.recipe import diff, load_recipe
from framework.validation import validate_recipe
from tests.distributed.launch import train
from tests.helpers import RECIPES
from tests.recipes.chance import assert_objectives_learn

MIM, MLM = "$.objectives[2]", "$.objectives[3]"
LOSS_ABLATIONS = {  # Table 5: recipe -> objective types it keeps
    "maskvlm-loss-itc.json": ["itc"],
    "maskvlm-loss-itc-itm.json": ["itc", "itm"],
    "maskvlm-loss-mlm-mim.json": ["mim", "mlm"],
    "maskvlm-loss-itc-itm-mlm.json": ["itc", "itm", "mlm"],
    "maskvlm-loss-itc-itm-mim.json": ["itc", "itm", "mim"],
}
VIEW_ABLATIONS = {  # recipe -> (its base, every JSON path it may change besides its description)
    # Table 6, in the Sec. 4.1 setup
    "maskvlm-mask-both.json": ("maskvlm.json", {"$.views.masked_both", f"{MIM}.view", f"{MLM}.view"}),
    "maskvlm-ratio-50-30.json": ("maskvlm-ablation.json", {"$.views.masked_image.image.ratio"}),  # Table 7
    "maskvlm-ratio-70-30.json": ("maskvlm-ablation.json", {"$.views.masked_image.image.ratio"}),
    "maskvlm-ratio-60-15.json": ("maskvlm-ablation.json", {"$.views.masked_text.text.ratio"}),
}
REGIME = ("$.data.train", "$.schedule.warmup_steps", "$.train.steps")
"""What the ablation regime and Table 4's rows change: the data subset and the epochs it sets."""
COCO, CC3M = 566_747, 2_912_317


class RobertaBaseVocabulary:
    """What assembly reads from a tokenizer: roberta-base's size and special ids."""

    pad_token_id, mask_token_id, cls_token_id = 1, 50264, 0
    all_special_ids = (0, 1, 2, 3, 50264)

    def __len__(self) -> int:
        return 50265


def resolved(name: str) -> dict[str, Any]:
    return load_recipe(RECIPES / name)


def changed_paths(a: dict[str, Any], b: dict[str, Any]) -> set[str]:
    """JSON paths of every difference between two recipes, descriptions left out."""
    return {line.split(":")[0][2:] for line in diff(a, b)} - {"$.description"}


def paper_model(registry):
    recipe = validate_recipe(resolved("maskvlm.json"), registry)
    for encoder in ("image_encoder", "text_encoder"):  # the paper's pretrained weights are not here
        recipe["model"][encoder]["checkpoint"] = None
    torch.manual_seed(0)
    return assemble(recipe, registry, RobertaBaseVocabulary())


def test_paper_size_parameter_counts(registry):
    """ViT-B/16 (timm, no classifier) + mask token; RoBERTa-base without its pooler; cross-modality
    encoders and decoder of post-norm layers with cross-attention (Fig. 7c), 3 each."""
    student, _ = paper_model(registry)
    counts = params_by_component(student, None)
    d, inter, vocab = 768, 3072, 50265
    vit_b16 = 85_798_656
    assert counts["image_encoder"] == vit_b16 + d
    roberta_base = 124_645_632 - (d * d + d)  # published count minus the pooler
    assert counts["text_encoder"] == roberta_base
    attention = 4 * d * d + 4 * d + 2 * d
    cross_layer = 2 * attention + (d * inter + inter) + (inter * d + d) + 2 * d
    assert counts["fusion"] == 2 * 3 * cross_layer  # image and text streams, 3 blocks each
    assert counts["decoders.pixels"] == 3 * cross_layer
    assert counts["objectives.mim"] == d * 16 * 16 * 3 + 16 * 16 * 3  # FC to the pixels of a patch
    assert counts["objectives.mlm"] == d * vocab + vocab  # FC token classifier
    assert counts["objectives.itm"] == 2 * d + 2


@pytest.mark.slow
def test_paper_size_forward_backward_at_batch_2_on_cpu(registry):
    student, _ = paper_model(registry)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(4, 50264, (2, 32), generator=g)
    ids[:, 0], ids[0, 20], ids[1, 31] = 0, 2, 2  # <s> ... </s>
    attention = torch.ones(2, 32, dtype=torch.long)
    attention[0, 21:] = 0
    ids[0, 21:] = 1  # padding
    batch = {"image": torch.randn(2, 3, 224, 224, generator=g), "input_ids": ids, "attention_mask": attention,
             "special_tokens_mask": ((ids <= 3) | (ids == 50264)).long()}
    out = student(batch, generator=torch.Generator().manual_seed(1))
    assert set(out.losses) == {"itc", "itm", "mim", "mlm"}
    assert all(torch.isfinite(v) for v in out.losses.values())
    out.loss.backward()
    for name in ("image_encoder", "text_encoder", "fusion", "decoders"):
        grads = [p.grad for p in getattr(student, name).parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads), name


def test_paper_hyper_parameters_are_in_the_recipe(registry):
    recipe = validate_recipe(resolved("maskvlm.json"), registry)
    model, views, optim = recipe["model"], recipe["views"], recipe["optim"]
    assert model["image_encoder"]["mask_tokens"] == "input" and model["text_encoder"]["arch"] == "roberta"
    assert views["masked_image"] == {"image": {"type": "block", "ratio": 0.6, "block_size": 32, "count": "blocks"}}
    assert views["masked_text"] == {"text": {"type": "mask_only", "ratio": 0.3}}
    for encoder in ("image_encoder", "text_encoder"):
        assert optim["lr"] * optim["lr_multipliers"][encoder] == pytest.approx(1e-5)
    assert (optim["lr"], optim["weight_decay"], recipe["schedule"]["min_lr"]) == (3e-4, 0.05, 3e-5)
    assert recipe["train"]["global_batch"] == 512
    mim = recipe["objectives"][2]
    assert (mim["loss"], mim["positions"], mim["target"]["normalize_per_patch"]) == ("l1", "masked", False)


@pytest.mark.parametrize("name, kept", LOSS_ABLATIONS.items())
def test_loss_ablation_only_drops_objectives(registry, name, kept):
    main, ablation = resolved("maskvlm-ablation.json"), resolved(name)
    validate_recipe(without_pretrained_files(ablation), registry, source=name)
    assert changed_paths(main, ablation) <= {"$.objectives"}
    assert ablation["objectives"] == [o for o in main["objectives"] if o["type"] in kept]


@pytest.mark.parametrize("name, base, allowed", [(k, *v) for k, v in VIEW_ABLATIONS.items()])
def test_view_ablation_changes_only_its_keys(registry, name, base, allowed):
    ablation = resolved(name)
    validate_recipe(without_pretrained_files(ablation), registry, source=name)
    assert changed_paths(resolved(base), ablation) == allowed


def without_pretrained_files(recipe: dict[str, Any]) -> dict[str, Any]:
    """A copy with random init and a learnt tokenizer where the recipe names local files absent here."""
    recipe = copy.deepcopy(recipe)
    for encoder in ("image_encoder", "text_encoder"):
        recipe["model"][encoder]["checkpoint"] = None
    recipe["data"]["tokenizer"] = {"type": "wordpiece_from_data", "vocab_size": 50265}
    return recipe


@pytest.mark.parametrize("name, cc_percent, base", [
    ("maskvlm-ablation.json", 50, "maskvlm.json"), ("maskvlm-data-cc25.json", 25, "maskvlm-ablation.json"),
    ("maskvlm-data-cc10.json", 10, "maskvlm-ablation.json"), ("albef-data-cc50.json", 50, "albef.json"),
    ("albef-data-cc25.json", 25, "albef-data-cc50.json"), ("albef-data-cc10.json", 10, "albef-data-cc50.json")])
def test_ablation_regime_and_table4_rows(name, cc_percent, base):
    """Sec. 4.1/4.4: CC X% + COCO for 30 epochs (5 warm-up epochs for MaskVLM), batch 512; Table 4
    gives each subset's size (2M, 1.3M, 0.9M pairs)."""
    recipe = resolved(name)
    changed = changed_paths(resolved(base), recipe)
    assert changed and all(path.startswith(REGIME) for path in changed), changed
    train = recipe["data"]["train"]
    assert [s["path"] for s in train["sources"]] == ["data/4m/coco_karpathy_train.jsonl",
                                                      f"data/4m/cc3m_{cc_percent}pct.jsonl"]
    assert train["weights"] == [COCO, round(CC3M * cc_percent / 100)] and train["samples"] == sum(train["weights"])
    assert train["samples"] / 1e6 == pytest.approx({50: 2.0, 25: 1.3, 10: 0.9}[cc_percent], abs=0.05)
    assert recipe["train"]["steps"] == round(30 * train["samples"] / 512)
    if name.startswith("maskvlm"):
        assert recipe["schedule"]["warmup_steps"] == round(5 * train["samples"] / 512)


def test_mask_both_view_masks_both_modalities_as_the_main_views_do():
    main, both = resolved("maskvlm.json"), resolved("maskvlm-mask-both.json")
    assert both["views"]["masked_both"] == {**main["views"]["masked_image"], **main["views"]["masked_text"]}


def test_tiny_recipe_keeps_the_paper_components():
    main, tiny = resolved("maskvlm.json"), resolved("maskvlm-tiny.json")
    for part in ("image_encoder", "text_encoder", "fusion"):
        assert tiny["model"][part]["type"] == main["model"][part]["type"]
    assert tiny["model"]["image_encoder"]["mask_tokens"] == "input"
    assert [o["type"] for o in tiny["objectives"]] == [o["type"] for o in main["objectives"]]
    # tiny ITC embeds the mean of tokens: from random init [CLS] outputs start alike and ITC stays at chance
    assert {k for k in changed_paths(main, tiny) if k.startswith("$.objectives")} == {"$.objectives[0].embed_dim",
                                                                                       "$.objectives[0].pooling"}


@pytest.mark.slow
def test_tiny_recipe_trains_every_loss_under_zero2_on_2_processes(tmp_path: Path):
    run = train(tmp_path / "run", "recipes/maskvlm-tiny.json", ["train.steps=60", "deepspeed.zero_stage=2"], nproc=2)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 60
    for loss in ("itc", "itm", "mim", "mlm"):
        first, last = records[0][loss], sum(r[loss] for r in records[-3:]) / 3
        assert last < first, f"{loss} did not fall: {first:.3f} -> {last:.3f}"
    recipe = resolved("maskvlm-tiny.json")
    # ITM stays at its prior (accuracy 2/3) in 60 steps from random init: issue 19 item 3
    assert_objectives_learn(records, recipe, vocab_size=recipe["data"]["tokenizer"]["vocab_size"], world_size=2,
                            not_yet=("itm",), last=3)
