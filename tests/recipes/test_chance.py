"""The chance levels the tiny-recipe tests hold each objective to."""

from __future__ import annotations

import math

import pytest

from tests.recipes.chance import (
    ITM_PRIOR_ACCURACY,
    ITM_PRIOR_LOSS,
    assert_objectives_learn,
    beyond_chance,
    chance_levels,
)

RECIPE = {"train": {"micro_batch": 16}, "objectives": [
    {"type": "itc", "view": "full"},
    {"type": "itc", "name": "itc_q", "view": "full", "distill_alpha": 0.4, "queue_size": 64},
    {"type": "itm", "view": "full"}, {"type": "mlm", "view": "masked_text"}, {"type": "mim", "view": "masked_image"}]}


def test_levels_follow_keys_prior_and_vocabulary():
    levels = chance_levels(RECIPE, vocab_size=200, world_size=2)
    assert levels["itc"] == (math.log(32), "below") and levels["itc/accuracy"] == (1 / 32, "above")
    assert levels["itc_q"] == (math.log(32 + 64), "below")
    assert ITM_PRIOR_LOSS == pytest.approx(0.6365, abs=1e-4) and levels["itm/accuracy"] == (ITM_PRIOR_ACCURACY, "above")
    assert levels["mlm"] == (math.log(200), "below") and "mim" not in levels


def test_always_no_match_is_at_chance_and_learning_is_not():
    records = [{"itm": ITM_PRIOR_LOSS, "itm/accuracy": 2 / 3}] * 5
    levels = {k: v for k, v in chance_levels(RECIPE, vocab_size=200).items() if k.startswith("itm")}
    assert set(beyond_chance(records, levels)) == {"itm", "itm/accuracy"}
    assert beyond_chance([{"itm": 0.4, "itm/accuracy": 0.85}] * 5, levels) == {}
    with pytest.raises(AssertionError, match="itm/accuracy"):
        assert_objectives_learn(records, {"train": {"micro_batch": 4}, "objectives": [{"type": "itm"}]}, vocab_size=9)
