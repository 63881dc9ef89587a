"""Two processes under ZeRO-2 / ZeRO-3 train exactly like one process on the same global batch.

The global batch of a step is the same 32 samples in the same order whatever the number
of ranks (contiguous sampler blocks), masks are drawn for the global batch, and ITC's
negatives are gathered with gradient; so per-step losses agree up to float reduction
order. Tolerance: 1e-4 relative over 3 steps.
"""

from __future__ import annotations

import pytest

from framework.metrics import read_metrics
from tests.distributed.launch import train

COMMON = ["train.steps=3", "train.log_every=1", "train.global_batch=32", "train.checkpoint_every=0",
          "model.text_encoder.dropout=0", "model.fusion.dropout=0"]  # dropout draws differ per rank


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    run = train(tmp_path_factory.mktemp("one"), "recipes/tiny.json", [*COMMON, "train.micro_batch=32"])
    return {r["step"]: r for r in read_metrics(run)}


@pytest.mark.slow
@pytest.mark.parametrize("stage", [2, 3])
def test_two_processes_match_one(tmp_path, reference, stage):
    run = train(tmp_path, "recipes/tiny.json", [*COMMON, "train.micro_batch=16", f"deepspeed.zero_stage={stage}"],
                nproc=2)
    records = {r["step"]: r for r in read_metrics(run)}
    for step in (1, 2, 3):
        for name in ("loss", "itc", "mim", "mlm"):
            assert records[step][name] == pytest.approx(reference[step][name], rel=1e-4), (step, name)
