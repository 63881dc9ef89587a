"""Source ``mixture``: over epochs every item is read, in proportion to its source's weight,
and the mapping is a pure function of (seed, epoch, index) so a resumed run reads the same."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.data.sampler import ResumableDistributedSampler
from framework.data.samples import SampleLoader
from framework_plugins.data.mixture import Mixture


class Items:
    """A source of ``n`` items that names itself: item ``i`` is ``(name, i)``."""

    def __init__(self, name: str, n: int) -> None:
        self.name, self.n = name, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        assert 0 <= i < self.n
        return {"source": self.name, "item": i, "captions": ["x"]}


def mixtures():
    return st.builds(
        lambda sizes, weights, samples, seed: Mixture([Items(str(k), n) for k, n in enumerate(sizes)],
                                                      weights[:len(sizes)], samples=samples, seed=seed),
        st.lists(st.integers(1, 30), min_size=1, max_size=4),
        st.lists(st.integers(0, 10), min_size=4, max_size=4).filter(lambda w: w[0] > 0),
        st.integers(1, 80),
        st.integers(0, 2**31),
    )


def epoch_reads(mix: Mixture, epoch: int) -> list[tuple[int, int]]:
    return [mix.locate(i, epoch) for i in range(len(mix))]


@settings(max_examples=60, deadline=None)
@given(mixtures(), st.integers(1, 6))
def test_every_item_is_read_evenly_and_sources_follow_their_weights(mix, epochs):
    reads = [r for e in range(epochs) for r in epoch_reads(mix, e)]
    by_source = Counter(k for k, _ in reads)
    for k, source in enumerate(mix.sources):
        # Per epoch a source's count is its exact share rounded down or up ...
        for e in range(epochs):
            count = int(mix.quota(e)[k])
            assert np.floor(mix.samples * mix.share[k]) <= count <= np.ceil(mix.samples * mix.share[k])
        # ... and its items are read without replacement: any two differ by at most one read.
        items = Counter(i for j, i in reads if j == k)
        assert sum(items.values()) == by_source[k]
        if by_source[k]:
            seen = [items.get(i, 0) for i in range(len(source))]
            assert max(seen) - min(seen) <= 1, seen
            assert max(seen) == -(-by_source[k] // len(source))
    assert sum(by_source.values()) == epochs * mix.samples


def test_over_many_epochs_the_shares_converge_to_the_weights():
    """MaskVLM's four sources at small scale: ratios within 1% after 200 epochs, and every
    item of every source read (the issue measured 63% ever read with the old mixture)."""
    weights = [566747, 768536, 2912317, 1000000]
    sizes = [57, 77, 291, 100]
    mix = Mixture([Items(str(k), n) for k, n in enumerate(sizes)], weights, samples=101, seed=3)
    quotas = np.stack([mix.quota(e) for e in range(200)])  # [E,K]
    share = quotas.sum(0) / quotas.sum()
    np.testing.assert_allclose(share, np.asarray(weights) / sum(weights), atol=0.01)
    reads = {r for e in range(30) for r in epoch_reads(mix, e)}
    assert reads == {(k, i) for k, n in enumerate(sizes) for i in range(n)}


def test_epochs_differ_and_reads_are_a_pure_function_of_seed_epoch_index():
    def build():
        return Mixture([Items("a", 5), Items("b", 7)], [1, 2], samples=12, seed=9)

    mix = build()
    assert epoch_reads(mix, 0) != epoch_reads(mix, 1)
    fresh = build()  # a resumed process: epoch 3 first, then back to 0, in another order
    assert [fresh.locate(i, 3) for i in reversed(range(12))] == epoch_reads(mix, 3)[::-1]
    assert epoch_reads(fresh, 0) == epoch_reads(mix, 0)
    assert build()[5] == mix.at_epoch(0, 5)


def test_zero_weight_source_is_never_read_and_bad_arguments_are_refused():
    mix = Mixture([Items("a", 3), Items("b", 3)], [1, 0], samples=10, seed=0)
    assert {k for e in range(3) for k, _ in epoch_reads(mix, e)} == {0}
    with pytest.raises(ValueError, match="one weight each"):
        Mixture([Items("a", 3)], [1, 1], samples=3, seed=0)
    with pytest.raises(IndexError):
        mix.locate(10)


def test_the_training_loader_passes_the_epoch_and_resumes_exactly():
    """Keys (epoch, index) from the resumable sampler reach the mixture through SampleLoader;
    a sampler restarted from a saved position reads the same samples as an unbroken run."""
    mix = Mixture([Items("a", 4), Items("b", 6)], [1, 1], samples=8, seed=1)
    loader = SampleLoader(mix, lambda s: dict(s), seed=0)

    def reads(sampler, n):
        it = iter(sampler)
        return [(s["source"], s["item"]) for s in (loader[next(it)] for _ in range(n))]

    whole = reads(ResumableDistributedSampler(len(mix), 0, 1, seed=5), 40)
    assert whole[:8] != whole[8:16]  # the epoch changes what is read
    resumed = reads(ResumableDistributedSampler(len(mix), 0, 1, seed=5, start=24), 16)
    assert resumed == whole[24:40]
    assert set(whole) == {("a", i) for i in range(4)} | {("b", i) for i in range(6)}
