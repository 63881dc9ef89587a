"""The layout of a run directory: the one place its file names are spelled.

::

    RUN/recipe.json          the resolved recipe (defaults filled in)
    RUN/provenance.json      recipe hash, versions, which distribution provided each component
    RUN/tokenizer/           the text tokenizer (``save_pretrained``)
    RUN/metrics.jsonl        one JSON line per logged step
    RUN/eval/                evaluation results and pictures
    RUN/checkpoints/latest   names the newest complete checkpoint
    RUN/checkpoints/step_N/  DeepSpeed state, our client state, recipe.json, provenance.json
                             and model.safetensors: the consolidated weights every tool reads
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RECIPE_FILE = "recipe.json"
PROVENANCE_FILE = "provenance.json"
TOKENIZER_DIR = "tokenizer"
METRICS_FILE = "metrics.jsonl"
EVAL_DIR = "eval"
CHECKPOINTS_DIR = "checkpoints"
MODEL_FILE = "model.safetensors"


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    @property
    def recipe(self) -> Path:
        return self.root / RECIPE_FILE

    @property
    def provenance(self) -> Path:
        return self.root / PROVENANCE_FILE

    @property
    def tokenizer(self) -> Path:
        return self.root / TOKENIZER_DIR

    @property
    def metrics(self) -> Path:
        return self.root / METRICS_FILE

    @property
    def eval(self) -> Path:
        return self.root / EVAL_DIR

    @property
    def checkpoints(self) -> Path:
        return self.root / CHECKPOINTS_DIR

    def is_run(self) -> bool:
        return self.recipe.is_file()

    def outputs(self) -> tuple[Path, ...]:
        """What a run writes besides its recipe and provenance (removed by ``--overwrite``)."""
        return (self.metrics, self.checkpoints, self.tokenizer, self.eval)
