"""A stop signal that reaches one rank stops every rank after the same step: the ranks
agree over the host-side group, checkpoint that step, and the job exits cleanly."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.distributed.launch import child_env, cli_command
from tests.framework.test_registry import make_distribution
from tests.helpers import REPO

SIGNALLING_PLUGIN = '''
import os, signal
from framework import hookimpl

@hookimpl
def framework_on_step_end(step, metrics, run_dir):
    if step == 2 and os.environ.get("RANK") == "1":
        os.kill(os.getpid(), signal.SIGTERM)
'''


@pytest.mark.slow
def test_a_signal_on_one_rank_stops_both_after_the_same_step(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    make_distribution(site, "fake_signalling_rank", SIGNALLING_PLUGIN)
    run = tmp_path / "run"
    command = cli_command(["run", "recipes/tiny.json", "--output", str(run), "--quiet", "--set", "train.steps=50",
                           "--set", "train.micro_batch=16", "--set", "train.log_every=1",
                           "--set", "train.checkpoint_every=0"], nproc=2)
    result = subprocess.run(command, cwd=REPO, env=child_env(PYTHONPATH=str(site)), capture_output=True, text=True,
                            timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "SIGTERM received" in result.stderr  # on rank 1
    assert "stopped by a signal on another rank after step 2; checkpoint saved" in result.stderr  # rank 0 agrees
    assert (run / "checkpoints" / "latest").read_text().strip().endswith("step_00000002")
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps[-1] == 2
