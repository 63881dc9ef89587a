"""Analytic FLOPs of ViT / BERT encoders against torch.utils.flop_counter on tiny models."""

from __future__ import annotations

import pytest
import torch
from timm.models.vision_transformer import VisionTransformer
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode
from transformers import BertConfig, BertModel

from framework.bench import analytic
from framework.bench.peaks import mfu, peak_tflops


def counted(fn) -> int:
    """FLOPs of ``fn`` with SDPA on its math backend: the counter has no formula for the
    CPU's fused attention kernel, while the math backend's matrix products are counted."""
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def tiny_vit() -> VisionTransformer:
    return VisionTransformer(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=4, num_classes=0,
                             global_pool="").eval()


def test_vit_matches_flop_counter() -> None:
    vit, images = tiny_vit(), torch.randn(3, 3, 32, 32)
    expected = 3 * analytic.vit_flops(image_size=32, patch_size=8, width=32, depth=2)
    with torch.no_grad():
        assert counted(lambda: vit(images)) == expected


def test_visible_only_vit_counts_kept_tokens() -> None:
    """MAE-style: blocks over [CLS] + 4 of the 16 patches; the patch embedding sees all 16."""
    vit, images = tiny_vit(), torch.randn(2, 3, 32, 32)
    keep = torch.arange(4)

    def visible_forward() -> torch.Tensor:
        x = vit._pos_embed(vit.patch_embed(images))  # [B,1+N,D]
        return vit.blocks(torch.cat([x[:, :1], x[:, 1 + keep]], dim=1))

    expected = 2 * analytic.vit_flops(image_size=32, patch_size=8, width=32, depth=2, visible=4)
    with torch.no_grad():
        assert counted(visible_forward) == expected
    assert expected < analytic.vit_flops(image_size=32, patch_size=8, width=32, depth=2) * 2


def test_bert_matches_flop_counter() -> None:
    config = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=48, max_position_embeddings=16)
    config._attn_implementation = "sdpa"
    bert, ids = BertModel(config).eval(), torch.randint(0, 50, (2, 12))
    expected = 2 * analytic.bert_flops(seq_len=12, width=32, depth=2, intermediate=48, pooler=True)
    with torch.no_grad():
        assert counted(lambda: bert(input_ids=ids)) == expected


def test_cross_attention_term() -> None:
    """q/out projections on the queries, k/v on the keys, 4*n*m*d for the attention itself."""
    n, m, d, dk = 5, 7, 16, 8
    q, kv, out = torch.nn.Linear(d, d), torch.nn.Linear(dk, 2 * d), torch.nn.Linear(d, d)
    x, ctx = torch.randn(1, n, d), torch.randn(1, m, dk)

    def cross() -> torch.Tensor:
        k, v = kv(ctx).chunk(2, dim=-1)
        a = torch.nn.functional.scaled_dot_product_attention(q(x)[:, None], k[:, None], v[:, None])
        return out(a[:, 0])

    with torch.no_grad():
        assert counted(cross) == analytic.cross_attention_flops(n, m, d, dk)


def test_training_step_is_three_forwards() -> None:
    """Backward of a linear layer costs two products (input and weight gradients)."""
    layer, x = torch.nn.Linear(16, 24), torch.randn(4, 16, requires_grad=True)
    assert counted(lambda: layer(x).sum().backward()) == 3 * analytic.linear_flops(4, 16, 24)


@pytest.mark.parametrize("name,peak", [("NVIDIA H200", 989.0), ("NVIDIA H100 80GB HBM3", 989.0),
                                       ("NVIDIA H100 PCIe", 756.0), ("NVIDIA A100-SXM4-80GB", 312.0), ("cpu", None)])
def test_peaks(name: str, peak: float | None) -> None:
    assert peak_tflops(name) == peak


def test_mfu() -> None:
    assert mfu(1e12, 100.0, 400.0) == pytest.approx(0.25)
    assert mfu(1e12, 100.0, None) is None
