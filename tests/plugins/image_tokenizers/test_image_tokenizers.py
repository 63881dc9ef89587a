"""Image tokenizers: the shared protocol for every registered one, VQ quantisation against a
brute-force reference, the EMA codebook update, the dVAE's relaxation and temperature,
codebook usage numbers and the reconstruction picture."""

from __future__ import annotations

import math

import pytest
import torch
from PIL import Image

from framework.registry import BuildContext, RegistryError
from framework_plugins.image_tokenizers._codes import codebook_usage
from framework_plugins.image_tokenizers._networks import stages
from framework_plugins.image_tokenizers.dvae import DVAETokenizer
from framework_plugins.image_tokenizers.pictures import draw_reconstructions
from framework_plugins.image_tokenizers.vq import VQTokenizer

SMALL = {"patch_size": 8, "channels": 16, "num_codes": 32}


def build(registry, name: str, **params) -> torch.nn.Module:
    torch.manual_seed(0)
    return registry.build("image_tokenizer", {"type": name, **SMALL, **params},
                          BuildContext(registry, {"image_size": 32}))


def vq(**params) -> VQTokenizer:
    defaults = dict(patch_size=8, channels=16, res_blocks=1, num_codes=32, code_dim=8, beta=0.25,
                    codebook_update="loss", ema_decay=0.9, l2_normalize=False)
    torch.manual_seed(0)
    return VQTokenizer(**{**defaults, **params})


def tokenizer_names(registry) -> list[str]:
    return registry.names("image_tokenizer")


@pytest.mark.parametrize("name", ["vq", "dvae"])
def test_protocol_shapes_and_gradients(registry, name):
    assert name in tokenizer_names(registry)
    tok = build(registry, name)
    images = torch.randn(2, 3, 32, 32)
    codes = tok.encode(images)
    assert codes.shape == (2, 4, 4) and codes.dtype == torch.long
    assert 0 <= int(codes.min()) and int(codes.max()) < tok.num_codes == 32
    assert tok.decode(codes).shape == images.shape
    out = tok(images, generator=torch.Generator().manual_seed(0))
    assert out.reconstruction.shape == images.shape and out.codes.shape == (2, 4, 4)
    loss = sum(out.losses.values())
    assert torch.isfinite(loss)
    loss.backward()
    encoder_grads = [p.grad for p in tok.encoder.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in encoder_grads)
    assert any(g.abs().sum() > 0 for g in encoder_grads)


def test_patch_size_must_be_a_power_of_two_and_known(registry):
    with pytest.raises(ValueError, match="power of two"):
        stages(12)
    with pytest.raises(ValueError, match="patch_size"):
        registry.build("image_tokenizer", {"type": "vq", "patch_size": None},
                       BuildContext(registry, {"image_size": 32}))
    tok = registry.build("image_tokenizer", {"type": "vq", "patch_size": None, "channels": 8},
                         BuildContext(registry, {"patch_size": 4}))
    assert tok.patch_size == 4


def test_unknown_params_are_refused(registry):
    with pytest.raises(RegistryError):
        registry.build("image_tokenizer", {"type": "vq", "codes": 3}, BuildContext(registry, {}))


def test_vq_codes_are_the_nearest_codebook_vectors():
    tok = vq()
    images = torch.randn(3, 3, 32, 32)
    z = tok.encoder(images).permute(0, 2, 3, 1).reshape(-1, 8)  # [M,C]
    reference = torch.cdist(z, tok.codebook).argmin(dim=1).view(3, 4, 4)
    assert torch.equal(tok.encode(images), reference)


def test_vq_straight_through_and_loss_terms():
    tok = vq()
    images = torch.randn(2, 3, 32, 32)
    out = tok(images)
    z = tok.encoder(images).permute(0, 2, 3, 1)
    e = tok.codebook[out.codes]
    assert out.losses["codebook"].item() == pytest.approx(((e - z) ** 2).mean().item(), rel=1e-5)
    assert out.losses["commitment"].item() == pytest.approx(0.25 * ((e - z) ** 2).mean().item(), rel=1e-5)
    out.losses["reconstruction"].backward()
    assert tok.encoder.net[0].weight.grad.abs().sum() > 0  # passed straight through the argmin
    assert tok.codebook.grad is None or tok.codebook.grad.abs().sum() == 0  # only the codebook loss moves codes


def test_vq_l2_normalize_looks_up_on_the_unit_sphere():
    tok = vq(l2_normalize=True)
    images = torch.randn(2, 3, 32, 32)
    z = torch.nn.functional.normalize(tok.encoder(images).permute(0, 2, 3, 1), dim=-1).reshape(-1, 8)
    book = torch.nn.functional.normalize(tok.codebook, dim=-1)
    assert torch.equal(tok.encode(images).flatten(), (z @ book.t()).argmax(dim=1))  # nearest = most similar


def test_vq_ema_with_no_decay_moves_used_codes_to_their_cluster_means():
    tok = vq(codebook_update="ema", ema_decay=1e-9)
    assert not any("codebook" in n for n, _ in tok.named_parameters())
    images = torch.randn(4, 3, 32, 32)
    z = tok.encoder(images).permute(0, 2, 3, 1).reshape(-1, 8).detach()
    codes = tok.encode(images).flatten()
    tok.train()
    tok(images)
    for k in codes.unique():
        assert torch.allclose(tok.codebook[k], z[codes == k].mean(0), atol=1e-4)


def test_dvae_temperature_anneals_exponentially():
    tok = DVAETokenizer(patch_size=8, channels=8, res_blocks=0, num_codes=16, code_dim=8, temperature=1.0,
                        min_temperature=1 / 16, anneal_steps=4, kl_weight=0.0, hard=False)
    taus = []
    tok.train()
    for _ in range(6):
        taus.append(float(tok.temperature()))
        tok(torch.randn(1, 3, 16, 16))
    assert taus == pytest.approx([1.0, 0.5, 0.25, 0.125, 0.0625, 0.0625])
    with pytest.raises(ValueError, match="anneal downwards"):
        DVAETokenizer(patch_size=8, channels=8, res_blocks=0, num_codes=16, code_dim=8, temperature=0.1,
                      min_temperature=1.0, anneal_steps=4, kl_weight=0.0, hard=False)


def test_dvae_kl_is_zero_for_uniform_logits_and_log_k_for_one_hot():
    tok = DVAETokenizer(patch_size=8, channels=8, res_blocks=0, num_codes=16, code_dim=8, temperature=1.0,
                        min_temperature=1.0, anneal_steps=1, kl_weight=1.0, hard=True)
    last = tok.encoder.net[-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    assert tok(torch.randn(2, 3, 16, 16)).losses["kl"].item() == pytest.approx(0.0, abs=1e-6)
    with torch.no_grad():
        last.bias[3] = 100.0  # every cell certain of code 3
    out = tok(torch.randn(2, 3, 16, 16))
    assert out.losses["kl"].item() == pytest.approx(math.log(16), rel=1e-4)
    assert (out.codes == 3).all() and (tok.encode(torch.randn(1, 3, 16, 16)) == 3).all()


def test_dvae_sample_is_reproducible_from_the_generator():
    tok = DVAETokenizer(patch_size=8, channels=8, res_blocks=0, num_codes=16, code_dim=8, temperature=1.0,
                        min_temperature=1.0, anneal_steps=1, kl_weight=0.0, hard=False).eval()
    images = torch.randn(2, 3, 16, 16)
    a = tok(images, generator=torch.Generator().manual_seed(3)).reconstruction
    b = tok(images, generator=torch.Generator().manual_seed(3)).reconstruction
    c = tok(images, generator=torch.Generator().manual_seed(4)).reconstruction
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_codebook_usage_numbers():
    used, perplexity = codebook_usage(torch.tensor([[0, 0], [1, 1]]), 8)
    assert int(used) == 2 and perplexity.item() == pytest.approx(2.0)
    used, perplexity = codebook_usage(torch.arange(8), 8)
    assert int(used) == 8 and perplexity.item() == pytest.approx(8.0)
    used, perplexity = codebook_usage(torch.zeros(5, dtype=torch.long), 8)
    assert int(used) == 1 and perplexity.item() == pytest.approx(1.0)


def test_reconstruction_picture(tmp_path):
    tok = vq().train()
    path = draw_reconstructions(tok, torch.randn(2, 3, 32, 32), [0.5] * 3, [0.25] * 3, tmp_path / "pic" / "recon.png")
    assert Image.open(path).size == (2 * (96 + 4) + 4, 2 * (96 + 4) + 4)
    assert tok.training  # mode restored


def test_training_objective_skips_samples_without_images(registry):
    context = BuildContext(registry, {"image_size": 32})
    objective = registry.build("objective", {"type": "tokenizer_training", "name": "tok",
                                             "tokenizer": {"type": "vq", **SMALL}}, context)

    class Ctx:
        generator = torch.Generator().manual_seed(0)

        def __init__(self, has_image):
            self.batch = {"image": torch.randn(3, 3, 32, 32), "has_image": torch.tensor(has_image)}

    objective.eval()  # no EMA update between the two calls
    ctx = Ctx([True, False, True])
    some = objective(ctx)
    reference = sum(objective.tokenizer(ctx.batch["image"][[0, 2]]).losses.values())
    assert some.loss.item() == pytest.approx(reference.item(), rel=1e-6)
    assert some.metrics["codes_used"] <= 2 * 16  # two images of 4x4 codes
    none = objective(Ctx([False, False, False]))
    assert none.loss.item() == 0.0 and set(none.metrics) == set(some.metrics)
    none.loss.backward()
    assert all(p.grad is not None for p in objective.parameters() if p.requires_grad)


def test_vq_ema_ignores_zero_weight_samples_and_an_all_zero_batch_moves_nothing():
    weighted, plain = vq(codebook_update="ema"), vq(codebook_update="ema")  # same seed, same weights
    images = torch.randn(3, 3, 16, 16)
    weighted(images, weights=torch.tensor([1.0, 0.0, 1.0]))
    plain(images[[0, 2]])
    torch.testing.assert_close(weighted.codebook, plain.codebook)
    before = {k: v.clone() for k, v in weighted.state_dict().items()}
    weighted(images, weights=torch.zeros(3))
    for key in ("codebook", "cluster_size", "code_sum"):
        assert torch.equal(weighted.state_dict()[key], before[key]), key
