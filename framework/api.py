"""The plugin API: everything a component package (built-in or third-party) imports.

Plugins import from this module only, so the framework's internal layout can change
without breaking them; what is here changes only with :data:`API_VERSION`. The contract
of each component kind (what its factory receives, what it is called with, what it
returns) is in docs/components.md.
"""

from __future__ import annotations

from framework.checkpoint import CheckpointError
from framework.context import Backbone, EncodedView, StepContext, Teacher
from framework.data import build_eval_loader, data_config
from framework.data.names import read_names
from framework.data.samples import BadSampleError, dataset_captions, read_sample
from framework.data.transforms import FIT_BOXES, AugmentSample
from framework.distributed import global_denominator, is_main_process
from framework.evaluate.embed import (
    EmbeddedSet,
    contrastive_heads,
    embed_dataset,
    embed_texts,
)
from framework.evaluate.metrics import retrieval_recalls, topk_accuracy
from framework.evaluate.model import EvalModel, EvalModelError
from framework.evaluate.pictures import denormalize, image_grid
from framework.evaluate.runner import DATASET_SLOT, evaluator_schema
from framework.evaluate.samples import eval_batches
from framework.hf import SAFE_PRETRAINED, load_tokenizer, refuse_remote_code
from framework.hookspecs import API_VERSION, hookimpl
from framework.model_file import (
    ModelFileError,
    read_model_file,
    record_config,
    stored_config,
)
from framework.objective import (
    DECODER_REF,
    OBJECTIVE_REF_SECTION,
    VIEW_REF,
    ContrastiveEmbedder,
    Objective,
    objective_name,
    objective_schema,
)
from framework.optim import (
    OptimizerComponent,
    WarmupSchedule,
    optimizer_schema,
    schedule_schema,
)
from framework.pictures.masks import grey_out
from framework.registry import BuildContext, ComponentSpec
from framework.rundir import CHECKPOINTS_DIR, MODEL_FILE, RECIPE_FILE
from framework.tokens import (
    at_positions,
    gather_tokens,
    one_hot,
    patchify,
    restore_sequence,
    unpatchify,
)
from framework.types import (
    Batch,
    FusedEncoding,
    ImageEncoding,
    LossOutput,
    MaskingOutput,
    Similarities,
    TextEncoding,
    TextMaskingOutput,
)
from framework.validation import PATH_KEYWORD

__all__ = [
    "API_VERSION", "AugmentSample", "Backbone", "BadSampleError", "Batch", "BuildContext", "CHECKPOINTS_DIR",
    "CheckpointError", "ComponentSpec", "ContrastiveEmbedder", "DATASET_SLOT", "DECODER_REF", "EmbeddedSet",
    "EncodedView", "EvalModel", "EvalModelError", "FIT_BOXES", "FusedEncoding", "ImageEncoding", "LossOutput",
    "MODEL_FILE", "MaskingOutput", "ModelFileError", "OBJECTIVE_REF_SECTION", "Objective", "OptimizerComponent",
    "PATH_KEYWORD", "RECIPE_FILE", "SAFE_PRETRAINED", "Similarities", "StepContext", "Teacher", "TextEncoding",
    "TextMaskingOutput", "VIEW_REF", "WarmupSchedule", "at_positions", "build_eval_loader", "contrastive_heads",
    "data_config", "dataset_captions", "denormalize", "embed_dataset", "embed_texts", "eval_batches",
    "evaluator_schema", "gather_tokens", "global_denominator", "grey_out", "hookimpl", "is_main_process", "image_grid",
    "load_tokenizer", "objective_name", "objective_schema", "one_hot", "optimizer_schema", "patchify",
    "read_model_file", "read_names", "read_sample", "record_config", "refuse_remote_code", "restore_sequence",
    "retrieval_recalls", "schedule_schema", "stored_config", "topk_accuracy", "unpatchify",
]
