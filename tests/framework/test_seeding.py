"""Every global generator is seeded: two identical runs save the same RNG states, whatever
the process drew from ``random`` or NumPy before (issue 19 item 5)."""

from __future__ import annotations

import random

import numpy as np
import torch

import framework.train as train_module
from framework.data.loader import seed_worker
from framework.seeding import seed_everything
from framework.train import Trainer
from tests.helpers import tiny_recipe


def same(a, b) -> bool:
    """Deep equality of rng_state() records (tensors, ints, strings, lists, dicts)."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if torch.is_tensor(a):
        return torch.equal(a, b)
    return a == b


def test_seed_everything_seeds_random_numpy_and_torch():
    seed_everything(7)
    first = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    random.random(), np.random.rand(), torch.rand(1)
    seed_everything(7)
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == first
    seed_everything(2**40 + 7)  # beyond NumPy's 32-bit seeds
    assert np.random.get_state()[1][0] == np.random.RandomState(7).get_state()[1][0]


def test_a_worker_seeds_random_and_numpy_from_its_torch_seed():
    torch.manual_seed(1234)
    seed_worker(0)
    drawn = (random.random(), float(np.random.rand()))
    random.seed(0), np.random.seed(0)
    torch.manual_seed(1234)
    seed_worker(0)
    assert (random.random(), float(np.random.rand())) == drawn


def test_two_identical_runs_save_the_same_rng_state(tmp_path, monkeypatch, registry):
    saved = []
    real = train_module.rng_state
    monkeypatch.setattr(train_module, "rng_state", lambda: saved.append(real()) or saved[-1])
    recipe = tiny_recipe("train.steps=2", "train.checkpoint_every=2", "train.global_batch=4", "train.micro_batch=4",
                         "data.train.samples=32")
    for run, noise in enumerate([11, 99]):
        random.seed(noise), np.random.seed(noise), torch.manual_seed(noise)  # whatever ran before in the process
        random.random(), np.random.rand()
        Trainer(recipe, tmp_path / f"run{run}", registry, progress=False).run()
    assert len(saved) == 2
    assert same(saved[0]["python"], saved[1]["python"]) and same(saved[0]["numpy"], saved[1]["numpy"])
    assert same(saved[0], saved[1])
