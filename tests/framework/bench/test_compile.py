"""``train.compile``: compiled components give the eager step's losses and, since every
shape in a step follows the recipe rather than the data, compile once and never again."""

from __future__ import annotations

import pytest
import torch
from torch._dynamo.utils import counters

from framework.assemble import assemble
from framework.bench.runner import BenchOptions, batch_stream, bench_recipe_config
from framework.distributed import init_distributed
from framework.registry import default_registry
from framework.step import mask_generator
from tests.helpers import RECIPES, tiny_recipe


@pytest.fixture(scope="module", autouse=True)
def process_group() -> None:
    init_distributed()


def losses(compiled: bool, steps: int) -> list[float]:
    """Per-step losses of plain SGD steps on m3ae-tiny (same seed, same batches)."""
    registry = default_registry()
    options = BenchOptions(data="synthetic", vocab_size=200, batch=8)
    recipe = bench_recipe_config(tiny_recipe(path=RECIPES / "m3ae-tiny.json"), options)
    make_batches, tokenizer = batch_stream(recipe, registry, options, torch.device("cpu"))
    batches = make_batches()
    torch.manual_seed(0)
    model, _ = assemble(recipe, registry, tokenizer)
    if compiled:
        model.compile_components()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    out = []
    for step in range(steps):
        loss = model(next(batches), generator=mask_generator(0, step, 0)).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        out.append(loss.item())
        if step == 0:
            graphs = counters["stats"]["unique_graphs"]
    if compiled:
        assert counters["stats"]["unique_graphs"] == graphs, "a later step recompiled: some shape follows the data"
        assert not counters["graph_break"], dict(counters["graph_break"])
    return out


def test_compiled_components_match_eager_and_never_recompile():
    torch._dynamo.reset()
    counters.clear()
    torch.testing.assert_close(losses(True, 4), losses(False, 4), rtol=1e-4, atol=1e-5)
