"""A resume under a changed recipe is refused with the differences before anything is written;
only settings that leave the checkpoint's meaning intact may change."""

from __future__ import annotations

import pytest

from framework.cli import main


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("resume") / "run"
    assert main(["run", "tiny", "--output", str(out), "--quiet", "--set", "train.steps=1",
                 "--set", "train.log_every=1"]) == 0
    return out


@pytest.mark.parametrize("change", ["model.image_encoder.width=32", "train.micro_batch=16", "train.global_batch=64",
                                    "train.seed=1", "deepspeed.zero_stage=1", 'objectives.0.pooling="cls"'])
def test_a_changed_recipe_is_refused_and_the_run_is_untouched(run, change, capsys):
    before = {p: p.read_bytes() for p in (run / "recipe.json", run / "provenance.json", run / "metrics.jsonl")}
    assert main(["run", "tiny", "--output", str(run), "--resume", "--quiet", "--set", change]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "cannot resume with a changed recipe" in err
    assert change.split("=")[0].replace("objectives.0", "objectives[0]") in err
    assert {p: p.read_bytes() for p in before} == before


def test_steps_may_change_and_the_run_resumes_with_its_own_recipe(run):
    assert main(["run", "--resume", "--output", str(run), "--quiet", "--set", "train.steps=2"]) == 0
    assert (run / "checkpoints" / "step_00000002").is_dir()
