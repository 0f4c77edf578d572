"""Fused fast paths of the core rules: numba on the CPU, Triton on CUDA GPUs.

Each kernel mirrors its reference rule in :mod:`adamlab.optim` and is tested against it.
Importing this package needs neither numba nor Triton; the kernel modules do.
"""

from __future__ import annotations

import functools
import importlib.util


@functools.cache
def numba_available() -> bool:
    """True when numba is importable (the CPU fused kernels can run)."""
    return importlib.util.find_spec("numba") is not None


@functools.cache
def triton_available() -> bool:
    """True when Triton is importable and a CUDA device is present (the GPU kernel can run)."""
    if importlib.util.find_spec("triton") is None:
        return False
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


__all__ = ["numba_available", "triton_available"]
