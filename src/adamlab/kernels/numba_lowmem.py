"""Fused Adam/AdamW steps with low-precision state on the CPU (numba): 8-bit and bfloat16.

Per block of ``block_size`` elements: read p, g, the 8-bit codes of m and v and the block's
two absmax values; dequantize (m̃ = Q[q]·N); take Adam's step in float32 (the element rule of
:func:`adamlab.kernels.numba_adam.adam_element`, the same operations in the same order as
:meth:`adamlab.optim.Adam.update_leaf`); write p; find the block's new absmax; quantize m and
v again. About 16 bytes move per parameter (p and g in float32 read, p written; one byte each
for m and v read and written) where an fp32 step moves 28. bfloat16 state moves 20. Tensors
below ``min_8bit_size`` keep float32 state in the same launch.

The 8-bit step is compute-bound: the divisions and square root of Adam's step, and the
search for each code. With float32 parameters one loop takes the step on block b eight lanes
at a time (:func:`_adam8`, the element rule written out for eight lanes) while it writes the
codes of block b − 1, whose absmax is then known (:func:`_run8_pipelined`): the step waits on
the divider, the codes on the other units, and together they overlap.

Exactly the reference: the codes are those of :func:`adamlab.optim.quantized.quantize_blockwise`
bit for bit. The reference rounds x/N to the nearest code with a ``searchsorted`` over the 255
thresholds (the smallest float32 above each midpoint). Here the code is computed (see
:func:`arith_tables`): the map's decade from the float's bits (an estimate and one
comparison), then within the decade, where the codes are evenly spaced, w = |x|·S − B, whose
integer part is the number of thresholds below |x| unless w lies within 2⁻¹² of an integer;
such lanes (about one in a thousand) go to a table indexed by the top bits of |x| (exponent
and 7 mantissa bits, 3,000 cells) that gives the number of thresholds below the cell, and one
comparison with the next threshold finishes: every cell holds at most one threshold. Both are
checked against the reference on every float32 in [−2, 2] (``tests/test_quantized.py``).
Stochastic rounding to bfloat16 draws the same bits as
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
from .lowmem_tables import CELL_BITS, chunk_table, tables
from .numba_adam import _bits_f32, _f32_bits, _ptr, adam_element, bf16_to_f32, f32_to_bf16

#: state kinds of a tensor, per launch (``modes``)
MODE_FP32, MODE_BF16, MODE_8BIT = 0, 1, 2
#: rows of the address table: parameter, gradient, m, v, absmax of m, absmax of v
P, G, M, V, AM, AV = range(6)
#: launches with fewer elements than this run on one thread
SERIAL_BELOW = 1 << 17


# -- pointers and bits ---------------------------------------------------------------------------


# _ptr, _f32_bits, _bits_f32: numba_adam's, imported above


# -- eight lanes at a time, in LLVM IR -----------------------------------------------------------
#
# numba's loops with table lookups stay scalar (LLVM does not gather on this target). These
# intrinsics work on eight (or 32) elements from memory to memory with vector instructions:
# table lookups as AVX2 gathers (eight loads where the CPU numba compiles for lacks AVX2),
# small tables as register permutes (or chains of selects). Same operations, same results.

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


def _gather(builder, base, idx, elem, loads=False):
    """<8 x elem> from ``base[idx[i]]`` (``base``: a pointer to ``elem``); ``loads``: eight
    loads even with AVX2 (faster on AMD Zen 3, where a gather is microcoded)."""
    vt = ir.VectorType(elem, 8)
    if HAS_AVX2 and not loads:
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


# -- quantizing without a table: the dynamic map's decades, by arithmetic -------------------------
#
# For |x| in decade e of the map (from the threshold that starts decade e to the one that
# starts e + 1) the codes are spaced evenly, so the number of thresholds at or below |x| is
# close to w = |x|·S[e] − B[e], and exactly ⌊w⌋ (clamped to the decade's codes) unless w lies
# within ``ARITH_SLACK`` of an integer (the thresholds are float32 midpoints of float32 codes,
# not the ideal grid: they sit within 3.1e-5 of the integers). The decade: an estimate from
# the float's bits (a logarithm, to within one decade below), then one integer comparison with
# the next decade's first threshold (exact); S, B and the clamp by a register permute. Lanes
# whose w are all clear of the integers take these codes; otherwise the cell table below
# decides them. Every float32 in [−2, 2] is checked against the reference
# (``tests/test_quantized.py``).

#: how close to an integer w may come before the table decides (2⁻¹²; the thresholds: 3.1e-5)
ARITH_SLACK = 2.0**-12


#: the decade's estimate from the bits t of |x| (≈ 2²³·(log₂|x| + 127)): ⌊t·K + C⌋ ≈
#: log₁₀|x| + 6.4, at most one below the decade (the decades start 0.0–0.28 above a power of
#: ten, and t/2²³ − 127 lies up to 0.086 below log₂|x|), then one comparison
_EST_K = float(np.float32(np.log10(2.0) / 2.0**23))
_EST_C = float(np.float32(7.0 - 0.6 - 127.0 * np.log10(2.0)))


@functools.cache
def arith_tables(signed: bool) -> tuple[tuple[int, ...], tuple[float, ...], tuple[float, ...],
                                         tuple[int, ...]]:  # fmt: skip
    """(next, S, B, HI) of one map, each 8 long. Region e (0 … 7) of |x| runs from the
    threshold that starts decade e of the map (region 0: from 0; region 7: the last threshold,
    below 1) to the one that starts the next, whose float32 bits are ``next[e]``. In region e
    the number of positive thresholds at or below |x| is min(⌊|x|·S[e] − B[e]⌋, HI[e]).
    Raises if a threshold lies farther than ``ARITH_SLACK / 4`` from its integer, if w is
    negative or near an integer at 0, or if the decade's estimate misses."""
    tau = quantized.thresholds(signed)
    pos = tau[quantized.zero_code(signed) :]  # the thresholds above 0
    n = pos.size
    sizes = [2 ** (i + (0 if signed else 1)) for i in range(7)]  # codes per decade
    before = np.cumsum([0, *sizes])  # positive codes below decade i
    starts = [int(before[i]) for i in range(7)] + [n - 1]  # index in pos of region e's start
    S, B, HI = [], [], []
    for i, size in enumerate(sizes):
        lo = starts[i] + 1
        if i == 0:  # from 0: the line through the first two thresholds (→ 1, 2)
            s = np.float32(1.0) / (pos[1] - pos[0])
            S.append(float(s))
            B.append(float(pos[0] * s - np.float32(1.0)))
        else:
            S.append(float(np.float32(size / (0.9 * 10.0 ** (i - 6)))))
            B.append(float(np.float32(size / 9 - lo)))
        HI.append(lo + size - 1)
    S.append(0.0)  # at and above the last threshold: n (w = n + 1/2, clear of the integers)
    B.append(-(n + 0.5))
    HI.append(n)
    nxt = [int(pos[starts[e + 1]].view(np.uint32)) for e in range(7)] + [0x7FFFFFFF]
    for e in range(8):
        s, b = np.float32(S[e]), np.float32(B[e])
        first = 0 if e == 0 else starts[e]
        last = starts[e + 1] if e < 7 else n
        inner = 0 if e == 0 else first + 1  # (the region's start: by the comparison)
        inside = pos[inner:last]
        k = np.arange(inner + 1, last + 1, dtype=np.float32)
        for x in (inside, np.nextafter(inside, np.float32(0))):
            w = x * s - b
            keep = k <= HI[e]  # (above HI the clamp decides)
            if np.abs(w - k)[keep].max(initial=0) > ARITH_SLACK / 4:
                raise AssertionError(f"region {e}: a threshold is off the grid")
        w0 = (np.float32(0) if e == 0 else pos[first]) * s - b
        if not (ARITH_SLACK < w0 - np.floor(w0) < 1 - ARITH_SLACK and w0 > 0):
            raise AssertionError(f"region {e}: w at its start")
        for t in (0 if e == 0 else int(pos[first].view(np.uint32)), nxt[e] - 1):
            est = int(np.float32(np.float32(t) * np.float32(_EST_K)) + np.float32(_EST_C))
            if not (e - 1 <= max(est, 0) <= e) and t < 0x7F800000:
                raise AssertionError(f"region {e}: the decade's estimate misses")
    return tuple(nxt), tuple(S), tuple(B), tuple(HI)


def _pick(builder, table, e, vt):
    """<8 x ...> of ``table[e]`` per lane (e in 0 … 7): a register permute with AVX2, else a
    chain of selects (the same values)."""
    values = [ir.Constant(vt.element, x) for x in table]
    if HAS_AVX2:
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(_V8I, [_V8I, _V8I]), "llvm.x86.avx2.permd"
        )
        tab = builder.bitcast(ir.Constant(vt, values), _V8I)
        return builder.bitcast(builder.call(fn, [tab, e]), vt)
    out = _splat(builder, values[0], vt)
    for i in range(1, 8):
        out = builder.select(
            builder.icmp_signed("==", e, _const(i)), _splat(builder, values[i], vt), out
        )
    return out


def _arith_codes(builder, x, signed):
    """The codes of the eight lanes of x (<8 x float>) by arithmetic, and the lanes that lie
    too near a threshold for it (<8 x i1>)."""
    nxt, S, B, HI = arith_tables(signed)
    zero = quantized.zero_code(signed)
    u = builder.bitcast(x, _V8I)
    neg = builder.lshr(u, _const(31))
    # |x|, one ulp up when x < 0: a threshold τ then counts when |x| ≥ τ's mirror
    t = builder.add(builder.and_(u, _const(0x7FFFFFFF)), neg)
    est = builder.fadd(
        builder.fmul(builder.sitofp(t, _V8F), _const(_EST_K, _V8F)), _const(_EST_C, _V8F)
    )
    e = builder.fptosi(est, _V8I)
    e = builder.select(builder.icmp_signed("<", e, _const(0)), _const(0), e)
    e = builder.select(builder.icmp_signed(">", e, _const(7)), _const(7), e)
    up = builder.icmp_signed(">=", t, _pick(builder, nxt, e, _V8I))
    e = builder.sub(e, builder.sext(up, _V8I))
    s = _pick(builder, S, e, _V8F)
    b = _pick(builder, B, e, _V8F)
    hi = _pick(builder, HI, e, _V8I)
    w = builder.fsub(builder.fmul(builder.bitcast(t, _V8F), s), b)  # > 0
    fl = builder.fptosi(w, _V8I)
    frac = builder.fsub(w, builder.sitofp(fl, _V8F))  # exact
    off = builder.bitcast(
        builder.and_(
            builder.bitcast(builder.fsub(frac, _const(0.5, _V8F)), _V8I), _const(0x7FFFFFFF)
        ),
        _V8F,
    )  # |frac − 1/2|
    near = builder.fcmp_unordered(">", off, _const(0.5 - ARITH_SLACK, _V8F))
    r = builder.select(builder.icmp_signed(">", fl, hi), hi, fl)
    # zero ± r by the sign of x (zero − n ≥ −1: at most one below code 0, for x ≤ −τ: 0)
    sm = builder.sub(_const(0), neg)
    code = builder.add(_const(zero), builder.sub(builder.xor(r, sm), sm))
    return builder.select(builder.icmp_signed("<", code, _const(0)), _const(0), code), near


def _make_quantize(signed: bool, lanes: int):
    """An intrinsic for ``lanes`` (8 or 32) codes by arithmetic (:func:`_arith_codes`)."""
    vb = ir.VectorType(_I8, lanes)

    @intrinsic
    def quantize(typingctx, buf, boff, inverse, q, qoff):
        """q[qoff:qoff+lanes] = the codes of buf[boff:boff+lanes]·inverse, by arithmetic;
        returns True (and leaves q's lanes undefined) when a lane lies too near a threshold."""
        sig = types.boolean(buf, boff, inverse, q, qoff)

        def codegen(context, builder, sig, args):
            data = context.make_array(sig.args[0])(context, builder, args[0]).data
            inverse = _splat(builder, args[2], _V8F)
            codes, near = [], None
            for i in range(lanes // 8):
                at = builder.add(args[1], ir.Constant(args[1].type, 8 * i))
                pb = builder.bitcast(builder.gep(data, [at]), _V8F.as_pointer())
                code, n = _arith_codes(
                    builder, builder.fmul(builder.load(pb, align=4), inverse), signed
                )
                codes.append(code)
                near = n if near is None else builder.or_(near, n)
            while len(codes) > 1:  # concatenate
                pairs = zip(codes[0::2], codes[1::2], strict=True)
                width = codes[0].type.count
                mask = ir.Constant(ir.VectorType(_I32, 2 * width), list(range(2 * width)))
                codes = [builder.shuffle_vector(a, b, mask) for a, b in pairs]
            pq, _ = _at(context, builder, sig.args[3], args[3], args[4], vb, 1)
            builder.store(builder.trunc(codes[0], vb), pq, align=1)
            return builder.icmp_unsigned("!=", builder.bitcast(near, _I8), ir.Constant(_I8, 0))

        return sig, codegen

    return quantize


_quantize8_s, _quantize32_s = _make_quantize(True, 8), _make_quantize(True, 32)
_quantize8_u, _quantize32_u = _make_quantize(False, 8), _make_quantize(False, 32)


# -- Adam's element rule, eight lanes at a time ------------------------------------------------------
#
# :func:`adamlab.kernels.numba_adam.adam_element` for float32 parameters without AMSGrad (the
# 8-bit state's case), the same operations in the same order, written out for eight lanes so
# that one loop can take the step on a block while it quantizes the previous one (the step
# waits on the divider, quantizing on the other units: together they overlap).


@intrinsic
def _adam8(typingctx, p, g, qm, qv, code_s, code_u, nm, nv, m, v, j, S, flags, cu):
    """Lanes j … j + 8 of a block: m̃ = Q[q]·N and ṽ likewise (the codes ``qm``, ``qv``, the
    maps ``code_s``, ``code_u``, the absmax ``nm``, ``nv``), Adam's step from p and g (times
    ``cu`` = (clip, unscale), each product rounded, when not None); p written, the new m and v
    into the buffers ``m``, ``v``."""
    sig = types.void(p, g, qm, qv, code_s, code_u, nm, nv, m, v, j, S, flags, cu)

    def codegen(context, builder, sig, args):
        names = ("p", "g", "qm", "qv", "code_s", "code_u", "nm", "nv", "m", "v", "j", "S", "flags", "cu")  # fmt: skip
        a = dict(zip(names, args, strict=True))
        t = dict(zip(names, sig.args, strict=True))

        def at(name, vt=_V8F, align=4):
            return _at(context, builder, t[name], a[name], a["j"], vt, align)[0]

        def dequantize(q, code, n):
            idx = builder.zext(builder.load(at(q, _V8B, 1), align=1), _V8I)
            table = context.make_array(t[code])(context, builder, a[code]).data
            x = _gather(builder, table, idx, _F, loads=True)
            return builder.fmul(x, _splat(builder, a[n], _V8F))

        x = builder.load(at("p"), align=4)
        gr = builder.load(at("g"), align=4)
        mi = dequantize("qm", "code_s", "nm")
        vi = dequantize("qv", "code_u", "nv")
        b1, omb1, b2, omb2, c1, c2, lr, eps, wd, decay, alpha, eps_root = (
            _splat(builder, builder.extract_value(a["S"], i), _V8F) for i in range(12)
        )
        neg, l2, dec, _, after = (builder.extract_value(a["flags"], i) for i in range(5))
        if not isinstance(t["cu"], types.NoneType):
            for i in range(2):
                gr = builder.fmul(gr, _splat(builder, builder.extract_value(a["cu"], i), _V8F))
        gr = builder.select(neg, builder.fneg(gr), gr)
        x = builder.select(dec, builder.fmul(x, decay), x)
        gr = builder.select(l2, builder.fadd(gr, builder.fmul(wd, x)), gr)
        mi = builder.fadd(builder.fmul(b1, mi), builder.fmul(omb1, gr))
        vi = builder.fadd(builder.fmul(b2, vi), builder.fmul(builder.fmul(omb2, gr), gr))
        sqrt = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(_V8F, [_V8F]), "llvm.sqrt.v8f32"
        )
        with builder.if_else(after) as (then, otherwise):
            with then:  # x − lr·(m/c1) / (√(v/c2 + eps_root) + eps)
                root = builder.call(sqrt, [builder.fadd(builder.fdiv(vi, c2), eps_root)])
                step = builder.fmul(lr, builder.fdiv(mi, c1))
                x_then = builder.fsub(x, builder.fdiv(step, builder.fadd(root, eps)))
                bb_then = builder.block
            with otherwise:  # x − alpha·m / (√(v + eps_root) + eps)
                root = builder.call(sqrt, [builder.fadd(vi, eps_root)])
                step = builder.fmul(alpha, mi)
                x_else = builder.fsub(x, builder.fdiv(step, builder.fadd(root, eps)))
                bb_else = builder.block
        x = builder.phi(_V8F)
        x.add_incoming(x_then, bb_then)
        x.add_incoming(x_else, bb_else)
        builder.store(x, at("p"), align=4)
        builder.store(mi, at("m"), align=4)
        builder.store(vi, at("v"), align=4)
        return context.get_dummy_value()

    return sig, codegen


def _scale_pair(scales, k):
    """(clip, unscale) of tensor k, or None."""


@overload(_scale_pair)
def _scale_pair_impl(scales, k):
    if isinstance(scales, types.NoneType):
        return lambda scales, k: None
    return lambda scales, k: (scales[0, k], scales[1, k])


_TINY = np.float32(quantized.TINY)
_U8 = np.empty(0, np.uint8)
_U16 = np.empty(0, np.uint16)
_F32 = np.empty(0, np.float32)


# -- the quantization table ------------------------------------------------------------------------


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


@intrinsic
def _round_bits(typingctx, u, key, i):
    """The stochastically rounded bfloat16 bits of float32 bits u: (u + the top 16 bits of
    fmix32(k + (i + 1)·γ₃₂)) >> 16, k the low 32 bits of ``key`` (as
    :func:`adamlab.optim.quantized.rounding_bits`), in 32-bit arithmetic (numba's would widen
    it to 64 bits, which vectorizes at half the width)."""
    sig = types.uint16(types.uint32, types.uint64, types.int64)

    def codegen(context, builder, sig, args):
        c = lambda x: ir.Constant(_I32, x)  # noqa: E731
        k = builder.trunc(args[1], _I32)
        n = builder.add(builder.trunc(args[2], _I32), c(1))
        z = builder.add(k, builder.mul(n, c(0x9E3779B9)))
        z = builder.mul(builder.xor(z, builder.lshr(z, c(16))), c(0x85EBCA6B))
        z = builder.mul(builder.xor(z, builder.lshr(z, c(13))), c(0xC2B2AE35))
        z = builder.xor(z, builder.lshr(z, c(16)))
        r = builder.lshr(builder.add(args[0], builder.lshr(z, c(16))), c(16))
        return builder.trunc(r, ir.IntType(16))

    return sig, codegen


@njit(inline="always", cache=True, error_model="numpy")
def _bf16_stochastic(x, key, i):
    """float32 → bfloat16 bits, rounded with the random bits of element ``i`` (index in its
    tensor) under ``key``: as :func:`adamlab.optim.quantized.to_bfloat16` with
    :func:`adamlab.optim.quantized.rounding_bits`."""
    u = _f32_bits(x)
    r = _round_bits(u, key, np.int64(i))
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
def _step8(p, g, qm, qv, w, nm, nv, code_s, code_u, buf_m, buf_v, i0, k, S, flags, scales,
           param_keys):  # fmt: skip
    """Dequantize (m̃ = Q[q]·N), Adam's step, write p, keep the new m and v in the buffers."""
    neg, l2, dec, ams, after = flags
    for j in range(w):  # scalar loads: faster here than AVX2 gathers
        buf_m[j] = code_s[qm[j]] * nm
    for j in range(w):
        buf_v[j] = code_u[qv[j]] * nv
    for j in range(w):
        x, mi, vi, _ = adam_element(
            _load(p, j), _grad(g, j, scales, k), buf_m[j], buf_v[j], S[0],
            S, neg, l2, dec, ams, after,
        )  # fmt: skip
        _store(p, j, x, param_keys, 0, k, i0 + j)
        buf_m[j] = mi
        buf_v[j] = vi


@njit(cache=True, nogil=True, error_model="numpy")
def _absmax(buf, w):
    """The largest bit pattern of |buf[:w]| (the block's absmax, see :func:`_absmax_store`)."""
    w8 = w - w % 8
    top = np.uint32(0)
    for j in range(0, w8, 8):
        top = max(top, _absbits8(buf, j))
    for j in range(w8, w):
        top = max(top, _f32_bits(buf[j]) & np.uint32(0x7FFFFFFF))
    return top


@njit(cache=True, nogil=True, error_model="numpy")
def _absmax_store(top, absmax, b, q, w, zero):
    """Store the block's absmax N, as :func:`adamlab.optim.quantized.quantize_blockwise`
    does, from the largest bit pattern ``top`` of |x| (for x ≥ 0 the order of the bits is the
    order of the numbers, and NaN's patterns lie above inf's). Returns whether the block
    needs its codes and 1/N; a block of zeros or with NaN or ±inf gets zero codes here."""
    if top > np.uint32(0x7F800000):  # NaN
        absmax[b] = np.float32(np.nan)
    else:
        absmax[b] = _bits_f32(top)
    if top == 0 or top >= np.uint32(0x7F800000):
        for j in range(w):
            q[j] = zero
        return False, np.float32(0.0)
    return True, np.float32(1.0) / max(_bits_f32(top), _TINY)


@njit(cache=True, nogil=True, error_model="numpy")
def _codes(buf, w, inverse, q, cells, first, signed):
    """q[:w] = the codes of buf[:w]·inverse (x·(1/N), a product per element, then the
    code): eight at a time by arithmetic, by the table where a lane lies near a threshold."""
    w32 = w - w % 32
    for j in range(0, w32, 32):
        near = (
            _quantize32_s(buf, j, inverse, q, j) if signed else _quantize32_u(buf, j, inverse, q, j)
        )
        if near:
            for i in range(j, j + 32):
                q[i] = _quantize(buf[i] * inverse, cells, first)
    w8 = w - w % 8
    for j in range(w32, w8, 8):
        near = (
            _quantize8_s(buf, j, inverse, q, j) if signed else _quantize8_u(buf, j, inverse, q, j)
        )
        if near:
            for i in range(j, j + 8):
                q[i] = _quantize(buf[i] * inverse, cells, first)
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
def _run8_blocks(ptrs, k, lo, hi, marker, S, flags, tabs, scales, param_keys, bufs):
    """8-bit state, block after block: dequantize, step, absmax, codes (any parameter kind,
    any option)."""
    code_s, cells_s, code_u, cells_u, first, block, zero_s, zero_u = tabs
    buf_m, buf_v = bufs[0], bufs[1]
    n = hi - lo
    size = marker.itemsize
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
        _step8(
            p, g, qm, qv, w, am[b], av[b], code_s, code_u, buf_m, buf_v, i0, k, S, flags,
            scales, param_keys,
        )  # fmt: skip
        ok, inverse = _absmax_store(_absmax(buf_m, w), am, b, qm, w, zero_s)
        if ok:
            _codes(buf_m, w, inverse, qm, cells_s, first, True)
        ok, inverse = _absmax_store(_absmax(buf_v, w), av, b, qv, w, zero_u)
        if ok:
            _codes(buf_v, w, inverse, qv, cells_u, first, False)


@njit(cache=True, nogil=True, error_model="numpy")
def _run8_pipelined(ptrs, k, lo, hi, marker, S, flags, tabs, scales, param_keys, bufs):
    """8-bit state, float32 parameters: one loop takes the step on block b (:func:`_adam8`)
    and writes the codes of block b − 1 (its absmax known), 32 lanes at a time, so the
    divisions of the one and the integer work of the other overlap. The same results as
    :func:`_run8_blocks`; a partial last block goes there."""
    code_s, cells_s, code_u, cells_u, first, block, zero_s, zero_u = tabs
    n = hi - lo
    nfull = n // block
    if flags[3] != 0 or block % 32 != 0 or nfull == 0:  # (AMSGrad: never with 8-bit state)
        _run8_blocks(ptrs, k, lo, hi, marker, S, flags, tabs, scales, param_keys, bufs)
        return
    am = carray(_ptr(ptrs[AM, k] + 4 * (lo // block), _F32), nfull)
    av = carray(_ptr(ptrs[AV, k] + 4 * (lo // block), _F32), nfull)
    cu = _scale_pair(scales, k)
    ok_m, inv_m, ok_v, inv_v = False, np.float32(0.0), False, np.float32(0.0)
    for b in range(nfull + 1):
        if b % 2 == 0:
            bm, bv, pm, pv = bufs[0], bufs[1], bufs[2], bufs[3]
        else:
            bm, bv, pm, pv = bufs[2], bufs[3], bufs[0], bufs[1]
        step = b < nfull
        i0 = lo + min(b, nfull - 1) * block
        p = carray(_ptr(ptrs[P, k] + i0 * 4, marker), block)
        g = carray(_ptr(ptrs[G, k] + i0 * 4, marker), block)
        qm = carray(_ptr(ptrs[M, k] + i0, _U8), block)
        qv = carray(_ptr(ptrs[V, k] + i0, _U8), block)
        i1 = lo + max(b - 1, 0) * block
        qm_p = carray(_ptr(ptrs[M, k] + i1, _U8), block)
        qv_p = carray(_ptr(ptrs[V, k] + i1, _U8), block)
        nm = am[b] if step else np.float32(0.0)
        nv = av[b] if step else np.float32(0.0)
        do_m = b > 0 and ok_m
        do_v = b > 0 and ok_v
        for j in range(0, block, 32):
            if step:
                for jj in range(j, j + 32, 8):
                    _adam8(p, g, qm, qv, code_s, code_u, nm, nv, bm, bv, jj, S, flags, cu)
            if do_m and _quantize32_s(pm, j, inv_m, qm_p, j):
                for i in range(j, j + 32):
                    qm_p[i] = _quantize(pm[i] * inv_m, cells_s, first)
            if do_v and _quantize32_u(pv, j, inv_v, qv_p, j):
                for i in range(j, j + 32):
                    qv_p[i] = _quantize(pv[i] * inv_v, cells_u, first)
        if step:
            ok_m, inv_m = _absmax_store(_absmax(bm, block), am, b, qm, block, zero_s)
            ok_v, inv_v = _absmax_store(_absmax(bv, block), av, b, qv, block, zero_u)
    if nfull * block < n:
        _run8_blocks(ptrs, k, lo + nfull * block, hi, marker, S, flags, tabs, scales,
                     param_keys, bufs)  # fmt: skip


def _run8(ptrs, k, lo, hi, marker, S, flags, tabs, scales, param_keys, bufs):
    """The 8-bit step on elements lo … hi of tensor k (whole blocks, but for a tensor's
    last): pipelined for float32 parameters, block after block otherwise."""


@overload(_run8)
def _run8_impl(ptrs, k, lo, hi, marker, S, flags, tabs, scales, param_keys, bufs):
    if marker.dtype == types.float32 and isinstance(param_keys, types.NoneType):

        def pipelined(ptrs, k, lo, hi, marker, S, flags, tabs, scales, param_keys, bufs):
            _run8_pipelined(ptrs, k, lo, hi, marker, S, flags, tabs, scales, param_keys, bufs)

        return pipelined

    def blocks(ptrs, k, lo, hi, marker, S, flags, tabs, scales, param_keys, bufs):
        _run8_blocks(ptrs, k, lo, hi, marker, S, flags, tabs, scales, param_keys, bufs)

    return blocks


@njit(cache=True, nogil=True, error_model="numpy")
def _chunk(ptrs, modes, chunks, c, marker, S, flags, tabs, scales, state_keys, param_keys, bufs):
    """One chunk (whole blocks of one tensor): the step, by the tensor's state kind. Every
    array is viewed from the chunk's (or block's) first element and indexed from 0, which
    lets the compiler drop negative-index handling."""
    k, lo, hi = chunks[c, 0], chunks[c, 1], chunks[c, 2]
    n = hi - lo
    size = marker.itemsize
    if modes[k] == MODE_8BIT:
        _run8(ptrs, k, lo, hi, marker, S, flags, tabs, scales, param_keys, bufs)
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
        bufs = (np.empty(block, np.float32), np.empty(block, np.float32),
                np.empty(block, np.float32), np.empty(block, np.float32))  # fmt: skip
        _chunk(ptrs, modes, chunks, c, marker, S, flags, tabs, scales, state_keys, param_keys, bufs)


@njit(cache=True, nogil=True, error_model="numpy")
def lowmem_serial(ptrs, modes, chunks, marker, sc, fl, tabs, scales, state_keys, param_keys):
    """:func:`lowmem_parallel` on one thread (small steps)."""
    S, flags = _unpack(sc, fl)
    block = tabs[5]
    bufs = (np.empty(block, np.float32), np.empty(block, np.float32),
            np.empty(block, np.float32), np.empty(block, np.float32))  # fmt: skip
    for c in range(chunks.shape[0]):
        _chunk(ptrs, modes, chunks, c, marker, S, flags, tabs, scales, state_keys, param_keys, bufs)


@njit(cache=True, error_model="numpy")
def _quantize_all(x, cells, first, signed):
    out = np.empty(x.size, np.uint8)
    _codes(x, x.size, np.float32(1.0), out, cells, first, signed)
    return out


def quantize_normalized(x: np.ndarray, cells: np.ndarray, first: int) -> np.ndarray:
    """For tests: the kernel's code for each normalized value of ``x`` (float32), by the
    path the kernel takes (arithmetic, the table near thresholds; ``cells`` says the map)."""
    signed = cells is tables(True)[1] or np.array_equal(cells, tables(True)[1])
    return _quantize_all(np.ascontiguousarray(x, np.float32), cells, np.int64(first), signed)


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
