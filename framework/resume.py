"""Whether a run may resume under a given recipe: only settings that leave the
checkpoint's meaning intact may change (how long, how often to log, checkpoint or
evaluate); a changed width, objective, batch, seed or ZeRO stage would resume silently
into a different run, so it is refused with the differences, before anything is written."""

from __future__ import annotations

import json
from typing import Any, Mapping

from framework.checkpoint import CheckpointError, latest_checkpoint
from framework.recipe import diff
from framework.rundir import RECIPE_FILE, RunDir

RESUMABLE_CHANGES = ("$.description", "$.train.steps", "$.train.log_every", "$.train.checkpoint_every",
                     "$.train.keep_checkpoints", "$.train.max_bad_steps", "$.train.tensorboard",
                     "$.train.activation_checkpointing", "$.eval")
"""JSON paths (and everything under them) a resumed run may change (activation checkpointing
trades memory for time and leaves every result as it was, so a run that ran out of memory
can resume with it on)."""


class ResumeMismatchError(CheckpointError):
    """The recipe differs from the checkpoint's in a setting resuming cannot honour."""


def _allowed(line: str) -> bool:
    path = line[2:].split(":", 1)[0]
    return any(path == p or path.startswith(p + ".") or path.startswith(p + "[") for p in RESUMABLE_CHANGES)


def check_resumable(recipe: Mapping[str, Any], layout: RunDir) -> None:
    """Compare ``recipe`` with the recipe of the run's latest checkpoint (the run's own when
    it has none yet); raise :class:`ResumeMismatchError` listing the refused changes."""
    checkpoint = latest_checkpoint(layout.checkpoints)
    source = checkpoint / RECIPE_FILE if checkpoint is not None else layout.recipe
    try:
        saved = json.loads(source.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{source}: cannot read the recipe the run was trained with ({exc})") from exc
    refused = [line for line in diff(saved, dict(recipe)) if not _allowed(line)]
    if refused:
        shown = "\n  ".join(refused[:20]) + (f"\n  ... and {len(refused) - 20} more" if len(refused) > 20 else "")
        raise ResumeMismatchError(
            f"{layout.root}: cannot resume with a changed recipe ({source} differs):\n  {shown}\n"
            f"Only {', '.join(p[2:] for p in RESUMABLE_CHANGES)} may change on resume; resume with "
            f"`framework run --resume --output {layout.root}` (the run's own recipe), or start a new run "
            "with --output elsewhere")
