"""Crash safety of real runs: SIGKILL mid-save or mid-run, then an exact resume; graceful
SIGTERM/SIGINT; NaN/Inf losses skipped and, in a row, stopping the run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from framework import hookimpl
from framework.checkpoint import latest_checkpoint, load_checkpoint, safe_torch_load
from framework.metrics import read_metrics
from framework.nonfinite import NonFiniteLossError
from framework.train import Trainer
from tests.distributed.launch import child_env
from tests.helpers import REPO, tiny_recipe

pytestmark = pytest.mark.slow  # runs, kills and resumes training processes

STEPS = 4
OVERRIDES = (f"train.steps={STEPS}", "train.micro_batch=8", "train.global_batch=16", "train.checkpoint_every=2",
             "train.log_every=1", "data.train.samples=256")

DRIVER = """
import os, signal, sys
import framework.checkpoint as checkpoint
from framework import hookimpl
from framework.cli import main
from framework.registry import default_registry

mode, at = sys.argv[1], int(sys.argv[2])

def die(*args):
    os.kill(os.getpid(), signal.SIGKILL)

def at_step(function, pick):
    def wrapped(*args):
        if pick(*args):
            die()
        return function(*args)
    return wrapped

if mode == "before-rename":  # DeepSpeed's files written and fsynced, directory not yet in place
    checkpoint._publish = at_step(checkpoint._publish, lambda tmp, final: final.name == checkpoint.checkpoint_tag(at))
elif mode == "before-latest":  # checkpoint in place, 'latest' not yet moved
    checkpoint.write_atomic = at_step(checkpoint.write_atomic,
                                      lambda path, text: text.strip() == checkpoint.checkpoint_tag(at))
elif mode == "after-step":
    class Killer:
        @hookimpl
        def framework_on_step_end(self, step, metrics, run_dir):
            if step == at:
                die()
    default_registry().register_plugin(Killer(), name="killer", distribution="test")
sys.exit(main(sys.argv[3:]))
"""


def cli_command(run_dir: Path, *extra: str) -> list[str]:
    sets = [arg for override in OVERRIDES for arg in ("--set", override)]
    return ["run", "recipes/tiny.json", "--output", str(run_dir), "--quiet", *sets, *extra]


def spawn(args: list[str]) -> subprocess.Popen:
    """A child process without this process's process-group address (which it holds).
    It keeps this process's thread count: results are compared bitwise with runs here."""
    return subprocess.Popen([sys.executable, *args], cwd=REPO, env=child_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def losses(run_dir: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_metrics(run_dir) if "loss" in r}


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return safe_torch_load(latest_checkpoint(run_dir / "checkpoints") / "mp_rank_00_model_states.pt")["module"]


def assert_same_run(a: Path, b: Path) -> None:
    la, lb = losses(a), losses(b)
    assert sorted(la) == sorted(lb) == list(range(1, STEPS + 1))
    assert la == lb  # bitwise on CPU
    wa, wb = final_weights(a), final_weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name


@pytest.fixture(scope="module")
def straight(tmp_path_factory, registry) -> Path:
    """The uninterrupted reference run."""
    run_dir = tmp_path_factory.mktemp("straight")
    Trainer(tiny_recipe(*OVERRIDES), run_dir, registry, progress=False).run()
    return run_dir


@pytest.mark.parametrize("mode", ["before-rename", "before-latest", "after-step"])
def test_sigkill_then_resume_reproduces_the_uninterrupted_run(tmp_path, registry, straight, mode):
    kill_at = STEPS if mode != "after-step" else 3
    proc = spawn(["-c", DRIVER, mode, str(kill_at), *cli_command(tmp_path)])
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == -signal.SIGKILL, err[-3000:]
    root = tmp_path / "checkpoints"
    assert latest_checkpoint(root).name == "step_00000002"  # the previous, complete checkpoint
    if mode == "before-rename":
        assert (root / ".tmp-step_00000004" / "mp_rank_00_model_states.pt").exists()
    if mode == "before-latest":
        assert (root / "step_00000004").is_dir()
    resumed = Trainer(tiny_recipe(*OVERRIDES), tmp_path, registry, resume=True, progress=False)
    assert resumed.step == 2
    resumed.run()
    assert_same_run(straight, tmp_path)
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step_00000002", "step_00000004"]


def test_sigterm_finishes_the_step_checkpoints_and_says_how_to_resume(tmp_path):
    proc = spawn(["-m", "framework.cli", *cli_command(tmp_path, "--set", "train.steps=100000")])
    metrics = tmp_path / "metrics.jsonl"
    deadline = time.monotonic() + 600
    while not (metrics.exists() and metrics.read_text().strip()) and proc.poll() is None:
        assert time.monotonic() < deadline, "the run never logged a step"
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    assert "SIGTERM received" in err
    assert f"Resume with: framework run {tmp_path / 'recipe.json'} --output {tmp_path} --resume" in err
    step = max(r["step"] for r in read_metrics(tmp_path))
    assert latest_checkpoint(tmp_path / "checkpoints").name == f"step_{step:08d}"


def test_sigint_stops_after_the_step_and_the_run_resumes_exactly(tmp_path, registry, straight, capsys):
    class Interrupt:
        @hookimpl
        def framework_on_step_end(self, step, metrics, run_dir):
            if step == 1:
                os.kill(os.getpid(), signal.SIGINT)

    trainer = Trainer(tiny_recipe(*OVERRIDES), tmp_path, registry, progress=False)
    plugin = Interrupt()
    registry.register_plugin(plugin, name="interrupt", distribution="test")
    try:
        trainer.run()
    finally:
        registry.plugin_manager.unregister(plugin)
    assert trainer.step == 1 and latest_checkpoint(tmp_path / "checkpoints").name == "step_00000001"
    assert "stopped by SIGINT after step 1" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored
    Trainer(tiny_recipe(*OVERRIDES), tmp_path, registry, resume=True, progress=False).run()
    assert_same_run(straight, tmp_path)


def inject_nan(trainer: Trainer, bad_steps: set[int], micro: int) -> dict[int, list[torch.Tensor]]:
    """Make the image encoder's first layer output NaN on micro-batch ``micro`` of the
    (0-based) steps in ``bad_steps``; returns the weights seen at each step's first forward."""
    seen: dict[int, list[torch.Tensor]] = {}
    calls: dict[int, int] = {}
    module = trainer.engine.module
    first = next(m for m in module.image_encoder.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))

    def hook(layer, inputs, output):
        step = trainer.step
        calls[step] = calls.get(step, -1) + 1
        seen.setdefault(step, [p.detach().clone() for p in module.parameters()])
        return output * float("nan") if step in bad_steps and calls[step] == micro else output

    first.register_forward_hook(hook)
    return seen


@pytest.mark.parametrize("stage", [0, 2])
def test_a_nan_step_leaves_the_weights_unchanged_and_training_continues(tmp_path, registry, stage, capsys):
    trainer = Trainer(tiny_recipe(*OVERRIDES, f"deepspeed.zero_stage={stage}"), tmp_path, registry, progress=False)
    seen = inject_nan(trainer, bad_steps={1}, micro=1)  # after micro-batch 0 has accumulated gradients
    trainer.run()
    for before, after in zip(seen[1], seen[2]):
        assert torch.equal(before, after)  # the skipped step changed nothing
    assert any(not torch.equal(b, a) for b, a in zip(seen[2], seen[3]))  # and training goes on
    for step in (2, 3):
        assert all(torch.isfinite(p).all() for p in seen[step])
    records = {r["step"]: r for r in read_metrics(tmp_path)}
    assert 2 not in records and records[4]["skipped_steps"] == 1
    assert all(torch.isfinite(torch.tensor(records[s]["loss"])) for s in (1, 3, 4))
    assert "step 2: non-finite loss (" in capsys.readouterr().err


def test_consecutive_nan_steps_stop_the_run_keeping_the_last_good_checkpoint(tmp_path, registry):
    recipe = tiny_recipe(*OVERRIDES, "train.checkpoint_every=1", "train.max_bad_steps=2", "train.steps=6")
    trainer = Trainer(recipe, tmp_path, registry, progress=False)
    inject_nan(trainer, bad_steps={2, 3, 4, 5}, micro=0)
    with pytest.raises(NonFiniteLossError,
                       match="2 optimiser steps in a row .* last good checkpoint is .*step_00000002"):
        trainer.run()
    good = latest_checkpoint(tmp_path / "checkpoints")
    assert good.name == "step_00000002"
    state = load_checkpoint(trainer.engine, good)
    assert state["step"] == 2 and state["nonfinite"] == {"skipped": 0, "streak": 0}
    assert all(torch.isfinite(p).all() for p in trainer.engine.module.parameters())


def test_a_nan_step_between_log_steps_is_skipped_and_reported_at_the_next_one(tmp_path, registry, capsys):
    """The host reads the guard's flags only where it logs or checkpoints: step 2's skip is
    applied on the device at once and reported with step 3's log."""
    trainer = Trainer(tiny_recipe(*OVERRIDES, "train.log_every=3", "train.checkpoint_every=0"), tmp_path, registry,
                      progress=False)
    seen = inject_nan(trainer, bad_steps={1}, micro=0)
    trainer.run()
    for before, after in zip(seen[1], seen[2]):
        assert torch.equal(before, after)
    records = {r["step"]: r for r in read_metrics(tmp_path)}
    assert records[1]["skipped_steps"] == 0 and records[3]["skipped_steps"] == 1
    assert "step 2: non-finite loss (" in capsys.readouterr().err
