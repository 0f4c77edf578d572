"""A fused, parallel Adam/AdamW step on the CPU (numba), over many tensors in one launch.

One pass reads each element of p, g, m, v (and v_max with AMSGrad) once and writes p, m, v
(and v_max) once, in place. The arithmetic mirrors :meth:`adamlab.optim.Adam.update_leaf`
operation for operation, in the same precision (float32 for float32/float16/bfloat16
storage, float64 for float64), with the step's scalars (1 − β₁, the corrections 1 − β₁ᵗ and
1 − β₂ᵗ, 1 − αλ, …) computed once on the host in float64 and rounded to that precision, as
the reference's Python floats are. The kernel therefore agrees with the reference to the
last bit or so: on NumPy arrays bit for bit; on torch tensors up to PyTorch's CPU ``sqrt``,
which is not correctly rounded (about 1% of float64 results differ from IEEE's by one ulp).

Many tensors, one launch: the kernel takes the addresses of every tensor (``data_ptr()``)
and a table of chunks (tensor, start, stop), and runs ``prange`` over the chunks, so 200
small tensors cost one parallel region, not 200. float16 and bfloat16 have no numba type:
they are read as uint16 and converted bit by bit (round to nearest even, as PyTorch does).

The caller guarantees that the addresses point at live, contiguous memory of the given sizes
(:mod:`adamlab.torch.fast` checks this and keeps the tensors alive during the call).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from llvmlite import ir
from numba import carray, njit, prange, types
from numba.extending import intrinsic

from .adam_host import (
    AMS_CORRECTED,
    AMS_OFF,
    AMS_RAW,
    EPS_AFTER,
    F_AMSGRAD,
    F_EPS,
    F_MAXIMIZE,
    F_WD,
    WD_DECOUPLED,
    WD_L2,
    adam_flags,
    adam_scalars,
    array_launch,
    chunk_table,
)

# -- pointer and bit helpers ---------------------------------------------------------------------


@intrinsic
def _ptr(typingctx, addr, marker):
    """An int64 address as a typed pointer (``marker`` is an array of the element type)."""
    ptr_t = types.CPointer(marker.dtype)

    def codegen(context, builder, sig, args):
        return builder.inttoptr(args[0], context.get_value_type(ptr_t))

    return ptr_t(types.int64, marker), codegen


@intrinsic
def _f32_bits(typingctx, x):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.uint32(types.float32), codegen


@intrinsic
def _bits_f32(typingctx, u):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.uint32), codegen


@njit(inline="always", cache=True)
def bf16_to_f32(h):
    return _bits_f32(np.uint32(h) << np.uint32(16))


@njit(inline="always", cache=True)
def f32_to_bf16(f):
    x = _f32_bits(f)
    if (x & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000):  # NaN: keep it quiet
        return np.uint16((x >> np.uint32(16)) | np.uint32(0x40))
    x = x + np.uint32(0x7FFF) + ((x >> np.uint32(16)) & np.uint32(1))
    return np.uint16(x >> np.uint32(16))


@njit(inline="always", cache=True)
def f16_to_f32(h):
    h = np.uint32(h)
    sign = (h & np.uint32(0x8000)) << np.uint32(16)
    e = (h >> np.uint32(10)) & np.uint32(0x1F)
    f = h & np.uint32(0x3FF)
    if e == 0:  # zero or subnormal: f·2⁻²⁴, exact in float32
        mag = np.float32(f) * np.float32(5.960464477539063e-08)
        return -mag if sign else mag
    if e == 31:  # inf or NaN
        return _bits_f32(sign | np.uint32(0x7F800000) | (f << np.uint32(13)))
    return _bits_f32(sign | ((e + np.uint32(112)) << np.uint32(23)) | (f << np.uint32(13)))


@njit(inline="always", cache=True)
def f32_to_f16(v):
    x = _f32_bits(v)
    sign = np.uint32((x >> np.uint32(16)) & np.uint32(0x8000))
    x = x & np.uint32(0x7FFFFFFF)
    if x >= np.uint32(0x7F800000):  # inf or NaN
        nan = np.uint32(0x200) if x > np.uint32(0x7F800000) else np.uint32(0)
        return np.uint16(sign | np.uint32(0x7C00) | nan)
    if x >= np.uint32(0x477FF000):  # ≥ 65520 rounds to inf
        return np.uint16(sign | np.uint32(0x7C00))
    if x < np.uint32(0x38800000):  # below the smallest normal half: subnormal or zero
        if x < np.uint32(0x33000000):
            return np.uint16(sign)
        e = x >> np.uint32(23)
        m = (x & np.uint32(0x7FFFFF)) | np.uint32(0x800000)
        shift = np.uint32(126) - e
        hm = m >> shift
        rem = m & ((np.uint32(1) << shift) - np.uint32(1))
        half = np.uint32(1) << (shift - np.uint32(1))
        if rem > half or (rem == half and (hm & np.uint32(1))):
            hm += np.uint32(1)
        return np.uint16(sign | hm)
    h = (x - np.uint32(0x38000000)) >> np.uint32(13)
    rem = x & np.uint32(0x1FFF)
    if rem > np.uint32(0x1000) or (rem == np.uint32(0x1000) and (h & np.uint32(1))):
        h += np.uint32(1)
    return np.uint16(sign | h)


# -- the element rule ------------------------------------------------------------------------------


@njit(inline="always", cache=True)
def _maximum(a, b):
    """torch.maximum / xp.maximum: NaN if either is NaN."""
    if a != a:
        return a
    if b != b:
        return b
    return a if a >= b else b


@njit(inline="always", cache=True)
def adam_element(x, g, m, v, w, S, neg, l2, dec, ams, after):
    """One element of :meth:`adamlab.optim.Adam.update_leaf`, in the order it is written there.

    Returns (x, m, v, v_max). ``S`` holds the step's scalars in the compute dtype (see
    :func:`adam_host.adam_scalars`); the flags are plain booleans/ints, loop invariants that
    LLVM hoists, so the loops that call this vectorise (AVX2: 8 float32 lanes).
    """
    b1, omb1, b2, omb2, c1, c2, lr, eps, wd, decay, alpha, eps_root = S
    if neg:
        g = -g
    if dec:
        x = x * decay
    if l2:
        g = g + wd * x
    m = b1 * m + omb1 * g
    v = b2 * v + omb2 * g * g
    if ams == AMS_CORRECTED:
        w = _maximum(w, v / c2)
        v_hat = w
        v_used = w
    elif ams == AMS_RAW:
        w = _maximum(w, v)
        v_hat = w / c2
        v_used = w
    else:
        v_hat = v / c2
        v_used = v
    if after:
        m_hat = m / c1
        x = x - lr * m_hat / (math.sqrt(v_hat + eps_root) + eps)
    else:
        x = x - alpha * m / (math.sqrt(v_used + eps_root) + eps)
    return x, m, v, w


@njit(cache=True)
def _unpack(sc, fl):
    """Scalars as a tuple (registers, not memory LLVM must assume the stores may alias) and
    the flags as booleans."""
    S = (sc[0], sc[1], sc[2], sc[3], sc[4], sc[5], sc[6], sc[7], sc[8], sc[9], sc[10], sc[11])
    neg = fl[F_MAXIMIZE] != 0
    l2 = fl[F_WD] == WD_L2
    dec = fl[F_WD] == WD_DECOUPLED
    return S, neg, l2, dec, fl[F_AMSGRAD], fl[F_EPS] == EPS_AFTER


@njit(cache=True)
def _views(ptrs, sizes, chunks, c, marker):
    """The five arrays of chunk ``c``, starting at its first element (indices from 0 let
    LLVM drop negative-index handling and vectorise)."""
    k, lo, hi = chunks[c, 0], chunks[c, 1], chunks[c, 2]
    n = hi - lo
    off = lo * marker.itemsize
    p = carray(_ptr(ptrs[0, k] + off, marker), n)
    g = carray(_ptr(ptrs[1, k] + off, marker), n)
    m = carray(_ptr(ptrs[2, k] + off, marker), n)
    v = carray(_ptr(ptrs[3, k] + off, marker), n)
    w = carray(_ptr(ptrs[4, k] + off, marker), n)
    return p, g, m, v, w


# -- the kernels: one per storage kind (the math is adam_element in each) --------------------------


@njit(parallel=True, fastmath=False, cache=True, nogil=True)
def adam_native(ptrs, sizes, chunks, marker, sc, fl):
    """float32 or float64 storage (``marker``'s dtype); ``ptrs`` is (5, n_tensors): p, g, m,
    v, v_max addresses; ``chunks`` is (n_chunks, 3): tensor, start, stop."""
    S, neg, l2, dec, ams_mode, after = _unpack(sc, fl)
    if ams_mode == AMS_OFF:
        for c in prange(chunks.shape[0]):
            p, g, m, v, _ = _views(ptrs, sizes, chunks, c, marker)
            for i in range(p.size):
                p[i], m[i], v[i], _w = adam_element(
                    p[i], g[i], m[i], v[i], S[0], S, neg, l2, dec, AMS_OFF, after
                )
    else:
        for c in prange(chunks.shape[0]):
            p, g, m, v, w = _views(ptrs, sizes, chunks, c, marker)
            for i in range(p.size):
                p[i], m[i], v[i], w[i] = adam_element(
                    p[i], g[i], m[i], v[i], w[i], S, neg, l2, dec, ams_mode, after
                )


@njit(fastmath=False, cache=True, nogil=True)
def adam_native_serial(ptrs, sizes, chunks, marker, sc, fl):
    """:func:`adam_native` on one thread: for small steps, where waking a thread pool costs
    more than the work (and OpenMP workers left spinning slow down what follows)."""
    S, neg, l2, dec, ams_mode, after = _unpack(sc, fl)
    if ams_mode == AMS_OFF:
        for c in range(chunks.shape[0]):
            p, g, m, v, _ = _views(ptrs, sizes, chunks, c, marker)
            for i in range(p.size):
                p[i], m[i], v[i], _w = adam_element(
                    p[i], g[i], m[i], v[i], S[0], S, neg, l2, dec, AMS_OFF, after
                )
    else:
        for c in range(chunks.shape[0]):
            p, g, m, v, w = _views(ptrs, sizes, chunks, c, marker)
            for i in range(p.size):
                p[i], m[i], v[i], w[i] = adam_element(
                    p[i], g[i], m[i], v[i], w[i], S, neg, l2, dec, ams_mode, after
                )


@njit(parallel=True, fastmath=False, cache=True, nogil=True)
def adam_bf16(ptrs, sizes, chunks, marker, sc, fl):
    """bfloat16 storage (read as uint16); arithmetic in float32."""
    S, neg, l2, dec, ams_mode, after = _unpack(sc, fl)
    ams = ams_mode != AMS_OFF
    for c in prange(chunks.shape[0]):
        p, g, m, v, w = _views(ptrs, sizes, chunks, c, marker)
        for i in range(p.size):
            wi = bf16_to_f32(w[i]) if ams else S[0]
            x, mi, vi, wi = adam_element(
                bf16_to_f32(p[i]), bf16_to_f32(g[i]), bf16_to_f32(m[i]), bf16_to_f32(v[i]),
                wi, S, neg, l2, dec, ams_mode, after,
            )  # fmt: skip
            p[i] = f32_to_bf16(x)
            m[i] = f32_to_bf16(mi)
            v[i] = f32_to_bf16(vi)
            if ams:
                w[i] = f32_to_bf16(wi)


@njit(parallel=True, fastmath=False, cache=True, nogil=True)
def adam_f16(ptrs, sizes, chunks, marker, sc, fl):
    """float16 storage (read as uint16); arithmetic in float32."""
    S, neg, l2, dec, ams_mode, after = _unpack(sc, fl)
    ams = ams_mode != AMS_OFF
    for c in prange(chunks.shape[0]):
        p, g, m, v, w = _views(ptrs, sizes, chunks, c, marker)
        for i in range(p.size):
            wi = f16_to_f32(w[i]) if ams else S[0]
            x, mi, vi, wi = adam_element(
                f16_to_f32(p[i]), f16_to_f32(g[i]), f16_to_f32(m[i]), f16_to_f32(v[i]),
                wi, S, neg, l2, dec, ams_mode, after,
            )  # fmt: skip
            p[i] = f32_to_f16(x)
            m[i] = f32_to_f16(mi)
            v[i] = f32_to_f16(vi)
            if ams:
                w[i] = f32_to_f16(wi)


@njit(cache=True, nogil=True)
def _bump(addrs, marker, out):
    same = True
    for j in range(addrs.size):
        x = carray(_ptr(addrs[j], marker), 1)
        out[j] = x[0]
        x[0] += 1
        same = same and out[j] == out[0]
    return same


def bump_steps(addrs: list[int] | np.ndarray, dtype: Any) -> np.ndarray:
    """Add 1 to the 0-d step tensors at ``addrs`` (float32 or float64, given as a torch or
    NumPy dtype); return their old values (float64)."""
    return bumper(addrs, dtype)()[0]


def bumper(addrs: np.ndarray, dtype: Any) -> Callable[[], tuple[np.ndarray, bool]]:
    """:func:`bump_steps` kept between steps: ``bump()`` adds 1 to the step tensors at
    ``addrs`` and returns (their old values, whether those are all equal); the returned array
    is reused by the next call."""
    addrs = np.ascontiguousarray(addrs, dtype=np.int64)
    marker = np.empty(0, np.float64 if "64" in str(dtype) else np.float32)
    out = np.empty(len(addrs), np.float64)
    return lambda: (out, bool(_bump(addrs, marker, out)))


@njit(cache=True)
def convert_f16_to_f32(h):
    """For tests: float16 bits (uint16 array) → float32 array."""
    out = np.empty(h.size, np.float32)
    for i in range(h.size):
        out[i] = f16_to_f32(h[i])
    return out


@njit(cache=True)
def convert_f32_to_f16(x):
    out = np.empty(x.size, np.uint16)
    for i in range(x.size):
        out[i] = f32_to_f16(x[i])
    return out


@njit(cache=True)
def convert_f32_to_bf16(x):
    out = np.empty(x.size, np.uint16)
    for i in range(x.size):
        out[i] = f32_to_bf16(x[i])
    return out


# -- host side -----------------------------------------------------------------------------------

#: the name :func:`adamlab.torch.fast.cpu_kernel` reports for this kernel
NAME = "numba"

#: steps with fewer elements than this run on one thread (float32/float64)
SERIAL_BELOW = 1 << 17

#: storage kind → (kernel, element type numba sees, compute dtype)
KINDS: dict[str, tuple[Any, type, type]] = {
    "float32": (adam_native, np.float32, np.float32),
    "float64": (adam_native, np.float64, np.float64),
    "bfloat16": (adam_bf16, np.uint16, np.float32),
    "float16": (adam_f16, np.uint16, np.float32),
}


def launch_plan(kind: str, sizes: np.ndarray) -> tuple[Any, np.ndarray, np.ndarray]:
    """What a launch over tensors of ``sizes`` (int64 elements) needs besides the addresses
    and the step's scalars: (kernel, chunk table, marker array). Callers that step the same
    tensors again keep it (:mod:`adamlab.torch.fast` does)."""
    kernel, elem, _ = KINDS[kind]
    key = tuple(sizes.tolist())
    chunks = chunk_table(key)
    if kernel is adam_native and (chunks.shape[0] == 1 or sum(key) < SERIAL_BELOW):
        kernel = adam_native_serial
    return kernel, chunks, np.empty(0, dtype=elem)


def launcher(kind: str, ptrs: np.ndarray, sizes: np.ndarray) -> Callable[[Any, Any], None]:
    """A launch kept between steps (:mod:`adamlab.torch.fast`'s plans): ``run(sc, fl)`` steps
    the tensors at ``ptrs`` (int64 (5, n); its rows may be rewritten in place between calls,
    e.g. the gradients' addresses)."""
    kernel, chunks, marker = launch_plan(kind, sizes)
    return lambda sc, fl: kernel(ptrs, sizes, chunks, marker, sc, fl)


def adam_step_ptrs(
    kind: str, ptrs: np.ndarray, sizes: np.ndarray, sc: np.ndarray, fl: np.ndarray
) -> None:
    """Run the fused step over tensors given by address. ``ptrs``: int64 (5, n) for p, g, m,
    v, v_max (pass m's address for v_max without AMSGrad); ``sizes``: int64 (n,) elements."""
    kernel, chunks, marker = launch_plan(kind, sizes)
    kernel(ptrs, sizes, chunks, marker, sc, fl)


def adam_step_arrays(
    p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, v_max: np.ndarray | None,
    *, kind: str | None = None, sc: np.ndarray, fl: np.ndarray,
) -> None:  # fmt: skip
    """The fused step on contiguous NumPy arrays, in place (``kind`` defaults to their dtype;
    pass "bfloat16"/"float16" for uint16 arrays holding those bits)."""
    kind, ptrs, sizes = array_launch(p, g, m, v, v_max, kind, KINDS)
    adam_step_ptrs(kind, ptrs, sizes, sc, fl)


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel variant: each storage kind in
    parallel, and float32/float64 also on one thread."""
    for kind, (_, elem, compute) in KINDS.items():
        sc = adam_scalars(
            c1=0.1, c2=0.001, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
            eps_root=0.0, dtype=compute,
        )  # fmt: skip
        fl = adam_flags(
            maximize=False, weight_decay=0.0, decoupled=False, amsgrad=False,
            amsgrad_variant="raw", eps_placement="after_correction",
        )  # fmt: skip
        for n in (3, SERIAL_BELOW + 1):
            adam_step_arrays(*[np.zeros(n, dtype=elem) for _ in range(5)], kind=kind, sc=sc, fl=fl)
    for dtype in (np.float32, np.float64):
        step = np.zeros(1, dtype)
        bump_steps([step.ctypes.data], dtype)
