"""The training loop: build everything from a recipe, train, log, checkpoint, resume.

Per optimiser step: ``accumulation`` micro-batches each run masking -> encoders ->
objectives -> weighted loss -> backward; then the DeepSpeed step, the teacher update,
hooks, and (at intervals) metrics, periodic evaluation and checkpoints.

Faults (see docs/fault-tolerance.md): a step whose loss is NaN/Inf on any rank is skipped on
the device (``framework.nonfinite``), reported where the host next reads values (log steps,
checkpoints), and the run stops after ``train.max_bad_steps`` in a row;
SIGTERM/SIGINT finish the step, checkpoint and return (``framework.signals``).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional

import torch
import torch.distributed as dist
from tqdm import tqdm

from framework import data as data_lib
from framework.build import build_run
from framework.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from framework.distributed import (
    barrier,
    device_for_rank,
    init_distributed,
    is_main_process,
)
from framework.engine import build_engine
from framework.metrics import MetricsWriter, truncate_metrics
from framework.model_file import ModelFileError, read_pretrained_configs
from framework.nonfinite import NonFiniteLedger, parameters_finite
from framework.provenance import provenance
from framework.registry import Registry
from framework.resume import check_resumable
from framework.rundir import PROVENANCE_FILE, RECIPE_FILE, RunDir
from framework.signals import GracefulStop
from framework.step import TrainStep
from framework.types import Batch


class RunDirectoryError(Exception):
    """The output directory holds another run, or nothing to resume."""


def to_device(batch: Batch, device: torch.device) -> Batch:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


class Trainer:
    """One training run of a validated recipe into ``run_dir``."""

    def __init__(self, recipe: Mapping[str, Any], run_dir: Path, registry: Registry, *, resume: bool = False,
                 overwrite: bool = False, progress: bool = True) -> None:
        self.recipe, self.run_dir, self.registry = recipe, Path(run_dir), registry
        self.layout = RunDir(run_dir)
        self.progress = progress
        self.rank, self.world_size = init_distributed(recipe["train"]["collective_timeout_s"])
        self.device = device_for_rank()
        self.train_cfg = recipe["train"]
        self._check_run_dir(resume, overwrite)  # refuses before anything is read or written
        built = build_run(recipe, registry, **self._rebuild_sources(resume))  # identical initial weights on every rank
        self.dataset, self.tokenizer, self.teacher = built.dataset, built.tokenizer, built.teacher
        if self.train_cfg["compile"]:
            built.model.compile_components()
        self.engine = build_engine(recipe, built.model, self.world_size)
        if self.teacher is not None:
            self.teacher.to(self.device)
        self.train_step = TrainStep(self.engine, self.teacher, seed=self.train_cfg["seed"], device=self.device,
                                    accumulation=self.accumulation)
        self.step = 0
        self.start_sample = 0
        self.health_state: Optional[dict[str, Any]] = None
        self.sampler_state: Optional[dict[str, Any]] = None
        self.nonfinite = NonFiniteLedger(self.train_cfg["max_bad_steps"])
        if resume:
            self._resume()
        self.loader, self.sampler = data_lib.build_train_loader(
            recipe, self.dataset, self.tokenizer, rank=self.rank, world_size=self.world_size,
            micro_batch=self.train_cfg["micro_batch"], seed=self.train_cfg["seed"], start_sample=self.start_sample)
        size = len(self.dataset) if hasattr(self.dataset, "__len__") else 256  # streaming sources have no length
        self.health = data_lib.DataHealth(recipe["data"]["max_bad_fraction"], min_seen=min(256, size))
        if self.health_state is not None:
            self.health.load_state_dict(self.health_state)
        if self.sampler_state is not None and self.sampler is not None:  # refuses another data order
            self.sampler.load_state_dict({**self.sampler_state, "position": self.start_sample})
        self._write_run_files(resume, overwrite)
        self.metrics = MetricsWriter(self.run_dir, enabled=is_main_process(),
                                     tensorboard=self.train_cfg["tensorboard"])
        if is_main_process():
            print(self.banner(built.model), file=sys.stderr, flush=True)
        report = getattr(built.model, "init_report", None)  # model.init: what came from which run
        if report is not None and not resume and is_main_process():
            report.save(self.run_dir)
            print(report.summary(), file=sys.stderr, flush=True)

    # --- set-up ----------------------------------------------------------------------

    def _check_run_dir(self, resume: bool, overwrite: bool) -> None:
        """Refuse an output directory that holds another run, a resume of nothing, or a
        resume whose recipe changed what the checkpoint depends on; writes nothing."""
        recipe_path = self.layout.recipe
        if recipe_path.exists() and not (resume or overwrite):
            raise RunDirectoryError(f"{self.run_dir} already holds a run; pass --resume to continue it, "
                                    "--overwrite to replace it, or --output to choose another directory")
        if resume and not recipe_path.exists():
            raise RunDirectoryError(f"{self.run_dir} holds no run to resume (no {RECIPE_FILE}); run without --resume")
        if resume:
            check_resumable(self.recipe, self.layout)

    def _rebuild_sources(self, resume: bool) -> dict[str, Any]:
        """A resumed run rebuilds its model from its own checkpoint's model-file record, so
        the pretrained files and the ``model.init`` run it started from are not needed."""
        checkpoint = latest_checkpoint(self.layout.checkpoints) if resume else None
        if checkpoint is None:
            return {}
        try:
            return {"load_pretrained": False, "pretrained_configs": read_pretrained_configs(checkpoint)}
        except ModelFileError as exc:
            raise CheckpointError(str(exc)) from exc

    def _write_run_files(self, resume: bool, overwrite: bool) -> None:
        """Once everything is built: the resolved recipe, provenance and tokenizer. A
        directory this start created is removed again if writing fails."""
        barrier()  # every rank has built before the main process writes
        if not is_main_process():
            return
        created = not self.run_dir.exists()
        try:
            if overwrite and not resume:  # the user asked to replace the old run: drop its outputs
                for path in self.layout.outputs():
                    shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.layout.recipe.write_text(json.dumps(self.recipe, indent=2) + "\n")
            info = provenance(self.recipe, self.registry, self.world_size)
            self.layout.provenance.write_text(json.dumps(info, indent=2) + "\n")
            self.tokenizer.save_pretrained(str(self.layout.tokenizer))
        except BaseException:
            if created:
                shutil.rmtree(self.run_dir, ignore_errors=True)
            raise

    def banner(self, model: torch.nn.Module) -> str:
        """One line saying what run is starting."""
        cfg, params = self.train_cfg, sum(p.numel() for p in model.parameters())
        return (f"framework run: {re.split(r'[.:]', self.recipe.get('description') or 'recipe')[0][:80]} -> "
                f"{self.run_dir} | {params / 1e6:.1f}M parameters | {self.device.type} x {self.world_size} | "
                f"{cfg['precision']} | ZeRO {self.recipe['deepspeed']['zero_stage']} | steps {self.step}/{cfg['steps']}"
                f" | batch {cfg['global_batch']} ({cfg['micro_batch']} x {self.world_size} x {self.accumulation})")

    def _resume(self) -> None:
        path = latest_checkpoint(self.layout.checkpoints)
        if path is None:
            raise RunDirectoryError(f"{self.run_dir} has no checkpoint to resume from (it stopped before its first "
                                    "save); start it again with --overwrite instead of --resume")
        state = load_checkpoint(self.engine, path)
        self.step = state["step"]
        self.start_sample = state["samples_seen"]
        self.health_state = state["data_health"]
        self.sampler_state = state.get("sampler")  # absent in checkpoints of streaming sources
        self.nonfinite.skipped, self.nonfinite.streak = state["nonfinite"]["skipped"], state["nonfinite"]["streak"]
        if self.teacher is not None:
            self.teacher.load_state_dict(state["teacher"])
        set_rng_state(state["rng"])  # rank 0's: masks do not depend on it (see mask_generator)
        if is_main_process():
            truncate_metrics(self.run_dir, self.step)  # the steps after the checkpoint are replayed and logged again
            print(f"resumed from {path} at step {self.step}")

    # --- loop ------------------------------------------------------------------------

    @property
    def accumulation(self) -> int:
        return self.train_cfg["global_batch"] // (self.train_cfg["micro_batch"] * self.world_size)

    def _batches(self) -> Iterator[Batch]:
        for batch in data_lib.iterate_forever(self.loader, self.sampler, self.health):
            yield to_device(batch, self.device)

    def run(self, until: Optional[int] = None) -> dict[str, float]:
        """Train to ``train.steps`` (or stop early after step ``until``, checkpointing
        there); returns the last logged metrics. SIGTERM/SIGINT stop after the current
        step with a checkpoint."""
        total = self.train_cfg["steps"]
        stop = min(total, until) if until is not None else total
        batches = self._batches()
        bar = tqdm(total=total, initial=self.step, disable=not (self.progress and is_main_process()),
                   dynamic_ncols=True, unit="step")
        last: dict[str, float] = {}
        window_start, window_steps = time.perf_counter(), 0
        with GracefulStop() as signals, bar, closing(self.metrics):
            while self.step < stop:
                result = self.train_step(batches, self.step)
                sums = result.values
                self.step += 1
                window_steps += 1
                self.nonfinite.record(self.step, result.finite,
                                      {k: v for k, v in sums.items() if "/" not in k and k != "loss"})
                log = self.step == 1 or self.step % self.train_cfg["log_every"] == 0 or self.step == total
                good = self._settle() if log else None  # the host reads values here anyway
                if log and good:
                    elapsed = time.perf_counter() - window_start
                    last = self._log(sums, window_steps * self.train_cfg["global_batch"] / max(elapsed, 1e-9))
                    bar.set_postfix(loss=f"{last['loss']:.4f}", samples_s=f"{last['samples_per_s']:.1f}")
                    window_start, window_steps = time.perf_counter(), 0
                self.registry.hook().framework_on_step_end(step=self.step, metrics=last, run_dir=str(self.run_dir))
                self._periodic_eval()
                interrupted = signals.requested()
                every = self.train_cfg["checkpoint_every"]
                if (every and self.step % every == 0) or self.step == stop or interrupted:
                    good = self._settle() if good is None else good
                    if good or self.step == stop or interrupted:
                        self.save()
                bar.update(1)
                if interrupted:
                    self._report_interrupt(signals.signal_name)
                    break
        if is_main_process() and self.health.bad:
            print(f"data: {self.health.summary()}")
        return last

    def _settle(self) -> bool:
        """Read the pending non-finite flags (one host sync; may stop the run, see
        :class:`NonFiniteLedger`); whether the step just taken updated the weights."""
        skipped = self.nonfinite.settle(lambda: latest_checkpoint(self.layout.checkpoints),
                                        parameters_finite(self.engine.module))  # every rank settles here
        return self.step not in skipped

    def _periodic_eval(self) -> None:
        """Run ``eval.tasks`` when ``eval.every`` divides the step (see framework.evaluate)."""
        if (self.recipe.get("eval") or {}).get("every", 0) > 0:
            from framework.evaluate import run_periodic_eval

            run_periodic_eval(self)

    def _report_interrupt(self, signal_name: Optional[str]) -> None:
        if is_main_process():
            print(f"stopped by {signal_name or 'a signal on another rank'} after step {self.step}; checkpoint "
                  f"saved. Resume with: framework run {self.run_dir / RECIPE_FILE} --output {self.run_dir} "
                  f"--resume", file=sys.stderr, flush=True)

    def _log(self, sums: dict[str, torch.Tensor], samples_per_s: float) -> dict[str, float]:
        names = sorted(sums)
        values = torch.stack([sums[n] for n in names])
        if self.world_size > 1:
            dist.all_reduce(values)
            values /= self.world_size
        record = {"step": self.step, **dict(zip(names, values.tolist())),
                  "lr": self.engine.get_lr()[0], "samples_per_s": samples_per_s,
                  "samples_seen": self.step * self.train_cfg["global_batch"], "bad_samples": self.health.bad,
                  "skipped_steps": self.nonfinite.skipped}
        self.metrics.write(record)
        return record

    def save(self) -> Optional[Path]:
        state = {
            "step": self.step,
            "samples_seen": self.step * self.train_cfg["global_batch"],
            "teacher": self.teacher.state_dict() if self.teacher is not None else None,
            "data_health": self.health.state_dict(),
            # the data order's identity; the position is samples_seen, not the prefetching loader's
            "sampler": ({k: v for k, v in self.sampler.state_dict().items() if k != "position"}
                        if self.sampler is not None else None),
            "nonfinite": {"skipped": self.nonfinite.skipped, "streak": self.nonfinite.streak},
            "rng": rng_state(),
        }
        metadata = {RECIPE_FILE: self.recipe, PROVENANCE_FILE: provenance(self.recipe, self.registry, self.world_size)}
        path = save_checkpoint(self.engine, self.layout.checkpoints, self.step, state,
                               self.train_cfg["keep_checkpoints"], metadata)
        if is_main_process():
            self.registry.hook().framework_on_checkpoint(step=self.step, path=str(path))
        return path
