"""``model.init``: a model starts from another run's model file, strictly, with position
tables resized, prefixes renamed, the teacher copied from the initialised student, and
every refusal naming the key, the path or the tensors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from timm.layers import resample_abs_pos_embed

from framework import data as data_lib
from framework.assemble import assemble
from framework.initialise import InitError, adapt, initialise, resolve_model_file
from tests.helpers import tiny_recipe

DATA = 'data.train={"type": "synthetic_shapes", "samples": 16, "image_size": 32}'


@pytest.fixture(scope="module")
def tokenizer(registry):
    recipe = tiny_recipe(DATA)
    return data_lib.build_tokenizer(recipe, registry, data_lib.build_dataset(recipe, registry, "train"))


def build(registry, tokenizer, *overrides: str, seed: int = 0):
    torch.manual_seed(seed)
    return assemble(tiny_recipe(DATA, *overrides), registry, tokenizer)


def fake_run(root: Path, state: dict[str, torch.Tensor], step: int = 10) -> Path:
    """A run directory whose latest checkpoint holds ``state`` as model.safetensors."""
    checkpoint = root / "checkpoints" / f"step_{step:08d}"
    checkpoint.mkdir(parents=True)
    (root / "recipe.json").write_text("{}")
    (root / "checkpoints" / "latest").write_text(checkpoint.name + "\n")
    save_file({k: v.detach().clone().contiguous() for k, v in state.items()}, str(checkpoint / "model.safetensors"),
              metadata={"step": str(step)})
    return root


@pytest.fixture(scope="module")
def source(registry, tokenizer, tmp_path_factory):
    """A 'pretrained' tiny model (seed 1) saved as a run."""
    student, _ = build(registry, tokenizer, seed=1)
    return student, fake_run(tmp_path_factory.mktemp("pretrain"), student.state_dict())


def same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_backbone_is_loaded_and_the_rest_keeps_its_initialisation(registry, tokenizer, source):
    pretrained, run = source
    student, _ = build(registry, tokenizer, seed=2)
    report = initialise(student, None, {"path": str(run)})
    for part in ("image_encoder", "text_encoder", "fusion"):
        assert same(getattr(student, part), getattr(pretrained, part)), part
    assert not same(student.decoders, pretrained.decoders)
    assert report.step == 10 and report.source.endswith("step_00000010/model.safetensors")
    assert len(report.loaded) == sum(1 for k in student.state_dict() if k.split(".")[0] in
                                     ("image_encoder", "text_encoder", "fusion"))
    assert report.missing == [] and report.unexpected == [] and report.resized == []
    assert json.loads(report.save(run.parent).read_text())["loaded"] == report.loaded
    assert "initialised image_encoder, text_encoder, fusion" in report.summary()


def test_image_position_embeddings_are_resampled_bicubically_to_a_new_grid(registry, tokenizer, source):
    pretrained, run = source
    student, _ = build(registry, tokenizer, "data.image_size=48", seed=2)  # 8-px patches: 4x4 -> 6x6
    report = initialise(student, None, {"path": str(run), "components": ["image_encoder"]})
    key = "image_encoder.vit.pos_embed"
    [resized] = [r for r in report.resized if r["key"] == key]
    assert resized["from"] == [1, 17, 64] and resized["to"] == [1, 37, 64] and "bicubic 4x4 -> 6x6" in resized["how"]
    want = resample_abs_pos_embed(pretrained.state_dict()[key], new_size=[6, 6], old_size=[4, 4], num_prefix_tokens=1)
    assert torch.allclose(student.state_dict()[key], want)
    with pytest.raises(InitError, match=r"shape mismatch image_encoder.vit.pos_embed: "
                                        r"source \(1, 17, 64\) vs model \(1, 37, 64\)"):
        initialise(student, None, {"path": str(run), "components": ["image_encoder"], "resize_positions": False})


def test_text_position_tables_are_truncated_or_extended():
    source, target = torch.randn(8, 4), torch.randn(12, 4)
    extended, how = adapt("text_encoder.embeddings.position_embeddings.weight", source, target, None)
    assert torch.equal(extended[:8], source) and torch.equal(extended[8:], target[8:]) and "extended 8 -> 12" in how
    truncated, how = adapt("x.position_embeddings.weight", target, source, None)
    assert torch.equal(truncated, target[:8]) and "truncated 12 -> 8" in how
    assert adapt("x.word_embeddings.weight", source, target, None) is None


def test_strict_loading_names_each_tensor_and_patterns_allow_them(registry, tokenizer, source):
    _, run = source
    objectives = json.dumps([{"type": "itc", "view": "full", "embed_dim": 32}, {"type": "itm", "view": "full"}])
    student, _ = build(registry, tokenizer, f"objectives={objectives}", seed=2)
    cfg = {"path": str(run), "components": ["heads"]}
    with pytest.raises(InitError) as caught:
        initialise(student, None, cfg)
    message = str(caught.value)
    assert "shape mismatch objectives.itc.image_proj.weight: source (64, 64) vs model (32, 64)" in message
    assert "missing from the source: objectives.itm.head.weight" in message
    assert "not in the model: objectives.mlm." in message
    report = initialise(student, None, {**cfg, "allow_missing": ["objectives.itc.*", "objectives.itm.*"],
                                        "allow_unexpected": ["objectives.mlm.*", "objectives.mim.*"]})
    assert "objectives.itm.head.weight" in report.missing and "objectives.itc.image_proj.weight" in report.missing
    assert any(k.startswith("objectives.mlm.") for k in report.unexpected)


def test_renamed_prefixes_load_into_another_objective_name(registry, tokenizer, source):
    pretrained, run = source
    objectives = json.dumps([{"type": "itc", "name": "contrast", "view": "full", "embed_dim": 64, "pooling": "mean"}])
    student, _ = build(registry, tokenizer, f"objectives={objectives}", seed=2)
    initialise(student, None, {"path": str(run), "components": ["heads"],
                               "rename": {"objectives.itc.": "objectives.contrast."},
                               "allow_unexpected": ["objectives.mlm.*", "objectives.mim.*"]})
    assert same(student.objectives["contrast"], pretrained.objectives["itc"])


def test_a_momentum_teacher_starts_as_a_copy_of_the_initialised_student(registry, tokenizer, source):
    pretrained, run = source
    student, teacher = build(registry, tokenizer, 'model.teacher={"type": "ema"}', seed=2)
    report = initialise(student, teacher, {"path": str(run)})
    for path in ("image_encoder", "text_encoder", "fusion"):
        assert same(teacher.module(path), pretrained.get_submodule(path)), path
    assert report.teacher.startswith("copied from the initialised student")
    with pytest.raises(InitError,
                       match=r"has no \['teacher'\]; it has \['decoders', 'fusion', 'heads', 'image_encoder'"):
        initialise(student, teacher, {"path": str(run), "components": ["teacher"]})


def test_assemble_initialises_when_the_recipe_says_so(registry, tokenizer, source):
    pretrained, run = source
    student, _ = build(registry, tokenizer, f'model.init={{"path": "{run}"}}', seed=2)
    assert same(student.image_encoder, pretrained.image_encoder) and student.init_report.loaded


def test_bad_paths_are_one_line_errors_naming_the_key(tmp_path):
    with pytest.raises(InitError, match=r"^model.init.path: '.*nowhere' does not exist"):
        resolve_model_file(str(tmp_path / "nowhere"))
    with pytest.raises(InitError, match=r"is not a run directory \(no recipe.json\)"):
        resolve_model_file(str(tmp_path))
    (tmp_path / "recipe.json").write_text("{}")
    with pytest.raises(InitError, match="has no checkpoint yet"):
        resolve_model_file(str(tmp_path))
    (tmp_path / "junk.safetensors").write_text("not a model")
    with pytest.raises(InitError, match="not a readable safetensors file"):
        initialise(torch.nn.Linear(1, 1), None, {"path": str(tmp_path / "junk.safetensors")})
    with pytest.raises(InitError, match="unknown \\['encoder'\\]"):
        initialise(torch.nn.Linear(1, 1), None, {"path": str(tmp_path), "components": ["encoder"]})


def test_a_run_saves_its_init_report(registry, source, tmp_path):
    from framework.initialise import INIT_REPORT
    from framework.train import Trainer

    _, run = source
    recipe = tiny_recipe(DATA, f'model.init={{"path": "{run}"}}', "train.steps=1", "train.micro_batch=8",
                         "train.global_batch=8", "train.checkpoint_every=0")
    Trainer(recipe, tmp_path / "finetune", registry, progress=False)
    saved = json.loads((tmp_path / "finetune" / INIT_REPORT).read_text())
    assert saved["source"].endswith("model.safetensors") and saved["loaded"] and saved["missing"] == []
