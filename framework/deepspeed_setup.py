"""Import DeepSpeed quietly and without compiling what training never uses.

On a CPU machine a plain ``import deepspeed`` warns that it found no accelerator, torch
warns about CUDA_HOME, and starting DeepSpeed's communication backend JIT-compiles its
shared-memory all-reduce op (about a minute on first use, and again whenever two venvs
share torch's extensions cache). That op serves only DeepSpeed's inference all-reduce,
never a training step, so it is marked unavailable here and nothing is compiled.
"""

from __future__ import annotations

import logging
import os
from types import ModuleType

import torch

SHM_OP = "deepspeed_shm_comm"
"""DeepSpeed's CPU shared-memory all-reduce op (``ShareMemCommBuilder.NAME``)."""


def import_deepspeed() -> ModuleType:
    """``deepspeed``, imported once with the CPU accelerator chosen explicitly when there is
    no GPU (no detection warning) and its inference-only CPU op switched off."""
    if not torch.cuda.is_available():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # CUDA_HOME is irrelevant on CPU
    import deepspeed
    import deepspeed.ops

    deepspeed.ops.__compatible_ops__[SHM_OP] = False  # read by deepspeed.comm when its backend starts
    return deepspeed
