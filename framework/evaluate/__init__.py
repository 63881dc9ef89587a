"""Evaluation machinery: load a trained model, embed, rank, score, draw.

Public API:

* :class:`EvalModel` — a model from a run directory (``from_run``), a recipe
  (``from_recipe``: untrained) or a live trainer (``from_module``) (``model``)
* :func:`run_tasks`, :func:`write_results`, :func:`run_periodic_eval`,
  :func:`evaluator_schema` (``runner``)
* :func:`retrieval_recalls`, :func:`topk_accuracy` (``metrics``)
* :func:`embed_dataset`, :func:`embed_texts`, :func:`contrastive_heads` (``embed``)
* :func:`image_grid`, :func:`draw_curves`, :func:`curve_series` (``pictures``)
"""

from framework.evaluate.embed import (
    EmbeddedSet,
    contrastive_heads,
    embed_dataset,
    embed_texts,
)
from framework.evaluate.metrics import ranks, retrieval_recalls, topk_accuracy
from framework.evaluate.model import EvalModel, EvalModelError
from framework.evaluate.pictures import curve_series, draw_curves, image_grid
from framework.evaluate.runner import (
    evaluator_schema,
    run_periodic_eval,
    run_tasks,
    write_results,
)

__all__ = [
    "EmbeddedSet", "EvalModel", "EvalModelError", "contrastive_heads", "curve_series", "draw_curves", "embed_dataset",
    "embed_texts", "evaluator_schema", "image_grid", "ranks", "retrieval_recalls", "run_periodic_eval", "run_tasks",
    "topk_accuracy", "write_results",
]
