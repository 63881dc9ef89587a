"""ITM's hard negatives follow ALBEF's formula with a real ITC upstream, in both ITC modes.

ALBEF (Li et al. 2021, §3.2 and its ``model_pretrain.py``) draws, for each caption, a
negative image ∝ softmax(sim_t2i) and, for each image, a negative caption ∝
softmax(sim_i2t), over the other samples of the batch. With momentum distillation
``sim_t2i = text_feat @ image_feat_m_all / temp`` (student caption vs the teacher's
images), which is not the transpose of ``sim_i2t`` (student image vs teacher captions).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from framework.registry import BuildContext, Registry
from framework.types import ImageEncoding, TextEncoding
from framework_plugins import objectives

B, D, E, TEMPERATURE, DRAWS = 4, 6, 4, 0.1, 20000


@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    reg.register_plugin(objectives, name="objectives", distribution="framework==test")
    return reg


def view(g: torch.Generator) -> SimpleNamespace:
    image = ImageEncoding(torch.randn(B, 2, D, generator=g), "full")
    text = TextEncoding(torch.randn(B, 5, D, generator=g), torch.ones(B, 5, dtype=torch.long))
    return SimpleNamespace(image=image, text=text)


def embed64(layer: nn.Module, x: torch.Tensor) -> np.ndarray:
    """Normalised projection in float64, computed without the objective's code."""
    y = x.double().numpy() @ layer.weight.detach().double().numpy().T + layer.bias.detach().double().numpy()
    return y / np.linalg.norm(y, axis=1, keepdims=True)


def off_diagonal_softmax(sim: np.ndarray) -> np.ndarray:
    """ALBEF's weights: softmax of each row over the batch, own sample excluded."""
    z = np.where(np.eye(len(sim), dtype=bool), -np.inf, sim)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def chi_square(counts: np.ndarray, p: np.ndarray) -> float:
    expected = DRAWS * p
    keep = expected > 0
    return float((((counts - expected) ** 2)[keep] / expected[keep]).sum())


def run(registry: Registry, momentum: bool) -> tuple[np.ndarray, ...]:
    """ITC then ITM's draws; returns the counts [B,B] of image negatives per caption and of
    caption negatives per image, ALBEF's t2i and i2t weights, and the old rule's weights."""
    torch.manual_seed(0)
    params = {"distill_alpha": 0.4, "queue_size": 6, "teacher_view": "full"} if momentum else {}
    context = BuildContext(registry, {"image_width": D, "text_width": D, "fusion_width": D})
    itc = registry.build("objective", {"type": "itc", "name": "itc", "view": "masked", "embed_dim": E,
                                       "temperature": TEMPERATURE, **params}, context)
    itm = registry.build("objective", {"type": "itm", "name": "itm", "view": "full"}, context)
    g = torch.Generator().manual_seed(1)
    student, teacher = view(g), view(g)
    copies = {}
    for name in ("image_proj", "text_proj"):  # a teacher some EMA steps away from the student
        layer = nn.Linear(D, E)
        with torch.no_grad():
            layer.weight.copy_(getattr(itc, name).weight + torch.randn(E, D, generator=g))
            layer.bias.copy_(getattr(itc, name).bias)
        copies[name] = layer
    ctx = SimpleNamespace(view={"masked": student, "full": student}.__getitem__,
                          teacher_view={"full": teacher}.__getitem__,
                          teacher_module=lambda path: copies[path.rsplit(".", 1)[1]], shared={}, batch_size=B,
                          generator=torch.Generator().manual_seed(2))
    itc(ctx)

    image_s, text_s = embed64(itc.image_proj, student.image.cls), embed64(itc.text_proj, student.text.cls)
    if momentum:
        image_keys = embed64(copies["image_proj"], teacher.image.cls)
        text_keys = embed64(copies["text_proj"], teacher.text.cls)
    else:
        image_keys, text_keys = image_s, text_s
    weights_t2i = off_diagonal_softmax(text_s @ image_keys.T / TEMPERATURE)  # [B,B] caption -> images
    sim_i2t = image_s @ text_keys.T / TEMPERATURE
    weights_i2t = off_diagonal_softmax(sim_i2t)  # [B,B] image -> captions

    image_counts, text_counts = np.zeros((B, B)), np.zeros((B, B))
    rows = np.arange(B)
    for _ in range(DRAWS):
        neg_text, neg_image = itm.draw_negatives(ctx, torch.device("cpu"))
        text_counts[rows, neg_text.numpy()] += 1
        image_counts[rows, neg_image.numpy()] += 1
    return image_counts, text_counts, weights_t2i, weights_i2t, off_diagonal_softmax(sim_i2t.T)


@pytest.mark.parametrize("momentum", [False, True], ids=["plain", "momentum"])
def test_negatives_follow_albef_softmax_of_each_direction(registry, momentum):
    image_counts, text_counts, weights_t2i, weights_i2t, transposed = run(registry, momentum)
    assert np.diag(image_counts).sum() == 0 and np.diag(text_counts).sum() == 0
    # 4 rows x 3 free cells = 12 degrees of freedom: p < 1e-5 above 45
    assert chi_square(image_counts, weights_t2i) < 45, (image_counts / DRAWS, weights_t2i)
    assert chi_square(text_counts, weights_i2t) < 45, (text_counts / DRAWS, weights_i2t)
    stderr = np.sqrt(weights_t2i * (1 - weights_t2i) / DRAWS)
    assert (np.abs(image_counts / DRAWS - weights_t2i) <= 5 * stderr + 1e-12).all()
    if momentum:
        # The old rule (the transpose of sim_i2t) is a different distribution here; the test tells them apart.
        assert chi_square(image_counts, transposed) > 1000
    else:
        np.testing.assert_allclose(weights_t2i, transposed, atol=1e-12)  # plain ITC: the same matrix
