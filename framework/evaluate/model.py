"""A model ready for evaluation: rebuilt from a run directory, a recipe, or a live trainer.

A run directory holds ``recipe.json``, its tokenizer and checkpoints; the model is
assembled from the recipe with ``load_pretrained=False`` and the configs the model file
recorded of any pretrained files, then the weights of ``checkpoints/latest`` are loaded
from its ``model.safetensors`` (:mod:`framework.model_file`; whatever the ZeRO stage, no
pickle). A run is self-contained: the pretrained files it was initialised from are not
read. A recipe file without a run gives the untrained model, the baseline every trained
score is read against.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

import torch
from torch import nn
from transformers import PreTrainedTokenizerFast

from framework import data as data_lib
from framework.build import build_run
from framework.checkpoint import latest_checkpoint
from framework.data.build import data_context
from framework.hf import load_tokenizer
from framework.model import RecipeModel
from framework.model_file import ModelFileError, read_model_file
from framework.objective import objective_name
from framework.registry import Registry
from framework.rundir import RECIPE_FILE, RunDir
from framework.types import ImageEncoding, TextEncoding


class EvalModelError(Exception):
    """A run directory cannot be turned into a model, or a recipe lacks what a task needs."""


@dataclass
class EvalModel:
    """A RecipeModel in eval mode with everything evaluators need to feed it.

    ``step`` is the training step of the loaded weights (``None``: untrained);
    ``run_dir`` is ``None`` for a model built from a recipe file alone.
    """

    recipe: Mapping[str, Any]
    registry: Registry
    model: RecipeModel
    tokenizer: PreTrainedTokenizerFast
    device: torch.device
    run_dir: Optional[Path] = None
    step: Optional[int] = None

    # --- building ------------------------------------------------------------------------

    @classmethod
    def from_recipe(cls, recipe: Mapping[str, Any], registry: Registry, *, device: str | torch.device = "cpu",
                    tokenizer: Optional[PreTrainedTokenizerFast] = None,
                    pretrained_configs: Optional[Mapping[str, Any]] = None) -> "EvalModel":
        """The untrained model of a validated recipe (initialised as training would be).

        With ``pretrained_configs`` (a model file's record) no pretrained weights are read:
        the caller loads the model file."""
        built = build_run(recipe, registry, tokenizer=tokenizer, read_data=tokenizer is None,
                          load_pretrained=pretrained_configs is None, pretrained_configs=pretrained_configs)
        return cls(recipe, registry, built.model.to(device).eval(), built.tokenizer, torch.device(device))

    @classmethod
    def from_run(cls, run_dir: str | Path, registry: Registry, *, device: str | torch.device = "cpu") -> "EvalModel":
        """The model of a run directory with the weights of its latest checkpoint."""
        run_dir = Path(run_dir)
        recipe_path = run_dir / RECIPE_FILE
        if not recipe_path.is_file():
            raise EvalModelError(f"{run_dir} is not a run directory (no {RECIPE_FILE}); pass a run written by "
                                 "`framework run`, or a recipe file to evaluate the untrained model")
        recipe = json.loads(recipe_path.read_text())
        checkpoint = latest_checkpoint(RunDir(run_dir).checkpoints)
        if checkpoint is None:
            raise EvalModelError(f"{run_dir} has no checkpoint yet (no checkpoints/latest); train it longer or "
                                 "evaluate its recipe.json to get the untrained model")
        try:
            stored = read_model_file(checkpoint)
        except ModelFileError as exc:
            raise EvalModelError(f"{exc}; was this checkpoint written before model files existed? Resume the run "
                                 "for one step to write one") from exc
        tokenizer = load_run_tokenizer(run_dir)
        out = cls.from_recipe(recipe, registry, device=device, tokenizer=tokenizer,
                              pretrained_configs=stored.pretrained_configs)
        missing, unexpected = out.model.load_state_dict(stored.state, strict=False)
        if missing or unexpected:
            raise EvalModelError(f"{checkpoint}: weights do not fit the recipe's model (missing {missing[:5]}, "
                                 f"unexpected {unexpected[:5]}); was recipe.json edited after training?")
        out.run_dir, out.step = run_dir, stored.step
        return out

    @classmethod
    def from_module(cls, recipe: Mapping[str, Any], registry: Registry, module: RecipeModel,
                    tokenizer: PreTrainedTokenizerFast, *, device: torch.device, run_dir: Optional[Path] = None,
                    step: Optional[int] = None) -> "EvalModel":
        """Wrap a model that is being trained (periodic evaluation); callers restore train mode."""
        return cls(recipe, registry, module, tokenizer, device, run_dir, step)

    # --- encoding --------------------------------------------------------------------------

    @property
    def dtype(self) -> torch.dtype:
        """The parameters' dtype (bf16/fp16 under mixed-precision DeepSpeed engines)."""
        return next(self.model.parameters()).dtype

    def require(self, slot: str) -> nn.Module:
        module = getattr(self.model, slot)
        if module is None:
            raise EvalModelError(f"this evaluation needs model.{slot}, which the recipe does not define")
        return module

    def encode_images(self, images: torch.Tensor) -> ImageEncoding:
        """Unmasked image encoding of normalised ``images`` [B,3,H,W]."""
        return self.require("image_encoder")(images.to(self.device, self.dtype), mask=None)

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """``input_ids`` / ``attention_mask`` / ``special_tokens_mask`` [B,T] as training collates them."""
        tokens = self.tokenizer(texts, padding="max_length", truncation=True,
                                max_length=data_lib.data_config(self.recipe)["max_text_len"],
                                return_special_tokens_mask=True, return_tensors="pt")
        return {k: tokens[k].long().to(self.device) for k in ("input_ids", "attention_mask", "special_tokens_mask")}

    def encode_texts(self, texts: list[str]) -> TextEncoding:
        """Unmasked text encoding of raw captions."""
        tokens = self.tokenize(texts)
        return self.require("text_encoder")(tokens["input_ids"], tokens["attention_mask"], mask=None)

    # --- recipe look-ups -----------------------------------------------------------------

    def objective(self, kind: str, name: Optional[str] = None) -> nn.Module:
        """The objective called ``name``, or the first one of type ``kind`` in the recipe."""
        configs = [(objective_name(cfg), cfg["type"]) for cfg in self.recipe["objectives"]]
        if name is not None:
            if name not in self.model.objectives:
                raise EvalModelError(f"no objective named '{name}'; the recipe has {[n for n, _ in configs]}")
            return self.model.objectives[name]
        for found, objective_type in configs:
            if objective_type == kind:
                return self.model.objectives[found]
        raise EvalModelError(f"this evaluation needs an objective of type '{kind}' (its heads), but the recipe has "
                             f"only {[t for _, t in configs]}; add one or pick another task")

    def objective_config(self, module: nn.Module) -> Mapping[str, Any]:
        """The recipe entry of an objective module."""
        for cfg in self.recipe["objectives"]:
            if self.model.objectives[objective_name(cfg)] is module:
                return cfg
        raise EvalModelError("objective module is not part of this model")

    def dataset(self, split: str, config: Optional[Mapping[str, Any]] = None) -> Any:
        """An evaluator's own dataset ``config``, or the recipe's ``split`` source."""
        if config is None:
            return data_lib.build_dataset(self.recipe, self.registry, split=split)
        return self.registry.build("dataset", config, data_context(self.recipe, self.registry, split=split))


def load_run_tokenizer(run_dir: Path) -> Optional[PreTrainedTokenizerFast]:
    """The tokenizer a run saved, or ``None`` (the recipe rebuilds it deterministically)."""
    directory = RunDir(run_dir).tokenizer
    if not directory.is_dir():
        return None
    try:
        return load_tokenizer(directory, "the run's tokenizer")
    except (OSError, ValueError) as exc:  # RemoteCodeError included; transformers' own errors are ValueErrors
        raise EvalModelError(f"{directory}: cannot load the run's tokenizer: {str(exc)[:300]}") from exc
