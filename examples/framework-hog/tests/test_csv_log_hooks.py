"""The CSV logging hooks: fresh records only, only for runs that use this package."""

from __future__ import annotations

import csv
import json

from framework_hog import csv_log


def run_dir(path, providers):
    """A run directory whose provenance names ``providers`` as the plugin distributions used."""
    path.mkdir(exist_ok=True)
    (path / "provenance.json").write_text(json.dumps({"plugin_distributions": providers}))
    return str(path)


def rows(path):
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


def test_fresh_step_records_are_appended(tmp_path):
    directory = run_dir(tmp_path, ["framework==0.1.0", "framework-hog==0.1.0"])
    record = {"step": 2, "loss": 1.5, "mim": 0.25}
    csv_log.framework_on_step_end(step=1, metrics={}, run_dir=directory)  # nothing logged yet
    csv_log.framework_on_step_end(step=2, metrics=record, run_dir=directory)
    csv_log.framework_on_step_end(step=3, metrics=record, run_dir=directory)  # stale record: skipped
    csv_log.framework_on_step_end(step=4, metrics={**record, "step": 4}, run_dir=directory)
    assert rows(tmp_path / csv_log.METRICS_FILE) == [["step", "name", "value"], ["2", "loss", "1.5"],
                                                     ["2", "mim", "0.25"], ["4", "loss", "1.5"], ["4", "mim", "0.25"]]


def test_eval_results_are_appended(tmp_path):
    directory = run_dir(tmp_path, ["framework-hog==0.1.0"])
    csv_log.framework_on_eval_results(task="retrieval", results={"i2t_r1": 50.0}, run_dir=directory)
    csv_log.framework_on_eval_results(task="probe", results={"top1": 12.5}, run_dir=directory)
    assert rows(tmp_path / csv_log.EVAL_FILE) == [["task", "name", "value"], ["retrieval", "i2t_r1", "50.0"],
                                                  ["probe", "top1", "12.5"]]


def test_runs_without_this_package_are_left_alone(tmp_path):
    other = run_dir(tmp_path / "other", ["framework==0.1.0"])
    csv_log.framework_on_step_end(step=1, metrics={"step": 1, "loss": 1.0}, run_dir=other)
    csv_log.framework_on_eval_results(task="retrieval", results={"r1": 1.0}, run_dir=other)
    csv_log.framework_on_eval_results(task="retrieval", results={"r1": 1.0}, run_dir=str(tmp_path / "no_run"))
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == ["provenance.json"]
