"""A plugin of hooks beyond registration: CSV logs of training metrics and eval results.

For runs that use a component of this distribution (read from the run's
``provenance.json``), every fresh metrics record is appended to
``<run_dir>/hog_metrics.csv`` and every evaluation result to ``<run_dir>/hog_eval.csv``,
one value per row (``step,name,value`` / ``task,name,value``), so the files load straight
into a spreadsheet or ``pandas.read_csv``. Runs that do not use this package are left
alone, so installing it changes nothing for them. A resumed run appends again the steps
after its last checkpoint.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Iterable, Sequence

from framework.api import hookimpl, is_main_process

FRAMEWORK_API_VERSION = 1
DISTRIBUTION = "framework-hog"
METRICS_FILE = "hog_metrics.csv"
EVAL_FILE = "hog_eval.csv"
PROVENANCE_FILE = "provenance.json"


def uses_this_package(run_dir: str | Path) -> bool:
    """Whether the run in ``run_dir`` uses a component provided by framework-hog."""
    path = Path(run_dir) / PROVENANCE_FILE
    if not path.is_file():
        return False
    providers = json.loads(path.read_text()).get("plugin_distributions", [])
    return any(provider.split("==")[0] == DISTRIBUTION for provider in providers)


def append_rows(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Append ``rows`` to the CSV file ``path``, writing ``header`` first if it is new."""
    new = not path.exists()
    with path.open("a", newline="") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(header)
        writer.writerows(rows)


@hookimpl
def framework_on_step_end(step: int, metrics: dict[str, float], run_dir: str) -> None:
    """Log the metrics record of ``step`` (records only exist every ``train.log_every`` steps)."""
    if metrics.get("step") != step or not is_main_process() or not uses_this_package(run_dir):
        return
    append_rows(Path(run_dir) / METRICS_FILE, ("step", "name", "value"),
                [(step, name, value) for name, value in metrics.items() if name != "step"])


@hookimpl
def framework_on_eval_results(task: str, results: dict[str, float], run_dir: str) -> None:
    """Log the results of one evaluation task (called on rank 0 only)."""
    if not uses_this_package(run_dir):
        return
    append_rows(Path(run_dir) / EVAL_FILE, ("task", "name", "value"),
                [(task, name, value) for name, value in results.items()])
