"""Low-precision optimizer state (``adamlab.optim.quantized``, ``Adam(state_precision=...)``).

The 8-bit rule is checked against bitsandbytes' own code, transcribed below from
bitsandbytes-foundation/bitsandbytes (``functional.create_dynamic_map`` and the PyTorch
backend's ``quantize_blockwise`` / ``dequantize_blockwise``, ``backends/default/ops.py``),
run with PyTorch: codes and absmax must be equal bit for bit. One deliberate difference,
stated where it is tested: bitsandbytes' PyTorch backend divides the last, partial block by
its absmax where its full blocks (and every bitsandbytes CPU path) multiply by the float32
reciprocal; adamlab multiplies everywhere.
"""

from __future__ import annotations

import numpy as np
import pytest

import adamlab
from adamlab.kernels import numba_available
from adamlab.optim import quantized as qz

# The reference needs NumPy only; bitsandbytes' code, transcribed below, runs on torch: those
# tests load it with conftest's ``optional_module`` (skipped only where torch is not installed).

RNG = np.random.default_rng(20261201)


# -- bitsandbytes, transcribed ------------------------------------------------------------------


def bnb_create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8):
    """bitsandbytes.functional.create_dynamic_map, line for line."""
    import torch

    data = []
    non_sign_bits = total_bits - 1
    additional_items = 2 ** (non_sign_bits - max_exponent_bits) - 1
    for i in range(max_exponent_bits):
        fraction_items = int(
            2 ** (i + non_sign_bits - max_exponent_bits) + 1
            if signed
            else 2 ** (i + non_sign_bits - max_exponent_bits + 1) + 1,
        )
        boundaries = torch.linspace(0.1, 1, fraction_items, dtype=torch.float32)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
        if signed:
            data += (-(10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
    if additional_items > 0:
        boundaries = torch.linspace(0.1, 1, additional_items + 1, dtype=torch.float32)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
        if signed:
            data += (-(10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
    data.append(0)
    data.append(1.0)
    assert len(data) == 2**total_bits
    gap = 256 - len(data)
    for _ in range(gap):
        data.append(0)
    data.sort()
    return torch.tensor(data, dtype=torch.float32)


def bnb_quantize_blockwise(A, code, blocksize):
    """bitsandbytes' PyTorch-backend quantize_blockwise (default/ops.py), with the partial last
    block scaled by the reciprocal like the full ones (see the module docstring)."""
    import torch

    A_flat = A.reshape(-1).float()
    n = A_flat.numel()
    rem = n % blocksize
    full = n - rem
    blocks = full // blocksize
    A_com = A_flat[:full].reshape(blocks, blocksize)
    absmax = A_com.abs().max(dim=-1)[0]
    scaled = torch.clamp(A_com * (1.0 / absmax.clamp(min=1e-38).view(-1, 1)), -1, 1).reshape(-1)
    if rem:
        am = A_flat[full:].abs().max().clamp(min=1e-38)
        absmax = torch.cat([absmax, A_flat[full:].abs().max().unsqueeze(0)])
        scaled = torch.cat([scaled, torch.clamp(A_flat[full:] * (1.0 / am), -1, 1)])
    bounds = (code[:-1] + code[1:]) / 2
    q = torch.bucketize(scaled, bounds, out_int32=True).to(torch.uint8)
    return q.reshape(A.shape), absmax


def bnb_dequantize_blockwise(A, absmax, code, blocksize):
    import torch

    n = A.numel()
    out = code[A.reshape(-1).to(torch.int64)]
    nb = -(-n // blocksize)
    pad = nb * blocksize - n
    out = torch.cat([out, torch.zeros(pad)]).reshape(nb, blocksize) * absmax.view(-1, 1)
    return out.reshape(-1)[:n].reshape(A.shape)


def moments(n, kind="m"):
    """Values like Adam's moments: m signed around 0, v ≥ 0 over many decades."""
    g = RNG.standard_normal(n).astype(np.float32) * np.float32(10.0 ** RNG.uniform(-4, 1))
    return g if kind == "m" else (g * g * np.float32(1e-3)).astype(np.float32)


# -- the dynamic map ------------------------------------------------------------------------------


@pytest.mark.exact
@pytest.mark.parametrize("signed", [True, False])
def test_dynamic_map_is_bitsandbytes(signed, optional_module):
    optional_module("torch")
    ours = qz.dynamic_map(signed)
    theirs = bnb_create_dynamic_map(signed).numpy()
    assert ours.dtype == np.float32 and ours.shape == (256,)
    np.testing.assert_array_equal(ours.view(np.uint32), theirs.view(np.uint32))


@pytest.mark.parametrize("signed", [True, False])
def test_the_transcription_is_the_installed_bitsandbytes(signed, optional_module):
    """The transcribed create_dynamic_map above, against the package itself (the test extra
    pins it): a slip in the transcription cannot pass both this and the test above."""
    optional_module("torch")
    functional = optional_module("bitsandbytes.functional")
    theirs = functional.create_dynamic_map(signed).numpy()
    ours = bnb_create_dynamic_map(signed).numpy()
    np.testing.assert_array_equal(ours.view(np.uint32), theirs.view(np.uint32))


def test_dynamic_map_by_hand():
    s, u = qz.dynamic_map(True), qz.dynamic_map(False)
    assert np.all(np.diff(s) > 0) and np.all(np.diff(u) > 0)  # sorted, no repeated codes
    assert s[-1] == 1 and u[-1] == 1 and u[0] == 0
    assert s[qz.zero_code(True)] == 0 and u[qz.zero_code(False)] == 0
    # signed: 127 codes per sign (2⁰ + … + 2⁶), no −1: the most negative is −mean(0.9859375, 1)
    assert (s < 0).sum() == 127 and (s > 0).sum() == 128
    assert s[0] == -np.float32(np.float32(0.9859375) + np.float32(1.0)) / np.float32(2)
    # the smallest magnitude: 10⁻⁶ × the mean of 0.1 and 1 (one interval in the first decade)
    assert s[qz.zero_code(True) + 1] == np.float32(1e-6) * np.float32(0.55)
    # unsigned: twice the codes per decade; the top decade has 128 intervals of (1 − 0.1)/128
    assert (u > 0).sum() == 255
    assert u[-2] == np.float32((np.float32(1 - 0.9 / 128) + np.float32(1.0)) / np.float32(2))


def test_thresholds_are_the_float32_midpoints():
    for signed in (True, False):
        code, tau = qz.dynamic_map(signed), qz.thresholds(signed)
        mid = (code[:-1] + code[1:]) / np.float32(2)
        assert np.all(tau > mid) and np.all(np.nextafter(tau, np.float32(-2)) <= mid)


# -- block-wise quantization -----------------------------------------------------------------------


@pytest.mark.exact
@pytest.mark.parametrize("n", [1, 3, 255, 256, 257, 4096, 10_000])
@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("block_size", [64, 256, 2048])
def test_quantize_blockwise_is_bitsandbytes(n, signed, block_size, optional_module):
    torch = optional_module("torch")
    x = moments(n, "m" if signed else "v")
    x[RNG.integers(n)] = 0.0
    codes, absmax = qz.quantize_blockwise(x, signed=signed, block_size=block_size)
    code = bnb_create_dynamic_map(signed)
    q, am = bnb_quantize_blockwise(torch.from_numpy(x), code, block_size)
    np.testing.assert_array_equal(codes, q.numpy())
    np.testing.assert_array_equal(absmax, am.numpy())
    back = qz.dequantize_blockwise(codes, absmax, signed=signed, block_size=block_size)
    np.testing.assert_array_equal(back, bnb_dequantize_blockwise(q, am, code, block_size).numpy())


@pytest.mark.exact
def test_quantize_at_every_threshold_is_bitsandbytes(optional_module):
    """Values on and next to each midpoint: the tie goes down (torch.bucketize), as ours."""
    torch = optional_module("torch")
    for signed in (True, False):
        tau = qz.thresholds(signed)
        mid = np.nextafter(tau, np.float32(-2))
        x = np.concatenate([mid, tau, np.nextafter(mid, np.float32(-2)), [1.0, 0.0]])
        x = x.astype(np.float32)  # absmax 1: normalized values are the values themselves
        codes, _ = qz.quantize_blockwise(x, signed=signed, block_size=1024)
        q, _ = bnb_quantize_blockwise(torch.from_numpy(x), bnb_create_dynamic_map(signed), 1024)
        np.testing.assert_array_equal(codes, q.numpy())
        k = len(tau)
        np.testing.assert_array_equal(codes[:k], np.arange(k))  # the midpoint: the lower code
        np.testing.assert_array_equal(codes[k : 2 * k], np.arange(1, k + 1))


def test_quantize_small_case_by_hand():
    code = qz.dynamic_map(True)
    x = np.array([2.0, -1.0, 0.0, 1e-9, 0.5, 0.25, 0.0, 0.0], np.float32)
    codes, absmax = qz.quantize_blockwise(x, signed=True, block_size=4)
    np.testing.assert_array_equal(absmax, np.float32([2.0, 0.5]))
    near = lambda y: int(np.argmin(np.abs(code.astype(np.float64) - y)))  # noqa: E731
    assert codes[0] == 255  # 2/2 = 1: the top code
    assert codes[1] == near(-0.5) and codes[2] == qz.zero_code(True)
    assert codes[3] == qz.zero_code(True)  # 5e-10 is nearer 0 than 5.5e-7
    assert codes[4] == 255 and codes[5] == near(0.5)
    assert codes[6] == codes[7] == qz.zero_code(True)
    back = qz.dequantize_blockwise(codes, absmax, signed=True, block_size=4)
    np.testing.assert_array_equal(back, code[codes] * np.repeat(absmax, 4))
    assert back[0] == 2.0 and back[4] == 0.5  # the absmax is exact


def test_quantize_zero_and_nonfinite_blocks():
    x = np.zeros(8, np.float32)
    x[5] = np.nan
    codes, absmax = qz.quantize_blockwise(x, signed=True, block_size=4)
    assert absmax[0] == 0 and np.isnan(absmax[1])
    assert np.all(codes == qz.zero_code(True))
    back = qz.dequantize_blockwise(codes, absmax, signed=True, block_size=4)
    assert np.all(back[:4] == 0) and np.all(np.isnan(back[4:]))


def test_quantize_rows_are_independent():
    x = np.stack([moments(300), moments(300) * np.float32(1e3)])
    codes, absmax = qz.quantize_blockwise(x, signed=True, block_size=256)
    assert absmax.shape == (2, 2)
    for k in range(2):
        c, a = qz.quantize_blockwise(x[k], signed=True, block_size=256)
        np.testing.assert_array_equal(codes[k], c)
        np.testing.assert_array_equal(absmax[k], a)


def test_quantization_error_is_within_half_a_code_gap():
    for signed in (True, False):
        x = moments(4096, "m" if signed else "v")
        codes, absmax = qz.quantize_blockwise(x, signed=signed, block_size=256)
        code = qz.dynamic_map(signed).astype(np.float64)
        scale = np.repeat(absmax, 256).astype(np.float64)
        y = x / scale
        gap = np.diff(code)
        i = codes.astype(int)
        lo = np.where(i > 0, gap[np.maximum(i - 1, 0)], 0)
        hi = np.where(i < 255, gap[np.minimum(i, 254)], 0)
        err = np.abs(code[i] - y)  # y lies between the midpoints around its code
        assert np.all(err <= np.maximum(lo, hi) / 2 * (1 + 1e-5))


# -- bfloat16 ------------------------------------------------------------------------------------


def test_bfloat16_round_to_nearest_even_is_torch(optional_module):
    torch = optional_module("torch")
    x = np.concatenate([moments(10_000), [1 + 2**-8, 1 + 3 * 2**-8, np.inf, -np.inf, 0.0, -0.0]])
    x = x.astype(np.float32)
    bits = qz.to_bfloat16(x)
    theirs = torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    np.testing.assert_array_equal(bits, theirs)
    assert qz.from_bfloat16(bits[-6]) == 1.0  # a tie: to even
    assert qz.from_bfloat16(bits[-5]) == 1 + 4 * 2**-8
    assert np.isnan(qz.from_bfloat16(qz.to_bfloat16(np.float32([np.nan]))))


def test_bfloat16_stochastic_rounding_by_hand():
    x = np.float32([1 + 2**-10])  # a quarter of the way from 1 to the next bfloat16, 1 + 2⁻⁷
    down = qz.to_bfloat16(x, np.array([0], np.uint32))
    up = qz.to_bfloat16(x, np.array([0xFFFF], np.uint32))
    assert qz.from_bfloat16(down)[0] == 1.0 and qz.from_bfloat16(up)[0] == 1 + 2**-7
    exact = np.float32([1.5])  # representable: never moves
    assert qz.from_bfloat16(qz.to_bfloat16(exact, np.array([0xFFFF], np.uint32)))[0] == 1.5
    # unbiased: the mean of many roundings is x
    r = qz.rounding_bits(qz.stream_key(1, 1, 0, 0), 200_000)
    many = qz.from_bfloat16(qz.to_bfloat16(np.full(r.size, x[0], np.float32), r))
    assert set(np.unique(many)) == {1.0, 1 + 2**-7}
    assert abs(many.astype(np.float64).mean() - float(x[0])) < 2e-5


def test_rounding_bits_are_seeded():
    a = qz.rounding_bits(qz.stream_key(0, 3, 1, qz.SLOT_M), 1000)
    assert np.array_equal(a, qz.rounding_bits(qz.stream_key(0, 3, 1, qz.SLOT_M), 1000))
    for other in (
        (1, 3, 1, qz.SLOT_M),
        (0, 4, 1, qz.SLOT_M),
        (0, 3, 2, qz.SLOT_M),
        (0, 3, 1, qz.SLOT_V),
    ):
        assert not np.array_equal(a, qz.rounding_bits(qz.stream_key(*other), 1000))
    assert a.max() < 2**16 and abs(a.mean() / 2**16 - 0.5) < 0.05


# -- Adam with low-precision state -----------------------------------------------------------------


def fp32_twin(opt):
    return adamlab.optim.Adam(
        lr=opt.lr, betas=opt.betas, eps=opt.eps, weight_decay=opt.weight_decay
    )


@pytest.mark.exact
@pytest.mark.parametrize("n", [5, 300, 5000])
def test_adam_8bit_is_dequantize_step_quantize(n):
    """Each step: m̃, ṽ dequantized; the fp32 step; m and v quantized (signed, unsigned)."""
    opt = adamlab.optim.Adam(lr=1e-2, state_precision="8bit", min_8bit_size=256)
    ref = fp32_twin(opt)
    x = RNG.standard_normal(n).astype(np.float32)
    s = opt.init(x)
    x_ref, m, v = x.copy(), np.zeros(n, np.float32), np.zeros(n, np.float32)
    for t in range(1, 8):
        g = RNG.standard_normal(n).astype(np.float32)
        x, s = opt.step(x, g, s)
        x_ref, r = ref.step(x_ref, g, adamlab.optim.AdamState(t - 1, m, v))
        np.testing.assert_array_equal(x, x_ref)
        if n >= 256:
            mc, ma = qz.quantize_blockwise(r.m, signed=True, block_size=256)
            vc, va = qz.quantize_blockwise(r.v, signed=False, block_size=256)
            np.testing.assert_array_equal(s.m.codes, mc)
            np.testing.assert_array_equal(s.v.codes, vc)
            np.testing.assert_array_equal(s.m.absmax, ma)
            np.testing.assert_array_equal(s.v.absmax, va)
            m = qz.dequantize_blockwise(mc, ma, signed=True, block_size=256)
            v = qz.dequantize_blockwise(vc, va, signed=False, block_size=256)
        else:  # small: float32 state, the plain Adam step
            assert isinstance(s.m, np.ndarray) and s.m.dtype == np.float32
            m, v = r.m, r.v
            np.testing.assert_array_equal(s.m, m)


def test_adam_small_tensors_keep_fp32_by_default():
    opt = adamlab.optim.Adam(state_precision="8bit")
    s = opt.init({"w": np.zeros(4096, np.float32), "b": np.zeros(4095, np.float32)})
    assert isinstance(s.m["w"], qz.Blockwise8bit) and isinstance(s.v["w"], qz.Blockwise8bit)
    assert isinstance(s.m["b"], np.ndarray)
    assert s.m["w"].nbytes == 4096 + 4 * 16  # 1 byte per element + one float32 per block


@pytest.mark.exact
def test_adam_bf16_is_round_step_round():
    opt = adamlab.optim.Adam(lr=1e-2, state_precision="bf16")
    ref = fp32_twin(opt)
    x = RNG.standard_normal(100).astype(np.float32)
    s = opt.init(x)
    x_ref, m, v = x.copy(), np.zeros(100, np.float32), np.zeros(100, np.float32)
    for t in range(1, 6):
        g = RNG.standard_normal(100).astype(np.float32)
        x, s = opt.step(x, g, s)
        x_ref, r = ref.step(x_ref, g, adamlab.optim.AdamState(t - 1, m, v))
        np.testing.assert_array_equal(x, x_ref)
        np.testing.assert_array_equal(s.m.bits, qz.to_bfloat16(r.m))
        np.testing.assert_array_equal(s.v.bits, qz.to_bfloat16(r.v))
        m, v = qz.from_bfloat16(s.m.bits), qz.from_bfloat16(s.v.bits)


def test_adam_bf16_stochastic_rounding_is_reproducible():
    def run(seed):
        opt = adamlab.optim.Adam(
            lr=1e-2, state_precision="bf16", bf16_stochastic_round=True, rounding_seed=seed
        )
        x = np.linspace(-1, 1, 64, dtype=np.float32)
        s = opt.init(x)
        for t in range(5):
            x, s = opt.step(x, np.cos(x * t).astype(np.float32), s)
        return x, s.m.bits, s.v.bits

    a, b, c = run(0), run(0), run(7)
    for u, w in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, w)
    assert not np.array_equal(a[1], c[1])


def test_adam_batch_rows_are_runs_alone():
    """A (K, n) batch of configurations: each row quantized and rounded as if alone."""
    for kw in (dict(state_precision="8bit", min_8bit_size=256),
               dict(state_precision="bf16", bf16_stochastic_round=True)):  # fmt: skip
        lr = np.array([[1e-3], [1e-2]])
        opt = adamlab.optim.Adam(lr=lr, **kw)
        x = np.stack([np.linspace(-1, 1, 600, dtype=np.float32)] * 2)
        s = opt.init(x)
        for _ in range(3):
            x, s = opt.step(x, np.sin(3 * x), s)
        for k in range(2):
            one = adamlab.optim.Adam(lr=float(lr[k, 0]), **kw)
            y = np.linspace(-1, 1, 600, dtype=np.float32)
            so = one.init(y)
            for _ in range(3):
                y, so = one.step(y, np.sin(3 * y), so)
            np.testing.assert_array_equal(x[k], y)
            np.testing.assert_array_equal(np.asarray(s.m)[k], np.asarray(so.m))


def test_diagnostics_report_quantization_error():
    opt = adamlab.optim.Adam(lr=1e-2, state_precision="8bit", min_8bit_size=256)
    ref = fp32_twin(opt)
    x = RNG.standard_normal(1024).astype(np.float32)
    s = opt.init(x)
    for t in range(1, 4):
        g = RNG.standard_normal(1024).astype(np.float32)
        _, r = ref.step(x, g, adamlab.optim.AdamState(t - 1, np.asarray(s.m), np.asarray(s.v)))
        x, s = opt.step(x, g, s)
    d = opt.diagnostics(s)
    np.testing.assert_array_equal(d["m_error"], np.asarray(s.m) - r.m)
    np.testing.assert_array_equal(d["v_error"], np.asarray(s.v) - r.v)
    c1, c2 = 1 - 0.9**3, 1 - 0.999**3
    np.testing.assert_allclose(d["m_hat_error"], d["m_error"] / c1, rtol=1e-6)
    np.testing.assert_allclose(d["v_hat_error"], d["v_error"] / c2, rtol=1e-6)
    np.testing.assert_array_equal(d["m_hat"], np.asarray(s.m) / np.float32(c1))
    assert 0 < np.abs(d["m_error"]).max() < 0.02 * np.abs(r.m).max()
    # fp32 state: no error keys
    assert "m_error" not in ref.diagnostics(r)


def test_skipped_step_keeps_quantized_state():
    opt = adamlab.optim.Adam(state_precision="8bit", min_8bit_size=0, nonfinite="skip")
    x = np.ones(8, np.float32)
    s = opt.init(x)
    x, s = opt.step(x, np.ones(8, np.float32), s)
    x2, s2 = opt.step(x, np.full(8, np.nan, np.float32), s)
    assert s2 is s and np.array_equal(x2, x)


# -- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(state_precision="4bit"), r"state_precision: '4bit'.*'fp32', 'bf16', '8bit'"),
        (dict(state_precision="8bit", block_size=100), r"block_size: 100.*power of two"),
        (dict(state_precision="8bit", block_size=0), r"block_size: 0"),
        (dict(state_precision="8bit", block_size=-256), r"block_size: -256"),
        (dict(state_precision="8bit", block_size=2.5), r"block_size: 2.5"),
        (dict(state_precision="8bit", min_8bit_size=-1), r"min_8bit_size: -1"),
        (dict(state_precision="8bit", amsgrad=True), r"amsgrad=True needs state_precision"),
    ],
)
def test_bad_input_is_refused_at_construction(kw, match):
    with pytest.raises(ValueError, match=match):
        adamlab.optim.Adam(**kw)


def test_low_precision_state_refuses_complex_and_non_numpy(optional_module):
    opt = adamlab.optim.Adam(state_precision="8bit", min_8bit_size=0)
    with pytest.raises((TypeError, ValueError), match="complex"):
        opt.init(np.zeros(4, np.complex64))
    torch = optional_module("torch")
    with pytest.raises(TypeError, match="NumPy"):
        opt.init(torch.zeros(4))


# -- the fused kernel is the reference, bit for bit -----------------------------------------------

needs_numba = pytest.mark.skipif(not numba_available(), reason="numba is not installed")


def kernel_state(precision, n, block_size):
    if precision == "8bit":
        nb = -(-n // block_size)
        m = (np.full(n, qz.zero_code(True), np.uint8), np.zeros(nb, np.float32))
        v = (np.full(n, qz.zero_code(False), np.uint8), np.zeros(nb, np.float32))
        return m, v
    return np.zeros(n, np.uint16), np.zeros(n, np.uint16)


@needs_numba
@pytest.mark.exact
@pytest.mark.parametrize("n", [1, 7, 9, 255, 256, 257, 1000, 4096, 70_001, 200_003])
@pytest.mark.parametrize("precision", ["8bit", "bf16"])
def test_kernel_is_reference(precision, n):
    from adamlab.kernels import adam_host, numba_lowmem

    block_size = 256 if n % 2 else 64
    stochastic = precision == "bf16" and n % 2 == 1
    opt = adamlab.optim.Adam(
        lr=3e-3, weight_decay=0.01, state_precision=precision, min_8bit_size=0,
        block_size=block_size, bf16_stochastic_round=stochastic, rounding_seed=5,
    )  # fmt: skip
    x = RNG.standard_normal(n).astype(np.float32)
    s = opt.init(x)
    p = x.copy()
    m, v = kernel_state(precision, n, block_size)
    for t in range(1, 6):
        g = (RNG.standard_normal(n) * 10.0 ** RNG.uniform(-3, 1, n)).astype(np.float32)
        if t == 3 and n > 300:
            g[256:512] = 0.0  # a block of zero gradients
        x, s = opt.step(x, g, s)
        sc, fl = adam_host.adam_step_args(opt, t, np.float32)
        keys = None
        if stochastic:
            keys = tuple(qz.stream_key(5, t, 0, slot) for slot in (qz.SLOT_M, qz.SLOT_V))
        numba_lowmem.step_arrays(p, g, m, v, sc=sc, fl=fl, block_size=block_size, state_keys=keys)
        np.testing.assert_array_equal(p, x)
        if precision == "8bit":
            for ours, ref in ((m, s.m), (v, s.v)):
                np.testing.assert_array_equal(ours[0], ref.codes)
                np.testing.assert_array_equal(ours[1], ref.absmax)
        else:
            np.testing.assert_array_equal(m, s.m.bits)
            np.testing.assert_array_equal(v, s.v.bits)


@needs_numba
@pytest.mark.exact
def test_kernel_quantizes_every_threshold_neighbour_as_reference():
    from adamlab.kernels import numba_lowmem

    for signed in (True, False):
        _, cells, first = numba_lowmem.tables(signed)
        tau = qz.thresholds(signed)
        x = np.concatenate(
            [tau, np.nextafter(tau, np.float32(-2)), np.nextafter(tau, np.float32(2)),
             RNG.uniform(-1, 1, 100_000), [0.0, -0.0, 1.0, -1.0, 1e-30, -1e-30]]
        ).astype(np.float32)  # fmt: skip
        if not signed:
            x = np.abs(x)
        got = numba_lowmem.quantize_normalized(x, cells, first)
        np.testing.assert_array_equal(got, np.searchsorted(tau, x, side="right"))


def sweep_codes(signed, stride, chunk=1 << 22, quantize=None):
    """Every ``stride``-th float32 bit pattern with |x| ≤ 2 (both signs): the number of values
    whose kernel code differs from the reference's, searchsorted(thresholds, x, "right").
    The kernel: ``quantize(x)``, by default numba's (:func:`numba_lowmem.quantize_normalized`:
    by arithmetic, by the cell table near a threshold). The reference count is taken the
    other way round, each threshold sought among the sorted values, which is fast enough for
    all 2³¹ of them."""
    if quantize is None:
        from adamlab.kernels import numba_lowmem

        _, cells, first = numba_lowmem.tables(signed)

        def quantize(x):
            return numba_lowmem.quantize_normalized(x, cells, first)

    tau = qz.thresholds(signed)
    top = int(np.float32(2.0).view(np.uint32))
    bad = 0
    for sign in (0, 0x80000000):
        for lo in range(0, top + 1, chunk * stride):
            bits = np.arange(lo, min(lo + chunk * stride, top + 1), stride, dtype=np.uint32)
            x = (bits | np.uint32(sign)).view(np.float32)
            got = quantize(x)
            up = x if sign == 0 else x[::-1]  # increasing
            steps = np.zeros(up.size + 1, np.int64)
            np.add.at(steps, np.searchsorted(up, tau, side="left"), 1)  # x ≥ τ from here on
            want = np.cumsum(steps)[: up.size]
            bad += int(np.count_nonzero(got != (want if sign == 0 else want[::-1])))
    return bad


@needs_numba
@pytest.mark.exact
@pytest.mark.parametrize("signed", [True, False])
def test_kernel_quantizer_dense_sample_is_reference(signed):
    """The kernel's quantizer (an estimate of the code from the float's bits, exact away
    from the thresholds) on every 251st float32 in [−2, 2] and on every float32 within 64
    ulps of a threshold, against the reference's searchsorted."""
    from adamlab.kernels import numba_lowmem

    assert sweep_codes(signed, 251) == 0
    _, cells, first = numba_lowmem.tables(signed)
    tau = qz.thresholds(signed)
    bits = tau.view(np.uint32).astype(np.int64)
    near = (bits[:, None] + np.arange(-64, 65)).astype(np.uint32).view(np.float32).ravel()
    x = np.concatenate([near, -near, [0.0, -0.0, 1.0, -1.0, 1e-45, -1e-45]]).astype(np.float32)
    got = numba_lowmem.quantize_normalized(x, cells, first)
    np.testing.assert_array_equal(got, np.searchsorted(tau, x, side="right"))


@needs_numba
@pytest.mark.exact
@pytest.mark.slow
@pytest.mark.parametrize("signed", [True, False])
def test_kernel_quantizer_every_float32_is_reference(signed):
    """All 2·2³⁰ float32 numbers with |x| ≤ 2 (the kernel sees x·(1/N) ≤ 1 + an ulp or so)."""
    assert sweep_codes(signed, 1) == 0


@needs_numba
@pytest.mark.exact
def test_kernel_bf16_stochastic_rounding_is_reference():
    from adamlab.kernels import numba_lowmem

    x = moments(10_001)
    key = qz.stream_key(3, 2, 1, qz.SLOT_V)
    ours = numba_lowmem.bf16_stochastic(x, np.uint64(key))
    np.testing.assert_array_equal(ours, qz.to_bfloat16(x, qz.rounding_bits(key, x.size)))


@needs_numba
@pytest.mark.exact
def test_kernel_gradient_scale_is_scaling_first():
    """A clip coefficient and an unscale factor applied in-kernel: the step on g·c·u (each
    product rounded to float32), as if clip_grad_norm_ and unscale_ had written them."""
    from adamlab.kernels import adam_host, numba_lowmem

    n = 3000
    opt = adamlab.optim.Adam(lr=1e-2, state_precision="8bit", min_8bit_size=0)
    x = RNG.standard_normal(n).astype(np.float32)
    s = opt.init(x)
    p = x.copy()
    m, v = kernel_state("8bit", n, 256)
    c, u = np.float32(0.3719), np.float32(1 / 1024)
    for t in range(1, 4):
        g = RNG.standard_normal(n).astype(np.float32)
        x, s = opt.step(x, (g * c) * u, s)
        sc, fl = adam_host.adam_step_args(opt, t, np.float32)
        numba_lowmem.step_arrays(p, g, m, v, sc=sc, fl=fl, scale=(c, u))
        np.testing.assert_array_equal(p, x)
        np.testing.assert_array_equal(m[0], s.m.codes)


# -- the reproduction ------------------------------------------------------------------------------


def test_low_memory_run_records_loss_and_errors():
    from adamlab import problems
    from adamlab.reproduce import low_memory

    p = problems.PROBLEMS["logreg-cancer"]
    r = low_memory.run(p, low_memory.VARIANTS["8bit"], steps=6, lr=1e-2, every=3)
    np.testing.assert_array_equal(r["steps"], [0, 3, 6])
    assert r["m_hat_error"].shape == (6,) and r["v_hat_error"].shape == (6,)
    assert np.all(r["m_hat_error"] > 0) and np.all(r["m_hat_error"] < 0.05)
    full = low_memory.run(p, {}, steps=6, lr=1e-2, every=3)
    assert full["m_hat_error"].size == 0
    assert abs(r["loss"][-1] / full["loss"][-1] - 1) < 0.01


@pytest.mark.slow
def test_low_memory_reproduction_writes_its_files(tmp_path):
    from adamlab.reproduce import low_memory

    r = low_memory.reproduce(tmp_path, quick=True)
    assert {f.name for f in r.files} == {
        "repro-low-memory.png", "repro-low-memory.txt", "repro-low-memory.json",
    }  # fmt: skip
    for name in low_memory.PROBLEMS:
        rows = r.numbers["problems"][name]
        assert rows["full"]["ratio_to_full"] == 1.0
        assert abs(rows["bf16, stochastic rounding"]["ratio_to_full"] - 1) < 0.01
