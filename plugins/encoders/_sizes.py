"""The image side an encoder is built for: the data's, unless the recipe names the same one."""

from __future__ import annotations

from typing import Any, Optional


def input_side(image_size: Optional[int], context: Any) -> int:
    """``image_size`` when given (it must equal ``data.image_size``, the side every batch
    has), else the data's; a mismatch would only fail later, inside the first forward."""
    data_side = context["image_size"]
    if image_size is not None and image_size != data_side:
        raise ValueError(f"image_encoder.image_size {image_size} differs from data.image_size {data_side}, the side "
                         f"of every image the encoder receives; drop image_encoder.image_size or set it to {data_side}")
    return data_side
