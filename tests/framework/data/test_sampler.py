"""ResumableDistributedSampler: disjoint per-rank cover of every epoch and exact resume."""

from itertools import islice

import pytest

from framework.data.sampler import ResumableDistributedSampler


def take(sampler, n):
    return list(islice(iter(sampler), n))


@pytest.mark.parametrize("length", [12, 13])
def test_two_ranks_are_disjoint_and_cover_each_epoch(length):
    ranks = [ResumableDistributedSampler(length, r, 2, seed=3) for r in range(2)]
    streams = [take(s, length * 2) for s in ranks]  # two epochs' worth over both ranks
    merged = [key for pair in zip(*streams) for key in pair]  # stream order: rank0, rank1, rank0, ...
    for epoch in (0, 1):
        keys = [k for k in merged if k[0] == epoch]
        assert sorted(i for _, i in keys) == list(range(length))  # every sample exactly once
    assert not set(streams[0]) & set(streams[1])
    assert [i for e, i in merged if e == 0] != [i for e, i in merged if e == 1]  # reshuffled per epoch


def test_resume_neither_replays_nor_skips():
    full = take(ResumableDistributedSampler(10, 1, 2, seed=0), 12)
    first = ResumableDistributedSampler(10, 1, 2, seed=0)
    seen = take(first, 4)
    first.advance(4)  # the loop consumed four samples on every rank
    resumed = ResumableDistributedSampler(10, 1, 2, seed=0)
    resumed.load_state_dict(first.state_dict())
    assert seen + take(resumed, 8) == full


def test_resume_on_another_world_size_continues_the_same_stream():
    one = take(ResumableDistributedSampler(9, 0, 1, seed=5), 18)
    state = ResumableDistributedSampler(9, 0, 1, seed=5, start=6).state_dict()
    halves = []
    for rank in range(3):
        sampler = ResumableDistributedSampler(9, rank, 3, seed=5)
        sampler.load_state_dict(state)
        halves.append(take(sampler, 4))
    assert [k for trio in zip(*halves) for k in trio] == one[6:18]


def test_mismatched_state_is_refused_and_bad_rank_rejected():
    sampler = ResumableDistributedSampler(10, 0, 1, seed=0)
    with pytest.raises(ValueError, match="length=11"):
        sampler.load_state_dict({**sampler.state_dict(), "length": 11})
    with pytest.raises(ValueError, match="rank 2"):
        ResumableDistributedSampler(10, 2, 2, seed=0)


def test_no_shuffle_is_sequential():
    assert take(ResumableDistributedSampler(3, 0, 1, seed=0, shuffle=False), 4) == [(0, 0), (0, 1), (0, 2), (1, 0)]
