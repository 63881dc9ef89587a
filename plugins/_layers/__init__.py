"""Shared building blocks for encoders, fusions and decoders (a plain package, not a plugin).

- :mod:`framework_plugins._layers.projection`: a linear map between token widths (identity when equal).
- :mod:`framework_plugins._layers.posembed`: fixed 1-D / 2-D sin-cos position embeddings (MAE, M3AE).
- :mod:`framework_plugins._layers.bert`: BERT / RoBERTa configs, local checkpoint loading, and a
  post-norm BERT layer with cross-attention (ALBEF fusion, MaskVLM cross-modality encoders).
"""
