"""discrete_tokens: loading a trained tokenizer frozen from a run directory, a checkpoint
directory or an export, its codes as per-patch classes, and the errors for wrong sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from framework.model_file import CONFIGS_KEY, save_model_file
from framework.registry import BuildContext, ComponentBuildError
from framework_plugins.image_tokenizers.storage import (
    TokenizerSourceError,
    export_tokenizer,
    read_tokenizer,
)

MEAN, STD = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]
CONFIG = {"type": "vq", "patch_size": 8, "channels": 16, "num_codes": 32, "code_dim": 8}


def context(registry, **values) -> BuildContext:
    return BuildContext(registry, {"image_size": 32, "mean": MEAN, "std": STD, "patch_size": 8, "grid": (4, 4),
                                   **values})


def fake_run(root: Path, registry, name: str = "tok") -> torch.nn.Module:
    """A run directory as the trainer writes it: recipe.json, checkpoints/latest and a model
    file whose weights hold the tokenizer under objectives.<name>.tokenizer."""
    torch.manual_seed(0)
    tokenizer = registry.build("image_tokenizer", CONFIG, context(registry))
    recipe = {"model": {}, "objectives": [{"type": "tokenizer_training", "name": name, "tokenizer": CONFIG}],
              "data": {"mean": MEAN, "std": STD}}
    tag = root / "checkpoints" / "step_00000002"
    tag.mkdir(parents=True)
    (root / "recipe.json").write_text(json.dumps(recipe))
    (tag / "recipe.json").write_text(json.dumps(recipe))
    (root / "checkpoints" / "latest").write_text("step_00000002\n")
    module = {f"objectives.{name}.tokenizer.{k}": v for k, v in tokenizer.state_dict().items()}
    module["objectives.other.weight"] = torch.zeros(2)
    save_model_file(tag / "model.safetensors", module, step=2)
    return tokenizer.eval()


def build_target(registry, source: str, **values):
    return registry.build("target", {"type": "discrete_tokens", "tokenizer": source}, context(registry, **values))


class Ctx:
    def __init__(self, images: torch.Tensor) -> None:
        self.batch = {"image": images}


@pytest.mark.parametrize("where", ["run", "checkpoint", "export"])
def test_codes_match_the_trained_tokenizer(tmp_path, registry, where):
    original = fake_run(tmp_path / "run", registry)
    source = {"run": tmp_path / "run", "checkpoint": tmp_path / "run" / "checkpoints" / "step_00000002",
              "export": export_tokenizer(tmp_path / "run", tmp_path / "tok.safetensors")}[where]
    target = build_target(registry, str(source))
    assert target.loss_kind == "classification" and target.dim == 32 and not target.requires_teacher
    images = torch.randn(3, 3, 32, 32)
    codes = target(Ctx(images), None)
    assert codes.shape == (3, 16) and codes.dtype == torch.long
    assert torch.equal(codes, original.encode(images).flatten(1))


def test_tokenizer_is_frozen_and_stays_in_eval_mode(tmp_path, registry):
    fake_run(tmp_path, registry)
    target = build_target(registry, str(tmp_path))
    assert not any(p.requires_grad for p in target.parameters())
    target.train()
    assert target.training and not target.tokenizer.training


def test_export_keeps_config_and_normalisation(tmp_path, registry):
    fake_run(tmp_path / "run", registry)
    stored = read_tokenizer(export_tokenizer(tmp_path / "run", tmp_path / "out" / "t.safetensors"))
    assert stored.config == CONFIG and stored.mean == MEAN and stored.std == STD
    assert not any(k.startswith("objectives.") for k in stored.state)
    with pytest.raises(TokenizerSourceError, match=".safetensors"):
        export_tokenizer(tmp_path / "run", tmp_path / "t.pt")


def refused(kind: type, match: str):
    """The registry's build error for the recipe entry, caused by ``kind`` saying ``match``."""
    return pytest.raises(ComponentBuildError, match=match, check=lambda exc: isinstance(exc.__cause__, kind))


def test_wrong_sources_are_explained(tmp_path, registry):
    fake_run(tmp_path / "run", registry)
    with refused(TokenizerSourceError, "does not exist"):
        build_target(registry, str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with refused(TokenizerSourceError, "neither a run directory"):
        build_target(registry, str(tmp_path / "empty"))
    with refused(TokenizerSourceError, "no tokenizer objective named 'nope'"):
        registry.build("target", {"type": "discrete_tokens", "tokenizer": str(tmp_path / "run"), "objective": "nope"},
                       context(registry))
    with refused(ValueError, "normalised with mean"):
        build_target(registry, str(tmp_path / "run"), mean=[0.1, 0.2, 0.3])
    with refused(ValueError, "patch_size 16"):
        build_target(registry, str(tmp_path / "run"), patch_size=16, grid=(2, 2))
    (tmp_path / "plain.safetensors").write_bytes(b"not a tokenizer")
    with refused(TokenizerSourceError, "not a readable .safetensors"):
        build_target(registry, str(tmp_path / "plain.safetensors"))


def test_rebuilds_from_the_recorded_config_without_the_source(tmp_path, registry):
    """A build records the tokenizer's config; a build with load_pretrained=False and that
    record needs neither the run nor its weights (the model file supplies them)."""
    import shutil

    fake_run(tmp_path / "run", registry)
    configs: dict = {}
    trained = build_target(registry, str(tmp_path / "run"), **{CONFIGS_KEY: configs})
    shutil.rmtree(tmp_path / "run")
    rebuilt = build_target(registry, str(tmp_path / "run"), load_pretrained=False, **{CONFIGS_KEY: configs})
    rebuilt.load_state_dict(trained.state_dict())
    images = torch.randn(2, 3, 32, 32)
    assert torch.equal(rebuilt(Ctx(images), None), trained(Ctx(images), None))
    assert not any(p.requires_grad for p in rebuilt.parameters())
