"""`framework export`: the exported timm and transformers models give the framework's
encodings on the same input, and what cannot be exported is refused in one line."""

from __future__ import annotations

import json

import pytest
import timm
import torch
from transformers import AutoModel, AutoTokenizer

from framework.cli import main
from framework.commands.export import ExportError, export_run
from framework.evaluate import EvalModel
from framework.train import Trainer
from tests.helpers import tiny_recipe

SHORT = ("train.steps=2", "train.log_every=1", "train.checkpoint_every=0", "train.micro_batch=8",
         "train.global_batch=8", "model.text_encoder.layers=[0,1]")  # a layer range, as ALBEF's text encoder
TEXTS = ["a red square", "two blue circles above a green triangle"]


@pytest.fixture(scope="module")
def run(tmp_path_factory, registry):
    run_dir = tmp_path_factory.mktemp("export_run")
    Trainer(tiny_recipe(*SHORT), run_dir, registry, progress=False).run()
    return run_dir


@pytest.fixture(scope="module")
def model(run, registry):
    return EvalModel.from_run(run, registry)


def test_timm_export_loads_three_ways_and_matches(run, model, tmp_path, capsys):
    assert main(["export", str(run), "--to", "timm", "--out", str(tmp_path / "timm")]) == 0
    assert "exported model.image_encoder" in capsys.readouterr().out
    out = tmp_path / "timm"
    config = json.loads((out / "config.json").read_text())
    name, kwargs = config["architecture"], config["model_args"]
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = model.encode_images(images).tokens
        loaded = [timm.create_model(f"local-dir:{out}", pretrained=True),
                  timm.create_model(name, pretrained=True,
                                    pretrained_cfg_overlay={"file": str(out / "model.safetensors")}, **kwargs)]
        by_checkpoint = timm.create_model(name, **kwargs)
        timm.models.load_checkpoint(by_checkpoint, str(out / "model.safetensors"))
        for vit in [*loaded, by_checkpoint]:
            torch.testing.assert_close(vit.eval().forward_features(images), want, rtol=0, atol=1e-6)


def test_hf_export_loads_with_automodel_and_matches(run, model, tmp_path):
    out = export_run(run, "hf", tmp_path / "hf")
    loaded = AutoModel.from_pretrained(str(out), trust_remote_code=False, local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    assert loaded.config.num_hidden_layers == 1
    tokens = model.tokenize(TEXTS)
    theirs = tokenizer(TEXTS, padding="max_length", truncation=True, max_length=tokens["input_ids"].shape[1],
                       return_tensors="pt")
    assert torch.equal(theirs["input_ids"], tokens["input_ids"])
    with torch.no_grad():
        want = model.encode_texts(TEXTS).tokens
        got = loaded(input_ids=theirs["input_ids"], attention_mask=theirs["attention_mask"]).last_hidden_state
    real = tokens["attention_mask"].bool()  # padding positions are not compared: nothing reads them
    torch.testing.assert_close(got[real], want[real], rtol=0, atol=1e-5)
    info = json.loads((out / "framework_export.json").read_text())
    assert info["step"] == 2 and info["component"] == "text_encoder"


def test_an_image_encoder_timm_does_not_have_is_refused(tmp_path, registry):
    recipe = tiny_recipe(*SHORT, "model.image_encoder.mask_tokens=\"after_encoder\"")
    Trainer(recipe, tmp_path / "run", registry, progress=False).run()
    with pytest.raises(ExportError, match=r"^cannot export model.image_encoder to timm: mask_tokens='after_encoder'"):
        export_run(tmp_path / "run", "timm", tmp_path / "out")


def test_a_component_without_an_export_is_named(model, monkeypatch, tmp_path, run, capsys):
    from framework.commands import export as export_module

    class Plain(torch.nn.Module):
        pass

    monkeypatch.setattr(EvalModel, "from_run", classmethod(lambda cls, *a, **k: model))
    monkeypatch.setattr(model.model, "image_encoder", Plain())
    monkeypatch.setitem(model.recipe["model"], "image_encoder", {"type": "patch_embed"})
    assert main(["export", str(run), "--to", "timm", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "model.image_encoder ('patch_embed')" in err and "not a timm model" in err, err
    assert export_module.TARGETS["timm"][0] == "image_encoder"
