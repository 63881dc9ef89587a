"""Chance levels of objectives, so tiny-recipe tests check that an objective learns (beats what
a model that ignores its input scores), not only that its loss moved.

- ITC: ``ln K`` loss and ``1 / K`` accuracy over its ``K`` keys (micro-batch x processes, plus
  the queue in momentum mode): uniform similarities score exactly this, soft targets or not.
- ITM: one positive per two negatives, so answering "no match" always scores accuracy 2/3
  and the best input-blind loss is the entropy of (1/3, 2/3), 0.6365.
- MLM: ``ln V`` over the vocabulary.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from framework.objective import objective_name

ITM_PRIOR_LOSS = -(math.log(1 / 3) / 3 + 2 * math.log(2 / 3) / 3)
ITM_PRIOR_ACCURACY = 2 / 3


def chance_levels(recipe: Mapping[str, Any], *, vocab_size: int, world_size: int = 1) -> dict[str, tuple[float, str]]:
    """``metric -> (chance, "below" | "above")``: where a learning objective's metric must be."""
    levels: dict[str, tuple[float, str]] = {}
    for cfg in recipe["objectives"]:
        name = objective_name(cfg)
        if cfg["type"] == "itc":
            keys = recipe["train"]["micro_batch"] * world_size
            if cfg.get("distill_alpha", 0) > 0 or cfg.get("queue_size", 0) > 0:
                keys += cfg.get("queue_size", 0)
            levels[name] = (math.log(keys), "below")
            levels[f"{name}/accuracy"] = (1 / keys, "above")
        elif cfg["type"] == "itm":
            levels[name] = (ITM_PRIOR_LOSS, "below")
            levels[f"{name}/accuracy"] = (ITM_PRIOR_ACCURACY, "above")
        elif cfg["type"] == "mlm":
            levels[name] = (math.log(vocab_size), "below")
    return levels


def beyond_chance(records: list[Mapping[str, float]], levels: Mapping[str, tuple[float, str]], *,
                  last: int = 5, margin: float = 0.1) -> dict[str, str]:
    """The metrics whose mean over the ``last`` records is not ``margin`` (relative) past
    chance, each with a message; empty when every objective learns."""
    failures = {}
    for metric, (chance, side) in levels.items():
        tail = [r[metric] for r in records[-last:] if metric in r]
        mean = sum(tail) / len(tail)
        ok = mean < chance * (1 - margin) if side == "below" else mean > chance * (1 + margin)
        if not ok:
            failures[metric] = f"{metric}: mean of the last {len(tail)} records {mean:.4f}, chance {chance:.4f}"
    return failures


def assert_objectives_learn(records: list[Mapping[str, float]], recipe: Mapping[str, Any], *, vocab_size: int,
                            world_size: int = 1, not_yet: tuple[str, ...] = (), last: int = 5) -> None:
    """Every objective's metrics past chance; those of objectives named in ``not_yet`` (known
    not to learn at this size and length yet) turn the test into an expected failure instead."""
    import pytest

    failures = beyond_chance(records, chance_levels(recipe, vocab_size=vocab_size, world_size=world_size), last=last)
    hard = [message for metric, message in failures.items() if metric.split("/")[0] not in not_yet]
    assert not hard, "objectives at chance: " + "; ".join(hard)
    if failures:
        pytest.xfail("at chance still (issue 19 item 3): " + "; ".join(failures.values()))
