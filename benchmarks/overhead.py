"""Framework step vs plain reference step, interleaved step by step, in thread CPU time.

`framework bench --compare-reference` times the two sides one after the other in wall
time, which a shared machine's load swings by more than the difference being measured.
Here both are built in one process, their steps alternate, and each phase is timed with
``time.thread_time`` (torch limited to one thread), so load from other processes mostly
cancels. Prints the median ms of each phase (data / forward / backward / optimizer) and
the step-time ratio; repeat a few times and report the range.

    .venv/bin/python benchmarks/overhead.py m3ae-tiny --vocab-size 200 [--steps 80] [--set KEY=VALUE]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import torch

from framework.bench.reference import find_reference, with_defaults
from framework.bench.runner import BenchOptions, batch_stream, bench_recipe_config
from framework.build import build_run
from framework.commands.common import load_validated
from framework.distributed import device_for_rank, init_distributed
from framework.engine import build_engine
from framework.step import TrainStep


class ThreadClock:
    """A :class:`framework.step.PhaseClock` reading this thread's CPU time."""

    def __init__(self) -> None:
        self.steps: list[list[float]] = []

    def start_step(self) -> None:
        self.steps.append([time.thread_time()])

    def mark(self) -> None:
        self.steps[-1].append(time.thread_time())

    def medians_ms(self) -> list[float]:
        phases = [[(b - a) * 1e3 for a, b in itertools.pairwise(marks)] for marks in self.steps]
        return [statistics.median(p[i] for p in phases) for i in range(4)] + [statistics.median(map(sum, phases))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("--vocab-size", type=int, default=200)
    parser.add_argument("--data", choices=("synthetic", "recipe"), default="synthetic")
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    torch.set_num_threads(1)
    options = BenchOptions(data=args.data, vocab_size=args.vocab_size, loading_images=0)
    recipe, registry = load_validated(args.recipe, args.overrides)
    recipe = bench_recipe_config(recipe, options)
    _, world_size = init_distributed()
    device = device_for_rank()
    make_batches, tokenizer = batch_stream(recipe, registry, options, device)
    built = build_run(recipe, registry, tokenizer=tokenizer, read_data=False)
    engine = build_engine(recipe, built.model, world_size)
    train_step = TrainStep(engine, built.teacher, seed=recipe["train"]["seed"], device=device)
    ref = find_reference(recipe)[1](with_defaults(recipe, registry), vocab_size=len(tokenizer),
                                    pad_id=tokenizer.pad_token_id, mask_id=tokenizer.mask_token_id, device=device)
    ours, theirs = make_batches(), make_batches()

    def ref_step(clock: ThreadClock) -> None:
        clock.start_step()
        batch = next(theirs)
        clock.mark()
        loss = ref.loss(batch)
        clock.mark()
        loss.backward()
        clock.mark()
        ref.step()
        clock.mark()

    clocks = ThreadClock(), ThreadClock()
    for i in range(args.warmup + args.steps):
        if i == args.warmup:
            clocks = ThreadClock(), ThreadClock()
        train_step(ours, i, clocks[0])
        ref_step(clocks[1])
    (fw, rf) = (c.medians_ms() for c in clocks)
    print(f"{args.recipe}, {args.steps} interleaved steps, thread CPU ms (data / forward / backward / optimizer; step)")
    for name, m in (("framework", fw), ("reference", rf)):
        print(f"  {name:9} {' / '.join(f'{x:.2f}' for x in m[:4])}; {m[4]:.2f}")
    print(f"  framework / reference step time: {fw[4] / rf[4]:.3f}")


if __name__ == "__main__":
    main()
