"""Evaluation results accumulate by task and step, and baselines stay out of the source tree."""

from __future__ import annotations

import json

from framework.cli import main
from framework.evaluate.runner import markdown_table, read_results, write_results

RETRIEVAL = json.dumps({"type": "retrieval", "max_samples": 16})


def test_results_merge_by_task_and_step(tmp_path):
    write_results({"retrieval": {"i2t_r1": 1.0}}, tmp_path, target="runs/a", step=None, tasks=[{"type": "retrieval"}])
    write_results({"retrieval": {"i2t_r1": 5.0}, "zero_shot": {"top1": 9.0}}, tmp_path, target="runs/a", step=100)
    path = write_results({"retrieval": {"i2t_r1": 7.0}}, tmp_path, target="runs/a", step=20)
    data = json.loads(path.read_text())
    assert data["results"] == {"retrieval": {"0": {"i2t_r1": 1.0}, "100": {"i2t_r1": 5.0}, "20": {"i2t_r1": 7.0}},
                               "zero_shot": {"100": {"top1": 9.0}}}
    assert [e["step"] for e in data["evaluations"]] == [0, 100, 20]
    table = (tmp_path / "results.md").read_text().splitlines()
    assert table[0] == "| task | step | metric | value |"
    assert [line.split("|")[2].strip() for line in table[2:5]] == ["0", "20", "100"]  # steps in order
    assert "| zero_shot | 100 | top1 | 9.00 |" in table


def test_an_older_results_file_is_converted(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"target": "r", "step": 50, "tasks": [],
                                                       "results": {"retrieval": {"i2t_r1": 2.0}}}))
    write_results({"retrieval": {"i2t_r1": 3.0}}, tmp_path, target="r", step=60)
    assert read_results(tmp_path / "results.json")["results"] == {"retrieval": {"50": {"i2t_r1": 2.0},
                                                                                "60": {"i2t_r1": 3.0}}}
    assert markdown_table({"t": {"m": 1.0}}).startswith("| task | metric | value |")  # one evaluation, no steps


def test_baseline_eval_of_a_builtin_writes_under_runs_and_accumulates(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["eval", "tiny", "--task", RETRIEVAL]) == 0
    assert main(["eval", "tiny", "--task", "reconstruction"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]  # nothing in the current folder itself
    data = json.loads((tmp_path / "runs" / "tiny" / "eval" / "results.json").read_text())
    assert set(data["results"]) == {"retrieval", "reconstruction"}
    assert data["results"]["retrieval"]["0"]["images"] == 16
    assert len(data["evaluations"]) == 2
    out = tmp_path / "elsewhere"
    assert main(["eval", "tiny", "--task", RETRIEVAL, "--output", str(out)]) == 0
    assert (out / "results.json").is_file()
    (out / "results.json").write_text("{not json")
    assert main(["eval", "tiny", "--task", RETRIEVAL, "--out", str(out)]) == 2
    assert "move it away" in capsys.readouterr().err
