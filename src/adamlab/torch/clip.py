"""``clip_grad_norm_`` with its scaling fused into the next optimizer step.

    from adamlab.torch import Adam, clip_grad_norm_

    loss.backward()
    clip_grad_norm_(model.parameters(), max_norm=1.0)   # the scale goes into the next step
    opt.step()

:func:`clip_grad_norm_` is ``torch.nn.utils.clip_grad_norm_``: same signature, same norm
(computed by PyTorch's own ``get_total_norm``), same clip coefficient. For gradients whose
parameters an adamlab optimizer with a fused step will step, it does not rewrite the
gradients: the coefficient travels to the next ``step()``, whose kernel multiplies each
gradient element by it as it reads it (the product ``clip_grad_norm_`` would have stored, so
the step is identical), saving a pass that reads and writes every gradient. Until that step,
``p.grad`` holds the unclipped gradient. Other parameters are clipped in place, as PyTorch
does.

The optimizer's half is :class:`DeferredClip`: an optimizer registers the parameters it
steps (:func:`register_owner`), says which gradients its step can scale (``_can_defer``),
and takes each parameter's coefficient in its step (``_take_clip``).
"""

from __future__ import annotations

import types as pytypes
import warnings
import weakref
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

#: id(parameter) → the optimizers registered for it (weakly): for clip_grad_norm_ to hand its
#: scale to. No reference to the parameter is kept (a weak one would stop
#: torch.utils.swap_tensors, which refuses tensors with weak references): at each clip, an
#: optimizer counts as the owner only if its param_groups hold that very tensor now, and
#: only if it is the one such optimizer (see _owners). An optimizer's entries go with it.
_OWNERS: dict[int, list[weakref.ref]] = {}


def _forget(keys: set[int], ref: weakref.ref) -> None:
    for key in keys:
        refs = _OWNERS.get(key)
        if refs is not None and ref in refs:
            refs.remove(ref)
            if not refs:
                del _OWNERS[key]


#: the registered optimizers that may take a coefficient at all (``_may_take_clips``): while
#: there is none, clip_grad_norm_ is PyTorch's, with no look-up per parameter
_TAKERS: weakref.WeakSet = weakref.WeakSet()


def register_owner(opt: Any, params: Iterable[torch.Tensor]) -> None:
    """Record that ``opt`` (a :class:`DeferredClip`) steps ``params``: :func:`clip_grad_norm_`
    then defers their scaling to it. The hook any fused optimizer can adopt."""
    ref = opt.__dict__.get("_owner_ref")
    if ref is None:
        ref = opt._owner_ref = weakref.ref(opt)
        opt._owner_keys = keys = set()
        weakref.finalize(opt, _forget, keys, ref)
    for p in params:
        refs = _OWNERS.setdefault(id(p), [])
        if ref not in refs:
            refs.append(ref)
        opt._owner_keys.add(id(p))
    if opt._may_take_clips():
        _TAKERS.add(opt)
    else:
        _TAKERS.discard(opt)


def _owners(parameters: list[torch.Tensor]) -> list[tuple[Any, dict] | None]:
    """For each parameter: (the optimizer that steps it, the group holding it), or None.
    The optimizer must hold that very tensor in its param_groups as they are now (read once
    per call), and be the only registered one that does: with two (a copy, a second
    optimizer over the same model) nobody can tell which will step, so none defers."""
    held: dict[int, dict[int, tuple[torch.Tensor, dict]]] = {}  # id(opt) → id(p) → (p, group)
    out = []
    for p in parameters:
        found = []
        for ref in _OWNERS.get(id(p), ()):
            opt = ref()
            if opt is None:
                continue
            groups = held.get(id(opt))
            if groups is None:
                groups = held[id(opt)] = {
                    id(q): (q, g) for g in opt.param_groups for q in g["params"]
                }
            entry = groups.get(id(p))
            if entry is not None and entry[0] is p:
                found.append((opt, entry[1]))
        out.append(found[0] if len(found) == 1 else None)
    return out


def clip_grad_norm_(
    parameters: torch.Tensor | Iterable[torch.Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> torch.Tensor:
    """``torch.nn.utils.clip_grad_norm_``, with the scaling fused into the next step.

    Returns the total norm of the gradients (viewed as one vector), as PyTorch does, and
    computes it and the clip coefficient min(1, max_norm/(norm + 1e-6)) with PyTorch's own
    code. Gradients of parameters that an adamlab optimizer with a fused step will step
    (:class:`adamlab.torch.Adam`/``AdamW`` on the C++ kernel, the 8-bit and bfloat16
    optimizers) are not rewritten: the optimizer's next ``step()`` multiplies each gradient
    element by the coefficient as its kernel reads it (the product ``clip_grad_norm_`` would
    have stored, so the step is identical). Until that step, ``p.grad`` holds the unclipped
    gradient. Other gradients are clipped in place, exactly as
    ``torch.nn.utils.clip_grad_norm_`` does: those of parameters no such optimizer steps, of
    parameters two of them hold, and of parameters listed more than once (PyTorch scales
    those once per listing).
    """
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    else:
        is_generator = isinstance(parameters, pytypes.GeneratorType)
        parameters = list(parameters)
        if is_generator and not parameters:
            warnings.warn(
                "`parameters` is an empty generator, no gradient clipping will occur.",
                stacklevel=2,
            )
    # the registered optimizers (alive) and their parameters here, not yet verified (ownership
    # is checked per parameter only where it matters); none while no optimizer may take one
    registered: dict[int, tuple[Any, list[torch.Tensor]]] = {}
    for p in parameters if _TAKERS else ():
        for ref in _OWNERS.get(id(p), ()):
            opt = ref()
            if opt is not None:
                registered.setdefault(id(opt), (opt, []))[1].append(p)
    owners = None
    if any(opt.__dict__.get("_pending_clip") for opt, _ in registered.values()):
        owners = _owners(parameters)
        for p, owner in zip(parameters, owners, strict=True):
            if owner is not None:  # a clip already deferred: apply it, so this one sees it
                owner[0]._apply_deferred_clip(p)
    grads = [p.grad for p in parameters if p.grad is not None]
    total_norm = torch.nn.utils.get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    if not grads:
        return total_norm
    clip_coef = float(max_norm) / (total_norm + 1e-6)  # PyTorch's expression, op for op
    coef = torch.clamp(clip_coef, max=1.0)
    takers = set()
    for key, (opt, ps) in registered.items():
        with_grad = [p for p in ps if p.grad is not None]
        if with_grad and opt._defers(with_grad):
            takers.add(key)
    if takers:
        owners = owners or _owners(parameters)
        counts: dict[int, int] = {}
        for p in parameters:
            counts[id(p)] = counts.get(id(p), 0) + 1
        rest = [
            p
            for p, owner in zip(parameters, owners, strict=True)
            if p.grad is not None
            and not (
                counts[id(p)] == 1
                and owner is not None
                and id(owner[0]) in takers
                and owner[0]._defer_clip(p, coef, owner[1])
            )
        ]
    else:
        rest = [p for p in parameters if p.grad is not None]
    if rest:
        torch.nn.utils.clip_grads_with_norm_(rest, max_norm, total_norm, foreach)
    return total_norm


def _still(p: torch.Tensor, entry: tuple) -> bool:
    """The gradient a deferred clip was computed for is still ``p.grad``, unchanged."""
    g, version, _ = entry
    return p.grad is g and g._version == version


class DeferredClip:
    """The optimizer's half of :func:`clip_grad_norm_`'s deferred coefficient (a mixin for
    ``torch.optim.Optimizer`` subclasses). Subclasses say which gradients their step can
    scale (:meth:`_can_defer`) and take each coefficient in ``step()`` (:meth:`_take_clip`);
    ``zero_grad`` drops what is pending."""

    #: parameter → (gradient, its version, clip coefficient): scales for the next step
    _pending_clip: dict[torch.Tensor, tuple[torch.Tensor, int, torch.Tensor]]

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.__dict__.setdefault("_pending_clip", {})

    def _may_take_clips(self) -> bool:
        """Whether this optimizer may take a clip's coefficient into its step at all (asked
        when parameters are registered). By default, yes."""
        return True

    def _defers(self, params: list[torch.Tensor]) -> bool:
        """Whether to take a clip's coefficient for these of its parameters (those with a
        gradient in one ``clip_grad_norm_`` call) at all; each must then also pass
        :meth:`_can_defer`. By default, yes."""
        return True

    def _can_defer(self, p: torch.Tensor, g: torch.Tensor, group: dict[str, Any]) -> bool:
        """Whether this optimizer's next step of ``p`` (in ``group``) can scale ``g`` (dense,
        on the CPU) exactly in its kernel."""
        raise NotImplementedError

    def _defer_clip(self, p: torch.Tensor, coef: torch.Tensor, group: dict[str, Any]) -> bool:
        """Take ``clip_grad_norm_``'s coefficient for ``p`` into the next step, if this step
        can apply it exactly (a float32 coefficient, a gradient the step can scale); else say
        no (it is applied in place)."""
        g = p.grad
        if (
            coef.dtype != torch.float32
            or coef.device.type != "cpu"
            or g is None
            or g.is_sparse
            or not self._can_defer(p, g, group)
        ):
            return False
        self.__dict__.setdefault("_pending_clip", {})[p] = (g, g._version, coef)
        return True

    def _apply_deferred_clip(self, p: torch.Tensor) -> None:
        """Scale ``p.grad`` in place by a deferred coefficient (a second clip is coming, or
        the step cannot take it in its kernel): what ``clip_grad_norm_`` would have done."""
        entry = self.__dict__.get("_pending_clip", {}).pop(p, None)
        if entry is not None and _still(p, entry):
            with torch.no_grad():
                p.grad.mul_(entry[2])

    def _take_clip(self, p: torch.Tensor) -> float | None:
        """The coefficient deferred to this step for ``p`` (removed), or None: none pending,
        or dropped with a warning because the gradient changed since."""
        entry = self.__dict__.get("_pending_clip", {}).pop(p, None)
        if entry is None:
            return None
        if not _still(p, entry):
            warnings.warn(
                "a gradient changed between adamlab.torch.clip_grad_norm_ and step() (modified "
                "in place, or accumulated into), so the clip coefficient deferred to this step "
                "was dropped; clip right before step(), or use torch.nn.utils.clip_grad_norm_",
                RuntimeWarning,
                stacklevel=4,
            )
            return None
        return float(entry[2])

    def _amp_handover(self) -> tuple[bool, float | None]:
        """What ``torch.amp.GradScaler`` handed this step (``_step_supports_amp_scaling``: its
        ``found_inf`` and ``grad_scale`` attributes): (skip, unscale). skip: an inf or NaN
        gradient was found, so the step is skipped (and the pending clips dropped); unscale:
        the float32 factor ``GradScaler.unscale_`` would have multiplied the gradients by,
        float32(1/scale), or None."""
        found_inf = getattr(self, "found_inf", None)
        if found_inf is not None and float(found_inf) > 0:
            self._drop_clips()
            return True, None
        grad_scale = getattr(self, "grad_scale", None)
        if grad_scale is None:
            return False, None
        return False, float(np.float32(1.0 / float(torch.as_tensor(grad_scale).double())))

    def _drop_clips(self, groups: Iterable[dict[str, Any]] | None = None) -> None:
        """Forget the coefficients pending for the parameters of ``groups`` (default: all of
        this optimizer's)."""
        pending = self.__dict__.get("_pending_clip")
        if pending:
            for group in self.param_groups if groups is None else groups:
                for p in group["params"]:
                    pending.pop(p, None)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self._drop_clips()
        super().zero_grad(set_to_none)


__all__ = ["DeferredClip", "clip_grad_norm_", "register_owner"]
