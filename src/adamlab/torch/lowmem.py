"""Adam with 8-bit or bfloat16 state, and gradient clipping fused into the step.

    from adamlab.torch import Adam8bit, clip_grad_norm_

    opt = Adam8bit(model.parameters(), lr=1e-3)          # 2 bytes of state per parameter
    ...
    loss.backward()
    clip_grad_norm_(model.parameters(), max_norm=1.0)   # the scale goes into the next step
    opt.step()

:class:`Adam8bit`, :class:`AdamW8bit`, :class:`AdamBF16` and :class:`AdamWBF16` are
``torch.optim`` optimizers whose math is :class:`adamlab.optim.Adam` with
``state_precision="8bit"`` or ``"bf16"``: each step dequantizes m and v, takes Adam's step in
float32 and quantizes them again (Dettmers et al., 2022; see :mod:`adamlab.optim.quantized`).
CPU parameters of dtype float32 or bfloat16 step in a fused kernel, bit for bit the core's
reference rule: the C++ one on PyTorch's thread pool (:mod:`adamlab.kernels.cpp_adam`), or
numba's where there is no C++ build (:mod:`adamlab.kernels.numba_lowmem`; the same bits), so
these optimizers need no numba. Other parameters (float16,
float64, non-contiguous, no kernel) take the reference rule itself.

State (``state_dict()``): ``step``; ``exp_avg`` and ``exp_avg_sq`` as uint8 codes with
``exp_avg_absmax`` and ``exp_avg_sq_absmax`` (float32, one per block) for 8-bit state,
as bfloat16 tensors for bf16 state, and as float32 tensors for parameters under
``min_8bit_size`` elements. A checkpoint of ``torch.optim.Adam`` (float32 moments) loads and
is quantized; our own checkpoints round-trip bit for bit.

:func:`clip_grad_norm_` (:mod:`adamlab.torch.clip`) hands its coefficient to the next step of
these optimizers, whose kernel applies it as it reads each gradient. ``torch.amp.GradScaler``
works the same way: these optimizers declare ``_step_supports_amp_scaling``, so
``scaler.step(opt)`` hands them its scale and the kernel unscales as it reads (``found_inf``
skips the step).
"""

from __future__ import annotations

import functools
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import numpy as np
import torch
from torch.optim.optimizer import _get_scalar_dtype

from .. import optim as core
from ..kernels import adam_host, numba_available
from ..optim import quantized
from ._shell import CoreOptimizer
from .clip import DeferredClip, clip_grad_norm_, register_owner

_BETAS = (0.9, 0.999)
#: state keys of the block scales of 8-bit moments
ABSMAX_KEYS = {"exp_avg": "exp_avg_absmax", "exp_avg_sq": "exp_avg_sq_absmax"}
#: parameter dtypes the fused kernel takes
_KERNEL_DTYPES = {torch.float32: "float32", torch.bfloat16: "bfloat16"}


@functools.cache
def _kernels():
    from ..kernels import numba_lowmem

    return numba_lowmem


def _cpp_kernel():
    """The C++ kernel module where it is the CPU kernel in use (:func:`adamlab.torch.fast.
    cpu_kernel`, which honours ``ADAMLAB_CPU_KERNEL``), else None. It takes float32 and
    bfloat16 and 8-bit state on PyTorch's own thread pool."""
    from . import fast

    return fast.cpp_adam if fast.cpu_kernel() == "cpp" else None


# -- the optimizers --------------------------------------------------------------------------------


class LowPrecisionAdam(DeferredClip, CoreOptimizer):
    r"""Adam/AdamW as ``torch.optim.Adam``, with m and v kept in 8 bits or bfloat16.

    Args (beyond ``torch.optim.Adam``'s ``params, lr, betas, eps, weight_decay, amsgrad``,
    ``maximize``, ``foreach``, ``capturable``, ``differentiable``, ``fused``):
        state_precision: ``"8bit"`` (block-wise, as bitsandbytes' ``Adam8bit``) or ``"bf16"``.
        block_size: elements per 8-bit block (a power of two; 256, as bitsandbytes and
            torchao).
        min_8bit_size: parameters with fewer elements keep float32 state (4096, as
            bitsandbytes).
        bf16_stochastic_round: round what is stored in bfloat16 — the moments with
            ``state_precision="bf16"``, and bfloat16 parameters — stochastically (unbiased)
            instead of to nearest even; the random bits are seeded by ``rounding_seed`` and
            reproducible (torchao's name; torchao rounds only bfloat16 parameters so).
        rounding_seed: seed of the stochastic rounding.
        decoupled_weight_decay, bias_correction, eps_placement, eps_root: as
            :class:`adamlab.torch.Adam`.

    ``fused=None`` steps contiguous CPU float32/bfloat16 parameters in the fused kernel and
    the rest with the reference rule (same numbers); ``fused=False`` always uses the
    reference; ``fused=True`` requires the kernel. Complex parameters and ``amsgrad=True``
    are refused at construction, with a ``ValueError``; so are parameters off the CPU.
    """

    core_cls: ClassVar[type] = core.Adam
    state_keys: ClassVar[dict[str, str]] = {"m": "exp_avg", "v": "exp_avg_sq"}
    takes_8bit_state: ClassVar[bool] = True
    #: torch.amp.GradScaler hands its scale to step() (grad_scale / found_inf attributes)
    _step_supports_amp_scaling: ClassVar[bool] = True
    default_precision: ClassVar[str] = "8bit"

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | torch.Tensor = 1e-3,
        betas: tuple[float, float] = _BETAS,
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        state_precision: str | None = None,
        block_size: int = quantized.BLOCK_SIZE,
        min_8bit_size: int = quantized.MIN_8BIT_SIZE,
        bf16_stochastic_round: bool = False,
        rounding_seed: int = 0,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
        bias_correction: bool | tuple[bool, bool] = True,
        eps_placement: str = "after_correction",
        eps_root: float = 0.0,
    ) -> None:
        precision = self.default_precision if state_precision is None else state_precision
        if precision == "fp32":
            raise ValueError(
                f"Invalid state_precision: 'fp32' for adamlab.torch.{type(self).__name__}; "
                "choose '8bit' or 'bf16' (float32 state: adamlab.torch.Adam)"
            )
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
            maximize=maximize, foreach=foreach, capturable=capturable,
            differentiable=differentiable, fused=fused, state_precision=precision,
            block_size=block_size, min_8bit_size=min_8bit_size,
            bf16_stochastic_round=bf16_stochastic_round, rounding_seed=rounding_seed,
            decoupled_weight_decay=decoupled_weight_decay, bias_correction=bias_correction,
            eps_placement=eps_placement, eps_root=eps_root,
        )  # fmt: skip
        self._index: dict[torch.Tensor, int] | None = None
        super().__init__(params, defaults)

    # -- construction ------------------------------------------------------------------------

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        for name in ("block_size", "min_8bit_size", "rounding_seed"):  # (whole: the core checked)
            group[name] = int(group[name])
        for p in group["params"]:
            reason = None
            if p.is_complex():
                reason = "it is complex (optimise its real and imaginary parts as two real tensors)"
            elif p.device.type != "cpu":
                reason = f"it is on {p.device} (these optimizers keep their state on the CPU)"
            if reason is not None:
                self.param_groups.pop()
                raise ValueError(
                    f"adamlab.torch.{type(self).__name__} (state_precision="
                    f"{group['state_precision']!r}) cannot take a parameter of shape "
                    f"{tuple(p.shape)} and dtype {p.dtype}: {reason}"
                )
        why = _no_kernel() if group.get("fused") else None
        if why is not None:
            self.param_groups.pop()
            raise RuntimeError(
                f"fused=True, but {why}; pass fused=None to fall back to the reference rule"
            )
        register_owner(self, group["params"])
        self._index = None

    def _check_torch_flags(self, group: dict[str, Any]) -> None:
        super()._check_torch_flags(group)
        if group.get("amsgrad"):
            raise ValueError(
                f"amsgrad=True is not supported by adamlab.torch.{type(self).__name__}: the "
                "running maximum of v is not kept in low precision (use adamlab.torch.Adam)"
            )

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._index = None
        for group in self.param_groups:
            register_owner(self, group["params"])

    # -- checkpoints -------------------------------------------------------------------------

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """``torch.optim``'s ``load_state_dict``, keeping our state tensors' own dtypes (PyTorch
        would cast uint8 codes and bfloat16 moments to the parameter's dtype), then bringing
        each parameter's state to this optimizer's precision: a float checkpoint (e.g. from
        ``torch.optim.Adam``) is quantized, an 8-bit one dequantized for bf16, and so on."""
        saved = {
            k: {key: v for key, v in s.items() if torch.is_tensor(v) and key != "step"}
            for k, s in state_dict["state"].items()
        }
        super().load_state_dict(state_dict)
        self._index = None
        for _, group, i, p in self._saved_params(state_dict):
            original = saved.get(i)
            if not original or p not in self.state:
                continue
            state = self.state[p]
            for key, value in original.items():
                state[key] = value.to(device=p.device, copy=True)
            self._adopt(p, group, state)

    # -- state ---------------------------------------------------------------------------------

    def _layout(self, p: torch.Tensor, group: dict[str, Any]) -> str:
        """How ``p``'s moments are stored: "8bit", "bf16" or "fp32"."""
        precision = group["state_precision"]
        if precision == "8bit":
            return "8bit" if p.numel() >= int(group["min_8bit_size"]) else "fp32"
        return precision

    def _init_state(self, p: torch.Tensor, core_opt: Any) -> dict[str, Any]:
        group = next(g for g in self.param_groups if any(q is p for q in g["params"]))
        state = self.state[p]
        state["step"] = torch.tensor(0.0, dtype=_get_scalar_dtype())
        layout = self._layout(p, group)
        for key, signed in (("exp_avg", True), ("exp_avg_sq", False)):
            if layout == "8bit":  # zeros quantized: the zero code, absmax 0 (no float32 copy)
                nb = -(-p.numel() // int(group["block_size"]))
                zero = quantized.zero_code(signed)
                state[key] = torch.full(p.shape, zero, dtype=torch.uint8)
                state[ABSMAX_KEYS[key]] = torch.zeros(nb, dtype=torch.float32)
            elif layout == "bf16":
                state[key] = torch.zeros(p.shape, dtype=torch.bfloat16)
            else:
                state[key] = torch.zeros_like(p, memory_format=torch.contiguous_format)
        self._adopt(p, group, state)
        return state

    def _fill_slots(self, p: torch.Tensor, state: dict[str, Any], core_opt: Any) -> None:
        if "exp_avg" not in state or "exp_avg_sq" not in state:
            for key in ("exp_avg", "exp_avg_sq"):
                state.setdefault(key, torch.zeros_like(p, memory_format=torch.contiguous_format))

    def _adopt(self, p: torch.Tensor, group: dict[str, Any], state: dict[str, Any]) -> None:
        """Bring ``p``'s moments to the group's layout (quantizing or dequantizing them)."""
        layout = self._layout(p, group)
        bs = int(group["block_size"])
        for key, signed in (("exp_avg", True), ("exp_avg_sq", False)):
            value = state.get(key)
            if value is None:
                continue
            absmax = state.get(ABSMAX_KEYS[key])
            if _stored_as(value, absmax, p, bs) == layout:
                continue
            x = _as_float(value, absmax, signed, bs, p).reshape(-1)
            state.pop(ABSMAX_KEYS[key], None)
            if layout == "8bit":
                codes, am = quantized.quantize_blockwise(x, signed=signed, block_size=bs)
                state[key] = torch.from_numpy(codes).reshape(p.shape)
                state[ABSMAX_KEYS[key]] = torch.from_numpy(am)
            elif layout == "bf16":
                state[key] = torch.from_numpy(x).reshape(p.shape).to(torch.bfloat16)
            else:
                dtype = torch.float64 if p.dtype == torch.float64 else torch.float32
                state[key] = torch.from_numpy(x).reshape(p.shape).to(dtype)

    def _index_of(self, p: torch.Tensor) -> int:
        """The parameter's number (its id in ``state_dict()``): its stochastic-rounding stream."""
        if self._index is None or p not in self._index:  # (or groups edited by hand)
            params = (q for g in self.param_groups for q in g["params"])
            self._index = {q: i for i, q in enumerate(params)}
        return self._index[p]

    # -- the deferred gradient scale -------------------------------------------------------------

    def _can_defer(self, p: torch.Tensor, g: torch.Tensor, group: dict[str, Any]) -> bool:
        """The fused and the reference path of a float32 or bfloat16 gradient both apply it."""
        return g.dtype in _KERNEL_DTYPES and g.dtype == p.dtype

    # -- the step ----------------------------------------------------------------------------

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One step for every parameter with a gradient; returns ``closure()``'s loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        skip, unscale = self._amp_handover()  # (GradScaler's)
        if skip:
            return loss
        for group in self.param_groups:
            core_opt = self.core(group)
            if self._planned_step(group, core_opt, unscale):
                continue
            params = [p for p in group["params"] if p.grad is not None]
            self._check_dtypes(params)
            for p in params:
                if p.grad.is_sparse:
                    raise RuntimeError(
                        f"adamlab.torch.{type(self).__name__} does not support sparse gradients "
                        f"(parameter of shape {tuple(p.shape)})"
                    )
            self._step_group(group, core_opt, params, unscale)
        return loss

    def _step_group(self, group, core_opt, params, unscale) -> None:
        batches: dict[tuple, list] = defaultdict(list)
        rest = []
        use_kernel = group.get("fused") is not False
        for p in params:
            state = self.state[p]
            if len(state) == 0:
                self._init_state(p, core_opt)
            else:
                self._fill_slots(p, state, core_opt)
                self._check_state(p, state, group)
                self._adopt(p, group, state)
            clip = self._take_clip(p)
            layout = self._layout(p, group)
            why = (
                (_no_kernel() or _why_not_fused(p, state, layout)) if use_kernel else "fused=False"
            )
            if why is None:
                t = int(state["step"].item()) + 1
                batches[(p.dtype, t)].append((p, clip))
            elif group.get("fused"):
                raise RuntimeError(
                    f"fused=True, but a parameter of shape {tuple(p.shape)} cannot take the fused "
                    f"kernel: {why}; pass fused=None to use the reference rule for it"
                )
            else:
                rest.append((p, clip))
        self._drop_clips([group])  # (what is left: parameters without a gradient, stale)
        for (dtype, t), batch in batches.items():
            self._kernel_step(group, core_opt, batch, dtype, t, unscale)
        for p, clip in rest:
            self._reference_lowmem(p, group, core_opt, clip, unscale)
        self._keep_plan(group, params, batches, rest)

    # -- the plan: later steps of a group that took the fused kernels whole ---------------------

    def _keep_plan(self, group, params, batches, rest) -> None:
        """After a step in which every parameter of ``group`` took a fused kernel, keep its
        plan (:class:`adamlab.torch.fast._Plan`: addresses, sizes, the checks that they still
        hold, run in the C++ library), so that later steps skip the pass over the parameters
        above: a step of many small tensors is otherwise bound by it. (Where the C++ library
        is not in use, there is no plan.)"""
        plans = self.__dict__.setdefault("_fused_plans", {})
        live = {id(g) for g in self.param_groups}
        for key in [k for k in plans if k == id(group) or k not in live]:
            del plans[key]  # (and the plans of groups gone, which would hold their parameters)
        cpp = _cpp_kernel() if batches and not rest and group.get("fused") is not False else None
        ids = list(map(id, params))
        if (
            cpp is None
            or ids != list(map(id, group["params"]))  # (a parameter without a gradient)
            or len(set(ids)) != len(ids)  # (a parameter listed twice: the full path steps it)
        ):
            return
        layouts = [self._layout(p, group) for p in params]
        by_dtype: dict[tuple, list] = defaultdict(list)
        for p in params:
            state = self.state[p]
            tensors = [p, p.grad, state["exp_avg"], state["exp_avg_sq"]]
            by_dtype[(p.device, p.dtype)].append((p, tensors, state["step"]))
        if len(by_dtype) > 1 and [id(it[0]) for its in by_dtype.values() for it in its] != ids:
            return  # (parameters of two dtypes interleaved: the plan keeps the group's order)
        streams = np.array([self._index_of(p) for p in params], np.uint64)
        keys = (self.state_keys["m"], self.state_keys["v"])

        # 8-bit moments' block scales: (position, state key, tensor)
        absmax = [
            (j, ABSMAX_KEYS[key], self.state[p][ABSMAX_KEYS[key]])
            for j, (p, layout) in enumerate(zip(params, layouts, strict=True))
            if layout == "8bit"
            for key in keys
        ]
        modes = np.array([_MODES[layout] for layout in layouts], np.int64)
        rows = np.array([[self.state[p][key].data_ptr() for p in params] for key in keys], np.int64)
        for j, key, t in absmax:  # rows 4, 5 of the launch: the absmax tables (8-bit only)
            rows[0 if key == ABSMAX_KEYS["exp_avg"] else 1, j] = t.data_ptr()

        def launch(plan, start, n, dtype):
            at = slice(start, start + n)
            return _LowmemLaunch(plan, start, n, dtype, modes[at], streams[at], rows[:, at], group)

        plan = _plan_class().build(self, group, keys, params, by_dtype, [], cpp, launch)
        if plan is not None and plan.params is not None:
            plan.settings = _plan_settings(group)
            plan.index = self._index
            plan.absmax = [(j, key, weakref.ref(t)) for j, key, t in absmax]
            plan.absmax_check = cpp.TensorCheck([t for _, _, t in absmax]) if absmax else None
            plans[id(group)] = plan

    def _planned_step(self, group, core_opt, unscale) -> bool:
        """Step ``group`` from its plan if the plan still holds (every parameter, gradient and
        state tensor as recorded, the group's settings unchanged): True; else False, with
        nothing done."""
        from . import fast

        plan = self.__dict__.get("_fused_plans", {}).get(id(group))
        if (
            plan is None
            or plan.group is not group
            or self.state is not plan.state
            or plan.index is not self._index
            or plan.backend is not fast._cpu_backend()
            or list(map(id, group["params"])) != plan.ids
            or _plan_settings(group) != plan.settings
            or not plan.native_checks(self)
        ):
            return False
        scales = None
        if unscale is not None or self.__dict__.get("_pending_clip"):
            scales = np.ones((2, len(plan.fast)), dtype=np.float32)
            scales[1] = 1.0 if unscale is None else unscale
            for j, p in enumerate(plan.fast):
                clip = self._take_clip(p)
                if clip is not None:
                    scales[0, j] = clip
            self._drop_clips([group])
        for launch in plan.launches:
            launch.scales = scales
        plan.launch_checked(self, plan.keys, core_opt)
        return True

    def _kernel_step(self, group, core_opt, batch, dtype, t, unscale) -> None:
        n = len(batch)
        ptrs = np.empty((6, n), dtype=np.int64)
        sizes = np.empty(n, dtype=np.int64)
        modes = np.empty(n, dtype=np.int64)
        scaled = unscale is not None or any(clip is not None for _, clip in batch)
        scales = np.ones((2, n), dtype=np.float32) if scaled else None
        for j, (p, clip) in enumerate(batch):
            state = self.state[p]
            m, v = state["exp_avg"], state["exp_avg_sq"]
            layout = self._layout(p, group)
            am = state[ABSMAX_KEYS["exp_avg"]] if layout == "8bit" else m
            av = state[ABSMAX_KEYS["exp_avg_sq"]] if layout == "8bit" else v
            ptrs[:, j] = [p.data_ptr(), p.grad.data_ptr(), m.data_ptr(), v.data_ptr(),
                          am.data_ptr(), av.data_ptr()]  # fmt: skip
            sizes[j] = p.numel()
            modes[j] = _MODES[layout]
            if scales is not None:
                scales[0, j] = 1.0 if clip is None else clip
                scales[1, j] = 1.0 if unscale is None else unscale
            state["step"] += 1
        state_keys = param_keys = None
        if group["bf16_stochastic_round"]:
            streams = np.array([self._index_of(p) for p, _ in batch], np.uint64)
            state_keys, param_keys = _rounding_keys(group, dtype, t, streams)
        sc, fl = adam_host.adam_step_args(core_opt, t, np.float32)
        backend = _cpp_kernel() or _kernels()  # the C++ one on torch's pool; the same bits
        backend.lowmem_step(
            _KERNEL_DTYPES[dtype], ptrs, sizes, modes, sc=sc, fl=fl,
            block_size=int(group["block_size"]), scales=scales, state_keys=state_keys,
            param_keys=param_keys,
        )  # fmt: skip

    def _reference_lowmem(self, p, group, core_opt, clip, unscale) -> None:
        """One step of the core rule (:meth:`adamlab.optim.Adam.step` with low-precision state)
        for one parameter, on NumPy views of its tensors, written back in place."""
        state = self.state[p]
        t = int(state["step"].item()) + 1
        g = p.grad.detach()
        if clip is not None or unscale is not None:  # as clip_grad_norm_, then unscale_, would
            g = g * torch.tensor(1.0 if clip is None else clip, dtype=torch.float32)
            g = g * torch.tensor(1.0 if unscale is None else unscale, dtype=torch.float32)
        work = torch.float64 if p.dtype == torch.float64 else torch.float32
        x = p.detach().to(work).reshape(-1).numpy()
        g = g.to(work).reshape(-1).numpy()
        layout = self._layout(p, group)
        k = self._index_of(p)
        bs = int(group["block_size"])
        m = _container(state, "exp_avg", layout, True, bs, k)
        v = _container(state, "exp_avg_sq", layout, False, bs, k)
        x_new, new = core_opt.step(x, g, core.AdamState(t - 1, m, v))
        if p.dtype == torch.bfloat16 and group["bf16_stochastic_round"]:
            key = quantized.stream_key(int(group["rounding_seed"]), t, k, quantized.SLOT_P)
            bits = quantized.to_bfloat16(x_new, quantized.rounding_bits(key, x_new.size))
            p.detach().view(torch.int16).copy_(torch.from_numpy(bits.view(np.int16)).view(p.shape))
        else:
            p.detach().copy_(torch.from_numpy(x_new).view(p.shape))
        _write_back(state, "exp_avg", new.m, p)
        _write_back(state, "exp_avg_sq", new.v, p)
        state["step"] += 1


_MODES = {"fp32": 0, "bf16": 1, "8bit": 2}

#: a group's settings that decide its state's layout and rounding (a plan holds while they do)
_PLAN_KEYS = ("state_precision", "min_8bit_size", "block_size", "bf16_stochastic_round",
              "rounding_seed", "fused")  # fmt: skip


def _plan_settings(group: dict[str, Any]) -> tuple:
    return tuple(map(group.get, _PLAN_KEYS))


@functools.cache
def _plan_class():
    from .fast import _Plan

    class _LowmemPlan(_Plan):
        """A plan of the low-precision step: :class:`adamlab.torch.fast._Plan`, with the
        group's settings and the parameter numbering it was built under, and the block
        scales of 8-bit moments (checked as the other state tensors are)."""

        __slots__ = ("absmax", "absmax_check", "index", "settings")

        def native_checks(self, opt) -> bool:
            if not super().native_checks(opt):
                return False
            if not self.absmax:
                return True
            states = self.pick(list(opt.state.values()))
            for j, key, ref in self.absmax:
                t = ref()
                if t is None or states[j].get(key) is not t:  # (None: freed; never read it)
                    return False
            return self.absmax_check.check()

    return _LowmemPlan


class _LowmemLaunch:
    """One launch of a low-precision plan: the C++ step (float32, bfloat16 or 8-bit state) of
    the plan's parameters start … start + n (one dtype), with the group's stochastic rounding.
    ``scales`` ((2, all of the plan's parameters) clip and unscale factors, or None) is set
    before each step."""

    __slots__ = ("block", "dtype", "go", "group", "modes", "n", "ptrs", "scales", "sizes",
                 "start", "streams")  # fmt: skip

    def __init__(self, plan, start, n, dtype, modes, streams, absmax_rows, group):
        from .fast import cpp_adam

        self.start, self.n, self.dtype, self.modes, self.streams = start, n, dtype, modes, streams
        self.group, self.scales = group, None
        self.ptrs = np.empty((6, n), dtype=np.int64)
        self.ptrs[0] = plan.p_ptrs[start : start + n]
        self.ptrs[1] = 0  # (the gradients': every step)
        self.ptrs[2] = plan.slot_ptrs[0][start : start + n]
        self.ptrs[3] = plan.slot_ptrs[1][start : start + n]
        self.ptrs[4:] = absmax_rows  # (m's and v's own addresses where not 8-bit: unread)
        self.sizes = np.array(plan.numels[start : start + n], dtype=np.int64)
        self.block = int(group["block_size"])
        kind = _KERNEL_DTYPES[dtype]
        if (modes == _MODES["8bit"]).any():  # (by chunks of whole blocks, made once)
            self.go = cpp_adam.lowmem8_launcher(kind, self.ptrs, self.sizes, modes, self.block)
        else:
            self.go = cpp_adam.lowmem_launcher(kind, self.ptrs, self.sizes, modes)

    def run(self, core_opt, g_ptrs: np.ndarray | None, t_old: np.ndarray, same: bool) -> None:
        from .fast import cpp_adam

        lo, hi = self.start, self.start + self.n
        if g_ptrs is not None:
            self.ptrs[1] = g_ptrs[lo:hi]
        t_old = t_old[lo:hi]
        scales = None if self.scales is None else np.ascontiguousarray(self.scales[:, lo:hi])
        if same or (t_old == t_old[0]).all():
            t = int(t_old[0]) + 1
            sc, fl = adam_host.adam_step_args(core_opt, t, np.float32)
            self.go(sc, fl, scales, *_rounding_keys(self.group, self.dtype, t, self.streams))
            return
        for t in np.unique(t_old):  # parameters added later have their own step counts
            sel = np.flatnonzero(t_old == t)
            sc, fl = adam_host.adam_step_args(core_opt, int(t) + 1, np.float32)
            state_keys, param_keys = _rounding_keys(
                self.group, self.dtype, int(t) + 1, self.streams[sel]
            )
            cpp_adam.lowmem_step(
                _KERNEL_DTYPES[self.dtype], np.ascontiguousarray(self.ptrs[:, sel]),
                self.sizes[sel], self.modes[sel], sc=sc, fl=fl, block_size=self.block,
                scales=None if scales is None else np.ascontiguousarray(scales[:, sel]),
                state_keys=state_keys, param_keys=param_keys,
            )  # fmt: skip


def _rounding_keys(group, dtype: torch.dtype, t: int, streams: np.ndarray) -> tuple:
    """(state_keys, param_keys) of step t for the parameters numbered ``streams`` (their
    stochastic-rounding streams): uint64 (2, n) for bfloat16 m and v, (1, n) for bfloat16
    parameters, each None where the group does not round it stochastically."""
    if not group["bf16_stochastic_round"]:
        return None, None
    seed = int(group["rounding_seed"])
    state_keys = param_keys = None
    if group["state_precision"] == "bf16":
        state_keys = np.stack([quantized.stream_keys(seed, t, streams, slot)
                               for slot in (quantized.SLOT_M, quantized.SLOT_V)])  # fmt: skip
    if dtype == torch.bfloat16:
        param_keys = quantized.stream_keys(seed, t, streams, quantized.SLOT_P)[None, :]
    return state_keys, param_keys


def _stored_as(value: torch.Tensor, absmax: torch.Tensor | None, p: torch.Tensor, bs: int) -> str:
    if value.dtype == torch.uint8:
        nb = -(-p.numel() // bs)
        ok = absmax is not None and absmax.dtype == torch.float32 and absmax.numel() == nb
        return "8bit" if ok and value.shape == p.shape else "other"
    if value.dtype == torch.bfloat16:
        return "bf16"
    want = torch.float64 if p.dtype == torch.float64 else torch.float32
    return "fp32" if value.dtype == want else "other"


def _as_float(value, absmax, signed, bs, p) -> np.ndarray:
    """A stored moment as float32 (float64 for float64 parameters) NumPy values."""
    if value.dtype == torch.uint8:
        if absmax is None:
            raise ValueError("an 8-bit moment without its absmax: the checkpoint is incomplete")
        codes = value.reshape(-1).numpy()
        return quantized.dequantize_blockwise(
            codes, absmax.to(torch.float32).numpy(), signed=signed, block_size=bs
        )
    work = torch.float64 if p.dtype == torch.float64 else torch.float32
    return value.detach().to(device="cpu", dtype=work).contiguous().numpy().copy()


def _container(state, key, layout, signed, bs, stream):
    value = state[key]
    if layout == "8bit":
        absmax = state[ABSMAX_KEYS[key]].numpy()
        return quantized.Blockwise8bit(value.reshape(-1).numpy(), absmax, signed, bs)
    if layout == "bf16":
        bits = value.reshape(-1).view(torch.int16).numpy().view(np.uint16)
        return quantized.BFloat16(bits, stream)
    return value.reshape(-1).numpy()


def _write_back(state, key, new, p) -> None:
    target = state[key]
    if isinstance(new, quantized.Blockwise8bit):
        target.view(-1).copy_(torch.from_numpy(new.codes))
        state[ABSMAX_KEYS[key]].copy_(torch.from_numpy(new.absmax))
    elif isinstance(new, quantized.BFloat16):
        bits = torch.from_numpy(new.bits.view(np.int16))
        target.view(torch.int16).view(-1).copy_(bits)
    else:
        target.view(-1).copy_(torch.from_numpy(np.asarray(new)))


def _no_kernel() -> str | None:
    """None if a fused kernel (for state of any layout) can be had: the C++ one, or numba's;
    else the reason."""
    if numba_available() or _cpp_kernel() is not None:
        return None
    return "no fused kernel is available (no C++ build, and numba is not installed)"


def _why_not_fused(p: torch.Tensor, state: dict[str, Any], layout: str) -> str | None:
    """None if ``p`` can take the fused kernel, else the reason."""
    if p.dtype not in _KERNEL_DTYPES:
        return f"dtype {p.dtype} has no fused kernel (float32 and bfloat16 do)"
    g = p.grad
    if type(p.data) is not torch.Tensor or type(g.data) is not torch.Tensor:
        return f"the parameter is a {type(p.data).__name__}, not a plain tensor"
    if g.dtype != p.dtype or g.device != p.device or g.layout != torch.strided:
        return "the gradient's dtype, device or layout differs from the parameter's"
    if not p.is_contiguous() or not g.is_contiguous():
        return "the parameter or its gradient is not contiguous"
    keys = ["exp_avg", "exp_avg_sq"] + (list(ABSMAX_KEYS.values()) if layout == "8bit" else [])
    if not all(state[k].is_contiguous() for k in keys):
        return "a state tensor is not contiguous"
    if layout == "fp32" and state["exp_avg"].dtype != torch.float32:
        return "float32 state is needed"
    return None


class Adam8bit(LowPrecisionAdam):
    """Adam with 8-bit block-wise state (``state_precision="8bit"``): bitsandbytes'
    ``Adam8bit``, except that ``weight_decay`` is PyTorch's Adam's (L2, added to the gradient)
    unless ``decoupled_weight_decay=True``; bitsandbytes decouples it. See
    :class:`LowPrecisionAdam`."""


class AdamW8bit(LowPrecisionAdam):
    """AdamW with 8-bit block-wise state: decoupled weight decay, default ``weight_decay=1e-2``
    (bitsandbytes' and torchao's ``AdamW8bit``). See :class:`LowPrecisionAdam`."""

    def __init__(self, params: Iterable[Any], lr: float | torch.Tensor = 1e-3,
                 betas: tuple[float, float] = _BETAS, eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, **kw: Any) -> None:  # fmt: skip
        kw["decoupled_weight_decay"] = True
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, **kw)


class AdamBF16(LowPrecisionAdam):
    """Adam with bfloat16 moments (``state_precision="bf16"``), optionally rounded
    stochastically (``bf16_stochastic_round=True``). See :class:`LowPrecisionAdam`."""

    default_precision: ClassVar[str] = "bf16"


class AdamWBF16(AdamW8bit):
    """AdamW with bfloat16 moments: decoupled weight decay, default ``weight_decay=1e-2``."""

    default_precision: ClassVar[str] = "bf16"


__all__ = [
    "Adam8bit",
    "AdamBF16",
    "AdamW8bit",
    "AdamWBF16",
    "LowPrecisionAdam",
    "clip_grad_norm_",
    "register_owner",
]
