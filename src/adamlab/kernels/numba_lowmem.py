"""Fused Adam/AdamW steps with low-precision state on the CPU (numba): 8-bit and bfloat16.

One pass per block of ``block_size`` elements: read p, g, the 8-bit codes of m and v and the
block's two absmax values; dequantize (m̃ = Q[q]·N); take Adam's step in float32 with
:func:`adamlab.kernels.numba_adam.adam_element` (the fp32 kernel's element rule, the same
operations in the same order as :meth:`adamlab.optim.Adam.update_leaf`); write p; find the
block's new absmax; quantize m and v again. About 16 bytes move per parameter (p and g in
float32 read, p written; one byte each for m and v read and written) where an fp32 step moves
28. bfloat16 state moves 20. Tensors below ``min_8bit_size`` keep float32 state in the same
launch.

Exactly the reference: the codes are those of :func:`adamlab.optim.quantized.quantize_blockwise`
bit for bit. The reference rounds x/N to the nearest code with a ``searchsorted`` over the 255
thresholds (the smallest float32 above each midpoint); here a table indexed by the top bits of
|x| (exponent and 7 mantissa bits, 3,000 cells per sign) gives the number of thresholds below
the cell, and one comparison with the next threshold finishes: every cell holds at most one
threshold (checked when the table is built, and by the tests on every threshold's float32
neighbours). Stochastic rounding to bfloat16 draws the same bits as
:func:`adamlab.optim.quantized.rounding_bits`.

Also in the kernel, for :func:`adamlab.torch.clip_grad_norm_` and ``GradScaler``: each tensor's
gradient is multiplied by its clip coefficient and then by the unscale factor, each product
rounded to the gradient's dtype, as ``clip_grad_norm_`` and ``GradScaler.unscale_`` would
have written them.

The caller guarantees that the addresses point at live, contiguous memory of the given sizes
(:mod:`adamlab.torch.lowmem` checks this and keeps the tensors alive during the call).
"""

from __future__ import annotations

import functools
from typing import Any

import llvmlite.binding as ll
import numpy as np
from llvmlite import ir
from numba import carray, njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from ..optim import quantized
from .adam_host import EPS_AFTER, F_AMSGRAD, F_EPS, F_MAXIMIZE, F_WD, WD_DECOUPLED, WD_L2
from .numba_adam import adam_element, bf16_to_f32, f32_to_bf16

#: state kinds of a tensor, per launch (``modes``)
MODE_FP32, MODE_BF16, MODE_8BIT = 0, 1, 2
#: rows of the address table: parameter, gradient, m, v, absmax of m, absmax of v
P, G, M, V, AM, AV = range(6)
#: mantissa bits of the quantization table's cells
CELL_BITS = 7
#: cells start at 2⁻²⁴: every magnitude below falls in cell 0 (no threshold lies there)
CELL_LOW_EXP = -24
#: elements per parallel work item (a multiple of every block size up to it)
CHUNK = 1 << 16
#: launches with fewer elements than this run on one thread
SERIAL_BELOW = 1 << 17


# -- pointers and bits ---------------------------------------------------------------------------


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


# -- eight lanes at a time: table lookups as AVX2 gathers -----------------------------------------
#
# numba's loops with table lookups stay scalar (LLVM does not gather on this target), and a
# scalar lookup costs several times the memory traffic of an element. These intrinsics do
# eight elements from memory to memory with vector instructions and one gather each (a
# sequence of eight loads where the CPU lacks AVX2). Same operations, same results.

_I8, _I32, _I64, _F = ir.IntType(8), ir.IntType(32), ir.IntType(64), ir.FloatType()
_V8I, _V8F, _V8B = ir.VectorType(_I32, 8), ir.VectorType(_F, 8), ir.VectorType(_I8, 8)


def _target_has_avx2() -> bool:
    """Whether the CPU numba compiles for has AVX2: the host's, unless NUMBA_CPU_NAME names
    another (``generic``: no AVX2) or NUMBA_CPU_FEATURES lists the features."""
    from numba.core import config

    features = config.CPU_FEATURES
    if config.CPU_NAME not in (None, "host"):
        return features is not None and "+avx2" in features.split(",")
    if features is None:
        features = ll.get_host_cpu_features().flatten()
    return "+avx2" in features.split(",")


#: whether the target has AVX2 gathers (else eight scalar loads: the same results)
HAS_AVX2 = _target_has_avx2()


def _splat(builder, value, vt):
    undef = ir.Constant(vt, ir.Undefined)
    v = builder.insert_element(undef, value, ir.Constant(_I32, 0))
    return builder.shuffle_vector(v, undef, ir.Constant(ir.VectorType(_I32, vt.count), [0] * 8))


def _const(value, vt=_V8I):
    return ir.Constant(vt, [ir.Constant(vt.element, value)] * vt.count)


def _gather(builder, base, idx, elem):
    """<8 x elem> from ``base[idx[i]]`` (``base``: a pointer to ``elem``)."""
    vt = ir.VectorType(elem, 8)
    if HAS_AVX2:
        name = "llvm.x86.avx2.gather.d.d.256" if elem == _I32 else "llvm.x86.avx2.gather.d.ps.256"
        fnty = ir.FunctionType(vt, [vt, _I8.as_pointer(), _V8I, vt, _I8])
        fn = cgutils.get_or_insert_function(builder.module, fnty, name)
        mask = _const(-1) if elem == _I32 else builder.bitcast(_const(-1), vt)
        zero = ir.Constant(vt, None)
        ptr = builder.bitcast(base, _I8.as_pointer())
        return builder.call(fn, [zero, ptr, idx, mask, ir.Constant(_I8, 4)])
    out = ir.Constant(vt, ir.Undefined)
    for i in range(8):
        k = builder.extract_element(idx, ir.Constant(_I32, i))
        out = builder.insert_element(
            out, builder.load(builder.gep(base, [k])), ir.Constant(_I32, i)
        )
    return out


def _at(context, builder, arrty, arr, off, vt, align):
    """A pointer to <8 x ...> at element ``off`` of array ``arr``."""
    data = context.make_array(arrty)(context, builder, arr).data
    return builder.bitcast(builder.gep(data, [off]), vt.as_pointer()), align


@intrinsic
def _dequantize8(typingctx, q, qoff, code, scale, buf, boff):
    """buf[boff:boff+8] = code[q[qoff:qoff+8]]·scale (float32 products)."""
    sig = types.void(q, qoff, code, scale, buf, boff)

    def codegen(context, builder, sig, args):
        pq, _ = _at(context, builder, sig.args[0], args[0], args[1], _V8B, 1)
        idx = builder.zext(builder.load(pq, align=1), _V8I)
        table = context.make_array(sig.args[2])(context, builder, args[2]).data
        x = builder.fmul(_gather(builder, table, idx, _F), _splat(builder, args[3], _V8F))
        pb, _ = _at(context, builder, sig.args[4], args[4], args[5], _V8F, 4)
        builder.store(x, pb, align=4)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _absbits8(typingctx, buf, off):
    """The largest bit pattern of |buf[off:off+8]| (uint32)."""
    sig = types.uint32(buf, off)

    def codegen(context, builder, sig, args):
        pb, _ = _at(context, builder, sig.args[0], args[0], args[1], _V8I, 4)
        a = builder.and_(builder.load(pb, align=4), _const(0x7FFFFFFF))
        fnty = ir.FunctionType(_I32, [_V8I])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.vector.reduce.umax.v8i32")
        return builder.call(fn, [a])

    return sig, codegen


@intrinsic
def _quantize8(typingctx, buf, boff, inverse, cells, first, q, qoff):
    """q[qoff:qoff+8] = the codes of buf[boff:boff+8]·inverse: :func:`_quantize`, 8 lanes."""
    sig = types.void(buf, boff, inverse, cells, first, q, qoff)

    def codegen(context, builder, sig, args):
        pb, _ = _at(context, builder, sig.args[0], args[0], args[1], _V8F, 4)
        x = builder.fmul(builder.load(pb, align=4), _splat(builder, args[2], _V8F))
        u = builder.bitcast(x, _V8I)
        cells = context.make_array(sig.args[3])(context, builder, args[3])
        n_cells = builder.trunc(
            builder.sdiv(builder.extract_value(cells.shape, 0), ir.Constant(_I64, 2)), _I32
        )
        shift = 23 - CELL_BITS
        low_bits = _const((1 << shift) - 1)
        neg = builder.lshr(u, _const(31))
        a = builder.and_(u, _const(0x7FFFFFFF))
        c = builder.sub(
            builder.lshr(a, _const(shift)), _splat(builder, builder.trunc(args[4], _I32), _V8I)
        )
        zero = _const(0)
        c = builder.select(builder.icmp_signed("<", c, zero), zero, c)
        top = _splat(builder, builder.sub(n_cells, ir.Constant(_I32, 1)), _V8I)
        c = builder.select(builder.icmp_signed(">", c, top), top, c)
        idx = builder.add(c, builder.mul(neg, _splat(builder, n_cells, _V8I)))
        key = builder.xor(builder.and_(a, low_bits), builder.mul(neg, low_bits))
        e = _gather(builder, cells.data, idx, _I32)
        j = builder.lshr(e, _const(20))
        ge = builder.zext(builder.icmp_signed(">=", key, builder.and_(e, _const(0xFFFFF))), _V8I)
        pq, _ = _at(context, builder, sig.args[5], args[5], args[6], _V8B, 1)
        builder.store(builder.trunc(builder.add(j, ge), _V8B), pq, align=1)
        return context.get_dummy_value()

    return sig, codegen


_TINY = np.float32(quantized.TINY)
_U8 = np.empty(0, np.uint8)
_U16 = np.empty(0, np.uint16)
_F32 = np.empty(0, np.float32)


# -- the quantization table ------------------------------------------------------------------------


@functools.cache
def tables(signed: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """(code map, cell table, first cell) for one map.

    Cell c holds the float32 magnitudes whose bits, shifted right by 23 − ``CELL_BITS``,
    are c + first cell (cell 0 also holds everything smaller). The table has two halves
    (x ≥ 0, then x < 0 by |x|); each entry packs, as ``j << 20 | key``, the number j of
    thresholds at or below the cell's smallest value and the one threshold τ inside the cell,
    if any, by its low mantissa bits (a value x of the cell is at or above τ exactly when its
    own key, the same bits, flipped for x < 0, is at least τ's; no threshold: 2¹⁶, never).
    Raises if a cell holds two thresholds.
    """
    code = np.ascontiguousarray(quantized.dynamic_map(signed))
    tau = quantized.thresholds(signed)
    shift = 23 - CELL_BITS
    low_mask = (1 << shift) - 1
    first = (np.float32(2.0**CELL_LOW_EXP).view(np.uint32) >> shift).item()
    n_cells = (0x3F800000 >> shift) - first + 1
    cells = np.empty(2 * n_cells, np.int32)
    for c in range(n_cells):
        lo_bits = 0 if c == 0 else (c + first) << shift
        hi_bits = min(((c + first + 1) << shift) - 1, 0x3F800000)
        a, b = np.array([lo_bits, hi_bits], np.uint32).view(np.float32)
        for side, (lo, hi) in enumerate(((a, b), (-b, -a))):
            j = int(np.searchsorted(tau, lo, side="right"))
            inside = int(np.searchsorted(tau, hi, side="right")) - j
            if inside > 1:
                raise AssertionError(f"cell {c} holds {inside} thresholds")
            key = 1 << shift  # none
            if inside:
                bits = int(np.abs(tau[j : j + 1]).view(np.uint32)[0]) & low_mask
                key = bits if side == 0 else low_mask - bits
            cells[side * n_cells + c] = (j << 20) | key
    cells.flags.writeable = False
    return code, cells, first


@njit(inline="always", cache=True, error_model="numpy")
def _quantize(x, cells, first):
    """The index of the code nearest to x ∈ [−1, 1] (the thresholds at or below x): one
    table entry and one integer comparison, without branches (the sign of m is random)."""
    u = _f32_bits(x)
    low_bits = np.uint32((1 << (23 - CELL_BITS)) - 1)
    n_cells = cells.size // 2
    neg = np.int64(u >> np.uint32(31))
    a = u & np.uint32(0x7FFFFFFF)
    c = min(max(np.int64(a >> np.uint32(23 - CELL_BITS)) - first, 0), n_cells - 1)
    key = np.int32((a & low_bits) ^ (low_bits * np.uint32(neg)))
    e = cells[c + neg * n_cells]
    return np.uint8((e >> 20) + (key >= (e & np.int32(0xFFFFF))))


@njit(inline="always", cache=True, error_model="numpy")
def _bf16_stochastic(x, key, i):
    """float32 → bfloat16 bits, rounded with the random bits of element ``i`` (index in its
    tensor) under ``key``: as :func:`adamlab.optim.quantized.to_bfloat16` with
    :func:`adamlab.optim.quantized.rounding_bits` (32-bit arithmetic: it vectorizes)."""
    u = _f32_bits(x)
    # (numba widens uint32 arithmetic to 64 bits: each result is cut back to 32)
    z = np.uint32(np.uint32(key & np.uint64(0xFFFFFFFF)) + np.uint32(i + 1) * np.uint32(0x9E3779B9))
    z = np.uint32((z ^ (z >> np.uint32(16))) * np.uint32(0x85EBCA6B))
    z = np.uint32((z ^ (z >> np.uint32(13))) * np.uint32(0xC2B2AE35))
    z = z ^ (z >> np.uint32(16))
    r = np.uint16((u + (z >> np.uint32(16))) >> np.uint32(16))
    if (u & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000):  # NaN stays a quiet NaN
        r = np.uint16((u >> np.uint32(16)) | np.uint32(0x40))
    return r


# -- element access, specialised at compile time -----------------------------------------------
#
# The storage kind (float32, or bfloat16 read as uint16) and the options (gradient scaling,
# stochastic rounding) are types, not runtime switches: an option that is off is passed as
# None, and its code is not compiled in, so the common loops carry no branches and vectorize.


def _load(a, j):
    """Element j of ``a`` in float32 (bfloat16 bits widened)."""


def _grad(g, j, scales, k):
    """Gradient element j of tensor k, multiplied by its clip coefficient and then by its
    unscale factor (``scales[:, k]``), each product rounded to the gradient's dtype."""


def _store(a, j, x, keys, row, k, i):
    """Write x into ``a[j]``: float32 as it is; bfloat16 rounded to nearest even, or with
    ``keys`` (not None) stochastically, with the bits of element i under ``keys[row, k]``."""


@overload(_load)
def _load_impl(a, j):
    if a.dtype == types.uint16:
        return lambda a, j: bf16_to_f32(a[j])
    return lambda a, j: a[j]


@overload(_grad)
def _grad_impl(g, j, scales, k):
    if isinstance(scales, types.NoneType):
        return lambda g, j, scales, k: _load(g, j)
    if g.dtype == types.uint16:

        def scaled_bf16(g, j, scales, k):
            x = bf16_to_f32(f32_to_bf16(bf16_to_f32(g[j]) * scales[0, k]))
            return bf16_to_f32(f32_to_bf16(x * scales[1, k]))

        return scaled_bf16
    return lambda g, j, scales, k: (g[j] * scales[0, k]) * scales[1, k]


@overload(_store)
def _store_impl(a, j, x, keys, row, k, i):
    if a.dtype != types.uint16:

        def store_f32(a, j, x, keys, row, k, i):
            a[j] = x

        return store_f32
    if isinstance(keys, types.NoneType):

        def store_bf16(a, j, x, keys, row, k, i):
            a[j] = f32_to_bf16(x)

        return store_bf16

    def store_bf16_stochastic(a, j, x, keys, row, k, i):
        a[j] = _bf16_stochastic(x, keys[row, k], i)

    return store_bf16_stochastic


# -- the kernel -----------------------------------------------------------------------------------


@njit(cache=True, error_model="numpy")
def _unpack(sc, fl):
    S = (sc[0], sc[1], sc[2], sc[3], sc[4], sc[5], sc[6], sc[7], sc[8], sc[9], sc[10], sc[11])
    neg = fl[F_MAXIMIZE] != 0
    l2 = fl[F_WD] == WD_L2
    dec = fl[F_WD] == WD_DECOUPLED
    return S, (neg, l2, dec, fl[F_AMSGRAD], fl[F_EPS] == EPS_AFTER)


@njit(cache=True, nogil=True, error_model="numpy")
def _dequantize(q, absmax, b, code, buf, w):
    """buf[:w] = Q[q]·N for block b."""
    n = absmax[b]
    w8 = w - w % 8
    for j in range(0, w8, 8):
        _dequantize8(q, j, code, n, buf, j)
    for j in range(w8, w):
        buf[j] = code[q[j]] * n


@njit(cache=True, nogil=True, error_model="numpy")
def _requantize(buf, w, absmax, b, q, cells, first, zero):
    """Store the block's absmax N and the codes of buf[:w]/N, as
    :func:`adamlab.optim.quantized.quantize_blockwise` does. N is found as the largest bit
    pattern of |x|: for x ≥ 0 the order of the bits is the order of the numbers, and NaN's
    patterns lie above inf's."""
    w8 = w - w % 8
    top = np.uint32(0)
    for j in range(0, w8, 8):
        top = max(top, _absbits8(buf, j))
    for j in range(w8, w):
        top = max(top, _f32_bits(buf[j]) & np.uint32(0x7FFFFFFF))
    if top > np.uint32(0x7F800000):  # NaN
        absmax[b] = np.float32(np.nan)
    else:
        absmax[b] = _bits_f32(top)
    if top == 0 or top >= np.uint32(0x7F800000):
        for j in range(w):
            q[j] = zero
        return
    inverse = np.float32(1.0) / max(_bits_f32(top), _TINY)
    for j in range(0, w8, 8):  # x·(1/N), a product per element, then the code
        _quantize8(buf, j, inverse, cells, first, q, j)
    for j in range(w8, w):
        q[j] = _quantize(buf[j] * inverse, cells, first)


@njit(cache=True, nogil=True, error_model="numpy")
def _adam(p, g, m, v, w, i0, k, S, flags, scales, state_keys, param_keys):
    """Adam's step on w elements (element j is the tensor's i0 + j), m and v in float32 or
    bfloat16; with 8-bit state, m and v are the block's dequantized buffers."""
    neg, l2, dec, ams, after = flags
    for j in range(w):
        x, mi, vi, _ = adam_element(
            _load(p, j), _grad(g, j, scales, k), _load(m, j), _load(v, j), S[0], S,
            neg, l2, dec, ams, after,
        )  # fmt: skip
        _store(p, j, x, param_keys, 0, k, i0 + j)
        _store(m, j, mi, state_keys, 0, k, i0 + j)
        _store(v, j, vi, state_keys, 1, k, i0 + j)


@njit(cache=True, nogil=True, error_model="numpy")
def _chunk(ptrs, modes, chunks, c, marker, S, flags, tabs, scales, state_keys, param_keys, bufs):
    """One chunk (whole blocks of one tensor): the step, by the tensor's state kind. Every
    array is viewed from the chunk's (or block's) first element and indexed from 0, which
    lets the compiler drop negative-index handling."""
    code_s, cells_s, code_u, cells_u, first, block, zero_s, zero_u = tabs
    buf_m, buf_v = bufs
    k, lo, hi = chunks[c, 0], chunks[c, 1], chunks[c, 2]
    n = hi - lo
    size = marker.itemsize
    if modes[k] == MODE_8BIT:
        nb = (n + block - 1) // block
        am = carray(_ptr(ptrs[AM, k] + 4 * (lo // block), _F32), nb)
        av = carray(_ptr(ptrs[AV, k] + 4 * (lo // block), _F32), nb)
        for b in range(nb):
            i0 = lo + b * block
            w = min(block, hi - i0)
            p = carray(_ptr(ptrs[P, k] + i0 * size, marker), w)
            g = carray(_ptr(ptrs[G, k] + i0 * size, marker), w)
            qm = carray(_ptr(ptrs[M, k] + i0, _U8), w)
            qv = carray(_ptr(ptrs[V, k] + i0, _U8), w)
            _dequantize(qm, am, b, code_s, buf_m, w)  # 1. m̃ = Q[q]·N
            _dequantize(qv, av, b, code_u, buf_v, w)
            _adam(p, g, buf_m, buf_v, w, i0, k, S, flags, scales, None, param_keys)  # 2.
            _requantize(buf_m, w, am, b, qm, cells_s, first, zero_s)  # 3. N and the codes
            _requantize(buf_v, w, av, b, qv, cells_u, first, zero_u)
        return
    p = carray(_ptr(ptrs[P, k] + lo * size, marker), n)
    g = carray(_ptr(ptrs[G, k] + lo * size, marker), n)
    if modes[k] == MODE_BF16:
        m16 = carray(_ptr(ptrs[M, k] + 2 * lo, _U16), n)
        v16 = carray(_ptr(ptrs[V, k] + 2 * lo, _U16), n)
        _adam(p, g, m16, v16, n, lo, k, S, flags, scales, state_keys, param_keys)
    else:
        m32 = carray(_ptr(ptrs[M, k] + 4 * lo, _F32), n)
        v32 = carray(_ptr(ptrs[V, k] + 4 * lo, _F32), n)
        _adam(p, g, m32, v32, n, lo, k, S, flags, scales, None, param_keys)


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def lowmem_parallel(ptrs, modes, chunks, marker, sc, fl, tabs, scales, state_keys, param_keys):
    """The fused step over every chunk, in parallel.

    ``ptrs``: int64 (6, n_tensors) addresses (p, g, m, v, absmax of m, absmax of v; rows
    that a tensor's state kind does not use may repeat another address); ``modes``: each
    tensor's state kind; ``chunks``: (n_chunks, 3) tensor, start, stop; ``marker``: an empty
    array of the parameters' element type (float32, or uint16 for bfloat16); ``sc``/``fl``:
    the step's scalars and flags; ``tabs``: :func:`kernel_tables`. The options, each None
    when off: ``scales``, float32 (2, n) gradient multipliers (clip, then unscale);
    ``state_keys``, uint64 (2, n) stochastic-rounding keys of bfloat16 m and v;
    ``param_keys``, uint64 (1, n) those of bfloat16 parameters.
    """
    S, flags = _unpack(sc, fl)
    block = tabs[5]  # (see kernel_tables)
    for c in prange(chunks.shape[0]):
        bufs = (np.empty(block, np.float32), np.empty(block, np.float32))
        _chunk(ptrs, modes, chunks, c, marker, S, flags, tabs, scales, state_keys, param_keys, bufs)


@njit(cache=True, nogil=True, error_model="numpy")
def lowmem_serial(ptrs, modes, chunks, marker, sc, fl, tabs, scales, state_keys, param_keys):
    """:func:`lowmem_parallel` on one thread (small steps)."""
    S, flags = _unpack(sc, fl)
    block = tabs[5]
    bufs = (np.empty(block, np.float32), np.empty(block, np.float32))
    for c in range(chunks.shape[0]):
        _chunk(ptrs, modes, chunks, c, marker, S, flags, tabs, scales, state_keys, param_keys, bufs)


@njit(cache=True, error_model="numpy")
def quantize_normalized(x, cells, first):
    """For tests: the kernel's code for each normalized value of ``x`` (float32)."""
    out = np.empty(x.size, np.uint8)
    for i in range(x.size):
        out[i] = _quantize(x[i], cells, first)
    return out


@njit(cache=True, error_model="numpy")
def bf16_stochastic(x, key):
    """For tests: the kernel's stochastic rounding of ``x`` (float32) under ``key``."""
    out = np.empty(x.size, np.uint16)
    for i in range(x.size):
        out[i] = _bf16_stochastic(x[i], key, i)
    return out


# -- host side -----------------------------------------------------------------------------------

#: parameter storage kind → element type numba sees
PARAM_KINDS = {"float32": np.float32, "bfloat16": np.uint16}


@functools.cache
def kernel_tables(block_size: int) -> tuple:
    """The tables tuple the kernel takes (both maps, their thresholds and cell tables)."""
    code_s, cells_s, first = tables(True)
    code_u, cells_u, _ = tables(False)
    zero_s, zero_u = np.uint8(quantized.zero_code(True)), np.uint8(quantized.zero_code(False))
    return (
        code_s, cells_s, code_u, cells_u, np.int64(first), np.int64(block_size), zero_s, zero_u,
    )  # fmt: skip


def chunk_table(sizes: np.ndarray, block_size: int) -> np.ndarray:
    """(n_chunks, 3) int64: tensor, start, stop; chunks are whole blocks."""
    chunk = max(CHUNK, block_size)
    rows = [
        (k, lo, min(lo + chunk, int(n))) for k, n in enumerate(sizes) for lo in range(0, n, chunk)
    ]
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


def lowmem_step(
    kind: str, ptrs: np.ndarray, sizes: np.ndarray, modes: np.ndarray, *, sc: np.ndarray,
    fl: np.ndarray, block_size: int, scales: np.ndarray | None = None,
    state_keys: np.ndarray | None = None, param_keys: np.ndarray | None = None,
    chunks: np.ndarray | None = None,
) -> None:  # fmt: skip
    """Run one fused step over tensors given by address (see :func:`lowmem_parallel`).
    ``kind``: the parameters' storage ("float32" or "bfloat16"); ``sc``/``fl``: the step's
    scalars and flags (:func:`adamlab.kernels.adam_host.adam_step_args`, float32)."""
    if chunks is None:
        chunks = chunk_table(sizes, block_size)
    small = int(sizes.sum()) < SERIAL_BELOW or len(chunks) == 1
    kernel = lowmem_serial if small else lowmem_parallel
    marker = np.empty(0, PARAM_KINDS[kind])
    tabs = kernel_tables(block_size)
    kernel(ptrs, modes, chunks, marker, sc, fl, tabs, scales, state_keys, param_keys)


def step_arrays(
    p: np.ndarray, g: np.ndarray, m: Any, v: Any, *, sc: np.ndarray, fl: np.ndarray,
    block_size: int = quantized.BLOCK_SIZE, scale: tuple | None = None,
    state_keys: tuple | None = None, param_key: int | None = None,
) -> None:  # fmt: skip
    """The fused step on one contiguous NumPy array, in place (for tests and the reference
    comparison). ``p``/``g``: float32, or uint16 holding bfloat16; ``m``/``v``: float32
    arrays, uint16 arrays (bfloat16 bits), or (codes, absmax) pairs for 8-bit state.
    ``scale``: (clip, unscale) gradient multipliers; ``state_keys``: the stochastic-rounding
    keys of m and v (bfloat16 state); ``param_key``: that of a bfloat16 parameter."""
    arrays = [p, g]
    if isinstance(m, tuple):
        mode = MODE_8BIT
        arrays += [m[0], v[0], m[1], v[1]]
    else:
        mode = MODE_BF16 if m.dtype == np.uint16 else MODE_FP32
        arrays += [m, v, m, v]
    for a in arrays:
        if not a.flags.c_contiguous:
            raise ValueError("fused step: every array must be contiguous")
    ptrs = np.array([[a.ctypes.data] for a in arrays], dtype=np.int64)
    col = lambda x, dtype, rows: None if x is None else np.array(x, dtype).reshape(rows, 1)  # noqa: E731
    lowmem_step(
        "bfloat16" if p.dtype == np.uint16 else "float32", ptrs, np.array([p.size], np.int64),
        np.array([mode], np.int64), sc=sc, fl=fl, block_size=block_size,
        scales=col(scale, np.float32, 2), state_keys=col(state_keys, np.uint64, 2),
        param_keys=col(param_key, np.uint64, 1),
    )  # fmt: skip


def warm_up() -> None:
    """Compile (or load from numba's cache) the kernels for both parameter kinds."""
    from .adam_host import adam_flags, adam_scalars

    sc = adam_scalars(
        c1=0.1, c2=0.001, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
        eps_root=0.0, dtype=np.float32,
    )  # fmt: skip
    fl = adam_flags(
        maximize=False, weight_decay=0.0, decoupled=False, amsgrad=False, amsgrad_variant="raw",
        eps_placement="after_correction",
    )  # fmt: skip
    for elem in (np.float32, np.uint16):
        for n in (3, SERIAL_BELOW + 1):
            p, g = np.zeros(n, elem), np.zeros(n, elem)
            nb = -(-n // quantized.BLOCK_SIZE)
            m = (np.zeros(n, np.uint8), np.zeros(nb, np.float32))
            v = (np.zeros(n, np.uint8), np.zeros(nb, np.float32))
            step_arrays(p, g, m, v, sc=sc, fl=fl)


__all__ = [
    "MODE_8BIT",
    "MODE_BF16",
    "MODE_FP32",
    "chunk_table",
    "kernel_tables",
    "lowmem_step",
    "step_arrays",
    "tables",
    "warm_up",
]
