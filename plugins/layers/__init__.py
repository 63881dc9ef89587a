"""Shared building blocks for encoders, fusions and decoders (a plain package, not a plugin).

- :mod:`plugins.layers.projection`: a linear map between token widths (identity when equal).
- :mod:`plugins.layers.posembed`: fixed 1-D / 2-D sin-cos position embeddings (MAE, M3AE).
- :mod:`plugins.layers.bert`: BERT / RoBERTa configs, local checkpoint loading, and a
  post-norm BERT layer with cross-attention (ALBEF fusion, MaskVLM cross-modality encoders).
"""
