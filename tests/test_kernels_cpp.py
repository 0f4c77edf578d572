"""The C++ Adam kernel (adamlab.kernels.cpp_adam, run on PyTorch's thread pool) against the
reference rule, bit for bit, and the way adamlab.torch chooses it, builds it and falls back.

On NumPy arrays the kernel equals :meth:`adamlab.optim.Adam.update_leaf` bit for bit (same
operations, order and precision; IEEE division and square root; no FMA), for both compiled
variants (AVX2 and the baseline) and for steps that run on one thread and on several.
float16/bfloat16 storage equals the numba kernel's bits (both round the same float32 results
once), and through adamlab.torch the C++ and numba kernels give identical tensors.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from test_kernels import TORCH_CONFIGS, _awkward_floats, _random_config

import adamlab
import adamlab.torch as at
from adamlab.kernels import adam_host, cpp_adam, numba_available
from adamlab.optim.base import Hypers
from adamlab.torch import fast

cpp = pytest.mark.skipif(
    not cpp_adam.possible() or cpp_adam.load() is None,
    reason=f"the C++ kernel is unavailable: {cpp_adam.unavailable_reason() or 'no compiler'}",
)
ISAS = ["avx2", "baseline"]


@pytest.fixture(params=ISAS)
def isa(request):
    """Run the test with each compiled variant of the loops (AVX2 only where the CPU has it)."""
    got = cpp_adam.set_isa(request.param)
    if got != request.param:
        cpp_adam.set_isa("auto")
        pytest.skip(f"this CPU has no {request.param}")
    yield got
    cpp_adam.set_isa("auto")


def _reference_arrays(rng, opt, t, dtype, shape):
    x = rng.standard_normal(shape).astype(dtype)
    g = (rng.standard_normal(shape) * 10 ** rng.uniform(-3, 2)).astype(dtype)
    m = rng.standard_normal(shape).astype(dtype)
    v = np.abs(rng.standard_normal(shape)).astype(dtype)
    w = (v * rng.uniform(0.5, 2, size=shape)).astype(dtype)
    return x, g, m, v, w


# -- the kernel against the reference on NumPy arrays -------------------------------------------


@cpp
@pytest.mark.exact
@pytest.mark.parametrize("seed", range(60))
def test_cpp_kernel_equals_reference_bit_for_bit(isa, seed):
    """Random configurations (every flag), float32 and float64, sizes from a handful of
    elements (one thread) to several blocks (all threads)."""
    rng = np.random.default_rng(1000 + seed)
    dtype = [np.float32, np.float64][seed % 2]
    n = int(rng.choice([1, 7, 100, 4099, cpp_adam.SERIAL_BELOW + 4097, 200_003]))
    opt = adamlab.Adam(**_random_config(rng))
    t = [1, 2, 3][seed % 3] if seed < 12 else int(rng.integers(1, 2000))
    x, g, m, v, w = _reference_arrays(rng, opt, t, dtype, (n,))
    h = opt.hypers(t)
    sc, fl = adam_host.adam_step_args(opt, t, dtype)
    x_ref, s_ref = opt.update_leaf(np, x, g, Hypers(m=m, v=v, **({"v_max": w} if opt.amsgrad else {})), t, h)  # fmt: skip

    xk, mk, vk, wk = x.copy(), m.copy(), v.copy(), w.copy()
    cpp_adam.adam_step_arrays(xk, g.copy(), mk, vk, wk if opt.amsgrad else None, sc=sc, fl=fl)
    np.testing.assert_array_equal(xk, np.asarray(x_ref, dtype=dtype))
    np.testing.assert_array_equal(mk, s_ref["m"])
    np.testing.assert_array_equal(vk, s_ref["v"])
    if opt.amsgrad:
        np.testing.assert_array_equal(wk, s_ref["v_max"])
    else:
        np.testing.assert_array_equal(wk, w)  # v_max untouched


@cpp
@pytest.mark.exact
@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_many_tensors_one_launch_every_element_once(isa, n_threads):
    """Tensor sizes around the block size and the serial threshold, in one call: each
    thread's share starts and ends inside tensors; every element is updated exactly once."""
    old = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        rng = np.random.default_rng(1)
        b = 4096
        sizes = [1, b - 1, b, b + 1, 3 * b + 7, 5, cpp_adam.SERIAL_BELOW + 1, 2, 77_777]
        opt = adamlab.Adam(lr=1e-2, amsgrad=True)
        h = opt.hypers(3)
        sc, fl = adam_host.adam_step_args(opt, 3, np.float32)
        arrays = [[rng.standard_normal(n).astype(np.float32) for _ in range(5)] for n in sizes]
        for a in arrays:
            a[3], a[4] = np.abs(a[3]), np.abs(a[4])
        refs = [
            opt.update_leaf(np, a[0], a[1], Hypers(m=a[2], v=a[3], v_max=a[4]), 3, h)
            for a in arrays
        ]
        ptrs = np.array([[a[i].ctypes.data for a in arrays] for i in range(5)], dtype=np.int64)
        cpp_adam.adam_step_ptrs("float32", ptrs, np.array(sizes, dtype=np.int64), sc, fl)
        for a, (x_ref, s_ref) in zip(arrays, refs, strict=True):
            np.testing.assert_array_equal(a[0], x_ref)
            np.testing.assert_array_equal(a[2], s_ref["m"])
            np.testing.assert_array_equal(a[3], s_ref["v"])
            np.testing.assert_array_equal(a[4], s_ref["v_max"])
    finally:
        torch.set_num_threads(old)


def _half_arrays(rng, kind, n):
    """float16/bfloat16 bits (uint16) of awkward values: tiny, huge, ties, inf, NaN."""
    pool = _awkward_floats()
    pool = np.concatenate([pool, np.array([np.nan, -np.nan, 0.0, -0.0], np.float32)])
    out = []
    for _ in range(5):
        x = rng.choice(pool, size=n).astype(np.float32)
        if kind == "float16":
            with np.errstate(over="ignore"):
                out.append(x.astype(np.float16).view(np.uint16))
        else:
            out.append(torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16))  # fmt: skip
    return out


@cpp
@pytest.mark.exact
@pytest.mark.skipif(not numba_available(), reason="numba is not installed")
@pytest.mark.parametrize("kind", ["float16", "bfloat16"])
@pytest.mark.parametrize("seed", range(6))
def test_cpp_half_kernels_equal_numba_bit_for_bit(isa, kind, seed):
    """Both kernels convert bit by bit with the same rounding (NaN, inf, subnormals, ties)."""
    from adamlab.kernels import numba_adam

    rng = np.random.default_rng(seed)
    opt = adamlab.Adam(**_random_config(rng))
    t = int(rng.integers(1, 50))
    sc, fl = adam_host.adam_step_args(opt, t, np.float32)
    arrays = _half_arrays(rng, kind, 9001)
    a = [x.copy() for x in arrays]
    b = [x.copy() for x in arrays]
    cpp_adam.adam_step_arrays(*a[:4], a[4] if opt.amsgrad else None, kind=kind, sc=sc, fl=fl)
    numba_adam.adam_step_arrays(*b[:4], b[4] if opt.amsgrad else None, kind=kind, sc=sc, fl=fl)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def _lowmem_launch(rng, param_kind, sizes, block_size=None):
    """Tensors of a low-precision launch as NumPy arrays: float32 or bfloat16 (uint16) p and
    g with awkward values mixed in, and per tensor float32 or bfloat16 m and v, or (given
    ``block_size``) 8-bit codes with their absmax tables (a block of zeros and one with a NaN
    absmax among them). Each tensor: [p, g, m, v, absmax of m, absmax of v] (m and v again
    where not 8-bit)."""
    from adamlab.optim import quantized

    awkward = _awkward_floats()
    tensors, modes = [], []
    for n in sizes:
        x = [rng.standard_normal(n).astype(np.float32) for _ in range(2)]
        x[1] *= np.float32(10 ** rng.uniform(-3, 2))
        x[1][rng.integers(0, n, size=max(1, n // 50))] = rng.choice(awkward, size=max(1, n // 50))
        # NaNs with payloads in their low bits too (where rounding must not carry into them)
        nans = np.array([0x7FC0ABCD, 0xFFC1FFFF, 0x7F800001], np.uint32).view(np.float32)
        specials = np.array([np.nan, -np.nan, *nans, np.inf, -np.inf, 0.0, -0.0], np.float32)
        x[1][rng.integers(0, n, size=max(1, n // 500))] = rng.choice(
            specials, size=max(1, n // 500)
        )
        if param_kind == "bfloat16":
            x = [torch.from_numpy(a).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
                 for a in x]  # fmt: skip
        mode = int(rng.integers(2 if block_size is None else 3))
        m = rng.standard_normal(n).astype(np.float32)
        v = np.abs(rng.standard_normal(n)).astype(np.float32)
        am, av = m, v
        if mode == 1:
            m, v = (torch.from_numpy(a).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
                    for a in (m, v))  # fmt: skip
            am, av = m, v
        elif mode == 2:
            m, am = quantized.quantize_blockwise(m * 0.01, signed=True, block_size=block_size)
            v, av = quantized.quantize_blockwise(v * 1e-4, signed=False, block_size=block_size)
            if am.size > 2:
                am[1], av[2] = 0.0, np.nan
        tensors.append([x[0], x[1], m, v, am, av])
        modes.append(mode)
    return tensors, np.array(modes, np.int64)


@cpp
@pytest.mark.exact
@pytest.mark.skipif(not numba_available(), reason="numba is not installed")
@pytest.mark.parametrize("param_kind", ["float32", "bfloat16"])
@pytest.mark.parametrize("seed", range(8))
def test_cpp_lowmem_step_equals_numba_bit_for_bit(isa, param_kind, seed):
    """float32, bfloat16 and 8-bit state in C++ (AdamBF16's and Adam8bit's steps): the bits
    of numba_lowmem, every option: clip and unscale factors, stochastic rounding of state and
    bfloat16 parameters, every flag, tensors of 1 to 70,000 elements in one launch, blocks of
    32 to 2²⁰ elements (8-bit on odd seeds; the largest beyond every tensor and every chunk). Seeds 0-3 take Adam's and AdamW's flags, which the kernel
    steps in loops of their own (scaled and not: NaN, ±inf gradients reach m and v there)."""
    from adamlab.kernels import numba_lowmem

    rng = np.random.default_rng(seed)
    cfg = _random_config(rng)
    cfg.update(amsgrad=False, amsgrad_variant="raw")
    if seed < 4:  # Adam (no weight decay), then AdamW
        cfg.update(maximize=False, eps_placement="after_correction")
        cfg.update(weight_decay=0.0) if seed < 2 else cfg.update(
            weight_decay=0.01, decoupled_weight_decay=True
        )
    opt = adamlab.Adam(**cfg)
    sc, fl = adam_host.adam_step_args(opt, int(rng.integers(1, 500)), np.float32)
    sizes = [1, 7, 300, 4097, int(rng.integers(1, 70_000)), 70_000]
    block = (32, 64, 256, 1 << 20)[seed // 2 % 4] if seed % 2 else None
    tensors, modes = _lowmem_launch(rng, param_kind, sizes, block)
    n = len(sizes)
    scales = rng.uniform(0.1, 3, size=(2, n)).astype(np.float32) if seed % 2 else None
    if scales is not None:
        k1, k2 = rng.choice(n, size=2, replace=False)
        scales[:, k1] = 1  # (both factors 1 in a scaled launch: the unscaled loop)
        scales[int(rng.integers(2)), k2] = 1  # (one of them 1)
    state_keys = rng.integers(0, 2**63, size=(2, n), dtype=np.uint64) if seed % 4 < 2 else None
    param_keys = (
        rng.integers(0, 2**63, size=(1, n), dtype=np.uint64)
        if param_kind == "bfloat16" and seed % 3
        else None
    )
    results = []
    for step in (cpp_adam.lowmem_step, numba_lowmem.lowmem_step):
        arrays = [[a.copy() for a in t] for t in tensors]
        ptrs = np.array([[t[r].ctypes.data for t in arrays] for r in range(6)], np.int64)
        step(param_kind, ptrs, np.array(sizes, np.int64), modes, sc=sc, fl=fl, scales=scales,
             state_keys=state_keys, param_keys=param_keys, block_size=block or 256)  # fmt: skip
        results.append(arrays)
    for a, b in zip(*results, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x.view(np.uint8), y.view(np.uint8))


@cpp
@pytest.mark.exact
@pytest.mark.parametrize("signed", [True, False])
def test_cpp_8bit_codes_equal_the_reference(isa, signed):
    """The C++ kernel's nearest code (the cell table: one entry, one comparison; 32 lanes at
    a time with AVX2) is the reference's ``searchsorted`` over the thresholds: at every
    threshold and the floats next to it, and on two million values spread linearly and
    logarithmically over [-1, 1] (over [0, 1] for the unsigned map of v), and an ulp past
    ±1."""
    from adamlab.optim import quantized

    rng = np.random.default_rng(int(signed))
    tau = quantized.thresholds(signed)
    near = [tau, np.nextafter(tau, np.float32(-2)), np.nextafter(tau, np.float32(2))]
    spread = [
        rng.uniform(-1, 1, 1_000_000),
        np.sign(rng.uniform(-1, 1, 1_000_000)) * 10 ** rng.uniform(-40, 0, 1_000_000),
        np.array([0.0, -0.0, 1.0, -1.0, 1e-45, -1e-45, 1e-38, 2.0**-24, -(2.0**-24)]),
    ]
    x = np.concatenate([*near, *spread]).astype(np.float32)
    x = x[np.abs(x) <= 1]
    over = np.nextafter(np.float32(1), np.float32(2))  # (x·(1/N) may pass 1 by an ulp)
    x = np.concatenate([x, [over, -over]]).astype(np.float32)
    if not signed:
        x = np.abs(x)
    expected = np.searchsorted(tau, x, side="right").astype(np.uint8)
    np.testing.assert_array_equal(cpp_adam.codes8(x, signed), expected)


@cpp
@pytest.mark.exact
@pytest.mark.parametrize("signed", [True, False])
def test_cpp_8bit_codes_dense_sample_is_the_reference(isa, signed):
    """Every 251st float32 bit pattern with |x| ≤ 2, both signs (the wide table's cells up
    to 2 of each sign, the ones x·(1/N) can reach, at 261 points each; the test below takes
    the rest), against the reference's searchsorted."""
    from test_quantized import sweep_codes

    assert sweep_codes(signed, 251, quantize=lambda x: cpp_adam.codes8(x, signed)) == 0


@cpp
@pytest.mark.exact
@pytest.mark.parametrize("signed", [True, False])
def test_cpp_8bit_codes_past_one_and_nan_as_the_scalar_path(signed):
    """Past ±1 (which x·(1/N) passes by an ulp at most), ±inf and NaN the scalar path clamps to
    the last cell; the AVX2 path reads the wide table's entries for them: the same codes for
    every 16-bit top pattern (low bits 0, 1, 0x8000 and 0xFFFF)."""
    if cpp_adam.set_isa("avx2") != "avx2":
        cpp_adam.set_isa("auto")
        pytest.skip("this CPU has no avx2")
    top = np.arange(1 << 16, dtype=np.uint32) << 16
    x = (top[:, None] | np.array([0, 1, 0x8000, 0xFFFF], np.uint32)).ravel().view(np.float32)
    try:
        vector = cpp_adam.codes8(x, signed)
        cpp_adam.set_isa("baseline")
        scalar = cpp_adam.codes8(x, signed)
    finally:
        cpp_adam.set_isa("auto")
    np.testing.assert_array_equal(vector, scalar)


@cpp
@pytest.mark.exact
@pytest.mark.slow
@pytest.mark.parametrize("signed", [True, False])
def test_cpp_8bit_codes_every_float32_is_the_reference(signed):
    """All 2·2³⁰ float32 numbers with |x| ≤ 2, by the path dispatch picks."""
    from test_quantized import sweep_codes

    assert sweep_codes(signed, 1, quantize=lambda x: cpp_adam.codes8(x, signed)) == 0


def _floor_case(rng, slots, width):
    """Scratch for the arithmetic floor, its scalars (from an AdamW with weight decay: the
    floor runs Adam's defaults and must ignore it) and the reference that steps a slot."""
    sc, _ = adam_host.adam_step_args(adamlab.Adam(lr=1e-2, weight_decay=0.1), 7, np.float32)
    ref = adamlab.Adam(lr=1e-2)  # Adam's defaults, no weight decay: what the floor computes
    h = ref.hypers(7)
    x, g, m, v, _ = _reference_arrays(rng, ref, 7, np.float32, (slots, width))
    scratch = np.ascontiguousarray(np.stack([x, g, m, v], axis=1))

    def steps(x, g, m, v):  # the slot stepped once, twice, ...
        while True:
            x, s_ref = ref.update_leaf(np, x, g, Hypers(m=m, v=v), 7, h)
            m, v = s_ref["m"], s_ref["v"]
            yield x, m, v

    return scratch, sc, steps


@cpp
def test_arithmetic_floor_runs_the_element_rule_on_its_scratch(isa):
    """The benchmarks' arithmetic floor (cpp_adam.arith_floor) steps a thread's scratch
    arrays over and over by the element rule of Adam's defaults: after a launch of
    ``total`` elements, an element has taken one reference step (float32, ``update_leaf``)
    per pass of the slot's width over it, the last pass partial; g is only read."""
    rng = np.random.default_rng(5)
    width = 512
    scratch, sc, steps = _floor_case(rng, 1, width)
    x, g, m, v = (a.copy() for a in scratch[0])
    cpp_adam.arith_floor(scratch, 3 * width + 100, sc)  # serial: below the parallel threshold
    for passes, part in ((4, slice(0, 100)), (3, slice(100, width))):
        it = steps(x[part], g[part], m[part], v[part])
        for _ in range(passes):
            xr, mr, vr = next(it)
        np.testing.assert_array_equal(scratch[0, 0, part], xr)
        np.testing.assert_array_equal(scratch[0, 1, part], g[part])
        np.testing.assert_array_equal(scratch[0, 2, part], mr)
        np.testing.assert_array_equal(scratch[0, 3, part], vr)


@cpp
def test_arithmetic_floor_gives_each_thread_its_own_slot(isa):
    """A parallel launch: every thread steps its own slot, whole passes only, and the passes
    of all slots together cover the launch's elements once."""
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        rng = np.random.default_rng(6)
        width, total = 512, 4 * cpp_adam.SERIAL_BELOW
        threads = cpp_adam.parallel_width(total)
        scratch, sc, steps = _floor_case(rng, threads, width)
        before = scratch.copy()
        cpp_adam.arith_floor(scratch, total, sc)
        passes = []
        for k in range(threads):
            for n, (xr, mr, vr) in enumerate(steps(*(a.copy() for a in before[k])), start=1):  # noqa: B007
                if np.array_equal(scratch[k, 0], xr):
                    break
                assert n < total // width, f"slot {k} is not the reference stepped n times"
            np.testing.assert_array_equal(scratch[k, 2], mr)
            np.testing.assert_array_equal(scratch[k, 3], vr)
            passes.append(n)
        assert sum(passes) * width == total
        if threads == 2:
            assert min(passes) > 0
        if threads > 1:
            with pytest.raises(ValueError, match="threads would share 1 scratch slots"):
                cpp_adam.arith_floor(np.ascontiguousarray(scratch[:1]), total, sc)
        with pytest.raises(ValueError, match=r"writeable float32 scratch \(slots, 4, width\)"):
            cpp_adam.arith_floor(np.zeros((threads, 3, width), np.float32), total, sc)
        frozen = scratch.copy()
        frozen.flags.writeable = False
        with pytest.raises(ValueError, match="writeable float32 scratch"):
            cpp_adam.arith_floor(frozen, total, sc)
    finally:
        torch.set_num_threads(old)


@cpp
def test_cpp_lowmem_step_refuses_what_it_does_not_take():
    sc = np.ones(12, np.float32)
    fl = np.zeros(4, np.int64)
    p = np.zeros(8, np.float32)
    ptrs = np.array([[p.ctypes.data]] * 6, np.int64)
    sizes = np.array([8], np.int64)
    with pytest.raises(ValueError, match=r"\(given block_size\) 8-bit state and no AMSGrad"):
        cpp_adam.lowmem_step("float32", ptrs, sizes, np.array([2], np.int64), sc=sc, fl=fl)
    with pytest.raises(ValueError, match="no AMSGrad"):
        cpp_adam.lowmem_step("float32", ptrs, sizes, np.array([3], np.int64), sc=sc, fl=fl,
                             block_size=256)  # fmt: skip
    with pytest.raises(ValueError, match="block_size must be a positive power of two, got 100"):
        cpp_adam.lowmem_step("float32", ptrs, sizes, np.array([2], np.int64), sc=sc, fl=fl,
                             block_size=100)  # fmt: skip
    with pytest.raises(ValueError, match="no AMSGrad"):
        cpp_adam.lowmem_step(
            "float32", ptrs, sizes, np.array([0], np.int64), sc=sc, fl=np.array([0, 0, 1, 0])
        )
    with pytest.raises(ValueError, match="scales must be a contiguous float32"):
        cpp_adam.lowmem_step(
            "float32", ptrs, sizes, np.array([0], np.int64), sc=sc, fl=fl,
            scales=np.ones((2, 1)),
        )  # fmt: skip
    assert not p.any()  # nothing was written


@cpp
def test_step_counts_are_bumped():
    for dtype in (np.float32, np.float64):
        steps = [np.array(v, dtype) for v in (0.0, 3.0, 41.0)]
        old = cpp_adam.bump_steps([s.ctypes.data for s in steps], dtype)
        assert old.tolist() == [0.0, 3.0, 41.0]
        assert [float(s) for s in steps] == [1.0, 4.0, 42.0]


class _Dispatching(torch.Tensor):
    """A tensor subclass with ``__torch_dispatch__`` (its values are not plain memory)."""

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        return func(*args, **(kwargs or {}))


@cpp
def test_tensor_check_sees_every_change_a_plan_relies_on():
    """The plans' checks in the library (:class:`cpp_adam.TensorCheck`): the recorded tensors
    at their addresses, types, sizes and layout, and the parameters' gradients."""
    ps = [torch.zeros(5, requires_grad=True), torch.zeros(3, dtype=torch.float64, requires_grad=True)]  # fmt: skip
    state = [torch.zeros(5), torch.zeros((), dtype=torch.float64)]
    for p in ps:
        p.grad = torch.ones_like(p)
    params, states = cpp_adam.TensorCheck(ps), cpp_adam.TensorCheck(state)
    out = np.zeros(2, np.int64)
    assert params.check_params(out.ctypes.data) and states.check()
    assert out.tolist() == [p.grad.data_ptr() for p in ps]
    grad_cases = {
        "no gradient": None,
        "non-contiguous": torch.ones(6, dtype=torch.float64)[::2],
        "sparse": torch.ones(3, dtype=torch.float64).to_sparse(),
        "a dispatching subclass": torch.Tensor._make_subclass(
            _Dispatching, torch.ones(3, dtype=torch.float64)
        ),
    }
    for name, g in grad_cases.items():
        ps[1].grad = g
        assert not params.check_params(out.ctypes.data), name
    ps[1].grad = torch.ones(3, dtype=torch.float64)
    assert params.check_params(out.ctypes.data)
    ps[0].data = torch.ones(5)  # re-pointed parameter
    assert not params.check_params(out.ctypes.data)
    m = state[0]
    m.data = torch.ones(5)  # re-pointed state tensor (same object)
    assert not states.check()
    for change in (lambda: m.resize_(9), lambda: m.set_(torch.ones(10)[::2])):
        again = cpp_adam.TensorCheck(state)
        change()
        assert not again.check()


BACKENDS = [pytest.param("cpp", marks=cpp), pytest.param("numba", marks=pytest.mark.skipif(
    not numba_available(), reason="numba is not installed"))]  # fmt: skip


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_plan_bumper_reports_old_steps_and_whether_they_agree(backend, dtype):
    mod = (
        cpp_adam
        if backend == "cpp"
        else __import__("adamlab.kernels.numba_adam").kernels.numba_adam
    )
    for start in ([5.0, 5.0, 5.0], [0.0, 3.0, 41.0], [7.0], [2.0, 2.0, 9.0]):
        steps = [np.array(v, dtype) for v in start]
        bump = mod.bumper(np.array([s.ctypes.data for s in steps], np.int64), dtype)
        for k in range(3):  # the same buffers, called again: the next old values
            old, same = bump()
            assert old.tolist() == [v + k for v in start]
            assert same == (len(set(start)) == 1)
        assert [float(s) for s in steps] == [v + 3 for v in start]


# -- through adamlab.torch -----------------------------------------------------------------------


@cpp
def test_adamlab_torch_runs_the_cpp_kernel_by_default(monkeypatch):
    monkeypatch.delenv(fast.CPU_KERNEL_ENV, raising=False)
    assert fast.cpu_kernel() == "cpp"


def _run_steps(cfg, dtype, kernel, monkeypatch, steps=12):
    monkeypatch.setenv(fast.CPU_KERNEL_ENV, kernel)
    rng = np.random.default_rng(23)
    shapes = [(5, 7), (300,), (3,), (2, 2, 2), (5000,)]
    params = [torch.from_numpy(rng.standard_normal(s)).to(dtype).requires_grad_() for s in shapes]
    opt = at.Adam(params, lr=1e-2, fused=True, **cfg)
    for _ in range(steps):
        for p in params:
            g = torch.from_numpy(rng.standard_normal((*p.shape, 2)))
            g = torch.view_as_complex(g) if p.is_complex() else g[..., 0]
            p.grad = g.to(dtype).contiguous()
        opt.step()
    plan = next(iter(opt._fused_plans.values()))
    assert kernel == plan.backend.NAME
    return params, opt


@cpp
@pytest.mark.exact
@pytest.mark.skipif(not numba_available(), reason="numba is not installed")
@pytest.mark.parametrize("cfg", TORCH_CONFIGS)
@pytest.mark.parametrize(
    "dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.complex64]
)
def test_cpp_and_numba_paths_give_identical_tensors(dtype, cfg, monkeypatch):
    a, opt_a = _run_steps(cfg, dtype, "cpp", monkeypatch)
    b, opt_b = _run_steps(cfg, dtype, "numba", monkeypatch)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
        for k in opt_a.state[x]:
            assert torch.equal(opt_a.state[x][k], opt_b.state[y][k]), k


@cpp
def test_torch_set_num_threads_is_respected():
    old = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            assert cpp_adam.num_threads() == n
            assert cpp_adam.parallel_width(4 * cpp_adam.SERIAL_BELOW * n) == n
        assert cpp_adam.parallel_width(cpp_adam.SERIAL_BELOW // 2) == 1  # small: one thread
    finally:
        torch.set_num_threads(old)


@cpp
def test_concurrent_steps_from_threads_equal_sequential_ones():
    """ctypes releases the GIL: two optimizers stepped from two threads at once give what
    they give one after the other."""
    rng = np.random.default_rng(5)
    init = [torch.from_numpy(rng.standard_normal(n)).float() for n in (70_000, 300, 50_000)]
    grads = [[torch.from_numpy(rng.standard_normal(p.shape)).float() for p in init] for _ in range(8)]  # fmt: skip

    def run(params, opt):
        for gs in grads:
            for p, g in zip(params, gs, strict=True):
                p.grad = g.clone()
            opt.step()

    def make():
        ps = [p.clone().requires_grad_() for p in init]
        return ps, at.Adam(ps, lr=1e-2, fused=True)

    seq = make()
    run(*seq)
    jobs = [make() for _ in range(4)]
    threads = [threading.Thread(target=run, args=job) for job in jobs]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for ps, _ in jobs:
        for x, y in zip(ps, seq[0], strict=True):
            assert torch.equal(x, y)


# -- building, caching, falling back: fresh processes ------------------------------------------

_PROBE = r"""
import json, logging, os, sys
logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
import numpy as np, torch
import adamlab.torch as at
from adamlab.kernels import cpp_adam
from adamlab.torch import fast
lib = cpp_adam.library_path()
rng = np.random.default_rng(0)
params = [torch.from_numpy(rng.standard_normal(n)).float().requires_grad_() for n in (70000, 33, 900)]
opt = at.Adam(params, lr=1e-2, amsgrad=True)
built_before_step = lib.exists()
torch.randn(1 << 20).mul_(2)  # PyTorch's pool started
threads_before = len(os.listdir("/proc/self/task"))
for _ in range(3):
    for p in params:
        p.grad = torch.from_numpy(rng.standard_normal(p.shape)).float()
    opt.step()
maps = open("/proc/self/maps").read()
omp = sorted({line.split()[-1] for line in maps.splitlines() if "omp" in line.split()[-1]})
print(json.dumps({
    "kernel": fast.cpu_kernel(), "built_before_step": built_before_step, "built": lib.exists(),
    "numba": "numba" in sys.modules, "openmp": omp,
    "threads": [threads_before, len(os.listdir("/proc/self/task"))],
    "params": [p.detach().numpy().view(np.uint32).tolist()[:50] for p in params],
}))
"""


def _probe(ext: Path | None, **env):
    """Run _PROBE in a fresh process with build cache ``ext`` (None: the user's, where this
    test session has built the kernel) and ``env``; return its JSON report and its log."""
    full = {k: v for k, v in os.environ.items() if k != fast.CPU_KERNEL_ENV}
    full.update(env)
    if ext is not None:
        full["TORCH_EXTENSIONS_DIR"] = str(ext)
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], env=full, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


@cpp
@pytest.mark.slow
def test_built_at_first_step_without_ninja_cached_across_processes_one_openmp(tmp_path):
    """A fresh cache: nothing is built at import or construction; the first step builds,
    calling the compiler itself (only the compiler, assembler and linker on PATH: no ninja,
    no build system); the next process loads the build without compiling. Only PyTorch's
    OpenMP runtime is mapped, the steps start no thread of their own (they run on PyTorch's
    pool), and numba is never imported. (One build for all of it: a build takes ~20 s.)"""
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("c++", "as", "ld"):
        found = shutil.which(tool)
        if found is None:
            pytest.skip(f"no {tool} on PATH")
        (tools / tool).symlink_to(found)
    assert shutil.which("ninja", path=str(tools)) is None
    first, log1 = _probe(tmp_path / "ext", PATH=str(tools), CXX="")
    assert first["kernel"] == "cpp", log1
    assert not first["built_before_step"] and first["built"]
    assert "building the fused CPU Adam kernel" in log1
    second, log2 = _probe(tmp_path / "ext", PATH=str(tools), CXX="")  # (the command is
    assert second["kernel"] == "cpp" and second["built_before_step"]  # part of the cache key)
    assert "building" not in log2
    assert first["params"] == second["params"]
    assert not first["numba"] and not second["numba"]
    assert first["threads"][0] == first["threads"][1]  # no thread beside PyTorch's pool
    torch_omp = cpp_adam._torch_layout()["omp_lib"]
    assert [os.path.realpath(p) for p in second["openmp"]] == [torch_omp]


@pytest.fixture(scope="module")
def cpp_run():
    """_PROBE's report with the C++ kernel (the build this session uses)."""
    return _probe(None)[0]


@cpp
@pytest.mark.slow
@pytest.mark.skipif(not numba_available(), reason="numba is not installed")
@pytest.mark.parametrize(
    "env, reason",
    [
        ({"CXX": "/nonexistent/c++"}, None),  # no compiler
        ({"CXX": "false"}, "building adam_step.cpp failed"),  # a compiler that fails
        ({fast.CPU_KERNEL_ENV: "numba"}, None),  # asked for numba
    ],
    ids=["no-compiler", "build-fails", "numba-asked"],
)
def test_falls_back_to_numba_with_the_same_bits(tmp_path, env, reason, cpp_run):
    """Without the C++ kernel the numba kernel runs (and says so), with identical results."""
    good = cpp_run
    assert good["kernel"] == "cpp"
    got, log = _probe(tmp_path / "ext", **env)
    assert got["kernel"] == "numba" and got["numba"]
    assert not list((tmp_path / "ext").rglob("*.so"))  # nothing built (or left half-built)
    assert "fused CPU Adam steps run the numba kernel" in log
    if reason:
        assert reason in log
    assert got["params"] == good["params"]


def test_a_failed_build_is_not_retried_by_later_processes(tmp_path, monkeypatch):
    """A build that fails keeps the compiler's message beside it: later builds with the same
    source, command and PyTorch (a later process) raise it at once instead of compiling
    again; ``force=True`` tries again."""
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    monkeypatch.setenv("CXX", "false")  # a compiler that fails
    calls = []
    run = subprocess.run
    monkeypatch.setattr(cpp_adam.subprocess, "run", lambda *a, **k: calls.append(a) or run(*a, **k))
    with pytest.raises(RuntimeError, match=r"building adam_step\.cpp failed"):
        cpp_adam.build()
    marker = cpp_adam.library_path().parent / cpp_adam.FAILED_NAME
    assert len(calls) == 1 and "building adam_step.cpp failed" in marker.read_text()
    with pytest.raises(RuntimeError, match=r"an earlier build failed .* to try again"):
        cpp_adam.build()
    assert len(calls) == 1  # not compiled again
    with pytest.raises(RuntimeError, match=r"building adam_step\.cpp failed"):
        cpp_adam.build(force=True)
    assert len(calls) == 2
    assert not list(tmp_path.rglob("*.so"))


@cpp
def test_cpp_only_without_a_build_takes_the_reference_path(monkeypatch):
    """ADAMLAB_CPU_KERNEL=cpp where the C++ kernel is unavailable: no numba, the reference
    path (fused=None), and fused=True refuses with the reason."""
    monkeypatch.setenv(fast.CPU_KERNEL_ENV, "cpp")
    monkeypatch.setattr(fast, "cpp_possible", lambda: False)
    p = torch.zeros(5, requires_grad=True)
    opt = at.Adam([p], lr=1e-2)
    p.grad = torch.ones(5)
    opt.step()
    assert opt._fused_plans == {} and fast.cpu_kernel() is None
    strict = at.Adam([p], lr=1e-2, fused=True)
    with pytest.raises(RuntimeError, match="no CPU kernel"):
        strict.step()


def test_unknown_kernel_choice_is_refused(monkeypatch):
    monkeypatch.setenv(fast.CPU_KERNEL_ENV, "fortran")
    with pytest.raises(ValueError, match="ADAMLAB_CPU_KERNEL"):
        fast.cpu_kernel()


@cpp
def test_whole_group_steps_from_its_plan_and_falls_back_on_any_change(monkeypatch):
    """Steady state: a group whose parameters all take the kernel is stepped from its plan
    (fast.planned_step) without the per-parameter path; a parameter without a gradient, or
    with a sparse one, sends the step down the usual path (which skips, or refuses, as
    before), and nothing is written by the declined plan."""
    monkeypatch.delenv(fast.CPU_KERNEL_ENV, raising=False)
    params = [torch.randn(s, requires_grad=True) for s in (7, 300, 3)]
    opt = at.Adam(params, lr=1e-2)
    calls = []
    usual = fast.adam_step
    monkeypatch.setattr(fast, "adam_step", lambda *a, **k: calls.append(1) or usual(*a, **k))

    def step():
        for p in params:
            p.grad = torch.randn_like(p)
        opt.step()

    step()
    assert len(calls) == 1  # the first step builds the plan
    for _ in range(3):
        step()
    assert len(calls) == 1  # then the plan steps the whole group
    for p in params:
        p.grad = torch.randn_like(p)
    params[1].grad = None
    before = params[1].detach().clone()
    opt.step()
    assert len(calls) == 2 and torch.equal(params[1].detach(), before)
    for p in params:
        p.grad = torch.randn_like(p)
    params[2].grad = params[2].grad.to_sparse()
    snapshot = [p.detach().clone() for p in params]
    with pytest.raises(RuntimeError, match="does not support sparse gradients"):
        opt.step()
    assert all(torch.equal(p.detach(), s) for p, s in zip(params, snapshot, strict=True))


@cpp
def test_a_parameter_swapped_in_place_is_not_stepped_from_the_old_plan(monkeypatch):
    """torch.utils.swap_tensors (and load_state_dict in swap mode) gives the same Parameter
    object another TensorImpl and frees the old one: the plan must notice, not read freed
    memory or step the other tensor."""
    monkeypatch.delenv(fast.CPU_KERNEL_ENV, raising=False)
    p = torch.nn.Parameter(torch.ones(8))
    ref = torch.nn.Parameter(torch.ones(8))
    opt, opt_ref = at.Adam([p], lr=0.1), at.Adam([ref], lr=0.1, fused=False)
    for _ in range(2):
        for x, o in ((p, opt), (ref, opt_ref)):
            x.grad = torch.full((8,), 0.5)
            o.step()
    q = torch.nn.Parameter(torch.zeros(8))
    p_old = p.detach().clone()
    torch.utils.swap_tensors(p, q)  # p now holds zeros; q holds p's old values and memory
    with torch.no_grad():
        ref.zero_()
    for x, o in ((p, opt), (ref, opt_ref)):
        x.grad = torch.ones(8)
        o.step()
    assert torch.equal(p.detach(), ref.detach())
    assert torch.equal(q.detach(), p_old)  # p's old tensor: not stepped since
    model = torch.nn.Linear(4, 4)
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    opt = at.Adam(model.parameters(), lr=0.1)
    swap = torch.__future__.get_swap_module_params_on_conversion()
    torch.__future__.set_swap_module_params_on_conversion(True)
    try:
        for i in range(4):
            model(torch.ones(2, 4)).sum().backward()
            if i == 2:
                model.load_state_dict(saved)  # swaps TensorImpls into the same Parameters
            opt.step()
    finally:
        torch.__future__.set_swap_module_params_on_conversion(swap)
    assert all(torch.isfinite(t).all() for t in model.parameters())
