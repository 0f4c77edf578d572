"""Optimizer state in fewer bytes: block-wise 8-bit moments, and bfloat16 moments.

**Block-wise 8-bit** (Dettmers, Lewis, Shleifer & Zettlemoyer, "8-bit Optimizers via
Block-wise Quantization", ICLR 2022; the layout bitsandbytes uses). A moment m is cut into
blocks of B consecutive elements (B = ``block_size`` = 256; along the last axis, so each row
of a batch of configurations is quantized on its own), and each block b is stored as one
float32 and B bytes::

    Nᵦ = max |mᵢ|  over the block                      absmax: the block's scale
    qᵢ = the index of the code Q[j] nearest to mᵢ/Nᵦ    8 bits: one of 256 codes in [−1, 1]
    m̃ᵢ = Q[qᵢ]·Nᵦ                                       dequantized (a float32 product)

Q is the *dynamic* map (Dettmers 2016, "8-bit Approximations for Parallelism in Deep
Learning"): 0, 1, and for each decade 10ᵏ (k = −6 … 0) codes spaced linearly in
[0.1, 1]·10ᵏ — the midpoints of 2ᵏ⁺⁶ equal intervals for the signed map (used for m, with
the same codes negated), 2ᵏ⁺⁷ for the unsigned map (used for v ≥ 0). Small magnitudes keep
relative precision, which is what a second moment spanning many orders of magnitude needs.
:func:`dynamic_map` builds it exactly as bitsandbytes' ``create_dynamic_map`` does, to the
last bit.

*Nearest* is bitsandbytes' rule as their PyTorch backend writes it: x is scaled by the
float32 reciprocal of its block's absmax, xᵢ·(1/Nᵦ) (a product, not a quotient: every
bitsandbytes CPU path does this; 1/Nᵦ with Nᵦ clamped to 10⁻³⁸ so that it stays finite),
and goes to code j + 1 when it lies above the float32 midpoint (Q[j] + Q[j + 1])/2 of
Q[j] and Q[j + 1] (a tie goes to code j; ``torch.bucketize``). In float32 that is "at or above
the smallest float32 above the midpoint", so :func:`thresholds` holds those 255 float32
numbers and quantizing is one ``searchsorted``. A block whose absmax is 0 is all zero codes;
one holding NaN or ±inf keeps that absmax and zero codes, so it dequantizes to NaN
(non-finite values spread to their block).

**bfloat16** keeps the top 16 bits of a float32: rounding to nearest even, or *stochastic*
rounding: add 16 random bits below the kept ones, then truncate, which rounds up with
probability equal to the distance from the value below — unbiased, so tiny updates survive
in expectation where round-to-nearest would drop them (Zamirai et al., "Revisiting BFloat16
Training", 2020). The random bits are a hash of (seed, step, stream, element index)
(:func:`stream_key`, :func:`rounding_bits`): seeded, reproducible, the same in the reference
and the kernels, and the same for a row whether it runs alone or in a batch.

The reference :class:`adamlab.optim.Adam` uses these through ``state_precision``; the fused
kernels (:mod:`adamlab.kernels.numba_lowmem`) compute the same codes bit for bit.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np

#: the state precisions (``Adam(state_precision=...)``)
PRECISIONS = ("fp32", "bf16", "8bit")

BLOCK_SIZE = 256  #: elements per block (bitsandbytes' and torchao's default)
MIN_8BIT_SIZE = 4096  #: smaller rows keep float32 state, as in bitsandbytes
TINY = np.float32(1e-38)  #: the smallest absmax whose reciprocal is taken (bitsandbytes')

_F32 = np.float32
_U64 = np.uint64
_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15  # 2⁶⁴/φ: the increment of SplitMix64
_GOLDEN32 = 0x9E3779B9  # 2³²/φ

# stream slots: which array of a parameter a run of random bits rounds
SLOT_M, SLOT_V, SLOT_P = 0, 1, 2


# -- the dynamic map --------------------------------------------------------------------------


def _linspace_f32(n: int) -> np.ndarray:
    """``torch.linspace(0.1, 1, n, dtype=torch.float32)`` for n − 1 a power of two: each
    point rounded once to float32 from start + step·i (first half) or end − step·(n − 1 − i)
    (second half), step = (1 − 0.1)/(n − 1) in float32."""
    start, stop = float(_F32(0.1)), 1.0
    step = float(_F32((stop - start) / (n - 1)))
    i = np.arange(n)
    return np.where(i < n // 2, start + step * i, stop - step * (n - 1 - i)).astype(_F32)


@functools.cache
def dynamic_map(signed: bool, max_exponent_bits: int = 7, total_bits: int = 8) -> np.ndarray:
    """The 2^``total_bits`` codes of the dynamic map, sorted (float32, read-only).

    Bit for bit bitsandbytes' ``create_dynamic_map(signed, max_exponent_bits, total_bits)``:
    for i = 0 … max_exponent_bits − 1, the means of adjacent points of
    ``linspace(0.1, 1, 2^(i + s) + 1)`` (s = 0 signed, 1 unsigned; float32), times
    10^(i − max_exponent_bits + 1) in float32 (and negated, when signed); then 0 and 1.
    """
    data: list[float] = []
    non_sign_bits = total_bits - 1
    for i in range(max_exponent_bits):
        n = 2 ** (i + non_sign_bits - max_exponent_bits + (0 if signed else 1)) + 1
        bounds = _linspace_f32(n)
        means = (bounds[:-1] + bounds[1:]) / _F32(2)
        scale = _F32(10.0 ** (i - max_exponent_bits + 1))
        data += (scale * means).tolist()
        if signed:
            data += (-scale * means).tolist()
    extra = 2 ** (non_sign_bits - max_exponent_bits) - 1
    if extra > 0:  # not with the defaults: the linear region of a shorter exponent
        bounds = _linspace_f32(extra + 1)
        means = (bounds[:-1] + bounds[1:]) / _F32(2)
        scale = _F32(10.0 ** (max_exponent_bits - 1 - max_exponent_bits + 1))
        data += (scale * means).tolist()
        if signed:
            data += (-scale * means).tolist()
    data += [0.0, 1.0]
    data += [0.0] * (2**total_bits - len(data))
    code = np.array(sorted(data), dtype=_F32)
    code.flags.writeable = False
    return code


@functools.cache
def thresholds(signed: bool) -> np.ndarray:
    """The 255 float32 numbers where rounding to the nearest code moves up one code: for each
    pair of neighbours the smallest float32 above their float32 midpoint (Q[j] + Q[j+1])/2
    (bitsandbytes' bounds). A normalized value x has code
    ``searchsorted(thresholds, x, side="right")``."""
    code = dynamic_map(signed)
    mid = (code[:-1] + code[1:]) / _F32(2)  # float32, as bitsandbytes computes its bounds
    tau = np.nextafter(mid, _F32(np.inf))
    tau.flags.writeable = False
    return tau


@functools.cache
def zero_code(signed: bool) -> int:
    """The index of 0 in the map (a block of zeros, or a non-finite block, holds it)."""
    return int(np.flatnonzero(dynamic_map(signed) == 0)[0])


# -- block-wise quantization ----------------------------------------------------------------


def _rows(x: np.ndarray) -> np.ndarray:
    """``x`` as rows along its last axis (a 0-d array is one row of one)."""
    return x.reshape(1) if x.ndim == 0 else x


def _blocks(x: np.ndarray, block_size: int) -> np.ndarray:
    """(..., n) → (..., n_blocks, block_size): the last block padded with zeros."""
    n = x.shape[-1]
    nb = -(-n // block_size)
    pad = nb * block_size - n
    if pad:
        x = np.concatenate([x, np.zeros((*x.shape[:-1], pad), x.dtype)], axis=-1)
    return x.reshape((*x.shape[:-1], nb, block_size))


def quantize_blockwise(
    x: np.ndarray, *, signed: bool, block_size: int = BLOCK_SIZE
) -> tuple[np.ndarray, np.ndarray]:
    """(codes, absmax): ``x`` (float32) in 8-bit codes of the dynamic map, block by block.

    codes has ``x``'s shape (uint8); absmax has one float32 per block: shape
    ``x.shape[:-1] + (ceil(n / block_size),)``.
    """
    shape = x.shape
    rows = _rows(np.asarray(x, dtype=_F32))
    blocks = _blocks(rows, block_size)
    absmax = np.max(np.abs(blocks), axis=-1)  # NaN if the block holds one
    ok = np.isfinite(absmax) & (absmax > 0)
    inverse = _F32(1) / np.maximum(np.where(ok, absmax, _F32(1)), TINY)  # float32 1/Nᵦ
    normed = blocks * inverse[..., None]  # float32, in [−1, 1] (to an ulp)
    codes = np.searchsorted(thresholds(signed), normed, side="right").astype(np.uint8)
    codes[~ok] = zero_code(signed)
    codes = codes.reshape((*rows.shape[:-1], -1))[..., : rows.shape[-1]]
    return codes.reshape(shape), absmax


def dequantize_blockwise(
    codes: np.ndarray, absmax: np.ndarray, *, signed: bool, block_size: int = BLOCK_SIZE
) -> np.ndarray:
    """m̃ᵢ = Q[qᵢ]·Nᵦ in float32, with ``codes``' shape."""
    rows = _rows(codes)
    scale = np.repeat(absmax, block_size, axis=-1)[..., : rows.shape[-1]]
    return (dynamic_map(signed)[rows] * scale).reshape(codes.shape)


# -- bfloat16 -------------------------------------------------------------------------------


def to_bfloat16(x: np.ndarray, random: np.ndarray | None = None) -> np.ndarray:
    """float32 → bfloat16 bits (uint16): round to nearest even, or, given ``random`` (uint32
    values below 2¹⁶, one per element), stochastically: add them below the kept 16 bits and
    truncate. NaN stays a quiet NaN; ±inf stays ±inf."""
    u = np.ascontiguousarray(x, dtype=_F32).view(np.uint32)
    if random is None:
        r = np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))
    else:
        r = random.reshape(u.shape).astype(np.uint32)
    out = ((u + r) >> np.uint32(16)).astype(np.uint16)
    nan = (u & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
    if nan.any():
        out = np.where(nan, ((u >> np.uint32(16)) | np.uint32(0x40)).astype(np.uint16), out)
    return out


def from_bfloat16(bits: np.ndarray) -> np.ndarray:
    """bfloat16 bits (uint16) → float32 (exact)."""
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << np.uint32(16)).view(_F32)


def _mix64(z: Any) -> Any:
    """SplitMix64's finalizer (Steele, Lea & Flood 2014), on Python ints or uint64 arrays."""
    if isinstance(z, int):
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        return z ^ (z >> 31)
    z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
    return z ^ (z >> _U64(31))


def stream_key(seed: int, t: int, stream: int, slot: int) -> int:
    """The 64-bit key of one run of random bits: step ``t`` of parameter ``stream``, array
    ``slot`` (m, v or the parameter itself), under ``seed``."""
    z = _mix64((int(seed) + _GOLDEN) & _MASK64)
    z = _mix64(z ^ int(t))
    return _mix64(z ^ ((int(stream) << 2) | int(slot)))


def stream_keys(seed: int, t: int, streams: np.ndarray, slot: int) -> np.ndarray:
    """:func:`stream_key` for many parameters at once: uint64, one key per entry of
    ``streams``."""
    z = _mix64(_mix64((int(seed) + _GOLDEN) & _MASK64) ^ int(t))
    lanes = (np.asarray(streams, dtype=_U64) << _U64(2)) | _U64(slot)
    return _mix64(_U64(z) ^ lanes)


def rounding_bits(key: int, n: int) -> np.ndarray:
    """n random 16-bit numbers (uint32) for stochastic rounding: element i gets the top 16
    bits of fmix32(k + (i + 1)·γ₃₂ mod 2³²), k the low 32 bits of ``key`` (MurmurHash3's
    finalizer: 32-bit arithmetic, which the kernels vectorize)."""
    i = np.arange(1, n + 1, dtype=np.uint64).astype(np.uint32)  # wraps past 2³² elements
    z = np.uint32(key & 0xFFFFFFFF) + i * np.uint32(_GOLDEN32)
    z = (z ^ (z >> np.uint32(16))) * np.uint32(0x85EBCA6B)
    z = (z ^ (z >> np.uint32(13))) * np.uint32(0xC2B2AE35)
    z = z ^ (z >> np.uint32(16))
    return z >> np.uint32(16)


# -- a moment in low precision ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class Blockwise8bit:
    """A moment stored block-wise in 8 bits: ``codes`` (uint8, the moment's shape) and
    ``absmax`` (float32, one per block), in the ``signed`` or unsigned dynamic map.

    ``error`` is the rounding error of the last quantization, m̃ − m (the reference keeps it
    for diagnostics; the fused paths do not). ``np.asarray(q)`` dequantizes.
    """

    codes: np.ndarray
    absmax: np.ndarray
    signed: bool
    block_size: int = BLOCK_SIZE
    error: np.ndarray | None = None

    @classmethod
    def quantize(cls, x: np.ndarray, *, signed: bool, block_size: int, error: bool = True):
        x32 = np.asarray(x, dtype=_F32)
        codes, absmax = quantize_blockwise(x32, signed=signed, block_size=block_size)
        q = cls(codes, absmax, signed, block_size)
        if error:
            object.__setattr__(q, "error", q.dequantize() - x32)
        return q

    def dequantize(self) -> np.ndarray:
        return dequantize_blockwise(
            self.codes, self.absmax, signed=self.signed, block_size=self.block_size
        )

    @property
    def shape(self) -> tuple[int, ...]:
        return self.codes.shape

    @property
    def nbytes(self) -> int:
        return self.codes.nbytes + self.absmax.nbytes

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        x = self.dequantize()
        return x if dtype is None else x.astype(dtype)

    def __repr__(self) -> str:
        kind = "signed" if self.signed else "unsigned"
        return f"Blockwise8bit({kind}, shape={self.shape}, block_size={self.block_size})"


@dataclasses.dataclass(frozen=True, eq=False)
class BFloat16:
    """A moment stored in bfloat16: ``bits`` (uint16, the moment's shape). ``stream``
    numbers the parameter for stochastic rounding; ``error`` is the last rounding error."""

    bits: np.ndarray
    stream: int = 0
    error: np.ndarray | None = None

    @classmethod
    def round(cls, x: np.ndarray, *, stream: int, random: np.ndarray | None, error: bool = True):
        x32 = np.asarray(x, dtype=_F32)
        q = cls(to_bfloat16(x32, random), stream)
        if error:
            object.__setattr__(q, "error", q.dequantize() - x32)
        return q

    def dequantize(self) -> np.ndarray:
        return from_bfloat16(self.bits)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.bits.shape

    @property
    def nbytes(self) -> int:
        return self.bits.nbytes

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        x = self.dequantize()
        return x if dtype is None else x.astype(dtype)

    def __repr__(self) -> str:
        return f"BFloat16(shape={self.shape}, stream={self.stream})"


def load(s: Any) -> np.ndarray:
    """A moment as an array: dequantized from 8 bits or bfloat16; a float32 one as it is."""
    return s.dequantize() if isinstance(s, (Blockwise8bit, BFloat16)) else s


def rounding_error(s: Any) -> np.ndarray:
    """The last rounding error m̃ − m of a stored moment (zeros for a float32 one)."""
    if isinstance(s, (Blockwise8bit, BFloat16)):
        return s.error if s.error is not None else np.zeros(s.shape, _F32)
    return np.zeros_like(s)


def eight_bit(x: np.ndarray, min_8bit_size: int) -> bool:
    """Whether a parameter of this shape gets 8-bit state: rows (the last axis) of at least
    ``min_8bit_size`` elements; smaller ones keep float32, as bitsandbytes does."""
    return (x.shape[-1] if x.ndim else 1) >= min_8bit_size


def store(
    m: np.ndarray,
    *,
    precision: str,
    signed: bool,
    like: Any = None,
    block_size: int = BLOCK_SIZE,
    min_8bit_size: int = MIN_8BIT_SIZE,
    stream: int = 0,
    random: np.ndarray | None = None,
    error: bool = True,
) -> Any:
    """A freshly computed moment ``m`` in the state precision: ``"8bit"`` (block-wise, or
    float32 for small rows), ``"bf16"`` (``random``: bits for stochastic rounding, else round
    to nearest even), or ``"fp32"``. ``like``: the moment it replaces (its stream is kept)."""
    if precision == "8bit" and eight_bit(m, min_8bit_size):
        return Blockwise8bit.quantize(m, signed=signed, block_size=block_size, error=error)
    if precision == "bf16":
        stream = like.stream if isinstance(like, BFloat16) else stream
        return BFloat16.round(m, stream=stream, random=random, error=error)
    return m


__all__ = [
    "BLOCK_SIZE",
    "MIN_8BIT_SIZE",
    "PRECISIONS",
    "BFloat16",
    "Blockwise8bit",
    "dequantize_blockwise",
    "dynamic_map",
    "eight_bit",
    "from_bfloat16",
    "load",
    "quantize_blockwise",
    "rounding_bits",
    "rounding_error",
    "store",
    "stream_key",
    "stream_keys",
    "thresholds",
    "to_bfloat16",
    "zero_code",
]
