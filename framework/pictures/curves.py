"""Training curves of a run as a PNG, drawn with PIL (no plotting dependency).

``framework plot RUN`` reads ``metrics.jsonl`` and draws one panel per metric that changes
(a constant series such as a fixed learning rate is left out and named instead), with y
ticks, a step axis and, first, one panel overlaying every loss. Panels of contrastive and
matching objectives carry their chance level as a dashed line:

* ITC contrasts each image with the K = micro_batch x world_size captions gathered from
  every rank (plus ``queue_size`` queued keys in momentum mode), so a model that has
  learnt nothing scores loss ln K and accuracy 1/K (plugins/objectives/itc.py).
* ITM classifies 3B pairs of which B match: always answering "no match" scores accuracy
  2/3, and predicting that prior scores loss H(1/3) = ln 3 - (2/3) ln 2 (itm.py).
* An evaluator that logs ``chance_<metric>`` (zero-shot's ``chance_top1``) gives its own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageDraw, ImageFont

Points = list[tuple[float, float]]
PALETTE = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207),
           (140, 86, 75), (227, 119, 194))
NOT_METRICS = ("step", "samples_seen", "samples_per_s")
"""Record keys that are axes or throughput, not curves."""
BOOKKEEPING = ("lr", "bad_samples", "skipped_steps")
"""Keys without "/" that are not losses."""
LOSSES = "losses"
"""Title of the overlay panel."""


@dataclass
class Panel:
    """One plot: its lines (name -> points, drawn in order), reference lines and scale."""

    title: str
    lines: dict[str, Points]
    chance: list[tuple[float, str]] = field(default_factory=list)
    log: bool = False


def curve_series(records: Sequence[Mapping[str, object]], keys: Sequence[str] | None = None,
                 skip: Sequence[str] = NOT_METRICS) -> dict[str, Points]:
    """(step, value) points of each numeric metric in ``records``; with ``keys`` only
    those, in the order given (an unknown key raises ValueError naming the known ones)."""
    series: dict[str, Points] = {}
    for record in records:
        for key, value in record.items():
            if key in skip or (keys is not None and key not in keys):
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                series.setdefault(key, []).append((float(record["step"]), float(value)))
    missing = [k for k in keys or () if k not in series]
    if missing:
        raise ValueError(f"no metric named {missing} in the records; known: {sorted(series)}")
    return {k: series[k] for k in keys} if keys is not None else series


def is_constant(points: Points) -> bool:
    values = [v for _, v in points]
    return max(values) - min(values) <= 1e-12 * max(1.0, abs(values[0]))


def loss_keys(series: Mapping[str, Points], recipe: Mapping[str, Any] | None = None) -> list[str]:
    """The total ``loss`` and each objective's loss among ``series`` (objective names come
    from the recipe; without one, every key with no "/" that is not bookkeeping)."""
    if recipe is not None and recipe.get("objectives"):
        names = {"loss", *(o.get("name", o["type"]) for o in recipe["objectives"])}
        return [k for k in series if k in names]
    return [k for k in series if "/" not in k and k not in BOOKKEEPING]


def chance_levels(recipe: Mapping[str, Any] | None, world_size: int = 1) -> dict[str, list[tuple[float, str]]]:
    """Reference lines by metric key for the recipe's ITC and ITM objectives (module docstring)."""
    if not recipe:
        return {}
    micro = int((recipe.get("train") or {}).get("micro_batch", 0))
    lines: dict[str, list[tuple[float, str]]] = {}
    for objective in recipe.get("objectives") or []:
        name = objective.get("name", objective["type"])
        if objective["type"] == "itc" and micro > 0:
            keys = micro * world_size + int(objective.get("queue_size", 0))
            lines[name] = [(math.log(keys), f"chance ln {keys}")]
            lines[f"{name}/accuracy"] = [(1 / keys, f"chance 1/{keys}")]
        elif objective["type"] == "itm":
            lines[name] = [(math.log(3) - 2 / 3 * math.log(2), "prior H(1/3)")]
            lines[f"{name}/accuracy"] = [(2 / 3, "always 'no match'")]
    return lines


def plan_panels(series: Mapping[str, Points], *, recipe: Mapping[str, Any] | None = None, world_size: int = 1,
                keep: Sequence[str] = (), overlay: bool = True) -> tuple[list[Panel], dict[str, float]]:
    """The panels to draw and the constant series left out (name -> value).

    Constant series are left out unless named in ``keep``; a constant ``chance_<m>`` series
    becomes the reference line of ``<m>`` beside it. With ``overlay`` and two or more
    losses, a panel overlaying them comes first (log scale when they span over 30x)."""
    chance = chance_levels(recipe, world_size)
    skipped: dict[str, float] = {}
    shown: dict[str, Points] = {}
    for key, points in series.items():
        head, _, last = key.rpartition("/")
        if last.startswith("chance_") and is_constant(points):
            chance.setdefault(f"{head}/{last[7:]}" if head else last[7:], []).append((points[0][1], "chance"))
            skipped[key] = points[0][1]
        elif is_constant(points) and key not in keep:
            skipped[key] = points[0][1]
        else:
            shown[key] = points
    panels = [Panel(key, {key: points}, chance.get(key, [])) for key, points in shown.items()]
    losses = loss_keys(shown, recipe)
    if overlay and len(losses) > 1:
        values = [v for k in losses for _, v in shown[k]]
        log = min(values) > 0 and max(values) / min(values) > 30
        panels.insert(0, Panel(LOSSES, {k: shown[k] for k in losses}, log=log))
    return panels, skipped


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round values (1, 2 or 5 times a power of ten apart) covering [lo, hi]."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count - 1, 1)
    unit = 10 ** math.floor(math.log10(raw))
    step = min((m * unit for m in (1, 2, 5, 10)), key=lambda c: abs(math.log(c / raw)))  # nearest round step
    first = math.ceil(lo / step - 1e-9) * step
    return [round(first + i * step, 12) for i in range(int((hi - first) / step + 1e-9) + 1)]


def log_ticks(lo: float, hi: float) -> list[float]:
    """1, 2 and 5 times each power of ten within [lo, hi] (only the powers when there are many)."""
    ticks = [m * 10.0 ** e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
             for m in (1, 2, 5) if lo <= m * 10.0 ** e <= hi]
    return [t for t in ticks if math.log10(t).is_integer()] if len(ticks) > 7 else ticks


def _text(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, font: Any, fill: Any = "black",
          anchor: str = "la") -> float:
    """Draw ``text`` and return its width."""
    draw.text(xy, text, fill=fill, font=font, anchor=anchor)
    return draw.textlength(text, font=font)


def _dashed(draw: ImageDraw.ImageDraw, x0: float, x1: float, y: float, colour: Any) -> None:
    x = x0
    while x < x1:
        draw.line((x, y, min(x + 5, x1), y), fill=colour, width=1)
        x += 9


def draw_panel(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], panel: Panel, colours: Sequence[Any],
               font: Any) -> None:
    """``panel`` inside ``box`` (x0, y0, x1, y1): title (legend for several lines), y ticks
    with grid lines, a step axis, the lines, a dot on each last value and the chance lines."""
    x0, y0, x1, y1 = box
    left, top, right, bottom = x0 + 50, y0 + 20, x1 - 10, y1 - 30  # plot area inside the labels
    points = [p for line in panel.lines.values() for p in line]
    steps = [s for s, _ in points]
    values = [v for _, v in points] + [c for c, _ in panel.chance]
    lo, hi = min(values), max(values)
    if hi - lo <= 1e-12 * max(1.0, abs(hi)):  # a constant kept on request: centre it
        lo, hi = lo - max(abs(lo) * 0.1, 0.5), hi + max(abs(hi) * 0.1, 0.5)
    scale = (math.log10 if panel.log else (lambda v: v))
    ticks = log_ticks(lo, hi) if panel.log else nice_ticks(lo, hi)
    if panel.log and not ticks:
        ticks = [lo, hi]
    pad = (scale(hi) - scale(lo)) * 0.05
    y_lo, y_hi = scale(lo) - pad, scale(hi) + pad
    s_lo, s_hi = min(steps), max(steps)
    span_x = (s_hi - s_lo) or 1.0

    def at(step: float, value: float) -> tuple[float, float]:
        return (left + (step - s_lo) / span_x * (right - left),
                bottom - (scale(value) - y_lo) / (y_hi - y_lo) * (bottom - top))

    draw.rectangle((left, top, right, bottom), outline=(160, 160, 160))
    for tick in ticks:  # y ticks and grid
        y = at(s_lo, tick)[1]
        draw.line((left + 1, y, right - 1, y), fill=(232, 232, 232))
        draw.line((left - 3, y, left, y), fill=(120, 120, 120))
        _text(draw, (left - 5, y), f"{tick:.3g}", font, anchor="rm")
    for tick in nice_ticks(s_lo, s_hi, count=4) if s_hi > s_lo else [s_lo]:  # the step axis
        x = at(tick, lo)[0]
        draw.line((x, bottom, x, bottom + 3), fill=(120, 120, 120))
        _text(draw, (x, bottom + 5), f"{tick:g}", font, anchor="ma")
    _text(draw, (right, y1 - 2), "step", font, fill=(90, 90, 90), anchor="rd")
    for value, label in panel.chance:
        y = at(s_lo, value)[1]
        _dashed(draw, left + 1, right - 1, y, (110, 110, 110))
        _text(draw, (right - 3, y - 2), f"{label} = {value:.3g}", font, fill=(90, 90, 90), anchor="rd")
    for (name, line), colour in zip(panel.lines.items(), colours):
        xy = [at(s, v) for s, v in line]
        if len(xy) > 1:
            draw.line(xy, fill=colour, width=2)
        x, y = xy[-1]  # mark the last value (the only one after a single log)
        draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=colour)
    if len(panel.lines) == 1:
        name, line = next(iter(panel.lines.items()))
        _text(draw, (x0 + 4, y0 + 3), f"{name} (last {line[-1][1]:.4g})", font)
    else:  # the title, then each line's name in its colour
        x = x0 + 4 + _text(draw, (x0 + 4, y0 + 3), f"{panel.title}{' (log)' if panel.log else ''}:", font) + 6
        for name, colour in zip(panel.lines, colours):
            if x > x1 - 20:
                break
            x += _text(draw, (x, y0 + 3), name, font, fill=colour) + 8


def draw_panels(panels: Sequence[Panel], *, panel: tuple[int, int] = (320, 180), columns: int = 3) -> Image.Image:
    """The ``panels`` (each ``panel`` = width, height pixels), ``columns`` a row."""
    if not panels:
        raise ValueError("no metrics to plot: metrics.jsonl is empty or every series is constant "
                         "(name them in --keys to plot them anyway)")
    rows = -(-len(panels) // columns)
    width, height = panel
    canvas = Image.new("RGB", (min(columns, len(panels)) * width, rows * height), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    colours: dict[str, tuple[int, int, int]] = {}  # one colour per metric, the same in every panel
    for item in panels:
        for name in item.lines:
            colours.setdefault(name, PALETTE[len(colours) % len(PALETTE)])
    for i, item in enumerate(panels):
        x, y = (i % columns) * width, (i // columns) * height
        draw_panel(draw, (x, y, x + width, y + height), item, [colours[n] for n in item.lines], font)
    return canvas


def draw_curves(series: Mapping[str, Points], *, panel: tuple[int, int] = (320, 180), columns: int = 3) -> Image.Image:
    """One panel per series as given (nothing skipped or added): see :func:`plan_panels`."""
    if not series:
        raise ValueError("no metrics to plot; is metrics.jsonl empty?")
    return draw_panels([Panel(k, {k: list(p)}) for k, p in series.items()], panel=panel, columns=columns)
