"""A rank that fails mid-run takes the whole job down promptly instead of leaving the
other ranks blocked in a collective: torchrun stops them and the job exits non-zero."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.distributed.launch import child_env, cli_command
from tests.framework.test_registry import make_distribution
from tests.helpers import REPO

FAILING_PLUGIN = '''
import os
from framework import hookimpl

@hookimpl
def framework_on_step_end(step, metrics, run_dir):
    if step == 2 and os.environ.get("RANK") == "1":
        raise RuntimeError("injected failure on rank 1")
'''


@pytest.mark.slow
def test_one_failing_rank_ends_the_job_without_hanging(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    make_distribution(site, "fake_failing_rank", FAILING_PLUGIN)
    command = cli_command(["run", "recipes/tiny.json", "--output", str(tmp_path / "run"), "--quiet",
                           "--set", "train.steps=50", "--set", "train.micro_batch=16"], nproc=2)
    start = time.monotonic()
    result = subprocess.run(command, cwd=REPO, env=child_env(PYTHONPATH=str(site)), capture_output=True, text=True,
                            timeout=240)
    elapsed = time.monotonic() - start
    assert result.returncode != 0
    assert "injected failure on rank 1" in result.stderr
    assert elapsed < 180, f"the job took {elapsed:.0f} s to end after a rank failed"
