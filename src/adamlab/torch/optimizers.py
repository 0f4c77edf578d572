"""The eight drop-ins: PyTorch's signatures and defaults, adamlab's math and extra switches.

Each class maps the core's slot names (the paper's symbols) to PyTorch's state keys, so a
``state_dict()`` saved by ``torch.optim.X`` loads into ``adamlab.torch.X`` and vice versa.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import torch

from .. import optim as core
from ._shell import CoreOptimizer, warn_no_fused
from .clip import DeferredClip, register_owner

_BETAS = (0.9, 0.999)


def _float32_state_only(name: str, state_precision: Any) -> None:
    """Adam and AdamW keep float32 m and v; the core's other precisions are the classes of
    :mod:`adamlab.torch.lowmem`, named in the error."""
    if state_precision == "fp32":
        return
    cls = (
        {"8bit": "8bit", "bf16": "BF16"}.get(state_precision)
        if isinstance(state_precision, str)
        else None
    )
    where = (
        f"use adamlab.torch.{name}{cls} for {state_precision!r} state"
        if cls
        else "the low-precision states are '8bit' (adamlab.torch.Adam8bit, AdamW8bit) and "
        "'bf16' (AdamBF16, AdamWBF16)"
    )
    raise ValueError(
        f"Invalid state_precision: {state_precision!r} for adamlab.torch.{name}, which keeps "
        f"float32 state ('fp32'); {where}"
    )


class Adam(DeferredClip, CoreOptimizer):
    r"""Adam (Kingma & Ba, 2015) as ``torch.optim.Adam``, with adamlab's switches.

    Same signature, defaults and ``state_dict`` layout as ``torch.optim.Adam`` (state keys
    ``step``, ``exp_avg`` = m, ``exp_avg_sq`` = v, ``max_exp_avg_sq`` = v_max), plus the
    keyword-only switches of :class:`adamlab.Adam`: ``bias_correction`` (bool or a pair),
    ``eps_placement``, ``eps_root`` and ``amsgrad_variant``. ``state_precision`` is ``"fp32"``
    here: 8-bit and bfloat16 state are :class:`adamlab.torch.Adam8bit` and
    :class:`adamlab.torch.AdamBF16`, which another value names in its error.

    ``fused=None`` (default) steps CPU parameters with a fused kernel when the tensors allow it
    (contiguous, float32/float64/float16/bfloat16): the C++ one, built once with the system's
    compiler and run on PyTorch's own thread pool, else the numba one (same bits; see
    :mod:`adamlab.torch.fast`), and with the core's reference rule otherwise;
    ``fused=False`` always uses the reference rule; ``fused=True`` requires a kernel (C++ or
    numba on the CPU, Triton on CUDA) for every parameter.
    ``foreach`` is accepted for compatibility and has no effect.

    :func:`adamlab.torch.clip_grad_norm_` hands its clip coefficient to the next ``step()``
    of float32 CPU parameters on the C++ kernel, which applies it as it reads each gradient
    (the same bits as clipping first, one pass over the gradients fewer); so does
    ``torch.amp.GradScaler`` its scale (``_step_supports_amp_scaling``).
    """

    core_cls: ClassVar[type] = core.Adam
    state_keys: ClassVar[dict[str, str]] = {
        "m": "exp_avg", "v": "exp_avg_sq", "v_max": "max_exp_avg_sq",
    }  # fmt: skip
    #: torch.amp.GradScaler hands its scale to step() (grad_scale / found_inf attributes)
    #: where this is True: set per optimizer, as for clip_grad_norm_ (see _may_take_clips)
    _step_supports_amp_scaling: bool = False

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | torch.Tensor = 1e-3,
        betas: tuple[float | torch.Tensor, float | torch.Tensor] = _BETAS,
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
        bias_correction: bool | tuple[bool, bool] = True,
        eps_placement: str = "after_correction",
        eps_root: float = 0.0,
        amsgrad_variant: str = "raw",
        state_precision: str = "fp32",
    ) -> None:
        _float32_state_only(self.core_cls.__name__, state_precision)
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
            maximize=maximize, foreach=foreach, capturable=capturable,
            differentiable=differentiable, fused=fused,
            decoupled_weight_decay=decoupled_weight_decay, bias_correction=bias_correction,
            eps_placement=eps_placement, eps_root=eps_root, amsgrad_variant=amsgrad_variant,
        )  # fmt: skip
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        register_owner(self, self.param_groups[-1]["params"])  # (for clip_grad_norm_)
        self._step_supports_amp_scaling = self._may_take_clips()

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            register_owner(self, group["params"])
        self._step_supports_amp_scaling = self._may_take_clips()

    def _check_torch_flags(self, group: dict[str, Any]) -> None:
        super()._check_torch_flags(group)
        _float32_state_only(self.core_cls.__name__, group.get("state_precision", "fp32"))
        if group.get("fused"):
            from . import fast

            fast.check_available()

    #: clip_grad_norm_'s coefficient is taken into the step only where the tensors average
    #: at least this many elements: the scaled step's host work is a Python pass over its
    #: parameters (it does not use the plan), which costs more than the gradient pass it saves
    #: on many small tensors (48 × (Linear(256, 256), LayerNorm): 15.0 ms a clip + step
    #: against 7.2 with PyTorch's clip in place and the planned step; notes/issue-11.md)
    clip_defer_min_mean_numel: ClassVar[int] = 1 << 18

    def _may_take_clips(self) -> bool:
        params = [p for g in self.param_groups for p in g["params"]]
        return self._large(params)

    def _defers(self, params: list[torch.Tensor]) -> bool:
        from . import fast

        return self._large(params) and fast.cpu_kernel() == "cpp"

    def _large(self, params: list[torch.Tensor]) -> bool:
        mean = sum(p.numel() for p in params) / max(1, len(params))
        return mean >= self.clip_defer_min_mean_numel

    def _can_defer(self, p: torch.Tensor, g: torch.Tensor, group: dict[str, Any]) -> bool:
        from . import fast

        return (
            group.get("fused") is not False
            and not group.get("amsgrad")
            and fast.clip_kernel_possible(p, g)
        )

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One step for every parameter with a gradient; returns ``closure()``'s loss. Under
        ``torch.amp.GradScaler``, where ``_step_supports_amp_scaling`` (parameters averaging
        2¹⁸ elements or more, as for the clip: GradScaler then hands this step its scale
        instead of unscaling the gradients first), a step with an inf or NaN gradient is
        skipped, and the gradients are unscaled as the kernel reads them."""
        if getattr(self, "found_inf", None) is None and getattr(self, "grad_scale", None) is None:
            return super().step(closure)  # (under torch.no_grad, as the step's work is)
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        skip, self._unscale = self._amp_handover()
        if skip:
            return loss
        try:
            super().step(None)
        finally:
            self._unscale = None
        return loss

    def _planned_step(self, group, core_opt):
        if (
            group.get("fused") is False
            or self.__dict__.get("_pending_clip")
            or self.__dict__.get("_unscale") is not None
        ):
            return False  # (scale factors: the per-parameter path takes them)
        from . import fast

        return fast.planned_step(self, group, core_opt)

    def _fast_step(self, group, core_opt, params):
        from . import fast

        unscale = self.__dict__.get("_unscale")
        if self.__dict__.get("_pending_clip") or unscale is not None:
            params = fast.scaled_step(self, group, core_opt, params, unscale)
        if group.get("fused") is False or not params:
            return params
        return fast.adam_step(self, group, core_opt, params, required=bool(group.get("fused")))


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter, 2019) as ``torch.optim.AdamW``: decoupled weight decay,
    default ``weight_decay=1e-2``. See :class:`Adam` for everything else."""

    core_cls: ClassVar[type] = core.AdamW

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | torch.Tensor = 1e-3,
        betas: tuple[float | torch.Tensor, float | torch.Tensor] = _BETAS,
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        bias_correction: bool | tuple[bool, bool] = True,
        eps_placement: str = "after_correction",
        eps_root: float = 0.0,
        amsgrad_variant: str = "raw",
        state_precision: str = "fp32",
    ) -> None:
        super().__init__(
            params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
            capturable=capturable, differentiable=differentiable, fused=fused,
            decoupled_weight_decay=True, bias_correction=bias_correction,
            eps_placement=eps_placement, eps_root=eps_root, amsgrad_variant=amsgrad_variant,
            state_precision=state_precision,
        )  # fmt: skip


class SGD(CoreOptimizer):
    """SGD with momentum/Nesterov as ``torch.optim.SGD`` (state key ``momentum_buffer`` = b)."""

    core_cls: ClassVar[type] = core.SGD
    state_keys: ClassVar[dict[str, str]] = {"b": "momentum_buffer"}
    has_step: ClassVar[bool] = False

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | torch.Tensor = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float | torch.Tensor = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        warn_no_fused("SGD", fused)
        defaults = dict(
            lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
            nesterov=nesterov, maximize=maximize, foreach=foreach,
            differentiable=differentiable, fused=fused,
        )  # fmt: skip
        super().__init__(params, defaults)

    def step_number(self, state: dict[str, Any]) -> int:
        # PyTorch keeps no step count for SGD: the first step is the one without a buffer.
        return 1 if state.get("momentum_buffer") is None else 2


class RMSprop(CoreOptimizer):
    """RMSprop as ``torch.optim.RMSprop`` (state keys ``square_avg`` = v, ``grad_avg`` = ḡ,
    ``momentum_buffer`` = b)."""

    core_cls: ClassVar[type] = core.RMSprop
    state_keys: ClassVar[dict[str, str]] = {
        "v": "square_avg", "g_avg": "grad_avg", "b": "momentum_buffer",
    }  # fmt: skip

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | torch.Tensor = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
            centered=centered, capturable=capturable, foreach=foreach, maximize=maximize,
            differentiable=differentiable,
        )  # fmt: skip
        super().__init__(params, defaults)


class Adagrad(CoreOptimizer):
    """Adagrad as ``torch.optim.Adagrad`` (state key ``sum`` = G, created at construction as
    PyTorch does)."""

    core_cls: ClassVar[type] = core.Adagrad
    state_keys: ClassVar[dict[str, str]] = {"G": "sum"}

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | torch.Tensor = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        warn_no_fused("Adagrad", fused)
        defaults = dict(
            lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value, eps=eps, foreach=foreach,
            maximize=maximize, differentiable=differentiable, fused=fused,
        )  # fmt: skip
        super().__init__(params, defaults)
        for group in self.param_groups:
            opt = self.core(group)
            for p in group["params"]:
                if len(self.state[p]) == 0:
                    self._init_state(p, opt)


class Adamax(CoreOptimizer):
    """Adamax as ``torch.optim.Adamax`` (state keys ``exp_avg`` = m, ``exp_inf`` = u), plus
    ``bias_correction``."""

    core_cls: ClassVar[type] = core.Adamax
    state_keys: ClassVar[dict[str, str]] = {"m": "exp_avg", "u": "exp_inf"}

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | torch.Tensor = 2e-3,
        betas: tuple[float, float] = _BETAS,
        eps: float = 1e-8,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
        bias_correction: bool = True,
    ) -> None:
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=foreach,
            maximize=maximize, differentiable=differentiable, capturable=capturable,
            bias_correction=bias_correction,
        )  # fmt: skip
        super().__init__(params, defaults)


class NAdam(CoreOptimizer):
    """NAdam as ``torch.optim.NAdam`` (state keys ``exp_avg`` = m, ``exp_avg_sq`` = v, and the
    per-parameter ``mu_product`` kept, like PyTorch, in the default scalar dtype)."""

    core_cls: ClassVar[type] = core.NAdam
    state_keys: ClassVar[dict[str, str]] = {"m": "exp_avg", "v": "exp_avg_sq"}
    scalar_keys: ClassVar[dict[str, str]] = {"mu_product": "mu_product"}

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | torch.Tensor = 2e-3,
        betas: tuple[float, float] = _BETAS,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
            momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay,
            foreach=foreach, maximize=maximize, capturable=capturable,
            differentiable=differentiable,
        )  # fmt: skip
        super().__init__(params, defaults)


class RAdam(CoreOptimizer):
    """RAdam as ``torch.optim.RAdam`` (state keys ``exp_avg`` = m, ``exp_avg_sq`` = v), plus
    ``eps_placement`` (``"before_correction"`` is PyTorch's, the default)."""

    core_cls: ClassVar[type] = core.RAdam
    state_keys: ClassVar[dict[str, str]] = {"m": "exp_avg", "v": "exp_avg_sq"}

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | torch.Tensor = 1e-3,
        betas: tuple[float, float] = _BETAS,
        eps: float = 1e-8,
        weight_decay: float = 0,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        eps_placement: str = "before_correction",
    ) -> None:
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay, foreach=foreach, maximize=maximize,
            capturable=capturable, differentiable=differentiable, eps_placement=eps_placement,
        )  # fmt: skip
        super().__init__(params, defaults)


__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "RMSprop"]
