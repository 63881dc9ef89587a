"""`framework plot`: constant series left out, --keys order, the loss overlay, chance lines, ticks."""

from __future__ import annotations

import json
import math

import pytest
from PIL import Image

from framework.cli import main
from framework.pictures.curves import (
    LOSSES,
    chance_levels,
    curve_series,
    draw_panels,
    log_ticks,
    nice_ticks,
    plan_panels,
)

RECIPE = {"train": {"micro_batch": 16, "global_batch": 64},
          "objectives": [{"type": "itc", "queue_size": 0}, {"type": "itm"}, {"type": "mlm", "name": "words"}]}


def records(steps=(10, 20, 30, 40)):
    return [{"step": s, "loss": 9.0 - s / 10, "itc": 4.0 - s / 20, "itc/accuracy": s / 100, "itm": 0.7 - s / 1000,
             "itm/accuracy": 0.6 + s / 1000, "words": 8.0 - s / 40, "lr": 1e-3, "bad_samples": 0,
             "samples_seen": 64 * s, "samples_per_s": 100.0 + s, **({"eval/zero_shot/top1": s / 2,
                                                                        "eval/zero_shot/chance_top1": 10.0}
                                                                       if s % 20 == 0 else {})}
            for s in steps]


def write_run(tmp_path, world_size=2):
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records()))
    (tmp_path / "recipe.json").write_text(json.dumps(RECIPE))
    (tmp_path / "provenance.json").write_text(json.dumps({"world_size": world_size}))
    return tmp_path


def test_chance_levels_follow_itc_keys_and_itm_pairs():
    levels = chance_levels(RECIPE, world_size=2)
    assert levels["itc"][0][0] == pytest.approx(math.log(32))  # 16 per rank x 2 ranks gathered
    assert levels["itc/accuracy"][0][0] == pytest.approx(1 / 32)
    assert levels["itm/accuracy"][0][0] == pytest.approx(2 / 3)
    assert levels["itm"][0][0] == pytest.approx(-(1 / 3 * math.log(1 / 3) + 2 / 3 * math.log(2 / 3)))
    queued = {**RECIPE, "objectives": [{"type": "itc", "queue_size": 96}]}
    assert chance_levels(queued, world_size=1)["itc"][0][0] == pytest.approx(math.log(16 + 96))
    assert chance_levels(None) == {}


def test_panels_skip_constants_overlay_losses_and_use_chance_series():
    panels, skipped = plan_panels(curve_series(records()), recipe=RECIPE, world_size=2)
    assert skipped == {"lr": 1e-3, "bad_samples": 0, "eval/zero_shot/chance_top1": 10.0}
    assert panels[0].title == LOSSES and list(panels[0].lines) == ["loss", "itc", "itm", "words"]
    titles = [p.title for p in panels[1:]]
    assert titles == ["loss", "itc", "itc/accuracy", "itm", "itm/accuracy", "words", "eval/zero_shot/top1"]
    by_title = {p.title: p for p in panels}
    assert by_title["eval/zero_shot/top1"].chance == [(10.0, "chance")]
    assert by_title["itc/accuracy"].chance[0][0] == pytest.approx(1 / 32)
    assert not by_title["words"].chance
    assert plan_panels(curve_series(records()), overlay=False)[0][0].title != LOSSES


def test_keys_order_is_honoured_and_named_constants_are_kept():
    series = curve_series(records(), ["itm/accuracy", "lr", "itc"])
    assert list(series) == ["itm/accuracy", "lr", "itc"]
    panels, skipped = plan_panels(series, recipe=RECIPE, keep=list(series), overlay=False)
    assert [p.title for p in panels] == ["itm/accuracy", "lr", "itc"] and skipped == {}
    with pytest.raises(ValueError, match="no metric named"):
        curve_series(records(), ["nope"])


def test_ticks_are_round_and_cover_the_range():
    assert nice_ticks(0.0, 1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(3.3, 9.1) == [4.0, 6.0, 8.0]
    assert nice_ticks(10, 150, count=4) == [50.0, 100.0, 150.0]
    assert log_ticks(0.05, 6.0) == [0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0]


def test_the_overlay_turns_logarithmic_when_losses_span_decades():
    rows = [{"step": s, "mim": 0.01 + s / 1e4, "mlm": 6.0 - s / 100} for s in (1, 2, 3)]
    panels, _ = plan_panels(curve_series(rows))
    assert panels[0].title == LOSSES and panels[0].log


def test_plot_command_draws_the_planned_panels(tmp_path, capsys):
    run = write_run(tmp_path)
    out = tmp_path / "curves.png"
    assert main(["plot", str(run), "--out", str(out), "--width", "200", "--height", "100", "--columns", "4"]) == 0
    with Image.open(out) as picture:
        assert picture.size == (4 * 200, 2 * 100)  # overlay + 7 changing metrics
        pixels = picture.convert("RGB")
        assert len(set(pixels.getdata())) > 20  # lines, ticks, text, dashed chance lines
    printed = capsys.readouterr().out
    assert "8 panels" in printed and "constant, not plotted: lr=0.001, bad_samples=0" in printed
    assert main(["plot", str(run), "--keys", "itc, loss", "--no-overlay", "--out", str(out), "--columns", "1"]) == 0
    with Image.open(out) as picture:
        assert picture.size == (320, 2 * 180)
    assert main(["plot", str(run), "--keys", "loss,nope"]) == 2
    (run / "metrics.jsonl").write_text(json.dumps({"step": 1, "lr": 0.1}) + "\n")
    assert main(["plot", str(run)]) == 2
    assert "every series is constant" in capsys.readouterr().err


def test_a_single_point_and_a_kept_constant_still_draw():
    panels, _ = plan_panels({"a": [(5.0, 2.0)]}, keep=["a"])
    assert draw_panels(panels, panel=(120, 90)).size == (120, 90)
