"""model.safetensors: written at every checkpoint, read back as the student's weights, and
enough (with the run's recipe and tokenizer) to evaluate a run whose pretrained files are gone."""

from __future__ import annotations

import json
import shutil

import pytest
import timm
import torch
from torch import nn
from transformers import BertConfig, BertModel

from framework.checkpoint import latest_checkpoint
from framework.cli import main
from framework.evaluate import EvalModel
from framework.model_file import (
    ModelFileError,
    read_metadata,
    read_model_file,
    save_model_file,
)
from framework.provenance import recipe_hash
from framework.train import Trainer
from tests.helpers import RECIPES, tiny_recipe

SHORT = ("train.steps=2", "train.log_every=1", "train.checkpoint_every=0", "train.micro_batch=8",
         "train.global_batch=8")


def test_tied_tensors_are_stored_once_and_come_back_tied(tmp_path):
    embed, head = nn.Embedding(10, 4), nn.Linear(4, 10)
    head.weight = embed.weight  # tied, as an MLM head may be
    state = {"embed.weight": embed.weight, "head.weight": head.weight, "head.bias": head.bias,
             "slice": embed.weight[2:5]}  # another view of the same storage: stored as its own copy
    save_model_file(tmp_path / "m.safetensors", state, step=7, recipe_hash="abc", pretrained_configs={"s": {"a": 1}})
    stored = read_model_file(tmp_path / "m.safetensors")
    assert stored.step == 7 and stored.recipe_hash == "abc" and stored.pretrained_configs == {"s": {"a": 1}}
    assert stored.state["head.weight"] is stored.state["embed.weight"]
    for key, value in state.items():
        assert torch.equal(stored.state[key], value.detach()), key


def test_a_file_that_is_not_a_model_file_is_refused(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        read_model_file(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ModelFileError, match="not a readable"):
        read_model_file(tmp_path)


def test_every_checkpoint_holds_the_student_weights(tmp_path, registry):
    recipe = tiny_recipe(*SHORT, "train.checkpoint_every=1")
    trainer = Trainer(recipe, tmp_path, registry, progress=False)
    trainer.run()
    for step in (1, 2):
        assert (tmp_path / "checkpoints" / f"step_{step:08d}" / "model.safetensors").is_file()
    checkpoint = latest_checkpoint(tmp_path / "checkpoints")
    meta = read_metadata(checkpoint)
    assert meta["step"] == "2" and meta["recipe_hash"] == recipe_hash(trainer.recipe)
    stored = read_model_file(checkpoint).state
    live = trainer.engine.module.state_dict()
    assert stored.keys() == live.keys()
    for name, value in live.items():
        assert torch.equal(stored[name], value), name


def save_pretrained_files(root):
    """A local timm ViT file and a transformers BERT directory, sized like the tiny recipe."""
    vit = timm.create_model("vit_base_patch16_224", pretrained=False, img_size=32, patch_size=8, embed_dim=64,
                            depth=2, num_heads=4, num_classes=0)
    root.mkdir()
    torch.save(vit.state_dict(), root / "vit.pth")
    bert = BertModel(BertConfig(vocab_size=300, hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                                intermediate_size=128, max_position_embeddings=64), add_pooling_layer=False)
    bert.save_pretrained(root / "bert")
    return root / "vit.pth", root / "bert"


def test_a_run_is_evaluated_after_its_pretrained_files_are_deleted(tmp_path, registry):
    vit_file, bert_dir = save_pretrained_files(tmp_path / "pretrained")
    recipe = tiny_recipe(*SHORT, f"model.image_encoder.checkpoint={json.dumps(str(vit_file))}",
                         f"model.text_encoder.checkpoint={json.dumps(str(bert_dir))}",
                         "model.text_encoder.layers=[0,2]",
                         f"model.fusion.checkpoint={json.dumps(str(bert_dir))}", "model.fusion.layers=[2,3]")
    run = tmp_path / "run"
    trainer = Trainer(recipe, run, registry, progress=False)
    trainer.run()
    shutil.rmtree(tmp_path / "pretrained")
    model = EvalModel.from_run(run, registry)
    assert model.step == 2
    live = trainer.engine.module.state_dict()
    for name, value in model.model.state_dict().items():
        assert torch.equal(value, live[name]), name
    images, texts = torch.randn(2, 3, 32, 32), ["a red square", "a blue circle"]
    trainer.engine.module.eval()
    with torch.no_grad():
        tokens = model.tokenize(texts)
        want_image = trainer.engine.module.image_encoder(images, mask=None).tokens
        want_text = trainer.engine.module.text_encoder(tokens["input_ids"], tokens["attention_mask"]).tokens
        assert torch.equal(model.encode_images(images).tokens, want_image)
        assert torch.equal(model.encode_texts(texts).tokens, want_text)
    task = json.dumps({"type": "retrieval", "max_samples": 16, "batch_size": 16})
    assert main(["eval", str(run), "--task", task, "--out", str(tmp_path / "eval")]) == 0  # validation included


def test_a_discrete_token_run_is_evaluated_after_its_image_tokenizer_is_deleted(tmp_path, registry):
    """The frozen tokenizer of a discrete_tokens target is read from its run's model file at
    training time, and rebuilt from the new run's own model file at evaluation."""
    tokenizer_run, run = tmp_path / "tokenizer", tmp_path / "run"
    tiny = ("train.steps=2", "train.log_every=1", "train.checkpoint_every=0")
    Trainer(tiny_recipe(*tiny, path=RECIPES / "tokenizer-vq-tiny.json"), tokenizer_run, registry, progress=False).run()
    recipe = tiny_recipe(*tiny, f"objectives.0.target.tokenizer={json.dumps(str(tokenizer_run))}",
                         path=RECIPES / "m3ae-discrete.json")
    trainer = Trainer(recipe, run, registry, progress=False)
    trainer.run()
    shutil.rmtree(tokenizer_run)
    model = EvalModel.from_run(run, registry)
    live = trainer.engine.module.state_dict()
    tokenizer_keys = [k for k in live if ".target.tokenizer." in k]
    assert tokenizer_keys
    for name, value in model.model.state_dict().items():
        assert torch.equal(value, live[name]), name


def test_a_run_resumes_after_its_pretrained_files_are_deleted(tmp_path, registry):
    """Resume rebuilds from the checkpoint's model-file record: the files a run started from
    are not needed, and the resumed weights are the checkpoint's."""
    vit_file, bert_dir = save_pretrained_files(tmp_path / "pretrained")
    overrides = (*SHORT, f"model.image_encoder.checkpoint={json.dumps(str(vit_file))}",
                 f"model.text_encoder.checkpoint={json.dumps(str(bert_dir))}", "model.text_encoder.layers=[0,2]",
                 f"model.fusion.checkpoint={json.dumps(str(bert_dir))}", "model.fusion.layers=[2,3]")
    run = tmp_path / "run"
    first = Trainer(tiny_recipe(*overrides), run, registry, progress=False)
    first.run()
    saved = {k: v.clone() for k, v in first.engine.module.state_dict().items()}
    shutil.rmtree(tmp_path / "pretrained")
    resumed = Trainer(tiny_recipe(*overrides, "train.steps=3"), run, registry, resume=True, progress=False)
    assert resumed.step == 2
    for name, value in resumed.engine.module.state_dict().items():
        assert torch.equal(value, saved[name]), name
    resumed.run()
    assert resumed.step == 3
