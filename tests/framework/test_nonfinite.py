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
