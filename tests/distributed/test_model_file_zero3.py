"""A two-process ZeRO-3 run leaves a complete model.safetensors: evaluated from it, the run
gives the embeddings and loss of the one-process run on the same global batch.

ZeRO-3 partitions every parameter over the ranks, so a model file written from one rank's
module would hold empty tensors; the file is gathered by all ranks and written by rank 0.
Per-step losses of the two runs agree to float reduction order (test_zero_equivalence), so
the weights after two steps agree to 1e-4 relative; the model files themselves are compared
to that tolerance.
"""

from __future__ import annotations

import pytest
import torch

from framework.checkpoint import latest_checkpoint
from framework.data.loader import build_eval_loader
from framework.evaluate import EvalModel
from framework.model_file import read_metadata, read_model_file
from tests.distributed.launch import train

COMMON = ["train.steps=2", "train.log_every=1", "train.global_batch=32", "train.checkpoint_every=0",
          "model.text_encoder.dropout=0", "model.fusion.dropout=0"]  # dropout draws differ per rank
TEXTS = ["a red square", "two blue circles", "a green triangle above a square"]


def fixed_batch(model: EvalModel) -> dict:
    loader = build_eval_loader(model.recipe, model.dataset("train"), model.tokenizer, batch_size=16)
    return next(iter(loader))


def loss_of(model: EvalModel, batch: dict) -> torch.Tensor:
    with torch.no_grad():
        return model.model(batch, generator=torch.Generator().manual_seed(0)).loss


@pytest.mark.slow
def test_zero3_run_evaluates_like_the_one_process_run(tmp_path, registry):
    one = train(tmp_path / "one", "recipes/tiny.json", [*COMMON, "train.micro_batch=32"])
    two = train(tmp_path / "two", "recipes/tiny.json", [*COMMON, "train.micro_batch=16", "deepspeed.zero_stage=3"],
                nproc=2)
    checkpoint = latest_checkpoint(two / "checkpoints")
    assert read_metadata(checkpoint)["step"] == "2"
    gathered = read_model_file(checkpoint).state
    reference = read_model_file(latest_checkpoint(one / "checkpoints")).state
    assert gathered.keys() == reference.keys()
    for name, value in reference.items():
        assert gathered[name].shape == value.shape, name  # not a ZeRO-3 partition
        torch.testing.assert_close(gathered[name], value, rtol=1e-4, atol=1e-5, msg=name)

    a, b = EvalModel.from_run(one, registry), EvalModel.from_run(two, registry)
    assert b.step == 2
    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(b.encode_images(images).tokens, a.encode_images(images).tokens, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(b.encode_texts(TEXTS).tokens, a.encode_texts(TEXTS).tokens, rtol=1e-4, atol=1e-4)
    batch = fixed_batch(a)
    assert loss_of(b, batch).item() == pytest.approx(loss_of(a, batch).item(), rel=1e-4)
