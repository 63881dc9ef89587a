"""`framework data check RECIPE`: read every sample of a recipe's data before training on it.

Reads each source of ``data.train`` (and ``data.eval`` and the evaluation tasks' own
``dataset`` when the recipe sets them) with
workers and a progress bar, and prints per source: the unusable samples by place and kind
(missing files, unreadable images, empty captions, bad JSON lines; see
:mod:`framework.data.check`), image sizes, caption lengths in characters and in tokens of
the recipe's tokenizer, and how many captions ``data.max_text_len`` truncates. Exits 1 when
the unusable fraction of a split passes ``data.max_bad_fraction`` (where a run would stop),
2 when the recipe or a source cannot be built, else 0.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from typing import Any

from framework.commands.common import USER_ERRORS, add_recipe_argument, fail, load_validated


def build_sources(recipe: Mapping[str, Any], registry: Any) -> dict[str, tuple[Any, Mapping[str, Any]]]:
    """Every source the recipe reads, by recipe key, with its config: ``data.train``,
    ``data.eval`` when set, and each ``eval.tasks[i].dataset`` (or ``train_dataset``)."""
    from framework import data as data_lib
    from framework.data.build import data_context

    cfg = data_lib.data_config(recipe)
    sources: dict[str, tuple[Any, Mapping[str, Any]]] = {}
    for split in ("train", "eval") if cfg.get("eval") is not None else ("train",):
        try:
            sources[f"data.{split}"] = (data_lib.build_dataset(recipe, registry, split=split), cfg[split])
        except (*USER_ERRORS, OSError, ValueError) as exc:
            raise ValueError(f"data.{split}: {exc}") from exc
    for i, task in enumerate((recipe.get("eval") or {}).get("tasks") or []):
        for key in ("dataset", "train_dataset"):
            if isinstance(task.get(key), Mapping):
                where = f"eval.tasks[{i}].{key}"
                try:
                    built = registry.build("dataset", task[key], data_context(recipe, registry, split="eval"))
                except (*USER_ERRORS, OSError, ValueError) as exc:
                    raise ValueError(f"{where}: {exc}") from exc
                sources[where] = (built, task[key])
    return sources


def _print_report(report: Any, *, shown: int, image_side: int, max_text_len: int, tokenizer: Any) -> None:
    from framework.data.check import caption_token_stats, spread

    fraction = report.bad / report.samples if report.samples else 0.0
    print(f"{report.name}: {report.samples} samples, {report.bad} unusable ({fraction:.2%})")
    if report.note:
        print(f"  {report.note}")
    for problem in report.problems[:shown]:
        print(f"  {problem.format()}")
    if report.bad > shown:
        print(f"  ... and {report.bad - shown} more (--show N lists more)")
    if report.problems:
        print("  by kind: " + ", ".join(f"{kind} {n}" for kind, n in report.kinds().most_common()))
    if report.sizes:
        widths, heights = [w for w, _ in report.sizes], [h for _, h in report.sizes]
        small = sum(min(w, h) < image_side for w, h in report.sizes)
        print(f"  images: {len(report.sizes)}; width {spread(widths)}; height {spread(heights)}"
              + (f"; {small} with a side under data.image_size={image_side} (upscaled)" if small else ""))
    if report.captions:
        print(f"  captions: {len(report.captions)}; characters {spread([len(c) for c in report.captions])}")
        if tokenizer is not None:
            lengths, truncated = caption_token_stats(report.captions, tokenizer, max_text_len)
            print(f"  tokens: {spread(lengths)}; {truncated} ({truncated / len(lengths):.1%}) longer than "
                  f"data.max_text_len={max_text_len} are truncated")


def check(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from framework import data as data_lib
    from framework.data.check import check_source, leaf_sources

    try:
        recipe, registry = load_validated(args.recipe, args.overrides)
    except USER_ERRORS as exc:
        return fail(exc)
    cfg = data_lib.data_config(recipe)
    workers = args.workers if args.workers is not None else min(os.cpu_count() or 1, 8)
    try:
        datasets = build_sources(recipe, registry)
    except (*USER_ERRORS, OSError, ValueError) as exc:
        return fail(exc)
    tokenizer, token_note = None, ""
    try:
        tokenizer = data_lib.build_tokenizer(recipe, registry, datasets["data.train"][0])
    except (*USER_ERRORS, OSError, ValueError) as exc:
        token_note = f"token lengths not counted: the tokenizer (data.tokenizer) cannot be built: {str(exc)[:200]}"
    failed = []
    for split, (dataset, config) in datasets.items():
        reports = []
        for name, source in leaf_sources(split, dataset, config):
            total = len(source) if hasattr(source, "__len__") and not hasattr(source, "shards") else None
            with tqdm(total=total, desc=name, unit=" samples", file=sys.stderr, disable=args.quiet,
                      leave=False, dynamic_ncols=True) as bar:
                reports.append(check_source(name, source, workers=workers, progress=bar.update))
        for report in reports:
            _print_report(report, shown=args.show, image_side=cfg["image_size"], max_text_len=cfg["max_text_len"],
                          tokenizer=tokenizer)
        seen, bad = sum(r.samples for r in reports), sum(r.bad for r in reports)
        fraction = bad / seen if seen else 0.0
        if fraction > cfg["max_bad_fraction"]:
            failed.append(f"{split}: {bad} of {seen} samples unusable ({fraction:.2%}), more than "
                          f"data.max_bad_fraction={cfg['max_bad_fraction']}")
    if token_note:
        print(token_note)
    if failed:
        for line in failed:
            print(f"FAILED {line}; a run would stop: fix the data or raise data.max_bad_fraction", file=sys.stderr)
        return 1
    print(f"data check passed: unusable samples within data.max_bad_fraction={cfg['max_bad_fraction']}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("data", help="work on a recipe's data: `framework data check RECIPE`")
    commands = p.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    c = commands.add_parser("check", help="read every sample of a recipe's sources and report problems and statistics")
    add_recipe_argument(c)
    c.add_argument("--workers", type=int, help="reader processes (default: the CPU count, at most 8; 0 reads here)")
    c.add_argument("--show", type=int, default=20, help="unusable samples listed per source (default 20)")
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    c.set_defaults(func=check)
