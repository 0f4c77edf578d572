"""The drop-ins with low-precision state (``adamlab.torch.Adam8bit``, ``AdamW8bit``,
``AdamBF16``, ``AdamWBF16``) and ``adamlab.torch.clip_grad_norm_``.

The math is the core's (:mod:`tests.test_quantized` pins that to bitsandbytes' rule); here:
the fused kernel and the reference path give the same bits, the drop-ins equal the core on
flattened parameters, checkpoints round-trip bit for bit and load from ``torch.optim.Adam``,
and a clip deferred into the step equals clipping first.
"""

from __future__ import annotations

import copy
import io

import numpy as np
import pytest
import torch

import adamlab
import adamlab.torch as at
from adamlab.kernels import numba_available
from adamlab.optim import quantized as qz

CLASSES = [at.Adam8bit, at.AdamW8bit, at.AdamBF16, at.AdamWBF16]
DEFER_MIN_MEAN_NUMEL = at.Adam.clip_defer_min_mean_numel


@pytest.fixture(autouse=True)
def _adam_takes_clips_of_small_tensors(monkeypatch):
    """The models here are small: adamlab.torch.Adam takes the clip into its step for them
    too (by default only for tensors averaging 2¹⁸ elements; see the test of that rule)."""
    monkeypatch.setattr(at.Adam, "clip_defer_min_mean_numel", 0)


needs_numba = pytest.mark.skipif(not numba_available(), reason="numba is not installed")


def model(seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(120, 70), torch.nn.Tanh(), torch.nn.Linear(70, 10)
    )  # 8400 + 70 + 700 + 10 parameters: one over min_8bit_size=4096, three under
    return net.to(dtype)


def batch(i, dtype=torch.float32):
    g = torch.Generator().manual_seed(100 + i)
    return torch.randn(64, 120, generator=g, dtype=dtype), torch.randint(0, 10, (64,), generator=g)


def backward(net, i):
    x, y = batch(i, next(net.parameters()).dtype)
    loss = torch.nn.functional.cross_entropy(net(x).float(), y)
    loss.backward()
    return loss


def train(net, opt, steps, start=0, clip=None):
    for i in range(start, start + steps):
        opt.zero_grad()
        backward(net, i)
        if clip is not None:
            clip(net.parameters())
        opt.step()


def same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["state"].keys() == sb["state"].keys()
    for k in sa["state"]:
        assert sa["state"][k].keys() == sb["state"][k].keys()
        for key, va in sa["state"][k].items():
            vb = sb["state"][k][key]
            assert va.dtype == vb.dtype and va.shape == vb.shape, key
            assert torch.equal(va.view(-1).view(torch.uint8), vb.view(-1).view(torch.uint8)), key


def same_params(a, b):
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)


# -- the kernel is the reference --------------------------------------------------------------------


@needs_numba
@pytest.mark.exact
@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("stochastic", [False, True])
def test_fused_is_reference(cls, stochastic):
    nets = [model(), model()]
    opts = [
        cls(n.parameters(), lr=1e-2, fused=f, bf16_stochastic_round=stochastic, rounding_seed=3)
        for n, f in zip(nets, (True, False), strict=True)
    ]
    for opt, net in zip(opts, nets, strict=True):
        train(net, opt, 6)
    same_params(*nets)
    same_state(*opts)


@needs_numba
@pytest.mark.exact
@pytest.mark.parametrize("cls", [at.AdamW8bit, at.AdamWBF16])
def test_fused_is_reference_for_bfloat16_parameters(cls):
    nets = [model(dtype=torch.bfloat16), model(dtype=torch.bfloat16)]
    opts = [
        cls(n.parameters(), lr=1e-2, fused=f, bf16_stochastic_round=True)
        for n, f in zip(nets, (True, False), strict=True)
    ]
    for opt, net in zip(opts, nets, strict=True):
        train(net, opt, 4)
    same_params(*nets)
    same_state(*opts)


@pytest.mark.exact
@pytest.mark.parametrize(
    ("cls", "precision"), [(at.Adam8bit, "8bit"), (at.AdamW8bit, "8bit"), (at.AdamBF16, "bf16")]
)
def test_drop_in_is_the_core_rule(cls, precision):
    """Each parameter, flattened, steps as adamlab.optim.Adam(state_precision=...) does."""
    torch.manual_seed(1)
    p = torch.nn.Parameter(torch.randn(50, 100))
    opt = cls([p], lr=1e-2, weight_decay=0.1)
    core = adamlab.optim.Adam(
        lr=1e-2, weight_decay=0.1, decoupled_weight_decay=cls is at.AdamW8bit,
        state_precision=precision,
    )  # fmt: skip
    x = p.detach().numpy().reshape(-1).copy()
    s = core.init(x)
    for t in range(5):
        g = torch.randn(50, 100, generator=torch.Generator().manual_seed(t))
        p.grad = g
        opt.step()
        x, s = core.step(x, g.numpy().reshape(-1), s)
        np.testing.assert_array_equal(p.detach().numpy().reshape(-1), x)
    st = opt.state[p]
    if precision == "8bit":
        np.testing.assert_array_equal(st["exp_avg"].numpy().reshape(-1), s.m.codes)
        np.testing.assert_array_equal(st["exp_avg_sq_absmax"].numpy(), s.v.absmax)
    else:
        bits = st["exp_avg"].view(torch.int16).numpy().reshape(-1).view(np.uint16)
        np.testing.assert_array_equal(bits, s.m.bits)


def test_state_layout_and_bytes():
    net = model()
    opt = at.Adam8bit(net.parameters())
    train(net, opt, 1)
    w = net[0].weight
    st = opt.state[w]
    assert st["exp_avg"].dtype == torch.uint8 and st["exp_avg"].shape == w.shape
    assert st["exp_avg_absmax"].shape == (-(-w.numel() // 256),)
    small = opt.state[net[0].bias]  # 70 elements < min_8bit_size: float32
    assert small["exp_avg"].dtype == torch.float32 and "exp_avg_absmax" not in small
    nbytes = sum(
        v.numel() * v.element_size() for k, v in st.items() if k != "step"
    )  # 2 bytes + 8/256 per parameter
    assert nbytes == 2 * w.numel() + 8 * (-(-w.numel() // 256))
    bf = at.AdamBF16(net.parameters())
    train(net, bf, 1)
    assert bf.state[w]["exp_avg"].dtype == torch.bfloat16


# -- checkpoints ----------------------------------------------------------------------------------


@pytest.mark.exact
@pytest.mark.parametrize("cls", CLASSES)
def test_state_dict_round_trips_bit_for_bit(cls):
    net = model()
    opt = cls(net.parameters(), lr=1e-2, bf16_stochastic_round=True)
    train(net, opt, 3)
    buf = io.BytesIO()
    torch.save({"model": net.state_dict(), "opt": opt.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf)
    net2 = model(seed=9)
    net2.load_state_dict(saved["model"])
    opt2 = cls(net2.parameters(), lr=1e-2, bf16_stochastic_round=True)
    opt2.load_state_dict(saved["opt"])
    same_state(opt, opt2)
    train(net, opt, 3, start=3)
    train(net2, opt2, 3, start=3)
    same_params(net, net2)
    same_state(opt, opt2)


@pytest.mark.parametrize("cls", [at.Adam8bit, at.AdamBF16])
def test_loads_a_torch_adam_checkpoint_quantizing_it(cls):
    net = model()
    ref = torch.optim.Adam(net.parameters(), lr=1e-2)
    train(net, ref, 3)
    sd = ref.state_dict()
    opt = cls(net.parameters(), lr=1e-2)
    opt.load_state_dict(sd)
    w = net[0].weight
    m32 = sd["state"][0]["exp_avg"].numpy().reshape(-1)
    train(net, opt, 1, start=3)  # state is brought to the layout at the first step
    st = opt.state[w]
    assert int(st["step"]) == 4
    if cls is at.Adam8bit:
        assert st["exp_avg"].dtype == torch.uint8
    else:
        assert st["exp_avg"].dtype == torch.bfloat16
    # the step taken equals the core's from the quantized checkpoint
    net2 = model()
    ref2 = torch.optim.Adam(net2.parameters(), lr=1e-2)
    train(net2, ref2, 3)
    precision = "8bit" if cls is at.Adam8bit else "bf16"
    core = adamlab.optim.Adam(lr=1e-2, state_precision=precision)
    x = net2[0].weight.detach().numpy().reshape(-1).copy()
    v32 = sd["state"][0]["exp_avg_sq"].numpy().reshape(-1)
    if precision == "8bit":
        m = qz.Blockwise8bit.quantize(m32, signed=True, block_size=256)
        v = qz.Blockwise8bit.quantize(v32, signed=False, block_size=256)
    else:
        m = qz.BFloat16.round(m32, stream=0, random=None)
        v = qz.BFloat16.round(v32, stream=0, random=None)
    net2.zero_grad()
    backward(net2, 3)
    g = net2[0].weight.grad.numpy().reshape(-1)
    x, _ = core.step(x, g, adamlab.optim.AdamState(3, m, v))
    np.testing.assert_array_equal(w.detach().numpy().reshape(-1), x)


def test_changing_precision_requantizes_at_the_next_step():
    """As in torch.optim, a checkpoint restores the groups' options (state_precision too);
    setting a group's state_precision brings its state to the new layout at the next step."""
    net = model()
    opt = at.Adam8bit(net.parameters(), lr=1e-2)
    train(net, opt, 2)
    bf = at.AdamBF16(net.parameters(), lr=1e-2)
    bf.load_state_dict(opt.state_dict())
    assert bf.param_groups[0]["state_precision"] == "8bit"
    w = net[0].weight
    bf.param_groups[0]["state_precision"] = "bf16"
    train(net, bf, 1, start=2)
    assert bf.state[w]["exp_avg"].dtype == torch.bfloat16
    assert "exp_avg_absmax" not in bf.state[w]
    assert int(bf.state[w]["step"]) == 3


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(block_size=100), r"block_size: 100.*power of two"),
        (dict(block_size=0), r"block_size: 0"),
        (dict(state_precision="4bit"), r"state_precision: '4bit'"),
        (dict(state_precision="fp32"), r"state_precision: 'fp32'"),
        (dict(min_8bit_size=-1), r"min_8bit_size: -1"),
        (dict(amsgrad=True), r"amsgrad=True"),
        # held as a float: 2**53 + 1 would be rounded to another seed (and 2**64 was 0's)
        (dict(rounding_seed=2**53), r"rounding_seed: 9007199254740992; .*\[0, 2\*\*53\)"),
        (dict(rounding_seed=2**64), r"rounding_seed: 18446744073709551616"),
    ],
)
def test_bad_arguments_are_refused_at_construction(kw, match):
    with pytest.raises(ValueError, match=match):
        at.Adam8bit([torch.nn.Parameter(torch.zeros(3))], **kw)


@pytest.mark.parametrize(
    ("cls", "value", "match"),
    [
        (at.Adam, "8bit", r"'8bit' for adamlab.torch.Adam, .*use adamlab.torch.Adam8bit for"),
        (at.AdamW, "8bit", r"use adamlab.torch.AdamW8bit for '8bit'"),
        (at.Adam, "bf16", r"use adamlab.torch.AdamBF16 for 'bf16'"),
        (at.AdamW, "bf16", r"use adamlab.torch.AdamWBF16 for 'bf16'"),
        (at.Adam, "fp16", r"'fp16'.*states are '8bit' \(adamlab.torch.Adam8bit, AdamW8bit\)"),
    ],
)
def test_float32_adam_names_the_low_precision_classes(cls, value, match):
    """adamlab.torch.Adam/AdamW keep float32 state: another state_precision is a ValueError
    that names the class to use (the name it points to exists), not a TypeError."""
    p = torch.nn.Parameter(torch.zeros(3))
    with pytest.raises(ValueError, match=match):
        cls([p], state_precision=value)
    with pytest.raises(ValueError, match=match):  # per group, as the core takes it
        cls([{"params": [p], "state_precision": value}])
    opt = cls([p], state_precision="fp32")
    with pytest.raises(ValueError, match=match):  # a group added later (and not kept)
        opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(2))],
                             "state_precision": value})  # fmt: skip
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["lr"] == 1e-3

    class Mine(cls):  # a subclass is pointed to the classes that exist
        pass

    with pytest.raises(ValueError, match=match):
        Mine([p], state_precision=value)
    if value in ("8bit", "bf16"):
        named = f"{cls.__name__}{'8bit' if value == '8bit' else 'BF16'}"
        assert getattr(at, named)([p]).param_groups[0]["state_precision"] == value


def test_whole_number_sizes_are_stored_as_integers():
    """block_size=256.0 (a whole number, as the core takes it) is stored as the int 256, as
    are min_8bit_size and rounding_seed, so state_dict() holds what the kernels use."""
    opt = at.Adam8bit(
        [torch.nn.Parameter(torch.zeros(3))], block_size=256.0, min_8bit_size=4096.0,
        rounding_seed=7.0,
    )  # fmt: skip
    group = opt.state_dict()["param_groups"][0]
    for name, value in (("block_size", 256), ("min_8bit_size", 4096), ("rounding_seed", 7)):
        assert type(group[name]) is int and group[name] == value


def test_complex_parameters_are_refused_at_construction():
    p = torch.nn.Parameter(torch.zeros(5000, dtype=torch.complex64))
    with pytest.raises(ValueError, match=r"shape \(5000,\) and dtype torch.complex64.*complex"):
        at.Adam8bit([p])


# -- clip_grad_norm_ fused into the step ------------------------------------------------------------


def torch_clip(params):
    return torch.nn.utils.clip_grad_norm_(params, max_norm=0.5)


def ours_clip(params):
    return at.clip_grad_norm_(params, max_norm=0.5)


def _cpp_kernel_in_use():
    from adamlab.torch import fast

    return fast.cpu_kernel() == "cpp"


needs_cpp = pytest.mark.skipif(
    not _cpp_kernel_in_use(), reason="the C++ kernel is not in use (adamlab.torch.Adam clips there)"
)


@pytest.mark.exact
@pytest.mark.parametrize(
    "cls, dtype",
    [(at.Adam8bit, torch.float32), (at.AdamWBF16, torch.float32)]
    + [(c, d) for c in (at.Adam, at.AdamW) for d in (torch.float32, torch.bfloat16)],
    ids=lambda x: getattr(x, "__name__", str(x).replace("torch.", "")),
)
@pytest.mark.parametrize("fused", [None, False])
def test_clip_in_the_step_equals_clipping_first(cls, dtype, fused):
    """The coefficient applied in the step (the 8-bit and bf16 kernels; adamlab.torch.Adam's
    float32 C++ kernel) gives the bits of torch's clip_grad_norm_ then the same optimizer's
    step; with fused=False, or bfloat16 gradients of adamlab.torch.Adam (whose coefficient
    PyTorch computes in bfloat16), the gradient is scaled in place as PyTorch does."""
    a, b = model(dtype=dtype), model(dtype=dtype)
    oa = cls(a.parameters(), lr=1e-2, weight_decay=0.1, fused=fused)
    ob = cls(b.parameters(), lr=1e-2, weight_decay=0.1, fused=fused)
    for i in range(4):
        oa.zero_grad()
        ob.zero_grad()
        backward(a, i)
        backward(b, i)
        na = torch_clip(a.parameters())
        nb = ours_clip(b.parameters())
        assert torch.equal(na, nb)
        assert float(nb) > 0.5  # the clip bites
        oa.step()
        ob.step()
        same_params(a, b)
    same_state(oa, ob)


@needs_cpp
def test_float32_adam_defers_the_clip_to_its_kernel():
    """The coefficient really travels: the gradient is untouched until step(), and the step
    applies it (to every parameter group: each group's coefficients are its own)."""
    a, b = model(), model()
    groups = lambda net: [  # noqa: E731
        {"params": list(net[0].parameters())},
        {"params": list(net[2].parameters()), "lr": 3e-3},
    ]
    oa, ob = at.Adam(groups(a), lr=1e-2), at.Adam(groups(b), lr=1e-2)
    for i in range(3):
        for net, opt, clip in ((a, oa, torch_clip), (b, ob, ours_clip)):
            opt.zero_grad()
            backward(net, i)
            before = [p.grad.clone() for p in net.parameters()]
            clip(net.parameters())
            untouched = all(
                torch.equal(p.grad, g) for p, g in zip(net.parameters(), before, strict=True)
            )
            assert untouched == (clip is ours_clip)
            opt.step()
        same_params(a, b)
    same_state(oa, ob)


@pytest.mark.exact
def test_float32_adam_clip_with_amsgrad_is_applied_before_the_step():
    """AMSGrad has no clipping kernel: the deferred coefficient is applied in place at
    step(), as clip_grad_norm_ would have, and the rest of the step is the usual one."""
    a, b = model(), model()
    oa = at.Adam(a.parameters(), lr=1e-2, amsgrad=True)
    ob = at.Adam(b.parameters(), lr=1e-2, amsgrad=True)
    for i in range(3):
        for net, opt, clip in ((a, oa, torch_clip), (b, ob, ours_clip)):
            opt.zero_grad()
            backward(net, i)
            clip(net.parameters())
            opt.step()
        same_params(a, b)
    same_state(oa, ob)


def test_clip_leaves_the_gradient_until_the_step():
    net = model()
    opt = at.Adam8bit(net.parameters())
    backward(net, 0)
    before = [p.grad.clone() for p in net.parameters()]
    ours_clip(net.parameters())
    for p, g in zip(net.parameters(), before, strict=True):
        assert torch.equal(p.grad, g)  # deferred
    ours_clip(net.parameters())  # clipping twice: the first is applied, then the second
    ref = model()
    backward(ref, 0)
    torch_clip(ref.parameters())
    n2 = torch_clip(ref.parameters())
    assert float(n2) == pytest.approx(0.5, rel=1e-5)
    del opt


def test_clip_falls_back_to_pytorch_for_other_optimizers():
    a, b = model(), model()
    oa = torch.optim.Adam(a.parameters(), lr=1e-2)
    ob = torch.optim.Adam(b.parameters(), lr=1e-2)
    for i in range(3):
        for net, opt, clip in ((a, oa, torch_clip), (b, ob, ours_clip)):
            opt.zero_grad()
            backward(net, i)
            clip(net.parameters())
        for p, q in zip(a.parameters(), b.parameters(), strict=True):
            assert torch.equal(p.grad, q.grad)  # clipped in place, as PyTorch does
        oa.step()
        ob.step()
    same_params(a, b)


def test_clip_dropped_with_a_warning_when_the_gradient_changes():
    net = model()
    opt = at.Adam8bit(net.parameters())
    backward(net, 0)
    ours_clip(net.parameters())
    backward(net, 1)  # accumulates into .grad: the deferred coefficient is stale
    with pytest.warns(RuntimeWarning, match="gradient changed"):
        opt.step()


def test_clip_is_applied_to_a_mixed_parameter_list():
    """Parameters of ours and of torch.optim in one clip_grad_norm_ call: one norm over all;
    ours defer, the others are clipped in place."""
    a, b = model(), model()
    ours_a = at.Adam8bit(list(a[0].parameters()), lr=1e-2)
    theirs_a = torch.optim.Adam(list(a[2].parameters()), lr=1e-2)
    ours_b = at.Adam8bit(list(b[0].parameters()), lr=1e-2)
    theirs_b = torch.optim.Adam(list(b[2].parameters()), lr=1e-2)
    for i in range(3):
        for net, opts, clip in ((a, (ours_a, theirs_a), torch_clip), (b, (ours_b, theirs_b), ours_clip)):  # fmt: skip
            for opt in opts:
                opt.zero_grad()
            backward(net, i)
            clip(net.parameters())
            for opt in opts:
                opt.step()
        same_params(a, b)


@pytest.mark.exact
def test_grad_scaler_unscale_in_the_step():
    """torch.amp.GradScaler hands its scale to step(): the same as unscaling first."""
    a, b = model(), model()
    oa = at.Adam8bit(a.parameters(), lr=1e-2)
    ob = at.Adam8bit(b.parameters(), lr=1e-2)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    for i in range(3):
        oa.zero_grad()
        ob.zero_grad()
        loss = backward(a, i)
        del loss
        x, y = batch(i)
        scaler.scale(torch.nn.functional.cross_entropy(b(x), y)).backward()
        scaler.step(ob)
        scaler.update()
        inv = torch.tensor(1.0 / 1024.0, dtype=torch.float32)
        for p, q in zip(a.parameters(), b.parameters(), strict=True):
            # the scaled gradient, unscaled as GradScaler.unscale_ would
            p.grad = (p.grad * torch.tensor(1024.0)) * inv
            assert q.grad is not None
        oa.step()
        same_params(a, b)


# -- bitsandbytes' CPU Adam8bit (the test extra installs it) ---------------------------------------


def test_first_step_near_bitsandbytes_cpu_adamw8bit(optional_module):
    """bitsandbytes' compiled CPU quantizer rounds through a 65,536-bin table over [−1, 1]
    (bins 3e-5 wide) rather than to the nearest code of the map, which is coarser than the map
    near 0: codes agree to within 2 (m) and 7 (v) after a step, most of them exactly; the
    block scales are equal and the parameters equal to float32 rounding. (Against their rule
    as their PyTorch backend writes it, the codes are equal: tests/test_quantized.py.)"""
    bnb = optional_module("bitsandbytes")
    n = 1 << 16
    p0 = torch.randn(n, generator=torch.Generator().manual_seed(0))
    pa, pb = torch.nn.Parameter(p0.clone()), torch.nn.Parameter(p0.clone())
    ours = at.AdamW8bit([pa], lr=1e-3, weight_decay=0.0)
    theirs = bnb.optim.AdamW8bit([pb], lr=1e-3, weight_decay=0.0)
    g = torch.randn(n, generator=torch.Generator().manual_seed(1))
    pa.grad, pb.grad = g.clone(), g.clone()
    ours.step()
    theirs.step()
    sa, sb = ours.state[pa], theirs.state[pb]
    dm = (sa["exp_avg"].int() - sb["state1"].int()).abs()
    dv = (sa["exp_avg_sq"].int() - sb["state2"].int()).abs()
    assert int(dm.max()) <= 2 and float((dm == 0).float().mean()) > 0.99
    assert int(dv.max()) <= 7 and float((dv == 0).float().mean()) > 0.95
    assert torch.equal(sa["exp_avg_absmax"], sb["absmax1"])
    assert torch.equal(sa["exp_avg_sq_absmax"], sb["absmax2"])
    torch.testing.assert_close(pa.detach(), pb.detach(), rtol=0, atol=1e-7)


@pytest.mark.exact
@pytest.mark.parametrize("cls", [at.Adam8bit, at.Adam])
def test_grad_scaler_unscale_then_clip_then_step(cls):
    """The usual AMP loop: unscale_, clip_grad_norm_, step: ours (clip deferred into the step)
    equals torch's clip_grad_norm_ on the same optimizer (8-bit state, and
    adamlab.torch.Adam's float32 C++ step)."""
    a, b = model(), model()
    oa = cls(a.parameters(), lr=1e-2)
    ob = cls(b.parameters(), lr=1e-2)
    sa = torch.amp.GradScaler("cpu", init_scale=256.0)
    sb = torch.amp.GradScaler("cpu", init_scale=256.0)
    for i in range(3):
        for net, opt, scaler, clip in ((a, oa, sa, torch_clip), (b, ob, sb, ours_clip)):
            opt.zero_grad()
            x, y = batch(i)
            scaler.scale(torch.nn.functional.cross_entropy(net(x), y)).backward()
            scaler.unscale_(opt)
            clip(net.parameters())
            scaler.step(opt)
            scaler.update()
        same_params(a, b)
    same_state(oa, ob)


@needs_cpp
@pytest.mark.exact
def test_low_precision_state_steps_in_cpp_without_numba(monkeypatch):
    """No numba needed: with numba gone, AdamBF16 and Adam8bit (fused=True) are built and
    step in the C++ kernel, with the same bits as the reference rule, a clip included."""
    from adamlab.torch import lowmem

    def no_numba():
        raise AssertionError("numba's kernel was called")

    monkeypatch.setattr(lowmem, "numba_available", lambda: False)
    monkeypatch.setattr(lowmem, "_kernels", no_numba)
    for cls in (at.AdamBF16, at.Adam8bit):
        a, b = model(), model()
        oa = cls(a.parameters(), lr=1e-2, fused=True)
        ob = cls(b.parameters(), lr=1e-2, fused=False)
        train(a, oa, 3, clip=ours_clip)
        train(b, ob, 3, clip=ours_clip)
        same_params(a, b)
        same_state(oa, ob)


def test_clip_owners_hold_no_reference_to_parameters():
    """The clip's owner registry keeps no reference to parameters (a weak one would stop
    torch.utils.swap_tensors) and lets go of an optimizer's entries with it: after the
    optimizer is gone, clip_grad_norm_ clips in place, as PyTorch does."""
    import gc
    import weakref

    from adamlab.torch import clip

    net = model()
    opt = at.Adam8bit(net.parameters())
    assert all(weakref.getweakrefcount(p) == 0 for p in net.parameters())
    p = next(net.parameters())
    torch.utils.swap_tensors(p, torch.nn.Parameter(p.detach().clone()))  # (refused with weakrefs)
    assert clip._owners([p])[0][0] is opt
    del opt
    gc.collect()
    assert id(p) not in clip._OWNERS
    backward(net, 0)
    ref = model()
    backward(ref, 0)
    ours_clip(net.parameters())
    torch_clip(ref.parameters())
    for a, b in zip(net.parameters(), ref.parameters(), strict=True):
        assert torch.equal(a.grad, b.grad)  # clipped in place


def _clipped_grads_equal(a, b):
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p.grad, q.grad)


def test_clip_is_applied_in_place_when_the_owner_is_not_one():
    """Two adamlab optimizers over one model (a copy, a second optimizer): nobody can tell
    which will step, so the gradients are clipped in place, as PyTorch does; the same for a
    parameter taken out of its optimizer's groups by hand, and for a parameter listed twice
    (PyTorch scales it twice)."""
    a, b = model(), model()
    opt = at.Adam(b.parameters(), lr=1e-2)
    other = copy.copy(opt)  # registers the same parameters
    backward(a, 0)
    backward(b, 0)
    torch_clip(a.parameters())
    ours_clip(b.parameters())
    _clipped_grads_equal(a, b)
    del other

    c, d = model(), model()
    od = at.Adam(d.parameters(), lr=1e-2)
    od.param_groups[0]["params"] = list(d[0].parameters())  # the last layer moved out
    backward(c, 0)
    backward(d, 0)
    torch_clip(c.parameters())
    ours_clip(d.parameters())
    for p, q in zip(c[2].parameters(), d[2].parameters(), strict=True):
        assert torch.equal(p.grad, q.grad)  # clipped in place: no optimizer of ours holds it

    w1, w2 = model(), model()
    ow = at.Adam(w2.parameters(), lr=1e-2)
    backward(w1, 0)
    backward(w2, 0)
    torch.nn.utils.clip_grad_norm_([w1[0].weight, w1[0].weight], max_norm=0.5)
    at.clip_grad_norm_([w2[0].weight, w2[0].weight], max_norm=0.5)
    assert torch.equal(w1[0].weight.grad, w2[0].weight.grad)
    del ow


def test_clip_is_not_deferred_where_the_step_could_not_take_it():
    """adamlab.torch.Adam with fused=False or AMSGrad has no clipping kernel: the gradient is
    clipped at once, as PyTorch does."""
    for kw in ({"fused": False}, {"amsgrad": True}):
        a, b = model(), model()
        opt = at.Adam(b.parameters(), lr=1e-2, **kw)
        backward(a, 0)
        backward(b, 0)
        torch_clip(a.parameters())
        ours_clip(b.parameters())
        _clipped_grads_equal(a, b)
        assert not opt.__dict__.get("_pending_clip")


@pytest.mark.exact
@pytest.mark.parametrize("fused", [None, False])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_float32_adam_grad_scaler_unscale_in_the_step(fused, amsgrad):
    """torch.amp.GradScaler hands its scale to adamlab.torch.Adam's step: the C++ kernel
    unscales each gradient as it reads it (fused, no AMSGrad), the other paths unscale in
    place first; the same bits as stepping the unscaled gradients, (g·s)·(1/s) in float32.
    An inf gradient skips the step, as GradScaler's skip does."""
    a, b = model(), model()
    oa = at.Adam(a.parameters(), lr=1e-2, fused=fused, amsgrad=amsgrad)
    ob = at.Adam(b.parameters(), lr=1e-2, fused=fused, amsgrad=amsgrad)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    for i in range(4):
        oa.zero_grad()
        ob.zero_grad()
        backward(a, i)
        x, y = batch(i)
        scaler.scale(torch.nn.functional.cross_entropy(b(x), y)).backward()
        if i == 2:  # an inf: GradScaler skips the step (and halves its scale)
            b[0].bias.grad[0] = float("inf")
        scale = float(scaler.get_scale())
        scaler.step(ob)
        scaler.update()
        if i == 2:
            continue  # (a takes no step either)
        inv = torch.tensor(1.0 / scale, dtype=torch.float32)
        for p in a.parameters():
            p.grad = (p.grad * torch.tensor(scale)) * inv
        oa.step()
        same_params(a, b)
    same_state(oa, ob)


@needs_cpp
def test_float32_adam_takes_the_clip_only_for_large_tensors(monkeypatch):
    """By default adamlab.torch.Adam takes clip_grad_norm_'s coefficient (and GradScaler's
    scale) into its step only where the tensors average 2¹⁸ elements or more; on many small
    tensors the gradients are clipped (unscaled) in place by PyTorch's foreach passes and
    the planned step runs."""
    monkeypatch.setattr(at.Adam, "clip_defer_min_mean_numel", DEFER_MIN_MEAN_NUMEL)
    small = model()
    opt = at.Adam(small.parameters(), lr=1e-2)
    backward(small, 0)
    ours_clip(small.parameters())
    assert not opt.__dict__.get("_pending_clip")
    assert not opt._step_supports_amp_scaling  # GradScaler unscales in place, as for torch's
    big = [torch.nn.Parameter(torch.randn(DEFER_MIN_MEAN_NUMEL)) for _ in range(2)]
    opt_big = at.Adam(big, lr=1e-2)
    assert opt_big._step_supports_amp_scaling
    for p in big:
        p.grad = torch.randn_like(p)
    g0 = big[0].grad.clone()
    at.clip_grad_norm_(big, max_norm=1.0)
    assert torch.equal(big[0].grad, g0) and len(opt_big._pending_clip) == 2  # deferred
    opt_big.step()


# -- the plan: later steps of a group that took the C++ kernel whole ----------------------------------


def _count_planned(monkeypatch):
    """How many group steps ran from a kept plan (a spy on LowPrecisionAdam._planned_step)."""
    from adamlab.torch import lowmem

    runs = []
    original = lowmem.LowPrecisionAdam._planned_step

    def spy(self, group, core_opt, unscale):
        done = original(self, group, core_opt, unscale)
        runs.append(done)
        return done

    monkeypatch.setattr(lowmem.LowPrecisionAdam, "_planned_step", spy)
    return runs


@needs_cpp
@pytest.mark.exact
@pytest.mark.parametrize(
    ("cls", "dtype"),
    [
        (at.AdamBF16, torch.float32),
        (at.AdamWBF16, torch.bfloat16),
        (at.Adam8bit, torch.float32),
        (at.AdamW8bit, torch.bfloat16),
    ],
)
@pytest.mark.parametrize("stochastic", [False, True])
def test_steps_from_a_plan_equal_the_reference(monkeypatch, cls, dtype, stochastic):
    """After a first step in which every parameter took a fused kernel, the low-precision
    optimizers step the group from its kept plan (no pass over the parameters in Python):
    the same bits as the reference rule, with 8-bit and float32 state side by side, bfloat16
    state, stochastic rounding (its keys by step and parameter),
    bfloat16 parameters, a clip deferred into the step and GradScaler's unscale."""
    runs = _count_planned(monkeypatch)
    a, b = model(dtype=dtype), model(dtype=dtype)
    kw = dict(lr=1e-2, bf16_stochastic_round=stochastic, rounding_seed=5)
    oa, ob = cls(a.parameters(), **kw), cls(b.parameters(), fused=False, **kw)
    train(a, oa, 3)
    assert runs == [False, True, True]  # (steps 2 and 3 from the plan)
    train(b, ob, 3)
    same_params(a, b)
    same_state(oa, ob)
    if dtype == torch.float32:  # (bfloat16 gradients are clipped in place, as PyTorch does)
        runs.clear()
        train(a, oa, 2, start=3, clip=ours_clip)
        assert runs == [True, True]
        train(b, ob, 2, start=3, clip=ours_clip)
        same_params(a, b)
        same_state(oa, ob)
    for net, opt in ((a, oa), (b, ob)):
        runs.clear()
        scaler = torch.amp.GradScaler("cpu", init_scale=256.0)
        for i in range(5, 7):
            opt.zero_grad()
            x, y = batch(i, dtype)
            scaler.scale(torch.nn.functional.cross_entropy(net(x).float(), y)).backward()
            scaler.step(opt)
            scaler.update()
        assert runs == ([True, True] if opt is oa else [False, False])
    same_params(a, b)
    same_state(oa, ob)


@needs_cpp
@pytest.mark.exact
@pytest.mark.parametrize("cls", [at.AdamBF16, at.Adam8bit])
def test_plan_gives_way_to_any_change(monkeypatch, cls):
    """The plan holds only while nothing it relies on has changed: a state tensor replaced
    (an 8-bit moment's block scales too), a parameter re-pointed, a setting of the group
    changed, a parameter without a gradient, a checkpoint loaded. Each such step takes the
    full path (and equals the reference), and the step after it runs from a new plan."""
    runs = _count_planned(monkeypatch)
    a, b = model(), model()
    oa = cls(a.parameters(), lr=1e-2)
    ob = cls(b.parameters(), lr=1e-2, fused=False)
    pa, pb = list(a.parameters()), list(b.parameters())
    kept = []  # what was replaced stays alive: a plan that missed the change would step it

    def replace_state(opt, ps):
        kept.append(opt.state[ps[0]]["exp_avg"])
        opt.state[ps[0]]["exp_avg"] = kept[-1].clone()

    def replace_absmax(opt, ps):
        state = opt.state[ps[0]]
        kept.append(state["exp_avg_sq_absmax"])
        state["exp_avg_sq_absmax"] = kept[-1].clone()

    def repoint_absmax(opt, ps):
        absmax = opt.state[ps[0]]["exp_avg_absmax"]
        kept.append(absmax.data)
        absmax.data = kept[-1].clone()

    def repoint(opt, ps):
        kept.append(ps[2].data)
        ps[2].data = kept[-1].clone()

    def stochastic(opt, ps):
        opt.param_groups[0]["bf16_stochastic_round"] = True

    def reload(opt, ps):
        opt.load_state_dict(copy.deepcopy(opt.state_dict()))

    train(a, oa, 2)
    train(b, ob, 2)
    i = 2
    changes = [replace_state, repoint, stochastic, reload]
    if cls is at.Adam8bit:  # (the first parameter, 120 × 70, has 8-bit state)
        changes[1:1] = [replace_absmax, repoint_absmax]
    for change in changes:
        change(oa, pa)
        change(ob, pb)
        runs.clear()
        train(a, oa, 2, start=i)
        assert runs == [False, True], change.__name__
        train(b, ob, 2, start=i)
        i += 2
        same_params(a, b)
        same_state(oa, ob)
    for net, opt in ((a, oa), (b, ob)):  # a parameter without a gradient this step
        runs.clear()
        opt.zero_grad()
        backward(net, i)
        list(net.parameters())[1].grad = None
        opt.step()
        assert runs == [False]
    same_params(a, b)
    same_state(oa, ob)


@needs_cpp
@pytest.mark.exact
def test_plan_edge_cases_found_by_review(monkeypatch):
    """Groups a plan must handle or leave alone: float32 and bfloat16 parameters interleaved
    in one group (no plan: it keeps the group's order), a parameter that never gets a
    gradient (no plan, and none rebuilt every step), a parameter appended to a group by
    hand (numbered for its rounding stream, stepped), a state tensor deleted (the step
    refuses it, as the full path does, instead of reading freed memory)."""
    import gc

    runs = _count_planned(monkeypatch)

    def mixed(seed):
        torch.manual_seed(seed)
        return [torch.nn.Parameter(torch.randn(n, 9).to(dt))
                for n, dt in ((40, torch.float32), (30, torch.bfloat16), (20, torch.float32))]  # fmt: skip

    def steps(opt, ps, k, start=0):
        for i in range(start, start + k):
            g = torch.Generator().manual_seed(i)
            for p in ps:
                if p.requires_grad:
                    p.grad = torch.randn(p.shape, generator=g).to(p.dtype)
            opt.step()

    kw = dict(lr=1e-2, bf16_stochastic_round=True)
    a, b = mixed(0), mixed(0)
    oa, ob = at.AdamWBF16(a, **kw), at.AdamWBF16(b, fused=False, **kw)
    steps(oa, a, 3)
    steps(ob, b, 3)
    assert runs[:3] == [False, False, False]
    for p, q in zip(a, b, strict=True):
        assert torch.equal(p, q)
    same_state(oa, ob)

    frozen = model()
    list(frozen.parameters())[1].requires_grad_(False)
    opt = at.AdamBF16(frozen.parameters(), lr=1e-2)
    train(frozen, opt, 3)
    assert not opt._fused_plans  # (a plan covers every parameter of its group)

    a, b = mixed(1), mixed(1)
    a, b = [x for x in a if x.dtype == torch.float32], [x for x in b if x.dtype == torch.float32]
    extra_a, extra_b = (torch.nn.Parameter(torch.ones(7, 9)) for _ in range(2))
    oa, ob = at.AdamBF16(a, **kw), at.AdamBF16(b, fused=False, **kw)
    steps(oa, a, 2)
    steps(ob, b, 2)
    oa.param_groups[0]["params"].append(extra_a)
    ob.param_groups[0]["params"].append(extra_b)
    runs.clear()
    steps(oa, [*a, extra_a], 2, start=2)
    assert runs == [False, True]
    steps(ob, [*b, extra_b], 2, start=2)
    for p, q in zip([*a, extra_a], [*b, extra_b], strict=True):
        assert torch.equal(p, q)

    optimizers = [
        at.AdamBF16(model().parameters(), lr=1e-2),
        at.Adam8bit(model().parameters(), lr=1e-2),
    ]
    for opt in optimizers:  # a state tensor deleted, then freed: the plan gives way
        ps = opt.param_groups[0]["params"]
        for i in range(2):
            for p in ps:
                p.grad = torch.ones_like(p) * (i + 1)
            opt.step()
        eight_bit = "exp_avg_absmax" in opt.state[ps[0]]
        del opt.state[ps[0]]["exp_avg_absmax" if eight_bit else "exp_avg"]
        gc.collect()
        runs.clear()
        if eight_bit:  # (the full path's refusal: the moment cannot be read)
            with pytest.raises(ValueError, match="without its absmax"):
                opt.step()
        else:  # (the full path's: a missing moment starts again from zeros)
            opt.step()
            assert torch.equal(
                opt.state[ps[0]]["exp_avg"].float(), (0.1 * ps[0].grad).bfloat16().float()
            )
        assert runs == [False]


def test_a_parameter_group_chooses_its_own_state_precision():
    """``state_precision`` in a group overrides the class's default: each group's state is
    stored so, and its parameters step bit for bit as under the optimizer of that precision."""
    gen = torch.Generator().manual_seed(3)
    init = [torch.randn(5000, generator=gen) for _ in range(2)]
    grads = [[torch.randn(5000, generator=gen) for _ in range(2)] for _ in range(3)]
    mixed = [torch.nn.Parameter(x.clone()) for x in init]
    alone = [torch.nn.Parameter(x.clone()) for x in init]
    opt = at.Adam8bit([{"params": [mixed[0]]}, {"params": [mixed[1]], "state_precision": "bf16"}])
    refs = [at.Adam8bit([alone[0]]), at.AdamBF16([alone[1]])]
    for g in grads:
        for p, q, gi in zip(mixed, alone, g, strict=True):
            p.grad, q.grad = gi.clone(), gi.clone()
        opt.step()
        for ref in refs:
            ref.step()
    assert opt.state[mixed[0]]["exp_avg"].dtype == torch.uint8
    assert opt.state[mixed[1]]["exp_avg"].dtype == torch.bfloat16
    for p, q in zip(mixed, alone, strict=True):
        assert torch.equal(p, q)
