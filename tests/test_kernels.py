"""The fused Adam kernels against the reference rule (adamlab.optim.Adam.update_leaf).

numba (CPU): on NumPy arrays the kernel equals the reference bit for bit (same operations,
same precision, IEEE sqrt); through adamlab.torch it equals the reference path to one ulp per
step (PyTorch's CPU sqrt is not always correctly rounded) and bit for bit for float16/bfloat16
(one rounding of float32 arithmetic either way). Triton (CUDA): tested only where a GPU is.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import adamlab
import adamlab.torch as at
from adamlab.kernels import adam_host, numba_available, triton_available
from adamlab.optim.base import Hypers

pytestmark = pytest.mark.skipif(not numba_available(), reason="numba is not installed")


@pytest.fixture(scope="module")
def nb():
    from adamlab.kernels import numba_adam

    numba_adam.warm_up()
    return numba_adam


# -- float16 / bfloat16 bit conversions ----------------------------------------------------------


@pytest.mark.exact
def test_float16_to_float32_is_exact_for_every_half(nb):
    h = np.arange(2**16, dtype=np.uint16)
    ref = h.view(np.float16).astype(np.float32)
    got = nb.convert_f16_to_f32(h)
    same = (got.view(np.uint32) == ref.view(np.uint32)) | (np.isnan(got) & np.isnan(ref))
    assert same.all()


def _awkward_floats():
    rng = np.random.default_rng(0)
    halves = np.arange(2**16, dtype=np.uint16).view(np.float16)
    halves = halves[np.isfinite(halves) & (np.abs(halves) < 65504)].astype(np.float64)
    ulp = np.spacing(halves.astype(np.float16)).astype(np.float64)
    ties = halves + ulp / 2  # exact ties: round half to even
    with np.errstate(over="ignore"):
        x = np.concatenate(
            [rng.standard_normal(20000) * s for s in (1e-8, 1e-6, 1e-4, 1.0, 1e2, 1e4, 7e4)]
            + [halves, ties, ties + ulp / 8, ties - ulp / 8, [np.inf, -np.inf, 65520.0, 65519.99]]
        ).astype(np.float32)
    return x


@pytest.mark.exact
def test_float32_to_float16_rounds_like_numpy(nb):
    x = _awkward_floats()
    with np.errstate(over="ignore"):
        ref = x.astype(np.float16).view(np.uint16)
    np.testing.assert_array_equal(nb.convert_f32_to_f16(x), ref)
    nan = nb.convert_f32_to_f16(np.array([np.nan], np.float32)).view(np.float16)
    assert np.isnan(nan).all()


@pytest.mark.exact
def test_float32_to_bfloat16_rounds_like_torch(nb):
    x = _awkward_floats()
    x = np.concatenate([x, np.array([np.nan, -np.nan], np.float32)])
    ref = torch.from_numpy(x).to(torch.bfloat16)
    got = torch.from_numpy(nb.convert_f32_to_bf16(x).view(np.int16)).view(torch.bfloat16)
    finite = ~torch.isnan(ref)
    assert torch.equal(got[finite].view(torch.int16), ref[finite].view(torch.int16))
    assert torch.isnan(got[~finite]).all()  # NaN stays NaN (payload bits may differ)


# -- fuzz: the kernel against the reference on NumPy arrays ----------------------------------------


def _random_config(rng):
    amsgrad = bool(rng.integers(2))
    eps_placement = ["after_correction", "before_correction"][rng.integers(2)]
    variant = (
        "corrected"
        if amsgrad and eps_placement == "after_correction" and rng.integers(2)
        else "raw"
    )
    bc = [True, False, (False, True), (True, False)][rng.integers(4)]
    return dict(
        lr=float(10 ** rng.uniform(-5, -0.5)),
        betas=(float(rng.uniform(0, 0.99)), float(1 - 10 ** rng.uniform(-4, -0.5))),
        eps=float(10 ** rng.uniform(-12, -3)),
        weight_decay=float(rng.choice([0.0, 10 ** rng.uniform(-4, 0)])),
        amsgrad=amsgrad,
        maximize=bool(rng.integers(2)),
        decoupled_weight_decay=bool(rng.integers(2)),
        bias_correction=bc,
        eps_placement=eps_placement,
        eps_root=float(rng.choice([0.0, 1e-8])),
        amsgrad_variant=variant,
    )


@pytest.mark.exact
@pytest.mark.parametrize("seed", range(8))
def test_step_args_cached_per_optimizer_equal_the_full_computation(seed):
    """adam_step_args keeps what does not depend on t (hyperparameters, flags) on the core
    optimizer; every t must still give the bits of the scalars computed from hypers(t)."""
    rng = np.random.default_rng(seed)
    opt = adamlab.Adam(**_random_config(rng))
    fresh = adamlab.Adam(**_random_config(np.random.default_rng(seed)))  # an equal twin
    for dtype in (np.float32, np.float64):
        for t in [1, 2, 3, *rng.integers(4, 10**6, size=20).tolist()]:
            sc, fl = adam_host.adam_step_args(opt, t, dtype)
            ref_sc, ref_fl = adam_host._step_args(fresh, t, fresh.hypers(t), dtype)
            assert sc.dtype == dtype and sc.tobytes() == ref_sc.tobytes()
            assert fl.tolist() == ref_fl.tolist()


def test_step_args_follow_schedules_at_every_t():
    opt = adamlab.Adam(lr=lambda t: 0.1 / t, betas=(0.9, 0.999))
    for t in (1, 2, 7, 100):
        sc, _ = adam_host.adam_step_args(opt, t, np.float64)
        assert sc[adam_host.S_LR] == 0.1 / t
        assert sc[adam_host.S_C1] == 1 - adamlab.optim.powers.power(0.9, t)


def _kernel_args(opt, t, dtype):
    return (opt.hypers(t), *adam_host.adam_step_args(opt, t, dtype))


@pytest.mark.exact
@pytest.mark.parametrize("seed", range(60))
def test_numba_kernel_equals_reference_bit_for_bit(nb, seed):
    rng = np.random.default_rng(seed)
    dtype = [np.float32, np.float64][seed % 2]
    shape = tuple(int(s) for s in rng.integers(1, 40, size=rng.integers(1, 4)))
    opt = adamlab.Adam(**_random_config(rng))
    t = [1, 2, 3][seed % 3] if seed < 12 else int(rng.integers(1, 2000))
    x = rng.standard_normal(shape).astype(dtype)
    g = (rng.standard_normal(shape) * 10 ** rng.uniform(-3, 2)).astype(dtype)
    m = rng.standard_normal(shape).astype(dtype)
    v = np.abs(rng.standard_normal(shape)).astype(dtype)
    w = (v * rng.uniform(0.5, 2, size=shape)).astype(dtype)
    s = Hypers(m=m, v=v, **({"v_max": w} if opt.amsgrad else {}))
    h, sc, fl = _kernel_args(opt, t, dtype)
    x_ref, s_ref = opt.update_leaf(np, x, g, s, t, h)

    xk, mk, vk, wk = x.copy(), m.copy(), v.copy(), w.copy()
    nb.adam_step_arrays(xk, g.copy(), mk, vk, wk if opt.amsgrad else None, sc=sc, fl=fl)
    np.testing.assert_array_equal(xk, np.asarray(x_ref, dtype=dtype))
    np.testing.assert_array_equal(mk, s_ref["m"])
    np.testing.assert_array_equal(vk, s_ref["v"])
    if opt.amsgrad:
        np.testing.assert_array_equal(wk, s_ref["v_max"])


@pytest.mark.exact
def test_many_tensors_one_launch_crosses_chunk_boundaries(nb):
    """Sizes around the chunk size, in one call: every element updated exactly once."""
    rng = np.random.default_rng(1)
    sizes = [1, adam_host.CHUNK - 1, adam_host.CHUNK, adam_host.CHUNK + 1, 3 * adam_host.CHUNK + 7]
    opt = adamlab.Adam(lr=1e-2)
    h, sc, fl = _kernel_args(opt, 3, np.float32)
    arrays = [[rng.standard_normal(n).astype(np.float32) for _ in range(4)] for n in sizes]
    for a in arrays:
        a[3] = np.abs(a[3])
    refs = [opt.update_leaf(np, a[0], a[1], Hypers(m=a[2], v=a[3]), 3, h) for a in arrays]
    ptrs = np.array([[a[i].ctypes.data for a in arrays] for i in (0, 1, 2, 3, 2)], dtype=np.int64)
    nb.adam_step_ptrs("float32", ptrs, np.array(sizes, dtype=np.int64), sc, fl)
    for a, (x_ref, s_ref) in zip(arrays, refs, strict=True):
        np.testing.assert_array_equal(a[0], x_ref)
        np.testing.assert_array_equal(a[2], s_ref["m"])
        np.testing.assert_array_equal(a[3], s_ref["v"])


# -- through adamlab.torch: the fast path against the reference path -------------------------------

TORCH_CONFIGS = [
    {},
    {"amsgrad": True},
    {"weight_decay": 0.1, "maximize": True},
    {
        "weight_decay": 0.1,
        "decoupled_weight_decay": True,
        "amsgrad": True,
        "amsgrad_variant": "corrected",
    },
    {"eps_placement": "before_correction", "bias_correction": (False, True), "eps_root": 1e-6},
]


def _pair(params, cfg, cls=at.Adam):
    a = [p.clone().requires_grad_() for p in params]
    b = [p.clone().requires_grad_() for p in params]
    return a, b, cls(a, lr=1e-2, fused=True, **cfg), cls(b, lr=1e-2, fused=False, **cfg)


def _feed(rng, a, b):
    for x, y in zip(a, b, strict=True):
        g = torch.from_numpy(rng.standard_normal((*x.shape, 2)))
        g = torch.view_as_complex(g) if x.is_complex() else g[..., 0]
        g = g.to(device=x.device, dtype=x.dtype)
        x.grad, y.grad = g.clone(), g.clone()


@pytest.mark.parametrize("cfg", TORCH_CONFIGS)
@pytest.mark.parametrize(
    "dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.complex64]
)
def test_fast_path_matches_reference_path(nb, dtype, cfg):
    rng = np.random.default_rng(17)
    shapes = [(5, 7), (300,), (3,), (2, 2, 2)]
    params = [torch.from_numpy(rng.standard_normal(s)).to(dtype) for s in shapes]
    a, b, fast, ref = _pair(params, cfg)
    for _ in range(30):
        _feed(rng, a, b)
        fast.step()
        ref.step()
    for x, y in zip(a, b, strict=True):
        sx, sy = fast.state[x], ref.state[y]
        assert sx.keys() == sy.keys()
        pairs = [(x, y)] + [(sx[k], sy[k]) for k in sy]
        for u, w in pairs:
            u, w = u.detach(), w.detach()
            if dtype in (torch.float16, torch.bfloat16):
                assert torch.equal(u, w)  # one rounding of identical float32 arithmetic
            else:
                real = torch.view_as_real(w) if w.is_complex() else w
                eps = torch.finfo(real.dtype).eps
                torch.testing.assert_close(
                    u, w, rtol=8 * eps, atol=8 * eps * max(1.0, real.abs().max().item())
                )


def test_fast_path_matches_torch_fused_adamw_float32(nb):
    rng = np.random.default_rng(8)
    params = [torch.from_numpy(rng.standard_normal(s)).float() for s in [(64, 33), (1000,), (7,)]]
    a = [p.clone().requires_grad_() for p in params]
    b = [p.clone().requires_grad_() for p in params]
    ours = at.AdamW(a, lr=1e-2, amsgrad=True)
    theirs = torch.optim.AdamW(b, lr=1e-2, amsgrad=True, fused=True)
    for _ in range(200):
        _feed(rng, a, b)
        ours.step()
        theirs.step()
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(
            x, y, rtol=0, atol=16 * torch.finfo(torch.float32).eps * max(1, y.abs().max().item())
        )


def test_mixed_groups_dtypes_steps_and_fallbacks(nb):
    """One optimizer: two groups, float32 and float64 tensors, a parameter added later (its
    own step count), a non-contiguous one (reference path): all equal the reference."""
    rng = np.random.default_rng(3)
    p32 = torch.from_numpy(rng.standard_normal((4, 5))).float()
    p64 = torch.from_numpy(rng.standard_normal(9))
    nc = torch.from_numpy(rng.standard_normal((6, 3))).float().t()  # non-contiguous
    late = torch.from_numpy(rng.standard_normal(11)).float()
    mk = lambda ps: [p.clone().requires_grad_() for p in ps]  # noqa: E731
    a, b = mk([p32, p64, nc, late]), mk([p32, p64, nc, late])
    assert not a[2].is_contiguous()
    fast = at.Adam([{"params": a[:2]}, {"params": a[2:3], "lr": 3e-2}], lr=1e-2)
    ref = at.Adam([{"params": b[:2]}, {"params": b[2:3], "lr": 3e-2}], lr=1e-2, fused=False)
    for i in range(20):
        if i == 10:
            fast.add_param_group({"params": a[3:]})
            ref.add_param_group({"params": b[3:]})
        k = 3 if i < 10 else 4
        _feed(rng, a[:k], b[:k])
        fast.step()
        ref.step()
    assert fast.state[a[3]]["step"].item() == 10 and fast.state[a[0]]["step"].item() == 20
    for x, y in zip(a, b, strict=True):
        eps = torch.finfo(y.dtype).eps
        torch.testing.assert_close(x, y, rtol=8 * eps, atol=8 * eps)


class _Uncached(at.Adam):
    """The fused path without its per-group plan: every step classifies every parameter."""

    def _fast_step(self, group, core_opt, params):
        self._fused_plans.clear()
        return super()._fast_step(group, core_opt, params)


def _replace_param_data(opts, i):
    for o in opts:
        p = o.param_groups[0]["params"][i]
        p.data = p.data.flip(0).contiguous() * 0.5  # new memory, same size


def _reset_state_tensor(opts, i):
    for o in opts:
        p = o.param_groups[0]["params"][i]
        o.state[p]["exp_avg"] = torch.zeros_like(p)


def _repoint_state_tensor(opts, i):
    for o in opts:
        p = o.param_groups[0]["params"][i]
        m = o.state[p]["exp_avg"]
        m.data = m.data.clone() * 0.5  # same tensor object, new memory


def _load_state_dict(opts, i):
    for o in opts:
        o.load_state_dict(o.state_dict())


def _load_other_state_dict(opts, i):
    sd = opts[-1].state_dict()  # the reference's state, into all three (copies: the
    for o in opts:  # loaded tensors become the optimizer's state, not copies of them)
        o.load_state_dict(copy.deepcopy(sd))


def _clear_state(opts, i):
    for o in opts:
        o.state.clear()


def _switch_amsgrad(opts, i):
    for o in opts:
        o.param_groups[0]["amsgrad"] = True


def _add_group(opts, i):
    rng = np.random.default_rng(99)
    x = torch.from_numpy(rng.standard_normal((3, 4))).float()
    for o in opts:
        o.add_param_group({"params": [x.clone().requires_grad_()], "lr": 2e-2})


def _drop_grad(opts, i):
    for o in opts:
        o.param_groups[0]["params"][i].grad = None


def _non_contiguous_grad(opts, i):  # from now on, the gradient is a non-contiguous tensor
    pass  # (see the test's loop: the gradients are assigned after the event)


def _grad_float64(opts, i):  # the parameter becomes float64 (its state too, via load)
    for o in opts:
        p = o.param_groups[0]["params"][i]
        p.data = p.data.double()
        o.state[p] = {k: v if k == "step" else v.double() for k, v in o.state[p].items()}


def _reorder_state(opts, i):  # the same state dicts, in another order in opt.state
    for o in opts:
        p = o.param_groups[0]["params"][0]
        o.state[p] = o.state.pop(p)


def _non_contiguous(opts, i):  # a parameter becomes non-contiguous: reference path for it
    for o in opts:
        p = o.param_groups[0]["params"][i]
        p.data = p.data.transpose(0, -1).contiguous().transpose(0, -1)
        o.state[p] = {
            k: v if k == "step" else v.transpose(0, -1).contiguous().transpose(0, -1)
            for k, v in o.state[p].items()
        }


@pytest.mark.parametrize(
    "event",
    [
        _replace_param_data, _reset_state_tensor, _repoint_state_tensor, _load_state_dict,
        _load_other_state_dict, _clear_state, _switch_amsgrad, _add_group, _drop_grad,
        _non_contiguous_grad, _grad_float64, _non_contiguous, _reorder_state,
    ],
    ids=lambda f: f.__name__.strip("_"),
)  # fmt: skip
def test_cached_plan_is_invalidated_by_every_change(nb, event):
    """Later steps reuse a per-group plan (addresses, sizes, chunk table). After each kind of
    change between steps, the cached optimizer equals one that rebuilds everything every step
    bit for bit, and the reference path to a few ulps."""
    rng = np.random.default_rng(11)
    shapes = [(5, 7), (300,), (3,), (2, 2, 2), (adam_host.CHUNK + 5,)]
    params = [torch.from_numpy(rng.standard_normal(s)).float() for s in shapes]
    copies = [[p.clone().requires_grad_() for p in params] for _ in range(3)]
    cached = at.Adam(copies[0], lr=1e-2)
    uncached = _Uncached(copies[1], lr=1e-2)
    ref = at.Adam(copies[2], lr=1e-2, fused=False)
    opts = [cached, uncached, ref]
    for i in range(12):
        if i == 6:
            event(opts, 3)
        params_now = [[p for g in o.param_groups for p in g["params"]] for o in opts]
        g = [torch.from_numpy(rng.standard_normal(p.shape)).to(p.dtype) for p in params_now[0]]
        for ps in params_now:
            for p, gi in zip(ps, g, strict=True):
                if not (event is _drop_grad and i == 6 and p is ps[3]):
                    p.grad = gi.clone()
                if event is _non_contiguous_grad and i >= 6 and p is ps[3]:
                    p.grad = gi.transpose(0, -1).contiguous().transpose(0, -1)
                    assert not p.grad.is_contiguous() and torch.equal(p.grad, gi)
        plan = cached._fused_plans.get(id(cached.param_groups[0]))
        for o in opts:
            o.step()
        if 2 <= i < 6:  # steady state: the plan is reused, not rebuilt
            assert cached._fused_plans[id(cached.param_groups[0])] is plan
    a, b, c = ([p for g in o.param_groups for p in g["params"]] for o in opts)
    assert len(a) == len(b) == len(c)
    for x, y, z in zip(a, b, c, strict=True):
        assert torch.equal(x, y)
        sx, sy, sz = cached.state[x], uncached.state[y], ref.state[z]
        assert sx.keys() == sy.keys() == sz.keys()
        for k in sx:
            assert torch.equal(sx[k], sy[k]), k
        eps = torch.finfo(z.dtype).eps
        for u, w in [(x, z)] + [(sx[k], sz[k]) for k in sz]:
            torch.testing.assert_close(
                u.detach(), w.detach(), rtol=8 * eps, atol=8 * eps * max(1.0, w.abs().max().item())
            )


def test_cached_plan_steps_parameters_with_different_step_counts(nb):
    """A parameter whose state was reset restarts at t = 1 while the others go on: one plan,
    two step counts, as the full path does."""
    rng = np.random.default_rng(12)
    params = [torch.from_numpy(rng.standard_normal(n)).float() for n in (10, 20, 30)]
    a, b, fast, ref = _pair(params, {})
    for i in range(8):
        if i == 4:
            for o, ps in ((fast, a), (ref, b)):
                o.state[ps[1]]["step"].zero_()
        _feed(rng, a, b)
        fast.step()
        ref.step()
    assert fast.state[a[1]]["step"].item() == 4 and fast.state[a[0]]["step"].item() == 8
    for x, y in zip(a, b, strict=True):
        eps = torch.finfo(y.dtype).eps
        torch.testing.assert_close(x, y, rtol=8 * eps, atol=8 * eps)


def test_fused_true_refuses_what_it_cannot_fuse(nb):
    x = torch.zeros(4, 3).t().requires_grad_()  # non-contiguous
    opt = at.Adam([x], fused=True)
    x.grad = torch.ones(3, 4)
    with pytest.raises(RuntimeError, match="not contiguous"):
        opt.step()


def test_without_numba_the_reference_path_runs(nb, monkeypatch):
    import adamlab.torch.fast as fast

    rng = np.random.default_rng(4)
    params = [torch.from_numpy(rng.standard_normal(10)).float()]
    a, b, opt_a, opt_b = _pair(params, {})
    opt_a.param_groups[0]["fused"] = None
    monkeypatch.setattr(fast, "numba_available", lambda: False)
    monkeypatch.setattr(fast, "triton_available", lambda: False)
    monkeypatch.setattr(fast, "cpp_possible", lambda: False)  # nor the C++ kernel
    calls = []
    monkeypatch.setattr(fast, "_cpu_batch", lambda *args: calls.append(args))
    for _ in range(5):
        _feed(rng, a, b)
        opt_a.step()
        opt_b.step()
    assert not calls
    assert torch.equal(a[0], b[0])
    with pytest.raises(RuntimeError, match="needs numba"):
        at.Adam([torch.zeros(1, requires_grad=True)], fused=True)


@pytest.mark.skipif(not triton_available(), reason="needs a CUDA device and Triton")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("cfg", TORCH_CONFIGS)
def test_triton_kernel_matches_reference_on_gpu(dtype, cfg):  # pragma: no cover - GPU only
    rng = np.random.default_rng(5)
    params = [torch.from_numpy(rng.standard_normal(s)).to(dtype).cuda() for s in [(5, 7), (3000,)]]
    a, b, fast, ref = _pair(params, cfg)
    for _ in range(20):
        _feed(rng, a, b)
        fast.step()
        ref.step()
    for x, y in zip(a, b, strict=True):
        eps = torch.finfo(dtype).eps
        torch.testing.assert_close(x.float(), y.float(), rtol=8 * eps, atol=8 * eps)


@pytest.mark.parametrize(
    "cfg",
    [
        dict(amsgrad=a, maximize=mx, weight_decay=wd, decoupled_weight_decay=d)
        for a in (False, True)
        for mx in (False, True)
        for wd, d in ((0.0, False), (0.1, False), (0.1, True))
    ],
    ids=str,
)
def test_fast_path_matches_torch_optim_float64(nb, cfg):
    """The fused kernel through adamlab.torch.Adam, against torch.optim.Adam's for-loop:
    every flag the two share, 200 steps, float64."""
    rng = np.random.default_rng(21)
    params = [torch.from_numpy(rng.standard_normal(s)) for s in [(4, 6), (9,)]]
    a = [p.clone().requires_grad_() for p in params]
    b = [p.clone().requires_grad_() for p in params]
    ours = at.Adam(a, lr=1e-2, fused=True, **cfg)
    theirs = torch.optim.Adam(b, lr=1e-2, foreach=False, **cfg)
    for _ in range(200):
        _feed(rng, a, b)
        ours.step()
        theirs.step()
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-300)
        for k, v in theirs.state[y].items():
            torch.testing.assert_close(ours.state[x][k], v, rtol=1e-10, atol=1e-300)


_TRITON_INTERPRETED = r"""
import numpy as np, torch
import adamlab, array_api_compat.torch as xpt
from adamlab.kernels import adam_host, triton_adam
from adamlab.optim.base import Hypers
rng = np.random.default_rng(0)
for dtype, ulps in ((torch.float32, 4), (torch.float64, 4), (torch.float16, 0), (torch.bfloat16, 1)):
    for cfg in CONFIGS:
        opt = adamlab.Adam(lr=1e-2, **cfg)
        t, n = 7, 3001
        x, g, m = (torch.from_numpy(rng.standard_normal(n)).to(dtype) for _ in range(3))
        v = torch.from_numpy(np.abs(rng.standard_normal(n))).to(dtype)
        w = (v.double() * 1.1).to(dtype)
        h = opt.hypers(t)
        sc, fl = adam_host.adam_step_args(opt, t, np.float64)
        cd = torch.float64 if dtype == torch.float64 else torch.float32
        s = Hypers(m=m.to(cd), v=v.to(cd), **({"v_max": w.to(cd)} if opt.amsgrad else {}))
        xr, sr = opt.update_leaf(xpt, x.to(cd), g.to(cd), s, t, h)
        xk, mk, vk, wk = x.clone(), m.clone(), v.clone(), w.clone()
        triton_adam.adam_step(xk, g.clone(), mk, vk, wk if opt.amsgrad else None, sc, fl)
        pairs = [(xk, xr), (mk, sr["m"]), (vk, sr["v"])] + ([(wk, sr["v_max"])] if opt.amsgrad else [])
        for got, want in pairs:
            want = want.to(dtype)
            tol = ulps * torch.finfo(dtype).eps * want.abs().double().clamp_min(1)
            assert ((got.double() - want.double()).abs() <= tol).all(), (dtype, cfg)
print("ok")
"""


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="Triton is not installed")
def test_triton_kernel_in_the_interpreter_matches_reference():
    """Without a GPU, Triton's interpreter (TRITON_INTERPRET=1, NumPy underneath) runs the
    kernel's logic on the CPU. bfloat16 may differ by one ulp: the interpreter converts to
    bfloat16 by its own rounding."""
    code = f"CONFIGS = {TORCH_CONFIGS!r}\n" + _TRITON_INTERPRETED
    env = dict(os.environ, TRITON_INTERPRET="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "ok"
