"""Host-side pieces of the fused Adam step, shared by the numba and Triton kernels (NumPy only).

The flags and the per-step scalars are laid out in small arrays; the scalars are computed as
the reference :meth:`adamlab.optim.Adam.update_leaf` computes them (Python floats, float64),
then rounded once to the kernel's compute dtype.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: elements per parallel work item: large enough to amortise scheduling, small enough to
#: balance two to a few dozen threads over 20M elements
CHUNK = 1 << 16

# flags (int64 array) layout
F_MAXIMIZE, F_WD, F_AMSGRAD, F_EPS = range(4)
WD_NONE, WD_L2, WD_DECOUPLED = 0, 1, 2
AMS_OFF, AMS_RAW, AMS_CORRECTED = 0, 1, 2
EPS_AFTER, EPS_BEFORE = 0, 1
# scalars (array in the compute dtype) layout
S_B1, S_1MB1, S_B2, S_1MB2, S_C1, S_C2, S_LR, S_EPS, S_WD, S_DECAY, S_ALPHA, S_EPS_ROOT = range(12)


_chunk_cache: dict[tuple[int, ...], np.ndarray] = {}


def chunk_table(sizes: tuple[int, ...], chunk: int = CHUNK) -> np.ndarray:
    """(n_chunks, 3) int64: tensor index, start, stop — every tensor cut into ≤ ``chunk``."""
    table = _chunk_cache.get(sizes)
    if table is None:
        rows = [
            (k, lo, min(lo + chunk, n)) for k, n in enumerate(sizes) for lo in range(0, n, chunk)
        ]
        table = np.array(rows, dtype=np.int64).reshape(-1, 3)
        if len(_chunk_cache) > 256:
            _chunk_cache.clear()
        _chunk_cache[sizes] = table
    return table


def adam_step_args(opt: Any, t: int, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """Scalars and flags of step ``t`` for a core :class:`adamlab.optim.Adam` ``opt``: its
    hyperparameters at t and its own bias corrections (``opt.corrections``), so the kernels
    use exactly the reference's values.

    When no hyperparameter is a schedule, the hyperparameters are the same at every t: they
    and the flags are read once per (optimizer, dtype) and kept on the (frozen) optimizer;
    each step then computes only the corrections and α from them, the same operations on
    the same floats as the full path (a step of many small tensors is dominated by such
    host work)."""
    cache = opt.__dict__.get("_step_args")
    if cache is None:
        cache = {}
        static = not any(map(callable, opt.raw_hypers().values()))
        object.__setattr__(opt, "_step_args", cache if static else False)
    if cache is False:  # schedules: everything at t
        return _step_args(opt, t, opt.hypers(t), dtype)
    if dtype not in cache:
        h = opt.hypers(1)
        sc, fl = _step_args(opt, t, h, dtype)
        cache[dtype] = (h, fl)
        return sc, fl
    h, fl = cache[dtype]
    return _step_args(opt, t, h, dtype, fl)


def _step_args(
    opt: Any, t: int, h: Any, dtype: type, fl: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    c1, c2 = opt.corrections(t, h)
    sc = adam_scalars(
        c1=c1, c2=c2, lr=h.lr, beta1=h.beta1, beta2=h.beta2, eps=h.eps,
        weight_decay=h.weight_decay, eps_root=opt.eps_root, dtype=dtype,
    )  # fmt: skip
    if fl is None:
        fl = adam_flags(
            maximize=opt.maximize, weight_decay=h.weight_decay,
            decoupled=opt.decoupled_weight_decay, amsgrad=opt.amsgrad,
            amsgrad_variant=opt.amsgrad_variant, eps_placement=opt.eps_placement,
        )  # fmt: skip
    return sc, fl


def array_launch(
    p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, v_max: np.ndarray | None,
    kind: str | None, kinds: dict[str, tuple],
) -> tuple[str, np.ndarray, np.ndarray]:  # fmt: skip
    """The launch of ``adam_step_arrays`` (either CPU kernel) on NumPy arrays: (kind, int64
    (5, 1) addresses, sizes). The arrays must be contiguous, of one shape and dtype, stored as
    the kind's element type (``kinds``: the kernel's ``KINDS``); ``kind`` defaults to their
    dtype ("bfloat16"/"float16" for uint16 arrays holding those bits)."""
    arrays = [p, g, m, v, m if v_max is None else v_max]
    for a in arrays:
        if not a.flags.c_contiguous or a.shape != p.shape or a.dtype != p.dtype:
            raise ValueError("fused step: p, g, m, v, v_max must be contiguous, same shape/dtype")
    kind = kind or p.dtype.name
    if np.dtype(kinds[kind][1]) != p.dtype:
        raise ValueError(f"fused step: {kind} is stored as {np.dtype(kinds[kind][1])}")
    ptrs = np.array([[a.ctypes.data] for a in arrays], dtype=np.int64)
    return kind, ptrs, np.array([p.size], dtype=np.int64)


def adam_scalars(
    *, c1: float, c2: float, lr: float, beta1: float, beta2: float, eps: float,
    weight_decay: float, eps_root: float, dtype: type,
) -> np.ndarray:  # fmt: skip
    """The step's scalars, computed as the reference computes them (Python floats, i.e.
    float64), then rounded once to the compute dtype. ``c1``, ``c2``: the corrections
    1 − β₁ᵗ and 1 − β₂ᵗ (or 1), as ``Adam.corrections`` gives them."""
    sc = [0.0] * 12
    sc[S_B1], sc[S_1MB1], sc[S_B2], sc[S_1MB2] = beta1, 1 - beta1, beta2, 1 - beta2
    sc[S_C1], sc[S_C2], sc[S_LR], sc[S_EPS] = c1, c2, lr, eps
    sc[S_WD], sc[S_DECAY] = weight_decay, 1 - lr * weight_decay
    sc[S_ALPHA], sc[S_EPS_ROOT] = lr * math.sqrt(c2) / c1, eps_root
    return np.array(sc, dtype=dtype)


def adam_flags(
    *, maximize: bool, weight_decay: float, decoupled: bool, amsgrad: bool,
    amsgrad_variant: str, eps_placement: str,
) -> np.ndarray:  # fmt: skip
    fl = np.zeros(4, dtype=np.int64)
    fl[F_MAXIMIZE] = bool(maximize)
    fl[F_WD] = WD_NONE if weight_decay == 0 else WD_DECOUPLED if decoupled else WD_L2
    fl[F_AMSGRAD] = (
        AMS_OFF if not amsgrad else AMS_CORRECTED if amsgrad_variant == "corrected" else AMS_RAW
    )
    fl[F_EPS] = EPS_AFTER if eps_placement == "after_correction" else EPS_BEFORE
    return fl
