"""Retrieval and classification metrics against brute-force loops over a random score matrix."""

from __future__ import annotations

import pytest
import torch

from framework.evaluate.metrics import ranks, retrieval_recalls, topk_accuracy


def brute_force_recalls(scores: torch.Tensor, owner: list[int], ks: tuple[int, ...]) -> dict[str, float]:
    """Recall@K by explicit loops: count candidates scoring strictly higher (or equal with a
    lower index: the stable tie-break) than each true item."""
    n, m = scores.shape

    def position(row: list[float], j: int) -> int:
        return sum(1 for c, v in enumerate(row) if v > row[j] or (v == row[j] and c < j))

    out = {}
    for k in ks:
        found = 0
        for i in range(n):
            row = scores[i].tolist()
            found += any(position(row, j) < k for j in range(m) if owner[j] == i)
        out[f"i2t_r{k}"] = 100.0 * found / n
    for k in ks:
        found = 0
        for j in range(m):
            column = scores[:, j].tolist()
            found += position(column, owner[j]) < k
        out[f"t2i_r{k}"] = 100.0 * found / m
    return out


@pytest.mark.parametrize("seed", range(5))
def test_recalls_match_brute_force_with_several_captions_per_image(seed):
    generator = torch.Generator().manual_seed(seed)
    n = 12
    counts = torch.randint(1, 6, (n,), generator=generator)  # 1-5 captions per image, like COCO's five
    owner = torch.repeat_interleave(torch.arange(n), counts)
    owner = owner[torch.randperm(owner.numel(), generator=generator)]  # captions in any order
    scores = torch.randn(n, owner.numel(), generator=generator)
    scores[:, :3] = scores[:, 3:6]  # exact ties exercise the tie-break
    got = retrieval_recalls(scores, scores.t(), owner, ks=(1, 2, 5, 10))
    want = brute_force_recalls(scores, owner.tolist(), (1, 2, 5, 10))
    for key, value in want.items():
        assert got[key] == pytest.approx(value), key
    assert got["r_mean"] == pytest.approx(sum(want.values()) / len(want))


def test_perfect_and_reversed_scores():
    owner = torch.tensor([0, 0, 1, 2, 2, 2])
    perfect = (owner[None, :] == torch.arange(3)[:, None]).float()  # [3,6]
    got = retrieval_recalls(perfect, perfect.t(), owner, ks=(1,))
    assert got["i2t_r1"] == 100.0 and got["t2i_r1"] == 100.0
    worst = retrieval_recalls(-perfect, -perfect.t(), owner, ks=(1,))
    assert worst["i2t_r1"] == 0.0 and worst["t2i_r1"] == 0.0


def test_ranks_invert_a_stable_descending_sort():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.9]])
    assert ranks(scores).tolist() == [[3, 0, 2, 1]]


def test_topk_accuracy_matches_definition():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 7, generator=generator)
    labels = torch.randint(0, 7, (50,), generator=generator)
    got = topk_accuracy(logits, labels, ks=(1, 3))
    top3 = logits.topk(3, dim=1).indices
    assert got["top1"] == pytest.approx(100.0 * (logits.argmax(1) == labels).float().mean().item())
    assert got["top3"] == pytest.approx(100.0 * (top3 == labels[:, None]).any(1).float().mean().item())


def test_mismatched_shapes_and_captionless_images_are_refused():
    with pytest.raises(ValueError, match="same N images"):
        retrieval_recalls(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match="at least one caption"):
        retrieval_recalls(torch.zeros(3, 2), torch.zeros(2, 3), torch.tensor([0, 1]))
