"""Does pretraining transfer? A tiny model pretrained N steps versus the same architecture
from random initialisation, both fine-tuned the same M steps on an unseen synthetic task.

Usage: ``python benchmarks/transfer.py [--pretrain-steps 100] [--finetune-steps 40]
[--seeds 0,1,2,3] [--work DIR]``. Pretrains ``recipes/tiny.json`` (ITC + MAE pixels + MLM
on synthetic shapes) once, then fine-tunes ``recipes/shapes-classify-tiny.json`` (colour and
kind of one shape, 18 classes, other scenes) from ``model.init`` (the image encoder) and from
random initialisation with each ``train.seed``, and scores held-out top-1 with the
``classification`` evaluator. Writes ``benchmarks/results/transfer-cpu.json`` and prints a
table with chance and the majority class. ``tests/recipes/test_transfer.py`` asserts the
direction on seed 0.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from framework.evaluate import EvalModel, run_tasks
from framework.recipe import load_recipe
from framework.registry import default_registry
from framework.train import Trainer
from framework.validation import validate_recipe

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def recipe(name: str, overrides: list[str]) -> dict:
    path = RECIPES / name
    return validate_recipe(load_recipe(path, overrides), default_registry(), source=str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pretrain-steps", type=int, default=100)
    parser.add_argument("--finetune-steps", type=int, default=40)
    parser.add_argument("--seeds", default="0,1,2,3")
    parser.add_argument("--samples", type=int, default=512, help="held-out samples scored")
    parser.add_argument("--work", type=Path, default=None, help="where the runs go (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "transfer-cpu.json")
    args = parser.parse_args()
    registry = default_registry()
    work = args.work or Path(tempfile.mkdtemp(prefix="transfer-"))
    pretrain = work / "pretrain"
    started = time.perf_counter()
    Trainer(recipe("tiny.json", [f"train.steps={args.pretrain_steps}",
                                 f"train.checkpoint_every={args.pretrain_steps}"]),
            pretrain, registry, overwrite=True, progress=False).run()
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        row = {"seed": seed}
        for start in ("pretrained", "random"):
            overrides = [f"train.steps={args.finetune_steps}", f"train.checkpoint_every={args.finetune_steps}",
                         f"train.seed={seed}"]
            if start == "pretrained":
                overrides.append("model.init=" + json.dumps({"path": str(pretrain), "components": ["image_encoder"]}))
            run = work / f"{start}-{seed}"
            Trainer(recipe("shapes-classify-tiny.json", overrides), run, registry, overwrite=True, progress=False).run()
            scores = run_tasks(EvalModel.from_run(run, registry),
                               [{"type": "classification", "max_samples": args.samples}],
                               run / "eval", report=False)["classification"]
            row[start] = scores["top1"]
            row["chance"], row["majority"] = scores["chance_top1"], scores["majority_top1"]
        rows.append(row)
        print(f"seed {seed}: pretrained {row['pretrained']:.1f}% random {row['random']:.1f}% "
              f"(chance {row['chance']:.1f}%, majority {row['majority']:.1f}%)", flush=True)
    result = {"pretrain_steps": args.pretrain_steps, "finetune_steps": args.finetune_steps, "samples": args.samples,
              "rows": rows, "seconds": round(time.perf_counter() - started), "machine": platform.platform(),
              "command": f"python benchmarks/transfer.py --pretrain-steps {args.pretrain_steps} "
                         f"--finetune-steps {args.finetune_steps} --seeds {args.seeds}"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("| seed | pretrained top-1 | random top-1 | chance | majority |\n|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['seed']} | {row['pretrained']:.1f} | {row['random']:.1f} | "
              f"{row['chance']:.1f} | {row['majority']:.1f} |")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
