"""train.activation_checkpointing: the same losses and gradients with fewer saved activations."""

from __future__ import annotations

import json

import pytest
import torch

from framework.activation_checkpointing import apply_activation_checkpointing, transformer_blocks
from framework.build import build_run
from framework.registry import default_registry
from framework.step import mask_generator
from framework.validation import RecipeValidationError
from tests.helpers import example_batch, tiny_recipe


def _step(setting, batch, tokenizer):
    """Build the tiny recipe (ViT, BERT, cross-attention fusion, transformer decoder; dropout
    on) with ``setting``, run one training forward + backward; loss, grads, saved bytes."""
    recipe = tiny_recipe(f"train.activation_checkpointing={json.dumps(setting)}")
    model = build_run(recipe, default_registry(), tokenizer=tokenizer, read_data=False).model
    model.train()
    saved = []

    def pack(tensor):
        saved.append(tensor.numel() * tensor.element_size())
        return tensor

    torch.manual_seed(0)  # dropout
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = model(batch, generator=mask_generator(0, 3, 0))
    out.loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return model, out, grads, sum(saved)


@pytest.fixture(scope="module")
def data():
    recipe = tiny_recipe()
    return example_batch(recipe, default_registry(), 8)


def test_checkpointed_blocks_give_the_same_losses_and_gradients_and_save_less(data):
    batch, tokenizer = data
    plain, plain_out, plain_grads, plain_saved = _step(False, batch, tokenizer)
    ckpt, ckpt_out, ckpt_grads, ckpt_saved = _step(True, batch, tokenizer)
    for slot in ("image_encoder", "text_encoder", "fusion", "decoders"):  # ViT, BERT, BertCrossLayer, timm Block
        blocks = transformer_blocks(getattr(ckpt, slot))
        assert blocks and all(b.forward.__func__ is not type(b).forward for _, b in blocks), slot
        assert all(b.forward.__func__ is type(b).forward for _, b in transformer_blocks(getattr(plain, slot)))
    torch.testing.assert_close(ckpt_out.loss, plain_out.loss, rtol=0, atol=0)
    for name in plain_out.losses:
        torch.testing.assert_close(ckpt_out.losses[name], plain_out.losses[name], rtol=0, atol=0)
    assert ckpt_grads.keys() == plain_grads.keys()
    for name, grad in plain_grads.items():
        torch.testing.assert_close(ckpt_grads[name], grad, rtol=0, atol=0, msg=lambda m, name=name: f"{name}: {m}")
    assert list(ckpt.state_dict()) == list(plain.state_dict())  # checkpoints and exports unchanged
    assert ckpt_saved < 0.6 * plain_saved, (ckpt_saved, plain_saved)  # activations kept for backward fall


def test_a_list_checkpoints_only_the_slots_it_names(data):
    batch, tokenizer = data
    _, _, _, plain_saved = _step(False, batch, tokenizer)
    model, _, _, fusion_saved = _step(["fusion", "decoders.pixels"], batch, tokenizer)
    assert plain_saved > fusion_saved
    wrapped = apply_activation_checkpointing(model, ["fusion"])  # again: already wrapped blocks stay as they are
    assert wrapped and all(path.startswith("fusion.") for path in wrapped)
    assert all(type(b).forward is b.forward.__func__ for _, b in transformer_blocks(model.text_encoder))


def test_unknown_or_blockless_slots_are_refused_at_their_path():
    with pytest.raises(RecipeValidationError) as info:
        tiny_recipe('train.activation_checkpointing=["fusion", "decoders.nope"]')
    assert [issue.path for issue in info.value.issues] == ["$.train.activation_checkpointing[1]"]
    assert "no decoder 'nope'" in str(info.value)


def test_eval_and_no_grad_run_the_plain_forward(data):
    batch, tokenizer = data
    model = build_run(tiny_recipe("train.activation_checkpointing=true"), default_registry(), tokenizer=tokenizer,
                      read_data=False).model
    calls = []
    original = torch.utils.checkpoint.checkpoint

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    import framework.activation_checkpointing as module

    module.checkpoint = counting
    try:
        model.eval()
        with torch.no_grad():
            model(batch, generator=mask_generator(0, 3, 0))
        assert not calls
        model.train()
        model(batch, generator=mask_generator(0, 3, 0))
        assert calls
    finally:
        module.checkpoint = original
