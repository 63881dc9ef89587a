"""Plain-PyTorch M3AE step (Geng et al. 2022) at a recipe's sizes, for ``framework bench --compare-reference``.

One pre-norm transformer (timm ``Block``, SDPA) over [CLS] + the visible patches + the
kept caption tokens, one shared random permutation per batch for each modality (as the
recipe's ``shared_across_batch``), a joint pre-norm decoder over the full grid and the
full caption with learned mask tokens, MSE on masked patches and cross-entropy on dropped
caption tokens (weight from the recipe).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Block
from torch import nn

from benchmarks.reference.common import PlainStep, patchify
from framework_plugins.fusion.unified import SIZES


def matches(recipe: Mapping[str, Any]) -> bool:
    model = recipe["model"]
    return (model.get("fusion", {}).get("type") == "unified"
            and model.get("image_encoder", {}).get("type") == "patch_embed")

class M3AE(nn.Module):
    def __init__(self, recipe: Mapping[str, Any], vocab_size: int) -> None:
        super().__init__()
        model, data = recipe["model"], recipe["data"]
        fusion, decoder = model["fusion"], next(iter(model["decoders"].values()))
        preset = SIZES[fusion["size"]]
        width, depth, heads = fusion["width"] or preset[0], fusion["depth"] or preset[1], fusion["heads"] or preset[2]
        self.patch = model["image_encoder"]["patch_size"]
        self.patches = (data["image_size"] // self.patch) ** 2
        self.text_len = data["max_text_len"]
        view = next(iter(recipe["views"].values()))
        self.keep_image = int(self.patches * (1 - view["image"]["ratio"]))
        self.keep_text = max(1, int(self.text_len * (1 - view["text"]["ratio"])))
        self.text_weight = next(o["weight"] for o in recipe["objectives"] if o["type"] == "mlm")
        dw = decoder["width"]
        self.patch_in = nn.Linear(3 * self.patch ** 2, width)
        self.embed = nn.Embedding(vocab_size, width)
        self.image_pos = nn.Parameter(torch.zeros(1, self.patches, width))
        self.text_pos = nn.Parameter(torch.zeros(1, self.text_len, width))
        self.cls = nn.Parameter(torch.zeros(1, 1, width))
        self.types = nn.Parameter(torch.zeros(2, width))
        self.blocks = nn.ModuleList(Block(width, heads, fusion["mlp_ratio"], qkv_bias=True) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.dec_in = nn.Linear(width, dw)
        self.dec_mask = nn.Parameter(torch.zeros(2, dw))
        self.dec_pos = nn.Parameter(torch.zeros(1, 1 + self.patches + self.text_len, dw))
        self.dec_blocks = nn.ModuleList(Block(dw, decoder["heads"], decoder["mlp_ratio"], qkv_bias=True)
                                        for _ in range(decoder["depth"]))
        self.dec_norm = nn.LayerNorm(dw)
        self.pixel_head = nn.Linear(dw, 3 * self.patch ** 2)
        self.token_head = nn.Linear(dw, vocab_size)

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        image, ids, valid = batch["image"], batch["input_ids"], batch["attention_mask"].bool()
        b, device = image.shape[0], image.device
        pixels = patchify(image, self.patch)  # [B,N,3pp]
        image_order = torch.randperm(self.patches, device=device)  # one permutation per batch
        text_order = torch.randperm(self.text_len, device=device)
        keep_i, drop_i = image_order[: self.keep_image], image_order[self.keep_image:]
        keep_t, drop_t = text_order[: self.keep_text], text_order[self.keep_text:]
        v = (self.patch_in(pixels) + self.image_pos + self.types[0])[:, keep_i]  # [B,Ki,D]
        w = (self.embed(ids) + self.text_pos + self.types[1])[:, keep_t]  # [B,Kt,D]
        x = torch.cat([self.cls.expand(b, -1, -1), v, w], dim=1)  # [B,1+Ki+Kt,D]
        attend = torch.cat([valid.new_ones(b, 1 + self.keep_image), valid[:, keep_t]], dim=1)[:, None, None, :]
        for block in self.blocks:
            x = block(x, attn_mask=attend)
        x = self.dec_in(self.norm(x))  # [B,1+Ki+Kt,W]
        full = torch.cat([x[:, :1], self.dec_mask[0].expand(b, self.patches, -1),
                          self.dec_mask[1].expand(b, self.text_len, -1)], dim=1).to(x.dtype)  # [B,1+N+T,W]
        full[:, 1 + keep_i] = x[:, 1: 1 + self.keep_image]
        full[:, 1 + self.patches + keep_t] = x[:, 1 + self.keep_image:]
        y = full + self.dec_pos
        attend = torch.cat([valid.new_ones(b, 1 + self.patches), valid], dim=1)[:, None, None, :]
        for block in self.dec_blocks:
            y = block(y, attn_mask=attend)
        y = self.dec_norm(y)
        pred = self.pixel_head(y[:, 1 + drop_i])  # [B,Mi,3pp]
        image_loss = F.mse_loss(pred.float(), pixels[:, drop_i].float())
        logits = self.token_head(y[:, 1 + self.patches + drop_t])  # [B,Mt,V]
        labels = ids[:, drop_t].masked_fill(~valid[:, drop_t], -100)
        text_loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten())
        return image_loss + self.text_weight * text_loss

def build(recipe: Mapping[str, Any], *, vocab_size: int, pad_id: int, mask_id: int, device: torch.device) -> PlainStep:
    """The reference step for ``recipe`` on ``device``; M3AE drops tokens rather than
    masking them and reads padding from the attention mask, so the ids go unused."""
    return PlainStep(M3AE(recipe, vocab_size), recipe, device)

