"""Dispatch of ``adamlab.torch.Adam``/``AdamW`` steps to the fused kernels.

A parameter takes the fused path when its tensors allow it:

* CPU: parameter, gradient and state contiguous, dtype float32, float64, float16 or
  bfloat16 (complex64/complex128 through their real views); all such parameters of a group
  with the same dtype and step count go to one kernel launch. The kernel is, in order of
  preference, the C++ one (:mod:`adamlab.kernels.cpp_adam`: built once with the system's
  C++ compiler, run on PyTorch's own intra-op thread pool) or the numba one
  (:mod:`adamlab.kernels.numba_adam`, its own OpenMP pool). Both give the same bits;
  :func:`cpu_kernel` says which runs, and ``ADAMLAB_CPU_KERNEL=cpp|numba`` (environment)
  restricts the choice to one of them.
* CUDA (Triton installed): the same conditions, one launch per parameter.

Everything else (non-contiguous or sparse layouts, other devices, no kernel) takes the
reference path, the core's ``update_leaf``. Both give the same numbers (tests check it).
"""

from __future__ import annotations

import functools
import logging
import operator
import os
import weakref
from collections import defaultdict
from typing import Any

import numpy as np
import torch

from ..kernels import adam_host, cpp_adam, numba_available, triton_available

log = logging.getLogger(__name__)

_STEP_KINDS = {torch.float32, torch.float64}
_KIND = {
    torch.float32: "float32",
    torch.float64: "float64",
    torch.float16: "float16",
    torch.bfloat16: "bfloat16",
    torch.complex64: "float32",
    torch.complex128: "float64",
}

#: environment variable: "auto" (default: C++, else numba), "cpp" or "numba" only
CPU_KERNEL_ENV = "ADAMLAB_CPU_KERNEL"


@functools.cache
def _numba_kernels():
    from ..kernels import numba_adam

    return numba_adam


def cpp_possible() -> bool:
    """Whether the C++ kernel may be had (cheap: compiler present, or already loaded)."""
    return cpp_adam.possible()


def _cpu_choice() -> str:
    choice = (os.environ.get(CPU_KERNEL_ENV) or "auto").strip().lower()
    if choice not in ("auto", "cpp", "numba"):
        raise ValueError(f"{CPU_KERNEL_ENV}={choice!r}: expected 'auto', 'cpp' or 'numba'")
    return choice


_announced: set[str | None] = set()


def _cpu_backend():
    """The kernel module CPU steps use (cpp_adam or numba_adam), or None: the C++ kernel
    where it can be built (the first call builds it, or loads the cached build), else numba."""
    choice = _cpu_choice()
    backend = None
    if choice != "numba" and cpp_possible() and cpp_adam.load() is not None:
        backend = cpp_adam
    elif choice != "cpp" and numba_available():
        backend = _numba_kernels()
    name = None if backend is None else backend.NAME
    if name not in _announced:
        _announced.add(name)
        log.info("adamlab: fused CPU Adam steps run %s", _describe(name, choice))
    return backend


def _why_not_cpp(choice: str) -> str:
    if choice == "numba":
        return f"{CPU_KERNEL_ENV}=numba"
    return cpp_adam.unavailable_reason() or "unavailable"


def _why_no_kernel(choice: str) -> str:
    no_numba = f"{CPU_KERNEL_ENV}=cpp" if choice == "cpp" else "numba is not installed"
    return f"C++ kernel not used: {_why_not_cpp(choice)}; numba not used: {no_numba}"


def _describe(name: str | None, choice: str) -> str:
    """What runs the fused CPU steps, and why not the preferred kernels."""
    if name == "cpp":
        return "the C++ kernel on PyTorch's intra-op thread pool"
    if name == "numba":
        return f"the numba kernel (C++ kernel not used: {_why_not_cpp(choice)})"
    return f"the reference path ({_why_no_kernel(choice)})"


def cpu_kernel() -> str | None:
    """Which kernel fused CPU steps run: "cpp", "numba", or None (the reference path).
    Decided at the first fused step; calling this decides it early (and may build the C++
    kernel: a few seconds, once per machine)."""
    backend = _cpu_backend()
    return None if backend is None else backend.NAME


def check_available() -> None:
    """``fused=True`` needs a kernel: C++ or numba (CPU), or Triton with CUDA."""
    if not (cpp_possible() or numba_available() or triton_available()):
        raise RuntimeError(
            "fused=True needs numba (CPU; pip install 'adamlab[fast]') or a C++ compiler (CPU: "
            "the kernel is built once), or Triton with a CUDA device; install one, or pass "
            "fused=None to fall back to the reference path"
        )


def why_not_fused(p: torch.Tensor, state_tensors: list[torch.Tensor]) -> str | None:
    """None if ``p`` can take a fused kernel, else the reason."""
    if p.dtype not in _KIND:
        return f"dtype {p.dtype} has no fused kernel"
    if p.device.type == "cpu":
        if _cpu_backend() is None:
            return f"no CPU kernel ({_why_no_kernel(_cpu_choice())})"
    elif p.device.type == "cuda":
        if not triton_available():
            return "Triton is not installed"
    else:
        return f"device {p.device} has no fused kernel"
    g = p.grad
    if type(p.data) is not torch.Tensor or type(g.data) is not torch.Tensor:
        return (
            f"the parameter is a {type(p.data).__name__} (e.g. FSDP2's DTensor), not a plain tensor"
        )
    if g.dtype != p.dtype or g.device != p.device or g.layout != torch.strided:
        return "the gradient's dtype, device or layout differs from the parameter's"
    for name, t in (("parameter", p), ("gradient", g)):
        if not t.is_contiguous():
            return f"the {name} is not contiguous"
    for name, t in (
        ("parameter", p),
        ("gradient", g),
        *(("state tensor", s) for s in state_tensors),
    ):
        if _lazy_view(t):
            return f"the {name} is a lazy conjugate, negative or zero view (its memory is not its values)"
    for t in state_tensors:
        if not t.is_contiguous() or t.dtype != p.dtype or t.device != p.device:
            return "a state tensor is not contiguous or has another dtype/device"
    return None


def _lazy_view(t: torch.Tensor) -> bool:
    """A tensor whose values are not its memory as it lies: a lazy conjugate (autograd makes
    such gradients, e.g. of ``z.conj()``), a negative view, or a ZeroTensor."""
    return t.is_conj() or t.is_neg() or t._is_zerotensor()


def adam_step(opt, group: dict[str, Any], core_opt, params: list[torch.Tensor], *, required: bool):
    """Step every parameter of ``params`` the kernels can take; return the others.

    The first step of a group classifies its parameters one by one (and creates their state);
    when the group's fused parameters are all on the CPU, it also keeps a :class:`_Plan`
    (addresses, sizes, chunk table, kernel) that later steps reuse after a cheap check that
    nothing it relies on has changed. Any change (a parameter added, removed or re-pointed with
    ``p.data = …``, new state from ``load_state_dict`` or by hand, a gradient of another
    dtype, size or layout, ``amsgrad`` switched) fails the check, and that step takes the full
    path again, which rebuilds the plan.
    """
    keys = tuple(opt.state_keys[s] for s in core_opt.active_slots())
    plans = opt.__dict__.setdefault("_fused_plans", {})  # (set by CoreOptimizer)
    plan = plans.get(id(group))
    if (
        plan is not None
        and plan.group is group
        and not (required and plan.rest)
        and plan.backend is _cpu_backend()
    ):
        rest = plan.try_step(opt, keys, core_opt, params)
        if rest is not None:
            return rest
        del plans[id(group)]
    # the CPU kernel is chosen (and the C++ one built) only when a CPU parameter needs it
    cpu = _cpu_backend() if any(p.device.type == "cpu" for p in params) else None
    if cpu is None and not triton_available() and not required:  # (required: refused below)
        return params
    rest: list[torch.Tensor] = []
    batches: dict[tuple, list] = defaultdict(list)
    for p in params:
        tensors = _classify(opt, p, keys, core_opt)
        if tensors is None:
            if required:
                state = opt.state[p]
                reason = why_not_fused(p, [state[k] for k in keys]) or "unsupported tensors"
                raise RuntimeError(
                    f"fused=True, but a parameter of shape {tuple(p.shape)} cannot take the "
                    f"fused kernel: {reason}; pass fused=None to use the reference path for it"
                )
            rest.append(p)
            continue
        batches[(p.device, p.dtype)].append((p, tensors, opt.state[p]["step"]))
    for (device, dtype), items in batches.items():
        for t, batch in _by_step(items, cpu).items():
            if device.type == "cpu":
                _cpu_batch(cpu, core_opt, batch, dtype, t)
            else:
                _triton_batch(core_opt, batch, dtype, t)
    if cpu is not None:
        plan = _Plan.build(opt, group, keys, params, batches, rest, cpu)
        if plan is not None:
            live = {id(g) for g in opt.param_groups}
            for key in [k for k in plans if k not in live]:
                del plans[key]  # groups gone (load_state_dict replaces them)
            plans[id(group)] = plan
    return rest


def planned_step(opt, group: dict[str, Any], core_opt) -> bool:
    """Step the whole group from its plan where the plan covers every parameter of the group
    (all had gradients and took the kernel when it was built) and its checks in the C++
    library hold, this step's gradients included: True. Otherwise False, nothing done: the
    caller takes the usual path (which lists the parameters with gradients, refuses sparse
    ones, and comes to :func:`adam_step`). This skips the Python passes over the parameters
    that a step of many small tensors otherwise spends most of its host time on."""
    plan = opt.__dict__.get("_fused_plans", {}).get(id(group))
    if plan is None or plan.params is None or plan.rest or plan.group is not group:
        return False
    if plan.backend is not _cpu_backend() or list(map(id, group["params"])) != plan.ids:
        return False
    keys = tuple(opt.state_keys[s] for s in core_opt.active_slots())
    return (
        opt.state is plan.state
        and keys == plan.keys
        and plan._try_native(opt, keys, core_opt) is not None
    )


#: parameter dtypes whose clip coefficient the C++ kernel applies (its low-precision step).
#: (bfloat16 gradients get a bfloat16 norm and coefficient from PyTorch, which is not
#: deferred: clip_grad_norm_ scales them in place.)
CLIP_KINDS = {torch.float32: "float32"}


def clip_kernel_possible(p: torch.Tensor, g: torch.Tensor) -> bool:
    """Whether a step of ``p`` may take a coefficient from ``clip_grad_norm_`` in the kernel:
    a float32 CPU parameter and gradient (the C++ kernel in use: the caller asks
    :func:`cpu_kernel` once). The step checks the rest, and otherwise scales the gradient
    in place first."""
    return (
        p.dtype in CLIP_KINDS
        and g.dtype == p.dtype
        and p.device.type == "cpu"
        and g.device.type == "cpu"
    )


def scaled_step(opt, group: dict[str, Any], core_opt, params, unscale: float | None = None):
    """Step, in the C++ kernel, the parameters of ``params`` whose gradients are to be scaled
    first: by a coefficient from :func:`adamlab.torch.clip_grad_norm_` (``opt._take_clip``)
    and/or by ``unscale``, ``torch.amp.GradScaler``'s float32 1/scale (every parameter then).
    The kernel multiplies each gradient element by the coefficient, then by the unscale
    factor, as it reads it (:func:`cpp_adam.lowmem_step` with float32 state: the element rule
    of :func:`adam_step`'s kernel, the same bits as the products stored first); return the
    other parameters. A parameter the kernel cannot take this way (AMSGrad, ``fused=False``,
    another dtype or layout) has its gradient scaled in place first, the same products in the
    same order, and is returned with the others."""
    keys = tuple(opt.state_keys[s] for s in core_opt.active_slots())
    kernel = group.get("fused") is not False and len(keys) == 2 and cpu_kernel() == "cpp"
    rest, scaled = [], defaultdict(list)
    for p in params:
        coef = opt._take_clip(p)
        if coef is None and unscale is None:
            rest.append(p)
            continue
        ok = kernel and clip_kernel_possible(p, p.grad)
        tensors = _classify(opt, p, keys, core_opt) if ok else None
        if tensors is None or any(t.dtype != p.dtype for t in tensors[1:]):
            for factor in (coef, unscale):  # clip_grad_norm_'s product, then GradScaler's
                if factor is not None:
                    p.grad.mul_(torch.tensor(factor, dtype=torch.float32))
            rest.append(p)
            continue
        scaled[p.dtype].append((p, tensors, opt.state[p]["step"], coef))
    opt._drop_clips([group])  # (what is left: parameters without a gradient, stale)
    for dtype, items in scaled.items():
        for t, batch in _by_step(items, cpp_adam).items():
            n = len(batch)
            ptrs = np.zeros((6, n), dtype=np.int64)
            sizes = np.empty(n, dtype=np.int64)
            scales = np.ones((2, n), dtype=np.float32)  # (x·1 is x: a factor of 1 is none)
            if unscale is not None:
                scales[1] = unscale
            for j, (p, tensors, _, coef) in enumerate(batch):
                ptrs[:4, j] = [x.data_ptr() for x in tensors]
                sizes[j] = p.numel()
                if coef is not None:
                    scales[0, j] = coef
            modes = np.zeros(n, dtype=np.int64)  # float32 state
            sc, fl = adam_host.adam_step_args(core_opt, t, np.float32)
            cpp_adam.lowmem_step(CLIP_KINDS[dtype], ptrs, sizes, modes, sc=sc, fl=fl, scales=scales)
    return rest


def _classify(opt, p, keys, core_opt) -> list[torch.Tensor] | None:
    """Create ``p``'s state where it lacks some; return [p, g, *state tensors] if the kernels
    can take ``p`` this step, else None."""
    state = opt.state[p]
    if len(state) == 0:
        opt._init_state(p, core_opt)
    elif any(k not in state for k in keys):
        opt._fill_slots(p, state, core_opt)
    opt._check_state(p, state, None)  # (float moments: no block scales)
    tensors = [p, p.grad, *(state[k] for k in keys)]
    # one predicate decides, and explains a refusal (fused=True): why_not_fused. It runs on a
    # group's first step and after changes only; steady-state steps reuse the _Plan.
    return tensors if why_not_fused(p, tensors[2:]) is None else None


_STRIDED = torch.strided
_data_ptr = torch.Tensor.data_ptr
_numel = torch.Tensor.numel
_is_contiguous = torch.Tensor.is_contiguous
_dtype_of = operator.attrgetter("dtype")
_grad_of = operator.attrgetter("grad")
_cdata_of = operator.attrgetter("_cdata")
_deref = weakref.ref.__call__
_layout_of = operator.attrgetter("layout")
_is_none = functools.partial(operator.is_, None)


class _Plan:
    """A group's fused CPU step, kept between steps: which parameters take the kernel, their
    addresses, sizes, chunk tables and kernels, with what the cheap check compares against.

    It keeps the group (whose parameters the group holds anyway) and weak references to the
    state tensors, so it never keeps memory alive that the optimizer has let go. The check
    (:meth:`try_step`) compares, per step: the group's parameters with a gradient (by
    identity), their addresses, the state tensors (by identity and address, so a replaced or
    re-pointed tensor is caught), and each gradient's dtype, size, layout, type and
    contiguity (gradients are new tensors every step under ``zero_grad(set_to_none=True)``).
    """

    __slots__ = (
        "backend", "bump", "dtypes", "fast", "g_out", "getters", "group", "ids", "keys",
        "launches", "numels", "p_impls", "p_ptrs", "params", "pick", "rest", "slot_ptrs",
        "slot_refs", "state", "state_ids", "states",
    )  # fmt: skip

    @classmethod
    def build(
        cls, opt, group, keys, params, batches, rest, backend, make_launch=None
    ) -> _Plan | None:
        """The plan of a step that has just run: ``batches`` maps (device, dtype) to the
        stepped parameters' (p, [p, g, *state tensors of ``keys``], step tensor), in launch
        order; ``rest``, the parameters left to the reference path. ``make_launch(plan,
        start, n, dtype)`` makes the launch of the ``n`` parameters from ``start`` (default:
        :class:`_Launch`, the float32-state kernel's)."""
        if any(device.type != "cpu" for device, _ in batches):
            return None
        fast = [it for items in batches.values() for it in items]
        if not fast:
            return None
        steps = [it[2] for it in fast]
        step_dtype = steps[0].dtype
        if step_dtype not in _STEP_KINDS or any(
            s.dtype != step_dtype or not s.is_cpu or s.dim() != 0 for s in steps
        ):
            return None
        plan = cls()
        plan.backend = backend
        plan.group, plan.state, plan.keys = group, opt.state, keys
        plan.ids = list(map(id, params))
        plan.fast = [it[0] for it in fast]
        plan.rest = list(rest)
        plan.p_ptrs = list(map(_data_ptr, plan.fast))
        plan.numels = [it[0].numel() for it in fast]
        plan.dtypes = [it[0].dtype for it in fast]
        slots = [[it[1][2 + j] for it in fast] for j in range(len(keys))] + [steps]
        plan.slot_refs = [[weakref.ref(t) for t in ts] for ts in slots]
        # where each parameter's state dict sits in opt.state's order (see _recorded_state)
        order = {id(k): i for i, k in enumerate(opt.state)}
        plan.state_ids = list(order)
        at = [order[id(p)] for p in plan.fast]
        plan.pick = operator.itemgetter(*at) if len(at) > 1 else lambda vals, i=at[0]: (vals[i],)
        plan.slot_ptrs = [list(map(_data_ptr, ts)) for ts in slots]
        plan.getters = [operator.itemgetter(key) for key in (*keys, "step")]
        plan.bump = backend.bumper(np.array(plan.slot_ptrs[-1], dtype=np.int64), step_dtype)
        plan.launches = []
        start = 0
        for (_, dtype), items in batches.items():
            n = len(items)
            plan.launches.append((make_launch or _Launch.of_plan)(plan, start, n, dtype))
            start += n
        plan.params = plan.states = plan.g_out = plan.p_impls = None
        if backend is cpp_adam:  # the checks in the library: see _Plan._try_native
            plan.params = cpp_adam.TensorCheck(plan.fast)
            plan.p_impls = list(map(_cdata_of, plan.fast))
            plan.states = cpp_adam.TensorCheck([t for ts in slots for t in ts])
            if len(plan.launches) == 1:  # the gradients' addresses go straight to the launch
                plan.g_out = plan.launches[0].ptrs[1]
            else:
                plan.g_out = np.empty(len(plan.fast), np.int64)
        return plan

    def try_step(self, opt, keys, core_opt, params):
        """Run the step from the plan and return the parameters left to the reference path,
        or None (nothing done) if the plan no longer holds."""
        if opt.state is not self.state or keys != self.keys or list(map(id, params)) != self.ids:
            return None
        if self.params is not None:
            return self._try_native(opt, keys, core_opt)
        fast = self.fast
        if list(map(_data_ptr, fast)) != self.p_ptrs:
            return None
        grads = list(map(_grad_of, fast))
        n = len(grads)
        if (
            list(map(type, grads)).count(torch.Tensor) != n
            or list(map(_layout_of, grads)).count(_STRIDED) != n
            or list(map(_dtype_of, grads)) != self.dtypes
            or list(map(_numel, grads)) != self.numels
            or not all(map(_is_contiguous, grads))
            or any(map(_lazy_view, grads))
        ):
            return None
        slots = self._recorded_state(opt)
        if slots is None or any(
            list(map(_data_ptr, ts)) != ptrs for ts, ptrs in zip(slots, self.slot_ptrs, strict=True)
        ):
            return None
        g_ptrs = np.array(list(map(_data_ptr, grads)), dtype=np.int64)
        return self._launch(opt, keys, core_opt, g_ptrs)

    def _try_native(self, opt, keys, core_opt):
        """:meth:`try_step` with the checks in the C++ library (:class:`cpp_adam.TensorCheck`):
        the same conditions, every tensor's address, type, size and layout read in one call
        for the parameters and their gradients and one for the state (a step of many small
        tensors is bound by such host work, on caches the previous step's stream has
        emptied). Python checks first that the state tensors are the recorded ones (by
        identity: alive, so the library may read them)."""
        if not self.native_checks(opt):
            return None
        return self.launch_checked(opt, keys, core_opt)

    def native_checks(self, opt) -> bool:
        """The checks of :meth:`_try_native` (the gradients' addresses are read into the
        launch as they pass): True if the plan holds."""
        if list(map(_cdata_of, self.fast)) != self.p_impls:  # torch.utils.swap_tensors
            return False
        if self._recorded_state(opt) is None:
            return False
        return self.states.check() and self.params.check_params(self.g_out.ctypes.data)

    def launch_checked(self, opt, keys, core_opt):
        """:meth:`_launch`, right after :meth:`native_checks` has passed."""
        single = len(self.launches) == 1  # (then the gradients' addresses are in place)
        return self._launch(opt, keys, core_opt, None if single else self.g_out)

    def _recorded_state(self, opt) -> list[list[torch.Tensor]] | None:
        """The state tensors of the plan's parameters, slot by slot, if each is the very
        tensor the plan recorded (by identity); else None.

        Each parameter's state dict is found by its place in ``opt.state`` (a dict keeps
        its order) while the keys are the recorded ones, in the recorded order (their ids:
        the plan's parameters are alive, so an id that matches is that parameter): looking
        a tensor up hashes it in Python (``Tensor.__hash__``), a cost per parameter that a
        step of many small tensors otherwise pays. Any change to the keys (state added,
        removed, re-added) fails the check, and the full path rebuilds the plan."""
        state = opt.state
        if list(map(id, state)) != self.state_ids:
            return None
        states = self.pick(list(state.values()))
        slots = []
        try:
            for get, refs in zip(self.getters, self.slot_refs, strict=True):
                tensors = list(map(get, states))
                live = list(map(_deref, refs))
                # (a freed tensor's reference is dead: None, which a slot set to None would
                # match; the library must never read a freed tensor)
                if not all(map(operator.is_, tensors, live)) or any(map(_is_none, live)):
                    return None
                slots.append(tensors)
        except KeyError:
            return None
        return slots

    def _launch(self, opt, keys, core_opt, g_ptrs: np.ndarray | None):
        """The step, once every check has passed: unless a parameter left to the reference
        path can now take the kernel (the full path must then run), bump the step counts and
        run the launches; return the parameters left to the reference path, or None."""
        if any(_classify(opt, p, keys, core_opt) is not None for p in self.rest):
            return None  # (_classify also creates their state, as the full path does)
        t_old, same = self.bump()
        for launch in self.launches:
            launch.run(core_opt, g_ptrs, t_old, same)
        return list(self.rest)


class _Launch:
    """One kernel launch of a plan: the parameters of one dtype (positions start … start+n),
    with the backend's prepared call (``backend.launcher``: the tables' addresses read once)."""

    __slots__ = ("backend", "compute", "go", "kind", "n", "ptrs", "sizes", "start")

    def __init__(self, backend, start, n, kind, ptrs, sizes):
        self.backend, self.start, self.n, self.kind = backend, start, n, kind
        self.ptrs, self.sizes = ptrs, sizes
        self.compute = backend.KINDS[kind][2]
        self.go = backend.launcher(kind, ptrs, sizes)

    @classmethod
    def of_plan(cls, plan: _Plan, start: int, n: int, dtype: torch.dtype) -> _Launch:
        """The launch of the plan's parameters start … start + n (one dtype)."""
        ptrs = np.empty((5, n), dtype=np.int64)
        ptrs[0] = plan.p_ptrs[start : start + n]
        last = 2 if len(plan.keys) > 2 else 0  # no v_max: m's address, untouched
        for row, j in ((2, 0), (3, 1), (4, last)):
            ptrs[row] = plan.slot_ptrs[j][start : start + n]
        scale = 2 if dtype.is_complex else 1
        sizes = np.array(plan.numels[start : start + n], dtype=np.int64) * scale
        return cls(plan.backend, start, n, _KIND[dtype], ptrs, sizes)

    def run(self, core_opt, g_ptrs: np.ndarray | None, t_old: np.ndarray, same: bool) -> None:
        """The launch, with the gradients' addresses ``g_ptrs`` (all of the plan's), or None
        where they are already in place (``ptrs[1]``)."""
        lo, hi = self.start, self.start + self.n
        if g_ptrs is not None:
            self.ptrs[1] = g_ptrs[lo:hi]
        t_old = t_old[lo:hi]
        if same or (t_old == t_old[0]).all():  # the usual case: one step count, one launch
            self.go(*adam_host.adam_step_args(core_opt, int(t_old[0]) + 1, self.compute))
            return
        nb = self.backend
        for t in np.unique(t_old):  # parameters added later have their own step counts
            sel = np.flatnonzero(t_old == t)
            sc, fl = adam_host.adam_step_args(core_opt, int(t) + 1, self.compute)
            ptrs = np.ascontiguousarray(self.ptrs[:, sel])
            nb.adam_step_ptrs(self.kind, ptrs, np.ascontiguousarray(self.sizes[sel]), sc, fl)


def _by_step(items: list, cpu) -> dict[int, list]:
    """Group by step count (the next t), read in one go; the step tensors are incremented
    here, before the kernels run (they are not read again this step). ``cpu``: the CPU
    kernel module (or None)."""
    steps = [it[2] for it in items]
    dtypes = {s.dtype for s in steps}
    if len(dtypes) == 1 and steps[0].is_cpu and cpu is not None and dtypes <= _STEP_KINDS:
        values = cpu.bump_steps([s.data_ptr() for s in steps], steps[0].dtype)
    else:  # the general case (CUDA steps, mixed dtypes): PyTorch's own ops
        values = torch.stack([s.to("cpu", torch.float64) for s in steps]).tolist()
        torch._foreach_add_(steps, 1.0)
    out: dict[int, list] = defaultdict(list)
    for it, v in zip(items, values, strict=True):
        out[int(v) + 1].append(it)
    return out


def _cpu_batch(nb, core_opt, batch, dtype, t) -> None:
    """One launch of the CPU kernel module ``nb`` over ``batch`` (one dtype, one step t)."""
    kind = _KIND[dtype]
    sc, fl = adam_host.adam_step_args(core_opt, t, nb.KINDS[kind][2])
    n = len(batch)
    ptrs = np.empty((5, n), dtype=np.int64)
    sizes = np.empty(n, dtype=np.int64)
    scale = 2 if dtype.is_complex else 1
    for j, (p, tensors, _) in enumerate(batch):
        addrs = [x.data_ptr() for x in tensors]
        if len(addrs) < 5:
            addrs.append(addrs[2])  # no v_max: the kernel does not touch it
        ptrs[:, j] = addrs
        sizes[j] = p.numel() * scale
    nb.adam_step_ptrs(kind, ptrs, sizes, sc, fl)


def _triton_batch(core_opt, batch, dtype, t) -> None:  # pragma: no cover - GPU only
    from ..kernels import triton_adam

    sc, fl = adam_host.adam_step_args(core_opt, t, np.float64)
    for _, tensors, _ in batch:
        tensors = [torch.view_as_real(x) if x.is_complex() else x for x in tensors]
        triton_adam.adam_step(*tensors[:4], tensors[4] if len(tensors) > 4 else None, sc, fl)
