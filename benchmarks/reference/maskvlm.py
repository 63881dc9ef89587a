"""Plain-PyTorch MaskVLM step (Kwon et al. 2023) at a recipe's sizes, for ``framework bench --compare-reference``.

timm ViT with a mask token at the input, a transformers RoBERTa (SDPA), two 3-block
post-norm cross-modality streams and a 3-block cross-attention image decoder (SDPA).
The same passes as the recipe: ITC and ITM (hard negatives, 3B fused pairs) on the
unmasked pair, MIM (L1 on 60% masked patches, full caption) and MLM (30% [MASK], full
image); each view encodes both modalities. Masks are drawn on the device; MLM scores a
fixed number of positions per caption so no step waits on the host.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer
from torch import nn
from transformers import RobertaConfig, RobertaModel

from benchmarks.reference.common import (
    PlainStep,
    PostNormCrossBlock,
    patchify,
    random_keep,
    take,
)


def matches(recipe: Mapping[str, Any]) -> bool:
    return recipe["model"].get("fusion", {}).get("type") == "two_stream"


def _objective(recipe: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    return next(o for o in recipe["objectives"] if o["type"] == kind)


class MaskVLM(nn.Module):
    def __init__(self, recipe: Mapping[str, Any], vocab_size: int, pad_id: int, mask_id: int) -> None:
        super().__init__()
        model, data, views = recipe["model"], recipe["data"], recipe["views"]
        vit, text, fusion = model["image_encoder"], model["text_encoder"], model["fusion"]
        decoder = next(iter(model["decoders"].values()))
        width, self.patch, self.pad_id, self.mask_id = vit["width"], vit["patch_size"], pad_id, mask_id
        self.vit = VisionTransformer(img_size=data["image_size"], patch_size=self.patch, embed_dim=width,
                                     depth=vit["depth"], num_heads=vit["heads"], num_classes=0, global_pool="")
        self.mask_token = nn.Parameter(torch.zeros(width))
        config = RobertaConfig(vocab_size=vocab_size, hidden_size=text["width"], num_hidden_layers=text["depth"],
                               num_attention_heads=text["heads"], intermediate_size=text["intermediate"],
                               max_position_embeddings=data["max_text_len"] + pad_id + 2, pad_token_id=pad_id,
                               hidden_dropout_prob=text["dropout"], attention_probs_dropout_prob=text["dropout"])
        config._attn_implementation = "sdpa"
        self.text = RobertaModel(config, add_pooling_layer=False)

        def stack(depth: int, heads: int, dropout: float) -> nn.ModuleList:
            return nn.ModuleList(PostNormCrossBlock(width, heads, 4 * width, dropout, 1e-5) for _ in range(depth))

        self.image_stream = stack(fusion["depth"], fusion["heads"], fusion["dropout"])
        self.text_stream = stack(fusion["depth"], fusion["heads"], fusion["dropout"])
        self.decoder = stack(decoder["depth"], decoder["heads"], decoder["dropout"])
        embed = _objective(recipe, "itc")["embed_dim"]
        self.image_proj, self.text_proj = nn.Linear(width, embed), nn.Linear(width, embed)
        self.log_temp = nn.Parameter(torch.tensor(0.07).log())
        self.itm_head = nn.Linear(width, 2)
        self.pixel_head = nn.Linear(width, 3 * self.patch ** 2)
        self.token_head = nn.Linear(width, vocab_size)
        self.image_ratio = views[_objective(recipe, "mim")["view"]]["image"]["ratio"]
        self.text_ratio = views[_objective(recipe, "mlm")["view"]]["text"]["ratio"]

    def encode_image(self, image: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.vit.patch_embed(image)  # [B,N,D]
        if mask is not None:
            x = torch.where(mask[..., None], self.mask_token.to(x.dtype), x)
        return self.vit.norm(self.vit.blocks(self.vit._pos_embed(x)))  # [B,1+N,D]

    def encode_text(self, ids: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        # a ready [B,1,1,T] mask: from a 2-D one transformers asks the host whether any token is padding
        return self.text(input_ids=ids, attention_mask=valid.bool()[:, None, None, :]).last_hidden_state  # [B,T,D]

    def fuse(self, v: torch.Tensor, w: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        text_mask = valid.bool()[:, None, None, :]  # [B,1,1,T]
        image_out, text_out = v, w
        for block in self.image_stream:
            image_out = block(image_out, None, w, text_mask)
        for block in self.text_stream:
            text_out = block(text_out, text_mask, v, None)
        return image_out, text_out

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        image, ids, valid = batch["image"], batch["input_ids"], batch["attention_mask"]
        b, device = image.shape[0], image.device
        # ITC + ITM on the unmasked pair
        v, w = self.encode_image(image), self.encode_text(ids, valid)
        zi, zt = F.normalize(self.image_proj(v[:, 0]), dim=-1), F.normalize(self.text_proj(w[:, 0]), dim=-1)
        sim = zi @ zt.t() / self.log_temp.exp()  # [B,B]
        target = torch.arange(b, device=device)
        itc = (F.cross_entropy(sim.float(), target) + F.cross_entropy(sim.t().float(), target)) / 2
        with torch.no_grad():
            scores = sim.float().masked_fill(torch.eye(b, dtype=torch.bool, device=device), float("-inf"))
            gumbel = -torch.log(-torch.log(torch.rand(2, b, b, device=device).clamp(1e-9, 1 - 1e-9)))
            neg_text, neg_image = (scores + gumbel[0]).argmax(1), (scores.t() + gumbel[1]).argmax(1)
        pair_v = torch.cat([v, v, v[neg_image]])
        pair_w, pair_valid = torch.cat([w, w[neg_text], w]), torch.cat([valid, valid[neg_text], valid])
        fused_v, fused_w = self.fuse(pair_v, pair_w, pair_valid)
        labels = torch.cat([torch.ones(b), torch.zeros(2 * b)]).long().to(device)
        itm = F.cross_entropy(self.itm_head(fused_v[:, 0] * fused_w[:, 0]).float(), labels)
        # MIM: masked image, full caption; decoder queries the fused image stream, memory = text encoder
        n = v.shape[1] - 1
        masked = torch.rand(b, n, device=device).argsort(1).argsort(1) < int(n * self.image_ratio)  # [B,N]
        w_full = self.encode_text(ids, valid)
        fused_v, _ = self.fuse(self.encode_image(image, masked), w_full, valid)
        x = fused_v
        for block in self.decoder:
            x = block(x, None, w_full, valid.bool()[:, None, None, :])
        error = (self.pixel_head(x[:, 1:]).float() - patchify(image, self.patch)).abs().mean(-1)  # [B,N]
        mim = (error * masked).sum() / masked.sum()
        # MLM: 30% of each caption's real tokens to [MASK], full image
        length = ids.shape[1]
        count = max(1, int(length * self.text_ratio))
        maskable = valid.bool() & ~batch["special_tokens_mask"].bool()  # [B,T]
        picked, _ = random_keep(b, length, count, device)  # [B,count] positions
        chosen = torch.gather(maskable, 1, picked)  # [B,count]: real, non-special positions
        masked_ids = ids.scatter(1, picked, torch.where(chosen, self.mask_id, torch.gather(ids, 1, picked)))
        _, fused_w = self.fuse(self.encode_image(image), self.encode_text(masked_ids, valid), valid)
        logits = self.token_head(take(fused_w, picked))  # [B,count,V]
        mlm = F.cross_entropy(logits.flatten(0, 1).float(),
                              torch.gather(ids, 1, picked).masked_fill(~chosen, -100).flatten())
        return itc + itm + mim + mlm


def build(recipe: Mapping[str, Any], *, vocab_size: int, pad_id: int, mask_id: int, device: torch.device) -> PlainStep:
    """The reference step for ``recipe`` on ``device`` (ids: the tokenizer's [PAD] and [MASK])."""
    return PlainStep(MaskVLM(recipe, vocab_size, pad_id, mask_id), recipe, device)
