"""The data pipeline: sources and tokenizers from the recipe, transforms, batches, sampling.

Public API (see each module's docstring):

* :func:`build_dataset`, :func:`build_tokenizer`, :func:`data_config` (``build``)
* :class:`SampleTransform`, :class:`AugmentSample`, :func:`build_transform` (``transforms``)
* :class:`Collator` (``collate``), :class:`ResumableDistributedSampler` (``sampler``)
* :class:`SampleLoader`, :class:`DataHealth`, :class:`BadSampleError`, :class:`BadDataError` (``samples``)
* :class:`StreamLoader`, :class:`StreamPosition` for streaming sources (``stream``)
* :func:`build_train_loader`, :func:`build_eval_loader`, :func:`iterate_forever` (``loader``)
"""

from framework.data.build import build_dataset, build_tokenizer, data_config
from framework.data.collate import Collator
from framework.data.loader import build_eval_loader, build_train_loader, iterate_forever
from framework.data.sampler import ResumableDistributedSampler
from framework.data.samples import (
    BadDataError,
    BadSampleError,
    DataHealth,
    SampleLoader,
)
from framework.data.stream import StreamLoader, StreamPosition
from framework.data.transforms import AugmentSample, SampleTransform, build_transform

__all__ = [
    "AugmentSample", "BadDataError", "BadSampleError", "Collator", "DataHealth", "ResumableDistributedSampler",
    "SampleLoader", "SampleTransform", "StreamLoader", "StreamPosition", "build_dataset", "build_eval_loader",
    "build_tokenizer", "build_train_loader", "build_transform", "data_config", "iterate_forever",
]
