"""A fused Adam/AdamW step for CUDA tensors (Triton), one launch per tensor.

The same element rule as :mod:`adamlab.kernels.numba_adam` (and, operation for operation,
as :meth:`adamlab.optim.Adam.update_leaf`): arithmetic in float32 for float32/float16/
bfloat16 storage, float64 for float64, results rounded once on store. The per-step scalars
come from :func:`adamlab.kernels.adam_host.adam_scalars` (float64 on the host) and travel as a
small device tensor in the compute dtype, so float64 runs keep float64 scalars.

NOT YET RUN ON A GPU (CI has none): ``tests/test_kernels.py`` runs it against the reference
when ``torch.cuda.is_available()`` and Triton is importable, and skips otherwise; where
Triton is installed without a GPU, a test runs it in Triton's CPU interpreter
(``TRITON_INTERPRET=1``), which checks the logic but not the GPU code generation.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from . import adam_host as _h

# Triton reads module globals only as constexpr
AMS_CORRECTED = tl.constexpr(_h.AMS_CORRECTED)
AMS_RAW = tl.constexpr(_h.AMS_RAW)
EPS_AFTER = tl.constexpr(_h.EPS_AFTER)
S_1MB1 = tl.constexpr(_h.S_1MB1)
S_1MB2 = tl.constexpr(_h.S_1MB2)
S_ALPHA = tl.constexpr(_h.S_ALPHA)
S_B1 = tl.constexpr(_h.S_B1)
S_B2 = tl.constexpr(_h.S_B2)
S_C1 = tl.constexpr(_h.S_C1)
S_C2 = tl.constexpr(_h.S_C2)
S_DECAY = tl.constexpr(_h.S_DECAY)
S_EPS = tl.constexpr(_h.S_EPS)
S_EPS_ROOT = tl.constexpr(_h.S_EPS_ROOT)
S_LR = tl.constexpr(_h.S_LR)
S_WD = tl.constexpr(_h.S_WD)
WD_DECOUPLED = tl.constexpr(_h.WD_DECOUPLED)
WD_L2 = tl.constexpr(_h.WD_L2)

BLOCK = 1024


@triton.jit
def _adam_kernel(
    p_ptr, g_ptr, m_ptr, v_ptr, w_ptr, sc_ptr, n,
    MAXIMIZE: tl.constexpr, WD: tl.constexpr, AMS: tl.constexpr, EPS_MODE: tl.constexpr,
    F64: tl.constexpr, BLOCK_SIZE: tl.constexpr,
):  # fmt: skip
    pid = tl.program_id(0)
    offs = pid * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offs < n
    b1 = tl.load(sc_ptr + S_B1)
    omb1 = tl.load(sc_ptr + S_1MB1)
    b2 = tl.load(sc_ptr + S_B2)
    omb2 = tl.load(sc_ptr + S_1MB2)
    c1 = tl.load(sc_ptr + S_C1)
    c2 = tl.load(sc_ptr + S_C2)
    lr = tl.load(sc_ptr + S_LR)
    eps = tl.load(sc_ptr + S_EPS)
    wd = tl.load(sc_ptr + S_WD)
    decay = tl.load(sc_ptr + S_DECAY)
    alpha = tl.load(sc_ptr + S_ALPHA)
    eps_root = tl.load(sc_ptr + S_EPS_ROOT)
    ct = b1.dtype  # the compute dtype: float32, or float64 for float64 storage

    x = tl.load(p_ptr + offs, mask=mask).to(ct)
    g = tl.load(g_ptr + offs, mask=mask).to(ct)
    m = tl.load(m_ptr + offs, mask=mask).to(ct)
    v = tl.load(v_ptr + offs, mask=mask).to(ct)
    if MAXIMIZE:
        g = -g
    if WD == WD_DECOUPLED:
        x = x * decay
    elif WD == WD_L2:
        g = g + wd * x
    m = b1 * m + omb1 * g
    v = b2 * v + omb2 * g * g
    if AMS == AMS_CORRECTED:
        w = tl.load(w_ptr + offs, mask=mask).to(ct)
        w = tl.maximum(w, v / c2, propagate_nan=tl.PropagateNan.ALL)
        v_hat = w
        v_used = w
    elif AMS == AMS_RAW:
        w = tl.load(w_ptr + offs, mask=mask).to(ct)
        w = tl.maximum(w, v, propagate_nan=tl.PropagateNan.ALL)
        v_hat = w / c2
        v_used = w
    else:
        v_hat = v / c2
        v_used = v
    if EPS_MODE == EPS_AFTER:  # noqa: SIM108 - constexpr branches: only one is compiled
        r = v_hat + eps_root
    else:
        r = v_used + eps_root
    if F64:  # noqa: SIM108 - sqrt_rn has no float64 form, so it must not be compiled then
        root = tl.sqrt(r)  # float64 sqrt is IEEE-rounded
    else:
        root = tl.sqrt_rn(r)  # tl.sqrt is approximate in float32; sqrt_rn rounds to nearest
    if EPS_MODE == EPS_AFTER:
        m_hat = m / c1
        x = x - lr * m_hat / (root + eps)
    else:
        x = x - alpha * m / (root + eps)
    tl.store(p_ptr + offs, x.to(p_ptr.dtype.element_ty), mask=mask)
    tl.store(m_ptr + offs, m.to(m_ptr.dtype.element_ty), mask=mask)
    tl.store(v_ptr + offs, v.to(v_ptr.dtype.element_ty), mask=mask)
    if AMS != 0:
        tl.store(w_ptr + offs, w.to(w_ptr.dtype.element_ty), mask=mask)


def adam_step(p, g, m, v, v_max, sc, fl) -> None:
    """In place on contiguous CUDA tensors of one dtype; ``sc``/``fl`` from adam_host (the
    scalars in float64: they are rounded here to the compute dtype)."""
    compute = torch.float64 if p.dtype == torch.float64 else torch.float32
    sc_dev = torch.as_tensor(sc, dtype=torch.float64).to(device=p.device, dtype=compute)
    n = p.numel()
    grid = (triton.cdiv(n, BLOCK),)
    _adam_kernel[grid](
        p, g, m, v, m if v_max is None else v_max, sc_dev, n,
        MAXIMIZE=bool(fl[_h.F_MAXIMIZE]), WD=int(fl[_h.F_WD]), AMS=int(fl[_h.F_AMSGRAD]),
        EPS_MODE=int(fl[_h.F_EPS]), F64=compute == torch.float64, BLOCK_SIZE=BLOCK,
    )  # fmt: skip
