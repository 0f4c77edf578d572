"""The stateful ``torch.optim.Optimizer`` shell around adamlab's pure per-leaf rules.

``step()`` reads each parameter group's hyperparameters (every step, so that learning-rate
schedulers, ``OneCycleLR``'s cycling betas and hand edits take effect), builds (and caches) the
matching core optimizer from :mod:`adamlab.optim`, and for each parameter with a gradient calls
its ``update_leaf`` on the detached tensors; the results are copied back into the parameter and
the state tensors in place. The math is written once, in the core; this module only moves
tensors and keeps PyTorch's state layout, so checkpoints interchange with ``torch.optim``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import operator
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar

import array_api_compat.torch as xp_torch
import torch
from torch.optim.optimizer import _get_scalar_dtype

from ..optim import adam as core_adam
from ..optim import base as core_base

_LOW_PRECISION = (torch.float16, torch.bfloat16)
_grad_of = operator.attrgetter("grad")
_is_sparse = operator.attrgetter("is_sparse")


def state_mismatch(
    p: torch.Tensor, state: dict[str, Any], scalars: Iterable[str], block_size: Any
) -> str | None:
    """Why ``state`` cannot be ``p``'s (a slot with another number of elements than ``p``, or
    8-bit block scales, ``*_absmax``, for another number of blocks of ``block_size``), else
    None. ``step`` and the per-parameter ``scalars`` (NAdam's ``mu_product``) are numbers. A
    fused kernel reads as many elements as ``p`` has: a smaller state would be read past its
    end."""
    n = p.numel()
    for key, value in state.items():
        if key == "step" or key in scalars or not torch.is_tensor(value):
            continue
        if key.endswith("_absmax"):
            if not isinstance(block_size, int) or block_size <= 0:
                continue
            want = -(-n // block_size)
            what = f"{want} (blocks of {block_size})"
        else:
            want, what = n, f"{n}"
        if value.numel() != want:
            return (
                f"its state '{key}' has shape {tuple(value.shape)} ({value.numel()} elements), "
                f"where a parameter of shape {tuple(p.shape)} needs {what}"
            )
    return None


def _whole(value: Any) -> int | None:
    """A block size as stored in a group (an int, or a whole float), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value) if float(value).is_integer() else None


def _plain(value: Any) -> Any:
    """A group value as the core wants it: tensors become floats, lists become tuples."""
    if isinstance(value, torch.Tensor):
        if value.dim() == 1 and value.numel() != 1:  # betas=torch.tensor([0.9, 0.999])
            return tuple(float(v) for v in value.tolist())
        return float(value.item())
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    return value


class _Missing:
    """A key the group does not have (not the same as the key holding None)."""


_MISSING = _Missing()
_PLAIN_TYPES = frozenset({float, int, bool, str, type(None), _Missing})


def _is_plain(value: Any) -> bool:
    """A value that cannot change in place and compares by value: a Python number, string
    or None, or a tuple of such (a tensor or a list can be edited without the group seeing
    it, so it is read again every step)."""
    if type(value) is tuple:
        return all(type(v) in _PLAIN_TYPES for v in value)
    return type(value) in _PLAIN_TYPES


@functools.cache
def _core_names(core_cls: type) -> tuple[str, ...]:
    """The core dataclass's argument names (its fields)."""
    return tuple(f.name for f in dataclasses.fields(core_cls) if f.name != "_")


class CoreOptimizer(torch.optim.Optimizer):
    """Base of the drop-ins: a ``torch.optim.Optimizer`` whose math is an adamlab core rule.

    Subclasses set ``core_cls`` (the :mod:`adamlab.optim` class), ``state_keys`` (core slot
    name → PyTorch state key) and, where PyTorch keeps them, ``has_step`` and ``scalar_keys``.
    """

    core_cls: ClassVar[type[core_base.Optimizer]]
    #: core slot name → PyTorch's state key, e.g. {"m": "exp_avg", "v": "exp_avg_sq"}
    state_keys: ClassVar[dict[str, str]]
    #: whether PyTorch keeps a per-parameter ``step`` tensor (SGD does not)
    has_step: ClassVar[bool] = True
    #: core per-optimizer scalars kept per parameter by PyTorch, e.g. {"mu_product": ...}
    scalar_keys: ClassVar[dict[str, str]] = {}

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        self._cores: dict[tuple, core_base.Optimizer] = {}
        #: id(group) → (group, its core arguments' raw values, core) of the last step
        self._last_core: dict[int, tuple] = {}
        #: per-group plans of the fused step (:mod:`adamlab.torch.fast`), by id(group)
        self._fused_plans: dict[int, Any] = {}
        super().__init__(params, defaults)

    # -- construction and checkpoints --------------------------------------------------------

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """PyTorch's ``add_param_group``; the group's hyperparameters are validated by the core."""
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        try:
            self._check_torch_flags(group)
            self.core(group)
        except Exception:
            self.param_groups.pop()
            raise

    #: whether checkpoints with 8-bit moments (``*_absmax`` block scales) are this
    #: optimizer's to load (the low-precision ones); others refuse them
    takes_8bit_state: ClassVar[bool] = False

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """``torch.optim``'s, refusing first a state that is not these parameters' (a slot of
        another size: a checkpoint of another model, whose state a fused step would read past
        its end) and, but for the low-precision optimizers, 8-bit moments (their codes would
        load as floats)."""
        states = state_dict.get("state")
        for saved, _, i, p in self._saved_params(state_dict):
            st = states.get(i) if isinstance(states, dict) else None
            if not isinstance(st, dict):
                continue
            if not self.takes_8bit_state and any(str(k).endswith("_absmax") for k in st):
                raise ValueError(
                    f"loaded state_dict holds 8-bit moments (parameter {i}: "
                    f"{sorted(k for k in st if str(k).endswith('_absmax'))}); "
                    f"adamlab.torch.{type(self).__name__} keeps float moments: load it "
                    "into adamlab.torch.Adam8bit or AdamW8bit"
                )
            why = state_mismatch(p, st, self.scalar_keys.values(), _whole(saved.get("block_size")))
            if why:
                raise ValueError(
                    f"loaded state_dict does not fit this optimizer's parameters: "
                    f"parameter {i}: {why}"
                )
        super().load_state_dict(state_dict)

    def _saved_params(
        self, state_dict: dict[str, Any]
    ) -> Iterator[tuple[dict[str, Any], dict[str, Any], Any, torch.Tensor]]:
        """(saved group, group, saved id, parameter), paired as torch.optim's
        ``load_state_dict`` pairs them: group by group, in order. Groups whose sizes differ
        are left out (torch.optim's own check refuses them, in its words)."""
        groups = state_dict.get("param_groups")
        if not isinstance(groups, list):
            return
        for saved, group in zip(groups, self.param_groups, strict=False):
            ids = saved.get("params", []) if isinstance(saved, dict) else []
            if len(ids) == len(group["params"]):
                for i, p in zip(ids, group["params"], strict=True):
                    yield saved, group, i, p

    def _check_dtypes(self, params: list[torch.Tensor]) -> None:
        """Parameters with a gradient must be floating point (or complex): an integer one
        would step as integers. (A frozen integer parameter, without a gradient, is left
        alone, as torch.optim leaves it.)"""
        for p in params:
            if not (p.is_floating_point() or p.is_complex()):
                raise TypeError(
                    f"adamlab.torch.{type(self).__name__} optimizes floating-point (or complex) "
                    f"tensors; a parameter of shape {tuple(p.shape)} with a gradient has dtype "
                    f"{p.dtype}"
                )

    def _check_state(self, p: torch.Tensor, state: dict[str, Any], group: Any) -> None:
        """Refuse, before a step reads it, a state that is not ``p``'s: one loaded for
        another model, kept from before the parameter was resized (``p.data = ...``), or
        quantized in blocks of another ``block_size`` than the group's now."""
        bs = _whole(group.get("block_size")) if isinstance(group, dict) else None
        why = state_mismatch(p, state, self.scalar_keys.values(), bs)
        if why:
            raise RuntimeError(
                f"adamlab.torch.{type(self).__name__}: a parameter's state does not fit it: {why} "
                "(a checkpoint of another model, a parameter resized after a step, or "
                "block_size changed after a step)"
            )

    def _check_torch_flags(self, group: dict[str, Any]) -> None:
        """Refuse what ``torch.optim`` refuses, with its exception type and words (each message
        names the argument), before the core validates the values in its own words."""
        self._check_tensor_hypers(group)
        if group.get("fused") and group.get("differentiable"):
            raise RuntimeError("`fused` does not support `differentiable`")
        if group.get("fused") and group.get("foreach"):
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
        for key, value in group.items():
            values = value if key == "betas" and isinstance(value, (tuple, list)) else (value,)
            if key != "params" and any(callable(v) and not torch.is_tensor(v) for v in values):
                raise TypeError(
                    f"{key} is a callable: adamlab.torch optimizers take numbers or tensors, as "
                    "torch.optim does; schedule them with torch.optim.lr_scheduler (the core "
                    "optimizers in adamlab.optim take schedules)"
                )
        if group.get("capturable"):
            name = type(self).__name__
            # (Adam8bit and the like have no torch.optim namesake: their float32 Adam or AdamW)
            peer = name if hasattr(torch.optim, name) else "AdamW" if "AdamW" in name else "Adam"
            raise ValueError(
                f"capturable=True (CUDA graph capture) is not supported by adamlab.torch."
                f"{name}; use torch.optim.{peer} for graph capture"
            )
        if group.get("differentiable"):
            raise ValueError(
                f"differentiable=True is not supported by adamlab.torch.{type(self).__name__}: "
                "its step runs under torch.no_grad()"
            )

    def _check_tensor_hypers(self, group: dict[str, Any]) -> None:
        """Tensor hyperparameters as ``torch.optim`` takes them, refused with its exception
        type and words: one element each (``ValueError`` for lr and betas, where torch.optim
        checks; ``RuntimeError`` for the others, where its range check raises one); no tensor
        betas with ``foreach=True`` unless ``capturable`` (torch.optim's foreach step cannot
        take them); and for Adam and AdamW (whose core is :class:`adamlab.Adam`) betas both
        floats or both tensors, and no tensor lr with ``foreach=True``."""
        adam_rules = issubclass(self.core_cls, core_adam.Adam)
        foreach = bool(group.get("foreach")) and not group.get("capturable")
        lr = group.get("lr")
        if torch.is_tensor(lr):
            if adam_rules and foreach:
                raise ValueError(
                    "lr as a Tensor is not supported for capturable=False and foreach=True"
                )
            if lr.numel() != 1:
                raise ValueError(
                    f"Tensor lr must be 1-element, got a tensor of shape {tuple(lr.shape)}"
                )
        betas = group.get("betas")
        if isinstance(betas, (tuple, list)) and len(betas) == 2:
            tensors = [torch.is_tensor(b) for b in betas]
            if adam_rules and any(tensors) and not all(tensors):
                raise ValueError(
                    f"betas must be either both floats or both Tensors, got "
                    f"({type(betas[0]).__name__}, {type(betas[1]).__name__})"
                )
            for i, b in enumerate(betas):
                if not torch.is_tensor(b):
                    continue
                if foreach:
                    raise ValueError(
                        f"betas[{i}] as a Tensor is not supported for capturable=False and "
                        "foreach=True"
                    )
                if b.numel() != 1:
                    raise ValueError(
                        f"Tensor betas[{i}] must be 1-element, got a tensor of shape "
                        f"{tuple(b.shape)}"
                    )
        for key, value in group.items():
            if (
                key not in ("params", "lr", "betas")
                and torch.is_tensor(value)
                and value.numel() != 1
            ):
                raise RuntimeError(
                    f"Tensor {key} must be 1-element, got a tensor of shape {tuple(value.shape)}"
                )

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Load checkpoints of any vintage: torch.optim's (missing adamlab switches take their
        defaults), and older ones where ``step`` is a Python number."""
        super().__setstate__(state)
        if not hasattr(self, "_cores"):
            self._cores = {}
        self._last_core = {}
        self._fused_plans = {}  # new state and groups: plans are rebuilt at the next step
        for group in self.param_groups:
            for key, value in self.defaults.items():
                if key != "params":
                    group.setdefault(key, value)
            for p in group["params"]:
                p_state = self.state.get(p, {})
                if self.has_step and "step" in p_state and not torch.is_tensor(p_state["step"]):
                    p_state["step"] = torch.tensor(
                        float(p_state["step"]), dtype=_get_scalar_dtype()
                    )
                for key in self.scalar_keys.values():
                    if key in p_state and not torch.is_tensor(p_state[key]):
                        p_state[key] = torch.tensor(float(p_state[key]), dtype=_get_scalar_dtype())

    # -- the core rule for a group -------------------------------------------------------------

    def core_kwargs(self, group: dict[str, Any]) -> dict[str, Any]:
        """The core optimizer's arguments for this group (hyperparameters as plain floats)."""
        kwargs = {k: _plain(group[k]) for k in _core_names(self.core_cls) if k in group}
        kwargs["nonfinite"] = "propagate"  # PyTorch's behaviour; GradScaler skips bad steps
        return kwargs

    def core(self, group: dict[str, Any]) -> core_base.Optimizer:
        """The core optimizer for ``group``'s current hyperparameters (cached by value).

        Read at every step (schedulers and hand edits change the group): when the group's
        values are plain numbers, strings and tuples of them, equal to those of the last
        step, the last core is returned after a comparison; otherwise (a change, or a
        tensor value, which may have changed in place) the arguments are read again."""
        names = _core_names(self.core_cls)
        values = tuple(map(group.get, names, itertools.repeat(_MISSING)))
        last = self._last_core.get(id(group))
        if (
            last is not None
            and last[0] is group
            and (
                all(map(operator.is_, values, last[1]))  # the same immutable objects
                or (all(map(_is_plain, values)) and values == last[1])
            )
        ):
            return last[2]
        kwargs = self.core_kwargs(group)
        key = tuple(sorted(kwargs.items()))
        opt = None
        with contextlib.suppress(KeyError, TypeError):
            opt = self._cores[key]
        if opt is None:
            opt = self.core_cls(**kwargs)
            if len(self._cores) > 64:  # a scheduler changing lr every step: keep it small
                self._cores.clear()
            with contextlib.suppress(TypeError):  # an unhashable value: nothing to cache
                self._cores[key] = opt
        if all(map(_is_plain, values)):
            if len(self._last_core) > 64:
                self._last_core.clear()
            self._last_core[id(group)] = (group, values, opt)
        else:
            self._last_core.pop(id(group), None)
        return opt

    # -- state -------------------------------------------------------------------------------

    def _init_state(self, p: torch.Tensor, core: core_base.Optimizer) -> dict[str, Any]:
        state = self.state[p]
        if self.has_step:
            state["step"] = torch.tensor(0.0, dtype=_get_scalar_dtype())
        for name, value in core.scalars_init().items():
            state[self.scalar_keys[name]] = torch.tensor(float(value), dtype=_get_scalar_dtype())
        self._fill_slots(p, state, core)
        return state

    def _fill_slots(self, p: torch.Tensor, state: dict[str, Any], core: core_base.Optimizer):
        """Create the slots this configuration uses and the state lacks (e.g. ``amsgrad``
        switched on after a checkpoint was saved without ``max_exp_avg_sq``)."""
        missing = [s for s in core.active_slots() if state.get(self.state_keys[s]) is None]
        if not missing:
            return
        x = torch.view_as_real(p.detach()) if p.is_complex() else p.detach()
        fresh = core.init_leaf(xp_torch, x)
        taken = {x.data_ptr()}
        for s in missing:
            value = fresh[s]
            if _adoptable(value, x, taken):  # the core's fresh tensor itself: no second copy
                t = torch.view_as_complex(value) if p.is_complex() else value
                taken.add(value.data_ptr())
            else:
                t = torch.empty_like(p, memory_format=torch.preserve_format)
                (torch.view_as_real(t) if t.is_complex() else t).copy_(value)
            state[self.state_keys[s]] = t

    def step_number(self, state: dict[str, Any]) -> int:
        """t for the step about to be taken (1 for the first)."""
        return int(state["step"].item()) + 1 if "step" in state else 1

    # -- the step ----------------------------------------------------------------------------

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One optimizer step for every parameter with a gradient; returns ``closure()``'s loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            core = self.core(group)
            if self._planned_step(group, core):
                continue
            params = [p for p in group["params"] if p.grad is not None]
            self._check_dtypes(params)
            if any(map(_is_sparse, map(_grad_of, params))):
                p = next(p for p in params if p.grad.is_sparse)
                raise RuntimeError(
                    f"adamlab.torch.{type(self).__name__} does not support sparse gradients "
                    f"(parameter of shape {tuple(p.shape)}); use torch.optim.SparseAdam, or "
                    "a dense embedding (sparse=False)"
                )
            params = self._fast_step(group, core, params)
            for p in params:
                self._reference_step(p, group, core)
        return loss

    def _planned_step(self, group: dict[str, Any], core: core_base.Optimizer) -> bool:
        """Subclasses with fused kernels may step a whole group from what they kept of its
        last step (every parameter, all checked unchanged): True if done, else False with
        nothing done."""
        return False

    def _fast_step(
        self, group: dict[str, Any], core: core_base.Optimizer, params: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        """Subclasses with fused kernels step what they can and return the rest."""
        return params

    def _reference_step(
        self, p: torch.Tensor, group: dict[str, Any], core: core_base.Optimizer
    ) -> None:
        """One step of the core rule for one parameter, written into ``p`` and its state."""
        state = self.state[p]
        t = self.step_number(state)
        if len(state) == 0:
            self._init_state(p, core)
        else:
            self._fill_slots(p, state, core)
        self._check_state(p, state, group)
        h = core.hypers(t)
        for name, key in self.scalar_keys.items():
            new = core.scalars_update({name: state[key]}, t, h)[name]
            state[key].copy_(new)
            h[name] = float(state[key].item())  # PyTorch reads the stored (rounded) value

        targets = [p] + [state[self.state_keys[s]] for s in core.active_slots()]
        if p.is_complex():  # PyTorch's semantics: real and imaginary parts are two reals
            targets = [torch.view_as_real(z) for z in targets]
            grad = torch.view_as_real(p.grad)
        else:
            grad = p.grad
        x, *slot_values = (z.detach() for z in targets)
        g = grad.detach()
        if x.dtype in _LOW_PRECISION:  # the arithmetic in float32, results rounded once
            x, g = x.float(), g.float()
            slot_values = [z.float() for z in slot_values]
        s = core_base.Hypers(zip(core.active_slots(), slot_values, strict=True))
        x_new, s_new = core.update_leaf(xp_torch, x, g, s, t, h)
        targets[0].copy_(x_new)
        for name, target in zip(core.active_slots(), targets[1:], strict=True):
            target.copy_(s_new[name])
        if self.has_step:
            state["step"] += 1


def _adoptable(value: Any, x: torch.Tensor, taken: set[int]) -> bool:
    """A fresh slot value the state may keep as it is: a plain tensor laid out as ``x`` (the
    parameter or its real view) would be by ``empty_like``, owning its memory, sharing none
    with ``x`` or another slot."""
    return (
        type(value) is torch.Tensor
        and value.dtype == x.dtype
        and value.device == x.device
        and value.shape == x.shape
        and value.stride() == x.stride()
        and value.storage_offset() == 0
        and value.untyped_storage().nbytes() == value.numel() * value.element_size()
        and value.data_ptr() not in taken
        and not value.requires_grad
    )


def warn_no_fused(cls_name: str, fused: Any) -> None:
    if fused:
        warnings.warn(
            f"adamlab.torch.{cls_name} has no fused kernel; fused=True runs the reference path",
            stacklevel=3,
        )


__all__ = ["CoreOptimizer", "warn_no_fused"]
