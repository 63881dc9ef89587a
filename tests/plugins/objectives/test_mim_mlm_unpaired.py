"""MIM and MLM on batches mixing paired, image-only and text-only samples (M3AE's unpaired
data): samples without the objective's modality add nothing, and the loss is
mean(paired) + unpaired_weight x mean(unpaired), checked against a per-sample reference."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from framework.registry import BuildContext
from framework.tokens import patchify
from framework.types import MaskingOutput, TextMaskingOutput
from framework_plugins.objectives._unpaired import paired_unpaired_mean

B, N, T, D, VOCAB = 4, 4, 6, 8, 20
HAS_IMAGE = torch.tensor([True, True, False, True])
HAS_TEXT = torch.tensor([True, False, True, True])  # sample 1 image-only, sample 2 text-only


class Ctx:
    """The slice of StepContext that MIM / MLM read: a batch, one view and one decoder output."""

    def __init__(self, batch, image_mask=None, text_mask=None, image=None, text=None) -> None:
        self.batch = batch
        self._view = SimpleNamespace(image_mask=image_mask, text_mask=text_mask)
        self._decoded = SimpleNamespace(image=image, text=text)

    @property
    def batch_size(self) -> int:
        return self.batch["image"].shape[0]

    def view(self, name):
        return self._view

    def decoded(self, decoder, view):
        return self._decoded


def build(registry, config):
    context = BuildContext(registry, {"decoder_widths": {"d": D}, "decoder_streams": {"d": ("image", "text")},
                                      "patch_size": 8, "grid": (2, 2), "vocab_size": VOCAB})
    torch.manual_seed(0)
    return registry.build("objective", {"name": config["type"], "view": "v", "decoder": "d", "head": {"type": "linear"},
                                        **config}, context)


def group_reference(per_sample_sum: torch.Tensor, per_sample_count: torch.Tensor, paired: torch.Tensor,
                    unpaired: torch.Tensor, weight: float) -> torch.Tensor:
    mean = lambda rows: per_sample_sum[rows].sum() / per_sample_count[rows].sum()  # noqa: E731
    return mean(paired) + weight * mean(unpaired)


def image_case():
    torch.manual_seed(1)
    images = torch.randn(B, 3, 16, 16)
    mask = torch.tensor([[1, 0, 1, 0], [0, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 1]], dtype=torch.bool)
    tokens = torch.randn(B, 1 + N, D)
    batch = {"image": images, "has_image": HAS_IMAGE, "has_text": HAS_TEXT}
    return Ctx(batch, image_mask=MaskingOutput(mask), image=tokens), images, mask, tokens


@pytest.mark.parametrize("weight", [0.0, 0.5, 2.0])
def test_mim_scores_only_images_and_weights_image_only_samples(registry, weight):
    mim = build(registry, {"type": "mim", "target": {"type": "pixels", "normalize_per_patch": False},
                           "unpaired_weight": weight})
    ctx, images, mask, tokens = image_case()
    out = mim(ctx)
    per_patch = ((mim.head(tokens[:, 1:]) - patchify(images, 8)) ** 2).mean(-1)  # [B,N]
    scored = mask & HAS_IMAGE[:, None]
    sums, counts = (per_patch * scored).sum(1), scored.sum(1).float()
    expected = group_reference(sums, counts, HAS_IMAGE & HAS_TEXT, HAS_IMAGE & ~HAS_TEXT, weight)
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert out.metrics["patches"].item() == scored.sum().item()  # the text-only sample adds no patch
    assert out.metrics["unpaired_loss"].item() == pytest.approx((sums[1] / counts[1]).item(), rel=1e-5)


def test_mim_on_paired_batches_is_the_plain_masked_mean(registry):
    mim = build(registry, {"type": "mim", "target": {"type": "pixels", "normalize_per_patch": False}})
    ctx, images, mask, tokens = image_case()
    for key in ("has_image", "has_text"):
        del ctx.batch[key]
    per_patch = ((mim.head(tokens[:, 1:]) - patchify(images, 8)) ** 2).mean(-1)
    out = mim(ctx)
    assert out.loss.item() == pytest.approx(per_patch[mask].mean().item(), rel=1e-5)
    assert out.metrics["unpaired_loss"].item() == 0.0  # logged on every step, zero without unpaired samples


def text_case():
    torch.manual_seed(2)
    ids = torch.randint(5, VOCAB, (B, T))
    masked = torch.tensor([[1, 0, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0], [0, 1, 1, 1, 0, 0], [0, 0, 0, 1, 1, 0]],
                          dtype=torch.bool)
    labels = torch.where(masked, ids, torch.full_like(ids, -100))
    tokens = torch.randn(B, T, D)
    batch = {"image": torch.zeros(B, 3, 16, 16), "has_image": HAS_IMAGE, "has_text": HAS_TEXT}
    text_mask = TextMaskingOutput(input_ids=ids, labels=labels, mask=masked)
    return Ctx(batch, text_mask=text_mask, text=tokens), ids, masked, tokens


@pytest.mark.parametrize("weight", [0.0, 0.3])
def test_mlm_scores_only_captions_and_weights_text_only_samples(registry, weight):
    mlm = build(registry, {"type": "mlm", "unpaired_weight": weight})
    ctx, ids, masked, tokens = text_case()
    out = mlm(ctx)
    ce = F.cross_entropy(mlm.head(tokens).transpose(1, 2), ids, reduction="none")  # [B,T]
    scored = masked & HAS_TEXT[:, None]  # sample 1 has no text: its labels do not count
    sums, counts = (ce * scored).sum(1), scored.sum(1).float()
    expected = group_reference(sums, counts, HAS_TEXT & HAS_IMAGE, HAS_TEXT & ~HAS_IMAGE, weight)
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert out.metrics["unpaired_loss"].item() == pytest.approx((sums[2] / counts[2]).item(), rel=1e-5)


def test_mlm_without_any_caption_gives_a_zero_loss_with_a_graph(registry):
    mlm = build(registry, {"type": "mlm"})
    ctx, _, _, _ = text_case()
    ctx.batch["has_text"] = torch.zeros(B, dtype=torch.bool)
    out = mlm(ctx)
    assert out.loss.item() == 0.0
    out.loss.backward()
    assert mlm.head.weight.grad is not None and not mlm.head.weight.grad.any()


def test_group_means_without_unpaired_samples():
    per_item = torch.tensor([[1.0, 3.0], [5.0, 100.0]])  # the 100 is not scored
    weights = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    loss, metrics = paired_unpaired_mean(per_item, weights, torch.tensor([True, True]), 7.0)
    assert loss.item() == pytest.approx(3.0) and metrics["unpaired_loss"].item() == 0.0
    loss, metrics = paired_unpaired_mean(per_item, weights, torch.tensor([True, False]), 0.5)
    assert loss.item() == pytest.approx(2.0 + 0.5 * 5.0) and metrics["unpaired_loss"].item() == pytest.approx(5.0)
