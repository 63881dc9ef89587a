"""Turn a validated recipe into a RecipeModel (and its teacher) through the registry.

Components are built in dependency order; each one's sizes (widths, patch grid, vocab)
are put in the :class:`BuildContext` for the components built after it.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from framework.context import ViewSpec
from framework.initialise import initialise
from framework.model import RecipeModel
from framework.model_file import CONFIGS_KEY
from framework.objective import objective_name
from framework.registry import BuildContext, Registry
from framework.validation import RecipeValidationError, ValidationIssue


def tokenizer_context(tokenizer: Any) -> dict[str, Any]:
    """Sizes and special ids that text components need from the tokenizer."""
    return {
        "vocab_size": len(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
        "mask_token_id": tokenizer.mask_token_id,
        "cls_token_id": tokenizer.cls_token_id,
        "special_token_ids": sorted(set(tokenizer.all_special_ids)),
        **_vocabulary(tokenizer),
    }


def _vocabulary(tokenizer: Any) -> dict[str, Any]:
    """Token -> id and the special tokens, which a pretrained text encoder compares with its
    checkpoint's own tokenizer; ``None`` for the stand-in of a shapes-only build (or any
    object with only a tokenizer's sizes and ids)."""
    from framework.bench.synthetic import StandInTokenizer

    if isinstance(tokenizer, StandInTokenizer) or not hasattr(tokenizer, "get_vocab"):
        return {"tokenizer_vocab": None, "special_tokens": None}
    return {"tokenizer_vocab": tokenizer.get_vocab(),
            "special_tokens": {role: (token, tokenizer.convert_tokens_to_ids(token))
                               for role, token in tokenizer.special_tokens_map.items() if isinstance(token, str)}}


def assemble(recipe: Mapping[str, Any], registry: Registry, tokenizer: Any, *,
             load_pretrained: bool = True,
             pretrained_configs: Optional[Mapping[str, Any]] = None) -> tuple[RecipeModel, Optional[Any]]:
    """Build the student RecipeModel and the teacher (``None`` when the recipe has none).

    Refuses what only a build can check (objective dependencies, teacher copies, factory
    errors) with the JSON path of the entry at fault; :func:`framework.validation.validate_recipe`
    runs this on the meta device, so a run never meets these errors after validation."""
    _check_shared_masks(recipe["views"])
    data, model = recipe["data"], recipe["model"]
    # configs read from pretrained files: filled by this build, or given by a model file's
    # metadata so that a build with load_pretrained=False needs none of those files
    configs = dict(pretrained_configs or {})
    ctx = BuildContext(registry, {
        "image_size": data["image_size"], "max_text_len": data["max_text_len"],
        "mean": data["mean"], "std": data["std"], **tokenizer_context(tokenizer),
        "load_pretrained": load_pretrained,  # False: the caller loads a model file, or builds shapes only
        CONFIGS_KEY: configs,
    })
    image_encoder = text_encoder = fusion = None
    if "image_encoder" in model:
        image_encoder = ctx.build("image_encoder", model["image_encoder"], at="$.model.image_encoder")
        ctx.values.update(image_width=image_encoder.width, patch_size=image_encoder.patch_size,
                          grid=tuple(image_encoder.grid), num_patches=image_encoder.num_patches,
                          image_masked_layout=getattr(image_encoder, "masked_layout", "full"))
    if "text_encoder" in model:
        text_encoder = ctx.build("text_encoder", model["text_encoder"], at="$.model.text_encoder")
        ctx.values["text_width"] = text_encoder.width
        # A head may tie its weights to the encoder's word embeddings (BERT's MLM head).
        embeddings = getattr(text_encoder, "input_embeddings", None)
        ctx.values.update(text_embeddings=embeddings() if callable(embeddings) else None,
                          text_layer_norm_eps=getattr(text_encoder, "layer_norm_eps", None),
                          text_checkpoint=getattr(text_encoder, "checkpoint", None))
    if "fusion" in model:
        fusion = ctx.build("fusion", model["fusion"], at="$.model.fusion")
        ctx.values.update(fusion_width=fusion.width,
                          fused_image_width=getattr(fusion, "image_width", image_encoder.width),
                          fused_text_width=getattr(fusion, "text_width", text_encoder.width))
    decoders = {name: ctx.build("decoder", cfg, at=f"$.model.decoders.{name}")
                for name, cfg in model.get("decoders", {}).items()}
    ctx.values["decoder_widths"] = {name: d.width for name, d in decoders.items()}
    ctx.values["decoder_streams"] = {name: tuple(d.streams) for name, d in decoders.items()}
    views = {
        name: ViewSpec(name,
                       (ctx.build("image_masking", spec["image"], at=f"$.views.{name}.image")
                        if "image" in spec else None),
                       ctx.build("text_masking", spec["text"], at=f"$.views.{name}.text") if "text" in spec else None,
                       spec.get("image_from"), spec.get("text_from"))
        for name, spec in recipe["views"].items()
    }
    objectives = _build_objectives(recipe, ctx)
    student = RecipeModel(image_encoder=image_encoder, text_encoder=text_encoder, fusion=fusion,
                         decoders=decoders, objectives=objectives, views=views)
    student.pretrained_configs = configs  # framework.model_file stores them with the weights
    teacher = (ctx.build("teacher", model["teacher"], at="$.model.teacher", student=student)
               if "teacher" in model else None)
    if teacher is not None:
        _check_teacher_modules(objectives, getattr(teacher, "paths", []))
    if load_pretrained and "init" in model:  # weights from another run (model.init); the run saves the report
        student.init_report = initialise(student, teacher, model["init"])
    return student, teacher


def _check_teacher_modules(objectives: Mapping[str, Any], paths: list[str]) -> None:
    """Every teacher copy an objective reads is listed in model.teacher.modules."""
    issues = [
        ValidationIssue("$.model.teacher.modules",
                        f"objective '{name}' reads the teacher's copy of '{path}'; add it to the list")
        for name, objective in objectives.items() for path in objective.teacher_modules() if path not in paths
    ]
    if issues:
        raise RecipeValidationError(issues)


def _check_shared_masks(views: Mapping[str, Any]) -> None:
    """``image_from`` / ``text_from`` name a view that masks that modality itself."""
    issues = []
    for name, spec in views.items():
        for modality in ("image", "text"):
            source = spec.get(f"{modality}_from")
            if source is None:
                continue
            where = f"$.views.{name}.{modality}_from"
            if modality in spec:
                issues.append(ValidationIssue(where, f"a view takes its {modality} mask from another view "
                                                     "or masks it itself, not both"))
            elif modality not in views.get(source, {}):
                issues.append(ValidationIssue(where, f"view '{source}' has no {modality} masker of its own to share"))
    if issues:
        raise RecipeValidationError(issues)


def _build_objectives(recipe: Mapping[str, Any], ctx: BuildContext) -> dict[str, Any]:
    objectives: dict[str, Any] = {}
    issues: list[ValidationIssue] = []
    types_so_far: set[str] = set()
    for i, cfg in enumerate(recipe["objectives"]):
        where = f"$.objectives[{i}]"
        name = objective_name(cfg)
        if name in objectives:
            issues.append(ValidationIssue(where, f"a second objective named '{name}'; "
                                                 "give one of them a distinct \"name\""))
            continue
        objective = ctx.build("objective", {**cfg, "name": name}, at=where)
        missing = [n for n in objective.needs if n not in types_so_far]
        if missing:
            issues.append(ValidationIssue(where, f"'{cfg['type']}' needs objective(s) {missing} earlier in the list"))
        if objective.requires_teacher and "teacher" not in recipe["model"]:
            issues.append(ValidationIssue(where, f"'{cfg['type']}' reads teacher outputs; "
                                                 "add model.teacher (e.g. {\"type\": \"ema\"})"))
        types_so_far.add(cfg["type"])
        objectives[name] = objective
    if issues:
        raise RecipeValidationError(issues)
    return objectives
