"""`framework bench RECIPE`: samples/s, step phases, peak memory, FLOPs and MFU of a recipe."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any, Mapping

from framework.commands.common import (
    USER_ERRORS,
    add_recipe_argument,
    fail,
    load_validated,
)

COLUMNS = (("samples_per_s", "samples/s", "{:.1f}"), ("step_ms", "step ms", "{:.1f}"), ("data_ms", "data", "{:.1f}"),
           ("forward_ms", "fwd", "{:.1f}"), ("backward_ms", "bwd", "{:.1f}"), ("optimizer_ms", "optim", "{:.1f}"),
           ("host_syncs_per_step", "syncs", "{:d}"),
           ("train_flops_per_sample", "GFLOP/sample", "{:.2f}"), ("achieved_tflops", "TFLOPS", "{:.2f}"))


def _cell(side: Mapping[str, Any], key: str, fmt: str) -> str:
    value = side[key] / 1e9 if key == "train_flops_per_sample" else side[key]
    return fmt.format(value)


def print_table(measured: Mapping[str, Any]) -> None:
    """Framework (and reference) side by side, one row each."""
    sides = [name for name in ("framework", "reference") if name in measured]
    memory_key = "peak_memory_gb" if "peak_memory_gb" in measured["framework"] else "peak_rss_gb"
    header = ["", *(title for _, title, _ in COLUMNS), "MFU", memory_key.replace("_gb", " GB").replace("_", " ")]
    rows = [header]
    for name in sides:
        side = measured[name]
        mfu = f"{side['mfu']:.1%}" if side["mfu"] is not None else "-"
        rows.append([name, *(_cell(side, k, f) for k, _, f in COLUMNS), mfu, f"{side[memory_key]:.2f}"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    print(f"device: {measured['device']}")
    for row in rows:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths)))
    for name in sides:
        for line in measured[name]["host_syncs"]:
            print(f"host sync in the {name} step: {line}")
    if "framework_over_reference" in measured:
        print(f"framework / reference samples/s: {measured['framework_over_reference']:.3f}")
    if "loading" in measured:
        print(loading_line(measured["loading"]))


def loading_line(loading: Mapping[str, Any]) -> str:
    """One line: the loader's rate per worker next to the step's demand, and the workers it needs."""
    if loading["num_workers"] == 0:
        verdict = "loads in the training process, between steps"
    elif loading["num_workers"] >= loading["workers_needed"]:
        verdict = "keeps up"
    else:
        verdict = f"falls short: set data.num_workers >= {loading['workers_needed']}"
    return (f"loading: {loading['images_per_s_per_worker']:.0f} images/s per worker ({loading['source']} decoded and "
            f"augmented to {loading['image_size']} px); the step consumes {loading['demand_samples_per_s']:.0f} "
            f"samples/s, so it needs {loading['workers_needed']} worker(s); data.num_workers {loading['num_workers']} "
            f"{verdict}")


def bench(args: argparse.Namespace) -> int:
    from framework.bench import reference as reference_lib
    from framework.bench import results
    from framework.bench.runner import (
        BenchOptions,
        bench_framework,
        bench_recipe_config,
    )

    options = BenchOptions(steps=args.steps, warmup=args.warmup, batch=args.batch, data=args.data,
                           vocab_size=args.vocab_size, compile=args.compile, loading_images=args.loading_images)
    try:
        recipe, registry = load_validated(args.recipe, args.overrides)
        recipe = bench_recipe_config(recipe, options)
        build_reference = reference_lib.find_reference(recipe)[1] if args.compare_reference else None
    except (*USER_ERRORS, reference_lib.NoReferenceError) as exc:
        return fail(exc)
    measured = bench_framework(recipe, registry, options, build_reference)
    data = results.record(args.recipe, recipe, {**dataclasses.asdict(options), "batch": recipe["train"]["micro_batch"],
                                                "compare_reference": args.compare_reference,
                                                "activation_checkpointing":
                                                    recipe["train"].get("activation_checkpointing", False)},
                             measured)
    if args.output:
        path = results.write(Path(args.output), data)
    else:
        path = results.write(results.default_path(args.recipe, measured["device"], recipe["train"]["micro_batch"],
                                                  data=args.data), data, exclusive=True)
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print_table(measured)
        print(f"written to {path}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench", help="time training steps: samples/s, phases, memory, FLOPs, MFU")
    add_recipe_argument(p)
    p.add_argument("--steps", type=int, default=10, help="timed steps (default 10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    p.add_argument("--batch", type=int, help="micro-batch per step (default: the recipe's train.micro_batch)")
    p.add_argument("--data", choices=("recipe", "synthetic"), default="recipe",
                   help="the recipe's data, or random batches of its shapes with a stand-in tokenizer and no "
                        "encoder checkpoints (for paper recipes whose corpora are not on this machine)")
    p.add_argument("--vocab-size", type=int, default=30522,
                   help="vocabulary of the stand-in tokenizer with --data synthetic (BERT 30522, RoBERTa 50265)")
    p.add_argument("--compile", action="store_true", help="torch.compile encoders, fusion and decoders (train.compile)")
    p.add_argument("--compare-reference", action="store_true",
                   help="also time the plain-PyTorch step in benchmarks/reference/ on the same batches")
    p.add_argument("--loading-images", type=int, default=256,
                   help="images timed through the recipe's loading pipeline (synthetic JPEGs, the recipe's "
                        "augmentation, one worker) to report images/s beside the step's demand (0: skip; default 256)")
    p.add_argument("--output", help="result JSON, replaced if it exists (default: a new file "
                                    "runs/bench/bench-<recipe>-<device>-b<batch>[-synthetic]-<UTC time>.json)")
    p.add_argument("--json", action="store_true", help="print the whole record as JSON")
    p.set_defaults(func=bench)
