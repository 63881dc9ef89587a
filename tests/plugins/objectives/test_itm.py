"""Objective ``itm``: hard-negative sampling (never the positive, ∝ softmax of ALBEF's sim_i2t /
sim_t2i rows, with and without a momentum teacher) and the loss by hand."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from framework.registry import BuildContext, Registry
from framework.types import FusedEncoding, ImageEncoding, Similarities, TextEncoding
from framework_plugins import objectives
from framework_plugins.objectives import itm
from framework_plugins.objectives.itm import sample_negatives

B, N, T, D = 4, 3, 5, 8


@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    reg.register_plugin(objectives, name="objectives", distribution="framework==test")
    return reg


def build_itm(registry: Registry, negatives: str, **params) -> itm.ImageTextMatching:
    context = BuildContext(registry, {"fusion_width": D})
    config = {"type": "itm", "name": "itm", "view": "full", "negatives": negatives, **params}
    return registry.build("objective", config, context)


def similarities(i2t: torch.Tensor, t2i: torch.Tensor, offset: int = 0) -> Similarities:
    b = i2t.shape[0]
    return Similarities(image_to_text=i2t, text_to_image=t2i, offset=offset, image=torch.zeros(b, 1),
                        text=torch.zeros(b, 1))


class ProductFusion(nn.Module):
    """Pooled = image [CLS] * text [CLS], so the ITM input of any pair is known by hand."""

    def forward(self, image: ImageEncoding, text: TextEncoding) -> FusedEncoding:
        return FusedEncoding(image.tokens, text.tokens, image.tokens[:, 0] * text.tokens[:, 0])


def fake_context(i2t: torch.Tensor, t2i: torch.Tensor, seed: int) -> SimpleNamespace:
    """What ITM reads from a StepContext: the view, the fusion, ITC's similarities and the generator."""
    g = torch.Generator().manual_seed(100 + seed)
    image = ImageEncoding(torch.randn(B, 1 + N, D, generator=g), "full")
    mask = torch.ones(B, T, dtype=torch.long)
    mask[0, 3:] = 0
    text = TextEncoding(torch.randn(B, T, D, generator=g), mask)
    view = SimpleNamespace(image=image, text=text)
    return SimpleNamespace(view=lambda name: view, batch_size=B, student=SimpleNamespace(fusion=ProductFusion()),
                           shared={"itc": similarities(i2t, t2i)}, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("hard", [True, False])
def test_negative_is_never_the_positive_even_when_the_positive_dominates(hard):
    logits = torch.full((6, 6), -30.0)
    logits.fill_diagonal_(30.0)  # softmax puts ~all mass on the positive
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        picks = sample_negatives(logits, g, hard)
        assert (picks != torch.arange(6)).all()


def test_hard_negatives_follow_softmax_over_the_other_samples():
    """Empirical frequencies of 20k draws per row vs the exact softmax without the diagonal."""
    logits = torch.tensor([[5.0, 1.0, 0.0, 2.0], [0.5, 3.0, 0.5, -1.0], [2.0, 2.0, 9.0, 0.0], [1.0, -2.0, 0.0, 4.0]])
    exact = torch.softmax(logits.masked_fill(torch.eye(4, dtype=torch.bool), float("-inf")), dim=1)  # [4,4]
    draws = 20000
    g = torch.Generator().manual_seed(1)
    counts = torch.zeros(4, 4)
    for _ in range(draws):
        counts[torch.arange(4), sample_negatives(logits, g, hard=True)] += 1
    freq = counts / draws
    stderr = (exact * (1 - exact) / draws).sqrt()
    assert ((freq - exact).abs() <= 5 * stderr).all()  # each cell within 5 standard errors
    assert counts.diagonal().sum() == 0
    chi2 = ((counts - draws * exact) ** 2 / (draws * exact).clamp(min=1e-12)).masked_fill(exact == 0, 0).sum()
    assert chi2 < 40  # 8 degrees of freedom (4 rows x 2); p < 1e-5 above 40


def test_random_negatives_are_uniform_whatever_the_logits():
    logits = torch.tensor([[0.0, 50.0, 0.0], [50.0, 0.0, 0.0], [0.0, 50.0, 0.0]])
    g = torch.Generator().manual_seed(2)
    counts = torch.zeros(3, 3)
    for _ in range(6000):
        counts[torch.arange(3), sample_negatives(logits, g, hard=False)] += 1
    off = counts[~torch.eye(3, dtype=torch.bool)] / 6000
    assert (off - 0.5).abs().max() < 0.03 and counts.diagonal().sum() == 0


def test_a_batch_of_one_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="micro_batch"):
        sample_negatives(torch.zeros(1, 1), torch.Generator(), hard=True)


@pytest.mark.parametrize("negatives", ["hard", "random"])
def test_loss_equals_hand_computation(registry, negatives):
    objective = build_itm(registry, negatives)
    g = torch.Generator().manual_seed(3)
    i2t, t2i = torch.randn(B, B, generator=g) * 3, torch.randn(B, B, generator=g) * 3
    ctx = fake_context(i2t, t2i, seed=4)
    out = objective(ctx)

    hard = negatives == "hard"
    replay = torch.Generator().manual_seed(4)  # the draws ITM made, in its order
    neg_text = sample_negatives(i2t if hard else torch.zeros(B, B), replay, hard)
    neg_image = sample_negatives(t2i if hard else torch.zeros(B, B), replay, hard)
    view = ctx.view("full")
    v, w = view.image.tokens[:, 0], view.text.tokens[:, 0]  # [B,D]
    pairs = torch.cat([v * w, v * w[neg_text], v[neg_image] * w])  # positives, then both kinds of negative
    scores = pairs @ objective.head.weight.t() + objective.head.bias  # [3B,2]
    log_p = scores.log_softmax(-1)
    expected = -(log_p[:B, 1].sum() + log_p[B:, 0].sum()) / (3 * B)
    torch.testing.assert_close(out.loss, expected)
    labels = torch.tensor([1] * B + [0] * 2 * B)
    torch.testing.assert_close(out.metrics["accuracy"], (scores.argmax(-1) == labels).float().mean())


def test_similarities_come_from_the_named_objective(registry):
    assert build_itm(registry, "hard").similarities_from == "itc"  # the default
    objective = build_itm(registry, "hard", similarities_from="itc_b")
    ctx = fake_context(torch.zeros(B, B), torch.zeros(B, B), seed=0)
    with pytest.raises(RuntimeError, match="'itc_b', which left none this step"):
        objective(ctx)
    ctx.shared["itc_b"] = ctx.shared.pop("itc")
    assert objective(ctx).loss.isfinite()
    assert build_itm(registry, "random", similarities_from=None).similarities_from is None
    with pytest.raises(Exception, match="name it in similarities_from"):
        build_itm(registry, "hard", similarities_from=None)


def test_local_blocks_are_this_ranks_columns():
    i2t = torch.arange(B * 2 * B, dtype=torch.float).reshape(B, 2 * B)  # [B, 2 ranks x B]
    local_i2t, local_t2i = similarities(i2t, -i2t, offset=B).local()
    torch.testing.assert_close(local_i2t, i2t[:, B:])
    torch.testing.assert_close(local_t2i, -i2t[:, B:])


def test_gradients_reach_the_head_and_the_encodings(registry):
    objective = build_itm(registry, "hard")
    ctx = fake_context(torch.randn(B, B), torch.randn(B, B), seed=5)
    view = ctx.view("full")
    view.image.tokens.requires_grad_(True)
    view.text.tokens.requires_grad_(True)
    objective(ctx).loss.backward()
    assert objective.head.weight.grad.abs().sum() > 0
    assert view.image.tokens.grad[:, 0].abs().sum() > 0 and view.text.tokens.grad[:, 0].abs().sum() > 0
