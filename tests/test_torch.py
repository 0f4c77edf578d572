"""adamlab.torch drop-ins against their torch.optim twins: parity, checkpoints, PyTorch's surface.

Tolerances. float64: |ours − torch| ≤ 1e-10·|torch| elementwise (observed ≤ 1e-14) after 200
steps. float32: the two evaluate the same formula in a different order (e.g. PyTorch computes
√v/√(1−β₂ᵗ) where the core computes √(v/(1−β₂ᵗ))), so they differ by rounding; after 200 steps
we require |ours − torch| ≤ 16·eps32·max(max|torch|, 1) per tensor, with gradients of unit
scale (the moments mix gradients, so their rounding error scales with |g|, not with |m|).
"""

from __future__ import annotations

import copy
import io
import itertools
import zlib

import numpy as np
import pytest
import torch

import adamlab.torch as at

# fused=False keeps this file about the reference path; the fused kernels have their own tests.
FLAGS: dict[str, list[dict]] = {
    "Adam": [
        dict(amsgrad=a, maximize=mx, weight_decay=wd, decoupled_weight_decay=d)
        for a, mx, wd, d in itertools.product([False, True], [False, True], [0, 0.1], [False, True])
        if not (d and wd == 0)
    ],
    "AdamW": [
        dict(amsgrad=a, maximize=mx, weight_decay=wd)
        for a, mx, wd in itertools.product([False, True], [False, True], [0, 0.1])
    ],
    "SGD": [
        dict(lr=0.01, momentum=m, dampening=dmp, nesterov=n, weight_decay=wd, maximize=mx)
        for (m, dmp, n), wd, mx in itertools.product(
            [(0, 0, False), (0.9, 0, False), (0.9, 0.5, False), (0.9, 0, True)],
            [0, 0.1],
            [False, True],
        )
    ],
    "RMSprop": [
        dict(centered=c, momentum=m, weight_decay=wd, maximize=mx)
        for c, m, wd, mx in itertools.product([False, True], [0, 0.9], [0, 0.1], [False, True])
    ],
    "Adagrad": [
        dict(lr_decay=ld, initial_accumulator_value=iv, weight_decay=wd, maximize=mx)
        for (ld, iv), wd, mx in itertools.product([(0, 0), (0.01, 0.1)], [0, 0.1], [False, True])
    ],
    "Adamax": [
        dict(weight_decay=wd, maximize=mx) for wd, mx in itertools.product([0, 0.1], [False, True])
    ],
    "NAdam": [
        dict(weight_decay=wd, decoupled_weight_decay=d, maximize=mx, momentum_decay=md)
        for (wd, d), mx, md in itertools.product(
            [(0, False), (0.1, False), (0.1, True)], [False, True], [4e-3, 1e-2]
        )
    ],
    "RAdam": [
        dict(weight_decay=wd, decoupled_weight_decay=d, maximize=mx)
        for (wd, d), mx in itertools.product([(0, False), (0.1, False), (0.1, True)], [False, True])
    ],
}
CASES = [(name, cfg) for name, cfgs in FLAGS.items() for cfg in cfgs]
NAMES = list(FLAGS)


def _ids(case):
    name, cfg = case
    return name + "-" + "-".join(f"{k}={v}" for k, v in cfg.items())


def make_pair(name, cfg, params, **ours_kw):
    a = [p.detach().clone().requires_grad_() for p in params]
    b = [p.detach().clone().requires_grad_() for p in params]
    extra = {"fused": False} if name in ("Adam", "AdamW") else {}
    extra.update(ours_kw)
    ours = getattr(at, name)(a, **cfg, **extra)
    theirs = getattr(torch.optim, name)(b, **cfg, foreach=False)
    return a, b, ours, theirs


def random_params(rng, dtype, n=2):
    shapes = [tuple(int(s) for s in rng.integers(1, 6, size=rng.integers(1, 4))) for _ in range(n)]
    return [torch.from_numpy(rng.standard_normal(s)).to(dtype) for s in shapes]


def feed(params_lists, rng, dtype, scale=1.0):
    """Give every list the same random gradient."""
    for group in zip(*params_lists, strict=True):
        g = torch.from_numpy(scale * rng.standard_normal(tuple(group[0].shape))).to(dtype)
        for p in group:
            p.grad = g.clone()


def assert_close(a, b, dtype):
    for x, y in zip(a, b, strict=True):
        x, y = x.detach(), y.detach()
        assert x.dtype == y.dtype
        if dtype == torch.float64:
            torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-300)
        else:
            tol = 16 * torch.finfo(dtype).eps * max(y.abs().max().item(), 1.0)
            torch.testing.assert_close(x, y, rtol=0, atol=tol)


def run(a, b, ours, theirs, rng, dtype, steps):
    for _ in range(steps):
        feed([a, b], rng, dtype)
        ours.step()
        theirs.step()


@pytest.mark.parametrize("case", CASES, ids=_ids)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_parity_with_torch_optim(case, dtype):
    name, cfg = case
    rng = np.random.default_rng(zlib.crc32(f"{_ids(case)}{dtype}".encode()))  # replayable
    a, b, ours, theirs = make_pair(name, cfg, random_params(rng, dtype, 1))
    run(a, b, ours, theirs, rng, dtype, 200)
    assert_close(a, b, dtype)
    # the state holds the same keys and values as PyTorch's
    for pa, pb in zip(a, b, strict=True):
        sa, sb = ours.state[pa], theirs.state[pb]
        assert set(sa) == set(sb)
        for k in sb:
            if torch.is_tensor(sb[k]):
                assert sa[k].dtype == sb[k].dtype, k
        assert_close([sa[k] for k in sorted(sb)], [sb[k] for k in sorted(sb)], dtype)


@pytest.mark.parametrize("name", NAMES)
def test_complex_parameters_match_torch(name):
    rng = np.random.default_rng(7)
    params = [torch.complex(*(torch.from_numpy(rng.standard_normal((3, 2))) for _ in "ri"))]
    cfg = dict(FLAGS[name][1])
    a, b, ours, theirs = make_pair(name, cfg, params)
    for _ in range(50):
        g = torch.complex(*(torch.from_numpy(rng.standard_normal((3, 2))) for _ in "ri"))
        a[0].grad, b[0].grad = g.clone(), g.clone()
        ours.step()
        theirs.step()
    assert a[0].is_complex()
    torch.testing.assert_close(a[0], b[0], rtol=1e-10, atol=1e-300)
    for k, v in theirs.state[b[0]].items():
        torch.testing.assert_close(ours.state[a[0]][k], v, rtol=1e-10, atol=1e-300)


@pytest.mark.parametrize("name", ["Adam", "SGD", "RMSprop", "NAdam"])
def test_non_contiguous_parameters(name):
    rng = np.random.default_rng(3)
    base = torch.from_numpy(rng.standard_normal((6, 5)))
    pa = base.clone().t().requires_grad_()  # a transposed (non-contiguous) leaf
    pb = base.clone().t().requires_grad_()
    assert not pa.is_contiguous()
    cfg = FLAGS[name][2]
    ours = getattr(at, name)([pa], **cfg)
    theirs = getattr(torch.optim, name)([pb], **cfg, foreach=False)
    for _ in range(30):
        g = torch.from_numpy(rng.standard_normal((5, 6)))
        pa.grad, pb.grad = g.clone(), g.clone()
        ours.step()
        theirs.step()
    torch.testing.assert_close(pa, pb, rtol=1e-10, atol=1e-300)


def _reference_f64(name, cfg, x0, grads):
    x = x0.double().clone().requires_grad_()
    opt = getattr(at, name)([x], **cfg, **({"fused": False} if name == "Adam" else {}))
    for g in grads:
        x.grad = g.double()
        opt.step()
    return x.detach()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", ["Adam", "RMSprop", "Adagrad"])
def test_low_precision_arithmetic_is_float32(name, dtype):
    """float16/bfloat16 parameters: state stays in the parameter's dtype (as in PyTorch) and
    each step computes in float32, rounding once; that is at least as accurate as PyTorch's
    for-loop, which rounds after every operation."""
    rng = np.random.default_rng(11)
    x0 = torch.from_numpy(rng.standard_normal(256)).to(dtype)
    grads = [torch.from_numpy(rng.standard_normal(256)).to(dtype) for _ in range(40)]
    cfg = {"lr": 1e-2}
    a = x0.clone().requires_grad_()
    b = x0.clone().requires_grad_()
    ours = getattr(at, name)([a], **cfg, **({"fused": False} if name == "Adam" else {}))
    theirs = getattr(torch.optim, name)([b], **cfg, foreach=False)
    for g in grads:
        a.grad, b.grad = g.clone(), g.clone()
        ours.step()
        theirs.step()
    assert a.dtype == dtype
    assert all(v.dtype == dtype for k, v in ours.state[a].items() if k != "step")
    ref = _reference_f64(name, cfg, x0, grads)
    err_ours = (a.double() - ref).abs().mean().item()
    err_torch = (b.double() - ref).abs().mean().item()
    assert err_ours <= err_torch * 1.05 + 1e-12


# -- checkpoints ------------------------------------------------------------------------------


def _roundtrip(sd):
    buf = io.BytesIO()
    torch.save(sd, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_continues_bit_identically(name):
    rng = np.random.default_rng(5)
    cfg = FLAGS[name][-1]
    params = random_params(rng, torch.float32, 3)
    a, b, ours, _ = make_pair(name, cfg, params)
    for _ in range(20):
        feed([a], rng, torch.float32)
        ours.step()
    sd = _roundtrip(ours.state_dict())
    b = [p.detach().clone().requires_grad_() for p in a]
    kw = {"fused": False} if name in ("Adam", "AdamW") else {}
    twin = getattr(at, name)(b, **cfg, **kw)
    twin.load_state_dict(sd)
    for _ in range(20):
        feed([a, b], rng, torch.float32)
        ours.step()
        twin.step()
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("direction", ["torch_to_ours", "ours_to_torch"])
def test_checkpoints_interchange_with_torch_optim(name, direction):
    rng = np.random.default_rng(9)
    cfg = FLAGS[name][-1]
    params = random_params(rng, torch.float64, 2)
    a, b, ours, theirs = make_pair(name, cfg, params)
    first, second = (theirs, ours) if direction == "torch_to_ours" else (ours, theirs)
    src = b if direction == "torch_to_ours" else a
    for _ in range(30):
        feed([src], rng, torch.float64)
        first.step()
    # the checkpoint uses PyTorch's keys; load it into the other implementation
    sd = _roundtrip(first.state_dict())
    dst = a if direction == "torch_to_ours" else b
    with torch.no_grad():
        for p, q in zip(dst, src, strict=True):
            p.copy_(q)
    second.load_state_dict(sd)
    for _ in range(30):
        feed([src, dst], rng, torch.float64)
        first.step()
        second.step()
    assert_close(dst, src, torch.float64)


def test_state_dict_has_torch_layout():
    p = torch.zeros(3, requires_grad=True)
    q = torch.zeros(3, requires_grad=True)
    ours = at.Adam([p], amsgrad=True, fused=False)
    theirs = torch.optim.Adam([q], amsgrad=True)
    for opt, x in ((ours, p), (theirs, q)):
        x.grad = torch.ones(3)
        opt.step()
    so, st = ours.state_dict(), theirs.state_dict()
    assert so["state"].keys() == st["state"].keys()
    assert so["state"][0].keys() == st["state"][0].keys()
    assert so["state"][0]["step"].dtype == st["state"][0]["step"].dtype
    assert set(st["param_groups"][0]) <= set(so["param_groups"][0])


def test_old_checkpoints_load():
    """``step`` as a Python number, and ``amsgrad`` switched on over a state without
    ``max_exp_avg_sq``: the first resumes, the second starts the maximum from zero (as
    torch.optim does)."""
    rng = np.random.default_rng(2)
    x0 = torch.from_numpy(rng.standard_normal(5))
    a = x0.clone().requires_grad_()
    b = x0.clone().requires_grad_()
    ours = at.Adam([a], fused=False)
    theirs = torch.optim.Adam([b], foreach=False)
    for _ in range(10):
        feed([[a], [b]], rng, torch.float64)
        ours.step()
        theirs.step()
    sd = copy.deepcopy(theirs.state_dict())
    sd["state"][0]["step"] = 10  # how checkpoints before torch 1.12 stored it
    del sd["param_groups"][0]["decoupled_weight_decay"]
    sd["param_groups"][0]["amsgrad"] = True
    ours.load_state_dict(sd)
    theirs.load_state_dict(copy.deepcopy(sd))
    # torch.optim.Adam itself raises KeyError on a missing max_exp_avg_sq; give it the zeros
    theirs.state[b]["max_exp_avg_sq"] = torch.zeros_like(b)
    assert torch.is_tensor(ours.state[a]["step"])
    assert ours.param_groups[0]["bias_correction"] is True  # adamlab's switch took its default
    for _ in range(10):
        feed([[a], [b]], rng, torch.float64)
        ours.step()
        theirs.step()
    assert "max_exp_avg_sq" in ours.state[a]
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-300)


# -- PyTorch's surface ----------------------------------------------------------------------------


def test_param_groups_add_param_group_and_no_grad_parameters():
    w = torch.ones(3, requires_grad=True)
    bias = torch.ones(2, requires_grad=True)
    frozen = torch.ones(4, requires_grad=True)
    opt = at.SGD([{"params": [w], "lr": 0.1}], lr=0.5, momentum=0.9)
    opt.add_param_group({"params": [bias, frozen]})
    assert opt.param_groups[1]["lr"] == 0.5 and opt.param_groups[1]["momentum"] == 0.9
    w.grad, bias.grad = torch.ones(3), torch.ones(2)
    opt.step()
    torch.testing.assert_close(w, torch.full((3,), 0.9))
    torch.testing.assert_close(bias, torch.full((2,), 0.5))
    assert torch.equal(frozen, torch.ones(4)) and len(opt.state[frozen]) == 0
    opt.zero_grad()
    assert w.grad is None and bias.grad is None
    with pytest.raises(ValueError, match="Invalid lr: -1"):
        opt.add_param_group({"params": [torch.zeros(1, requires_grad=True)], "lr": -1})
    assert len(opt.param_groups) == 2


@pytest.mark.parametrize(
    "cls, kwargs, message",
    [
        (at.Adam, {"lr": -1.0}, r"Invalid lr: -1.0.*\[0, inf\)"),
        (at.Adam, {"betas": (1.0, 0.999)}, r"Invalid beta1.*1.0.*\[0, 1\)"),
        (at.AdamW, {"eps": -1e-8}, r"Invalid eps"),
        (at.Adam, {"eps_placement": "middle"}, r"Invalid eps_placement"),
        (at.SGD, {"nesterov": True}, r"Nesterov momentum needs momentum > 0"),
        (at.RMSprop, {"alpha": 1.5}, r"Invalid alpha"),
        (at.Adagrad, {"lr_decay": -1}, r"Invalid lr_decay"),
        (at.Adam, {"capturable": True}, r"capturable=True"),
    ],
)
def test_invalid_hyperparameters_fail_at_construction(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls([torch.zeros(2, requires_grad=True)], **kwargs)


def test_closure_and_hooks():
    x = torch.tensor([3.0], requires_grad=True)
    opt = at.Adam([x], lr=0.1)
    calls = []
    opt.register_step_pre_hook(lambda o, args, kw: calls.append("pre"))
    opt.register_step_post_hook(lambda o, args, kw: calls.append("post"))

    def closure():
        opt.zero_grad()
        loss = (x**2).sum()
        loss.backward()
        calls.append("closure")
        return loss

    loss = opt.step(closure)
    assert calls == ["pre", "closure", "post"]
    assert loss.item() == 9.0
    torch.testing.assert_close(x, torch.tensor([2.9]))


def test_sparse_gradients_are_a_clear_error():
    emb = torch.nn.Embedding(10, 3, sparse=True)
    opt = at.Adam(emb.parameters())
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match="does not support sparse gradients"):
        opt.step()


def test_tensor_lr():
    rng = np.random.default_rng(1)
    x0 = torch.from_numpy(rng.standard_normal(4))
    # a float64 tensor: PyTorch computes the step size in the lr tensor's dtype
    a, b, ours, theirs = make_pair("Adam", {"lr": torch.tensor(0.01, dtype=torch.float64)}, [x0])
    run(a, b, ours, theirs, rng, torch.float64, 20)
    assert_close(a, b, torch.float64)


@pytest.mark.parametrize("name", ["Adam", "AdamW", "NAdam", "RAdam", "Adamax"])
def test_one_cycle_lr_cycling_betas_matches_torch(name):
    rng = np.random.default_rng(4)
    a, b, ours, theirs = make_pair(name, {}, random_params(rng, torch.float64, 2))
    sched = [
        torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.05, total_steps=60, cycle_momentum=True)
        for o in (ours, theirs)
    ]
    betas_seen = set()
    for _ in range(60):
        feed([a, b], rng, torch.float64)
        ours.step()
        theirs.step()
        for s in sched:
            s.step()
        betas_seen.add(ours.param_groups[0]["betas"][0])
    assert len(betas_seen) > 10  # the scheduler really cycled β₁
    assert_close(a, b, torch.float64)


def test_step_lr_scheduler_matches_torch():
    rng = np.random.default_rng(6)
    a, b, ours, theirs = make_pair(
        "SGD", {"lr": 0.1, "momentum": 0.9}, random_params(rng, torch.float64)
    )
    sched = [torch.optim.lr_scheduler.StepLR(o, step_size=5, gamma=0.5) for o in (ours, theirs)]
    for _ in range(30):
        feed([a, b], rng, torch.float64)
        ours.step()
        theirs.step()
        for s in sched:
            s.step()
    assert ours.param_groups[0]["lr"] == theirs.param_groups[0]["lr"] < 0.1
    assert_close(a, b, torch.float64)


def test_grad_scaler_skips_non_finite_steps_and_matches_torch():
    torch.manual_seed(0)
    model_a = torch.nn.Linear(4, 3)
    model_b = copy.deepcopy(model_a)
    ours = at.Adam(model_a.parameters(), lr=1e-2)
    theirs = torch.optim.Adam(model_b.parameters(), lr=1e-2, foreach=False)
    scalers = [torch.amp.GradScaler("cpu", init_scale=2.0**10) for _ in range(2)]
    x = torch.randn(8, 4)
    for i in range(12):
        for model, opt, scaler in ((model_a, ours, scalers[0]), (model_b, theirs, scalers[1])):
            opt.zero_grad()
            inp = x.clone()
            if i == 5:
                inp[0, 0] = float("inf")  # an overflowing step: the scaler must skip it
            scaler.scale(model(inp).square().mean()).backward()
            scaler.step(opt)
            scaler.update()
    assert scalers[0].get_scale() == scalers[1].get_scale() < 2.0**10
    for pa, pb in zip(model_a.parameters(), model_b.parameters(), strict=True):
        assert torch.isfinite(pa).all()
        torch.testing.assert_close(pa, pb, rtol=0, atol=1e-6)
        assert ours.state[pa]["step"].item() == theirs.state[pb]["step"].item() == 11


def test_bias_correction_switch_reaches_the_core():
    x = torch.zeros(1, requires_grad=True)
    opt = at.Adam([x], lr=0.1, bias_correction=False, fused=False)
    x.grad = torch.ones(1)
    opt.step()
    # without correction the first step is α(1−β₁)/(√(1−β₂)+ε)·sign(g) ≈ 3.16α
    torch.testing.assert_close(x, torch.tensor([-0.1 * 0.1 / (0.001**0.5 + 1e-8)]))


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [(at.SGD, {"lr": lambda t: 0.1}), (at.Adam, {"betas": (lambda t: 0.9, 0.999)})],
)
def test_callable_hyperparameters_are_refused_like_torch_optim(cls, kwargs):
    p = torch.zeros(2, requires_grad=True)
    with pytest.raises(TypeError, match=r"is a callable: .*torch.optim.lr_scheduler"):
        cls([p], **kwargs)


# -- the per-step core cache (CoreOptimizer.core) ------------------------------------------------


@pytest.mark.parametrize("fused", [None, False])
def test_tensor_lr_changed_in_place_by_a_scheduler_takes_effect(fused):
    """A tensor lr is edited in place (schedulers ``fill_`` it): the cached core must not
    outlive the value. Equal to torch.optim.Adam given the same tensor lr and scheduler."""
    rng = np.random.default_rng(8)
    params = random_params(rng, torch.float32, 3)
    a = [p.clone().requires_grad_() for p in params]
    b = [p.clone().requires_grad_() for p in params]
    ours = at.Adam(a, lr=torch.tensor(0.05), fused=fused)
    theirs = torch.optim.Adam(b, lr=torch.tensor(0.05), foreach=False)
    sched = [torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.3) for o in (ours, theirs)]
    for _ in range(12):
        feed([a, b], rng, torch.float32)
        ours.step()
        theirs.step()
        for s in sched:
            s.step()
    assert float(ours.param_groups[0]["lr"]) < 0.05 * 0.3**3
    assert_close(a, b, torch.float32)


def test_core_is_reused_while_the_group_is_unchanged_and_rebuilt_on_edits():
    p = torch.zeros(3, requires_grad=True)
    opt = at.Adam([p], lr=0.1, betas=(0.9, 0.99))
    group = opt.param_groups[0]
    first = opt.core(group)
    assert opt.core(group) is first  # nothing changed: the same core
    group["lr"] = 0.2  # a new float (schedulers assign one every step)
    assert opt.core(group).lr == 0.2
    group["lr"] = 0.1
    assert opt.core(group) is first  # equal values: the cached core again
    group["betas"] = [0.8, 0.99]  # a list can be edited in place: read every step
    assert opt.core(group).betas == (0.8, 0.99)
    group["betas"][0] = 0.5
    assert opt.core(group).betas == (0.5, 0.99)
    group["betas"] = (0.9, 0.95)
    again = opt.core(group)
    assert again.betas == (0.9, 0.95) and opt.core(group) is again
    assert "state_precision" not in group  # a core argument the group does not have: absent
    group["state_precision"] = None  # is not the same as None, which the core refuses
    with pytest.raises(ValueError, match="Invalid state_precision: None"):
        opt.core(group)


@pytest.mark.parametrize("fused", [None, False])
def test_a_lazily_conjugated_gradient_is_refused_as_torch_refuses_it(fused):
    """Autograd leaves ``z.grad`` a lazy conjugate view for ``z.conj()``: its memory is not
    its values. The fused path must not read it as memory (it did, silently); like the
    reference path and torch.optim it refuses it."""
    z = torch.randn(4, dtype=torch.complex64, requires_grad=True)
    opt = at.Adam([z], lr=0.1, fused=fused)
    before = z.detach().clone()
    for _ in range(2):
        opt.zero_grad()
        (z.conj() * torch.tensor(2.0 + 1j)).real.sum().backward()
        assert z.grad.is_conj()
        with pytest.raises(RuntimeError, match="conjugated"):
            opt.step()
    assert torch.equal(z.detach(), before)


def test_a_zero_tensor_gradient_takes_the_reference_path():
    """A ZeroTensor (no memory behind it) is not read by a kernel."""
    ps = [torch.randn(4, requires_grad=True) for _ in range(2)]
    a = [p.detach().clone().requires_grad_() for p in ps]
    b = [p.detach().clone().requires_grad_() for p in ps]
    fused, ref = at.Adam(a, lr=0.1), at.Adam(b, lr=0.1, fused=False)
    for i in range(4):
        g = [torch.randn(4) for _ in ps]
        for xs in (a, b):
            for x, gi in zip(xs, g, strict=True):
                x.grad = torch._efficientzerotensor(4) if i == 2 and x is xs[0] else gi.clone()
        fused.step()
        ref.step()
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", [torch.float32, torch.complex64])
def test_first_step_keeps_the_cores_fresh_state_without_a_copy(dtype, monkeypatch):
    """The state tensors are the core's fresh ones (init_leaf), not copies: a first step
    allocates the state once (the peak memory of a first step is the state's, not twice)."""
    from adamlab import optim as core

    made = []
    init_leaf = core.Adam.init_leaf

    def spy(self, xp, x):
        fresh = init_leaf(self, xp, x)
        made.append(fresh)
        return fresh

    monkeypatch.setattr(core.Adam, "init_leaf", spy)
    p = torch.nn.Parameter(torch.randn(300, dtype=dtype))
    q = torch.nn.Parameter(torch.randn(20, 15).t())  # non-contiguous: laid out as p is
    opt = at.Adam([p, q], lr=1e-2, fused=False)
    p.grad, q.grad = torch.ones_like(p), torch.ones_like(q)
    opt.step()
    fresh = made[0]
    for slot, key in (("m", "exp_avg"), ("v", "exp_avg_sq")):
        state = opt.state[p][key]
        assert state.data_ptr() == fresh[slot].data_ptr()
        assert state.dtype == p.dtype and state.shape == p.shape
    assert opt.state[p]["exp_avg"].data_ptr() != opt.state[p]["exp_avg_sq"].data_ptr()
    assert opt.state[q]["exp_avg"].stride() == q.stride()
