"""Dispatch of ``adamlab.torch.Adam``/``AdamW`` steps to the fused kernels.

A parameter takes the fused path when its tensors allow it:

* CPU (numba installed): parameter, gradient and state contiguous, dtype float32, float64,
  float16 or bfloat16 (complex64/complex128 through their real views); all such parameters
  of a group with the same dtype and step count go to one kernel launch;
* CUDA (Triton installed): the same conditions, one launch per parameter.

Everything else (non-contiguous or sparse layouts, other devices, numba absent) takes the
reference path, the core's ``update_leaf``. Both give the same numbers (tests check it).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from typing import Any

import numpy as np
import torch

from ..kernels import adam_host, numba_available, triton_available

_STEP_KINDS = {torch.float32, torch.float64}
_KIND = {
    torch.float32: "float32",
    torch.float64: "float64",
    torch.float16: "float16",
    torch.bfloat16: "bfloat16",
    torch.complex64: "float32",
    torch.complex128: "float64",
}


@functools.cache
def _numba_kernels():
    from ..kernels import numba_adam

    return numba_adam


def check_available() -> None:
    """``fused=True`` needs a kernel: numba (CPU) or Triton with CUDA."""
    if not (numba_available() or triton_available()):
        raise RuntimeError(
            "fused=True needs numba (CPU; pip install 'adamlab[fast]') or Triton with a CUDA "
            "device; install one, or pass fused=None to fall back to the reference path"
        )


def why_not_fused(p: torch.Tensor, state_tensors: list[torch.Tensor]) -> str | None:
    """None if ``p`` can take a fused kernel, else the reason."""
    if p.dtype not in _KIND:
        return f"dtype {p.dtype} has no fused kernel"
    if p.device.type == "cpu":
        if not numba_available():
            return "numba is not installed"
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
    for t in state_tensors:
        if not t.is_contiguous() or t.dtype != p.dtype or t.device != p.device:
            return "a state tensor is not contiguous or has another dtype/device"
    return None


def adam_step(opt, group: dict[str, Any], core_opt, params: list[torch.Tensor], *, required: bool):
    """Step every parameter of ``params`` the kernels can take; return the others."""
    has_numba, has_triton = numba_available(), triton_available()
    if not (has_numba or has_triton):
        return params
    keys = [opt.state_keys[s] for s in core_opt.active_slots()]
    rest: list[torch.Tensor] = []
    batches: dict[tuple, list] = defaultdict(list)
    for p in params:
        state = opt.state[p]
        if len(state) == 0:
            opt._init_state(p, core_opt)
        elif any(k not in state for k in keys):
            opt._fill_slots(p, state, core_opt)
        g = p.grad
        tensors = [p, g, *(state[k] for k in keys)]
        # the common case, checked cheaply; anything else asks why_not_fused for the reason
        dt, cpu = p.dtype, p.is_cpu
        fast = (
            dt in _KIND
            and (has_numba if cpu else p.is_cuda and has_triton)
            and g.layout == torch.strided
        )
        if fast:
            for t in tensors:
                if (
                    t.dtype != dt
                    or t.is_cpu != cpu
                    or not t.is_contiguous()
                    or type(t.data) is not torch.Tensor  # DTensor (FSDP2) and other wrappers
                ):
                    fast = False
                    break
        if not fast:
            if required:
                reason = why_not_fused(p, tensors[2:]) or "unsupported tensors"
                raise RuntimeError(
                    f"fused=True, but a parameter of shape {tuple(p.shape)} cannot take the "
                    f"fused kernel: {reason}; pass fused=None to use the reference path for it"
                )
            rest.append(p)
            continue
        batches[(p.device, p.dtype)].append((p, tensors, state["step"]))
    for (device, dtype), items in batches.items():
        for t, batch in _by_step(items).items():
            if device.type == "cpu":
                _numba_batch(core_opt, batch, dtype, t)
            else:
                _triton_batch(core_opt, batch, dtype, t)
    return rest


def _by_step(items: list) -> dict[int, list]:
    """Group by step count (the next t), read in one go; the step tensors are incremented
    here, before the kernels run (they are not read again this step)."""
    steps = [it[2] for it in items]
    dtypes = {s.dtype for s in steps}
    if len(dtypes) == 1 and steps[0].is_cpu and numba_available() and dtypes <= _STEP_KINDS:
        values = _numba_kernels().bump_steps([s.data_ptr() for s in steps], steps[0].dtype)
    else:  # the general case (CUDA steps, mixed dtypes): PyTorch's own ops
        values = torch.stack([s.to("cpu", torch.float64) for s in steps]).tolist()
        torch._foreach_add_(steps, 1.0)
    out: dict[int, list] = defaultdict(list)
    for it, v in zip(items, values, strict=True):
        out[int(v) + 1].append(it)
    return out


def _numba_batch(core_opt, batch, dtype, t) -> None:
    nb = _numba_kernels()
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
