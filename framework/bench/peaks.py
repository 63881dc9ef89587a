"""Peak dense bf16 tensor throughput of common accelerators, for model-FLOPs utilisation.

MFU = model FLOPs per second / the device's peak (PaLM, Chowdhery et al. 2022, App. B).
Peaks are the vendors' dense (no sparsity) bf16 figures; a CPU has no entry, so it reports
achieved TFLOPS only.
"""

from __future__ import annotations

from typing import Optional

PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H200", 989.0),       # SXM; same tensor cores as the H100 SXM
    ("H100 PCIE", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),       # SXM
    ("GH200", 989.0),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("A800", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
    ("A10", 125.0),
    ("RTX 4090", 165.0),
    ("RTX 3090", 71.0),
    ("V100", 125.0),       # fp16 tensor cores (no bf16)
)
"""(substring of the CUDA device name, dense bf16 TFLOPS); the first match wins, so
more specific names come before the names they contain."""


def peak_tflops(device_name: str) -> Optional[float]:
    """The dense bf16 peak of a device named like ``torch.cuda.get_device_name()``, or
    ``None`` for a CPU or an unlisted device."""
    upper = device_name.upper()
    for key, peak in PEAK_BF16_TFLOPS:
        if key in upper:
            return peak
    return None


def mfu(flops_per_sample: float, samples_per_s: float, peak: Optional[float]) -> Optional[float]:
    """Fraction of ``peak`` TFLOPS achieved (``None`` without a peak)."""
    if peak is None:
        return None
    return flops_per_sample * samples_per_s / (peak * 1e12)
