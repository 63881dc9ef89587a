"""A rank that stops responding (SIGSTOP) ends a 2-process job within the collective
timeout, with an error naming it, instead of hanging for torch's default 30 minutes."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from framework.watchdog import Watchdog
from tests.distributed.launch import child_env, cli_command
from tests.helpers import REPO

TIMEOUT_S = 10


class FakeStore:
    """The three store calls the watchdog makes, on a dict."""

    def __init__(self) -> None:
        self.values: dict[str, int | str] = {}

    def add(self, key: str, amount: int) -> int:
        self.values[key] = int(self.values.get(key, 0)) + amount
        return int(self.values[key])

    def set(self, key: str, value: str) -> None:
        self.values[key] = value

    def check(self, keys: list[str]) -> bool:
        return all(k in self.values for k in keys)

    def get(self, key: str) -> bytes:
        return str(self.values[key]).encode()


def test_a_silent_peer_is_named_after_the_timeout_and_a_finished_one_is_not():
    store = FakeStore()
    watch = Watchdog(store, rank=0, world_size=3, timeout_s=10)
    peer1, peer2 = Watchdog(store, rank=1, world_size=3, timeout_s=10), Watchdog(store, rank=2, world_size=3,
                                                                                  timeout_s=10)
    peers: dict[int, tuple[int, float]] = {}
    for now in range(0, 30, 2):
        peer2.stalled({}, now)  # rank 2 keeps beating; rank 1 beats until t=4 only
        if now <= 4:
            peer1.stalled({}, now)
        found = watch.stalled(peers, now)
        if now <= 14:
            assert found is None, now
        else:
            assert found is not None and found[0] == 1 and found[1] > 10
            break
    else:
        raise AssertionError("the silent rank was never named")
    peer1.stop()  # a rank that finished on purpose is never reported
    assert watch.stalled(peers, 100) is None


def worker_pids(launcher: int) -> dict[int, int]:
    """RANK -> pid of the launcher's worker processes."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            env = dict(item.split("=", 1) for item in (entry / "environ").read_bytes().decode(errors="replace")
                       .split("\0") if "=" in item)
        except (OSError, IndexError, ValueError):
            continue
        if parent == launcher and "RANK" in env:
            found[int(env["RANK"])] = int(entry.name)
    return found


@pytest.mark.slow
def test_a_stopped_rank_ends_the_job_naming_it(tmp_path):
    run = tmp_path / "run"
    command = cli_command(["run", "recipes/tiny.json", "--output", str(run), "--quiet",
                           "--set", "train.steps=100000", "--set", "train.micro_batch=8",
                           "--set", "train.global_batch=16",
                           "--set", "train.log_every=1", "--set", f"train.collective_timeout_s={TIMEOUT_S}"], nproc=2)
    job = subprocess.Popen(command, cwd=REPO, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, start_new_session=True)
    stopped = None
    try:
        deadline = time.monotonic() + 300
        while not ((run / "metrics.jsonl").is_file() and (run / "metrics.jsonl").read_text().strip()):
            assert job.poll() is None, job.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "training never started"
            time.sleep(1)
        stopped = worker_pids(job.pid)[1]
        os.kill(stopped, signal.SIGSTOP)
        start = time.monotonic()
        _, err = job.communicate(timeout=240)
        elapsed = time.monotonic() - start
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)  # the session this test started
            job.wait()
        if stopped is not None:
            try:
                os.kill(stopped, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert job.returncode != 0
    assert "error: rank 1 stopped responding" in err, err[-3000:]
    assert elapsed < TIMEOUT_S + 30, f"the job took {elapsed:.0f} s to end after rank 1 stopped"
