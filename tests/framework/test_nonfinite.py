"""The non-finite ledger: weights checked once per settle cover every update since the last one."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from framework.nonfinite import (
    NonFiniteLedger,
    NonFiniteLossError,
    finite_everywhere,
    parameters_finite,
)


@pytest.mark.parametrize("value, expected", [(1.5, 1.0), (0.0, 1.0), (-3e38, 1.0), (float("nan"), 0.0),
                                             (float("inf"), 0.0), (float("-inf"), 0.0)])
def test_finite_everywhere_is_isfinite(value, expected):
    assert finite_everywhere(torch.tensor(value)).item() == expected == float(torch.isfinite(torch.tensor(value)))


def test_parameters_finite_sees_one_bad_weight():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    assert parameters_finite(model).item() == 1.0
    with torch.no_grad():
        model[1].bias[0] = float("inf")
    assert parameters_finite(model).item() == 0.0


def test_settle_with_non_finite_weights_names_the_steps_since_the_last_settle_and_stops_first():
    ledger = NonFiniteLedger(max_bad_steps=1)
    ledger.record(1, torch.tensor(1.0), {"mim": torch.tensor(0.5)})
    assert ledger.settle(lambda: None, torch.tensor(1.0)) == set()
    ledger.record(2, torch.tensor(1.0), {"mim": torch.tensor(0.5)})
    ledger.record(3, torch.tensor(0.0), {"mim": torch.tensor(float("nan"))})  # would stop the run on its own too
    with pytest.raises(NonFiniteLossError, match=r"an update among steps 2-3 made parameters NaN/Inf "
                                                 r"\(non-finite losses at steps 3\); stopping without saving"):
        ledger.settle(lambda: "ckpt/step_1", torch.tensor(0.0))


def test_settle_counts_skipped_steps_when_the_weights_are_finite(capsys):
    ledger = NonFiniteLedger(max_bad_steps=3)
    ledger.record(1, torch.tensor(0.0), {"mim": torch.tensor(float("inf")), "mlm": torch.tensor(2.0)})
    ledger.record(2, torch.tensor(1.0), {"mim": torch.tensor(1.0), "mlm": torch.tensor(2.0)})
    assert ledger.settle(lambda: None, torch.tensor(1.0)) == {1} and ledger.skipped == 1 and ledger.streak == 0
    assert "step 1: non-finite loss (mim); update skipped" in capsys.readouterr().err


def test_a_run_whose_update_makes_weights_infinite_stops_keeping_the_last_good_checkpoint(tmp_path, capsys,
                                                                                           monkeypatch):
    """A finite loss can still give an infinite update (here: one weight set to inf after the
    step-3 update); the run stops at the next settle, names the last good checkpoint, and
    saves nothing with the bad weights."""
    from framework.cli import main
    from framework.train import Trainer

    original = Trainer.__init__

    def corrupting(self, *args, **kwargs):
        original(self, *args, **kwargs)
        step, engine_step = self.train_step, self.engine.step
        calls = []

        def bad_update():
            engine_step()
            calls.append(1)
            if len(calls) == 3:
                with torch.no_grad():
                    next(self.engine.module.parameters()).view(-1)[0] = float("inf")

        self.engine.step = bad_update
        step.engine = self.engine

    monkeypatch.setattr(Trainer, "__init__", corrupting)
    out = tmp_path / "run"
    code = main(["run", "tiny", "--output", str(out), "--quiet", "--set", "train.steps=6",
                 "--set", "train.log_every=2", "--set", "train.checkpoint_every=2"])
    err = capsys.readouterr().err
    assert code == 2 and "made parameters NaN/Inf" in err and "step_00000002" in err
    assert sorted(p.name for p in (out / "checkpoints").glob("step_*")) == ["step_00000002"]
