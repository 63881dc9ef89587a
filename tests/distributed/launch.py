"""Run the ``framework`` CLI in subprocesses: one process, or N under torchrun (gloo, CPU)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from tests.helpers import REPO


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cli_command(args: Sequence[str], nproc: int = 1) -> list[str]:
    """The command line of ``framework ARGS`` in one process or ``nproc`` under torchrun."""
    if nproc == 1:
        command = [sys.executable, "-m", "framework.cli", *args]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
                   f"--master_port={free_port()}", "-m", "framework.cli", *args]
    return command


def child_env(**extra: str) -> dict[str, str]:
    """This environment without what an in-process Trainer of this pytest process may have
    exported (a reused MASTER_PORT would clash), plus ``extra``."""
    inherited = ("MASTER_ADDR", "MASTER_PORT", "RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE")
    return {**{k: v for k, v in os.environ.items() if k not in inherited}, **extra}


def run_cli(args: Sequence[str], nproc: int = 1, timeout: int = 600) -> subprocess.CompletedProcess:
    """``framework ARGS`` with ``nproc`` processes; raises with the output on failure."""
    command = cli_command(args, nproc)
    result = subprocess.run(command, cwd=REPO, env=child_env(), capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


def train(run_dir: Path, recipe: str, overrides: Sequence[str], nproc: int = 1) -> Path:
    sets = [arg for override in overrides for arg in ("--set", override)]
    run_cli(["run", recipe, "--output", str(run_dir), "--quiet", *sets], nproc=nproc)
    return run_dir
