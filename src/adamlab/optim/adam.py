"""Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019), with every switch.

Algorithm 1 of the paper, for gradient gₜ at step t = 1, 2, …::

    mₜ = β₁·mₜ₋₁ + (1 − β₁)·gₜ          first moment (mean)
    vₜ = β₂·vₜ₋₁ + (1 − β₂)·gₜ²         second moment (uncentred variance)
    m̂ₜ = mₜ / (1 − β₁ᵗ)                 bias correction: m₀ = v₀ = 0 pull both towards 0
    v̂ₜ = vₜ / (1 − β₂ᵗ)
    θₜ = θₜ₋₁ − α·m̂ₜ / (√v̂ₜ + ε)

References:
    Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015 (arXiv:1412.6980).
    Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
    Reddi, Kale & Kumar, "On the Convergence of Adam and Beyond", ICLR 2018 (AMSGrad).
    St John, "AdamD: Improved bias-correction in Adam", arXiv:2110.10828 (2021).
    Dettmers, Lewis, Shleifer & Zettlemoyer, "8-bit Optimizers via Block-wise Quantization",
    ICLR 2022 (``state_precision="8bit"``; :mod:`adamlab.optim.quantized`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal, NamedTuple

import numpy as np

from . import quantized
from .base import (
    NONFINITE,
    NONNEG,
    UNIT,
    Hyper,
    Hypers,
    NonFinitePolicy,
    Optimizer,
    Params,
    Range,
    bias_factors,
    check_bias_correction,
    choice,
    flag,
    hyper,
    hyper_pair,
    init_fields,
    number,
    other,
    power,
    signed_and_decayed,
    sqrt,
    tree_flatten,
    tree_map,
    tree_unflatten,
)

EpsPlacement = Literal["after_correction", "before_correction"]
EPS_PLACEMENTS = ("after_correction", "before_correction")
AmsgradVariant = Literal["raw", "corrected"]
StatePrecision = Literal["fp32", "bf16", "8bit"]


class AdamState(NamedTuple):
    """``t`` steps taken; first moment ``m``; second moment ``v``; ``v_max`` with AMSGrad."""

    t: int
    m: Params
    v: Params
    v_max: Params | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class Adam(Optimizer):
    r"""Adam, as Algorithm 1 of Kingma & Ba (2015), with the variants the literature uses.

    Update, for step t ≥ 1 (α = ``lr``, (β₁, β₂) = ``betas``)::

        mₜ = β₁·mₜ₋₁ + (1 − β₁)·gₜ
        vₜ = β₂·vₜ₋₁ + (1 − β₂)·gₜ²
        θₜ = θₜ₋₁ − α·m̂ₜ / (√(v̂ₜ + ε_root) + ε),   m̂ₜ = mₜ/(1 − β₁ᵗ),  v̂ₜ = vₜ/(1 − β₂ᵗ)

    Args:
        lr: step size α ≥ 0; a float, a schedule ``lr(t)``, or an array broadcasting against
            the parameters (K configurations in one pass).
        betas: decay rates (β₁, β₂), each in [0, 1); floats, schedules or arrays.
        eps: ε ≥ 0 added to the denominator.
        weight_decay: λ ≥ 0. Added to the gradient (L2, g ← g + λθ) or, with
            ``decoupled_weight_decay``, applied to the parameters: θ ← θ(1 − αλ) (AdamW).
        amsgrad: keep the running maximum of the second moment (Reddi et al., 2018).
        maximize: ascend instead of descend.
        decoupled_weight_decay: AdamW's decay (see ``weight_decay``).
        bias_correction: ``True`` (Algorithm 1), ``False`` (no correction: the first step is
            α(1−β₁)/√(1−β₂)·sign(g) ≈ 3.16α at the defaults), or a pair
            ``(first_moment, second_moment)``: ``(False, True)`` is AdamD.
        eps_placement: ``"after_correction"`` (Algorithm 1; PyTorch, optax): √v̂ₜ + ε.
            ``"before_correction"``: the paper's §2 reformulation, as in TensorFlow/Keras:
            θₜ = θₜ₋₁ − αₜ·mₜ/(√vₜ + ε̂) with αₜ = α·√(1 − β₂ᵗ)/(1 − β₁ᵗ). The two agree
            exactly when ε̂ = ε·√(1 − β₂ᵗ); with a constant ε̂ the effective ε grows as
            1/√(1 − β₂ᵗ) during the first steps.
        eps_root: ε_root ≥ 0 added *inside* the square root (optax's ``eps_root``).
        amsgrad_variant: ``"raw"`` (PyTorch): v_max = max(v_max, vₜ), then divided by the
            current 1 − β₂ᵗ. ``"corrected"`` (optax): v̂_max = max(v̂_max, v̂ₜ), the maximum of
            the bias-corrected estimates. Reddi et al.'s original AMSGrad has no bias
            correction: ``amsgrad=True, bias_correction=False`` (either variant).
        nonfinite: what a NaN/Inf gradient does: ``"raise"`` (default; state untouched),
            ``"skip"`` (the step is not taken, as with ``torch.amp.GradScaler``), or
            ``"propagate"`` (PyTorch's behaviour: the NaN enters the parameters and moments).
        state_precision: how m and v are stored between steps: ``"fp32"`` (the parameters'
            dtype; default), ``"8bit"`` (block-wise 8-bit, Dettmers et al. 2022: m in the
            signed dynamic map, v in the unsigned one, one absmax per block) or ``"bf16"``.
            Each step dequantizes, takes the step above in float32, and quantizes m and v
            again (the parameter update uses the unquantized mₜ, vₜ). NumPy arrays only;
            ``amsgrad`` needs ``"fp32"``. See :mod:`adamlab.optim.quantized`.
        block_size: elements per 8-bit block along the last axis: a power of two (256).
        min_8bit_size: rows (the last axis) shorter than this keep float32 state with
            ``"8bit"`` (4096, as bitsandbytes).
        bf16_stochastic_round: with ``"bf16"``, round m and v to bfloat16 stochastically
            (unbiased) instead of to nearest even, with random bits hashed from
            (``rounding_seed``, t, leaf, element): reproducible.
        rounding_seed: the seed of stochastic rounding, an integer ≥ 0.

    Example:
        >>> import numpy as np, adamlab
        >>> opt = adamlab.Adam(lr=0.1)
        >>> x = np.array(8.0); state = opt.init(x)
        >>> x, state = opt.step(x, 2 * (x - 2), state)
        >>> round(float(x), 9)  # the first step is -α·g/(|g| + ε) = -0.1·12/(12 + 1e-8)
        7.9
    """

    name: ClassVar[str] = "adam"
    State: ClassVar[type] = AdamState
    slots: ClassVar[tuple[str, ...]] = ("m", "v", "v_max")

    lr: Hyper = hyper(1e-3, NONNEG)
    betas: tuple[Hyper, Hyper] = hyper_pair((0.9, 0.999), UNIT, ("beta1", "beta2"))
    eps: Hyper = hyper(1e-8, NONNEG)
    weight_decay: Hyper = hyper(0.0, NONNEG)
    amsgrad: bool = flag(False)
    _: dataclasses.KW_ONLY
    maximize: bool = flag(False)
    decoupled_weight_decay: bool = flag(False)
    bias_correction: bool | tuple[bool, bool] = other(True)  # a flag or a pair: check()
    eps_placement: EpsPlacement = choice("after_correction", EPS_PLACEMENTS)
    eps_root: float = number(0.0, NONNEG)
    amsgrad_variant: AmsgradVariant = choice("raw", ("raw", "corrected"))
    nonfinite: NonFinitePolicy = choice("raise", NONFINITE)
    state_precision: StatePrecision = choice("fp32", quantized.PRECISIONS)
    block_size: int = number(quantized.BLOCK_SIZE, Range(1.0))
    min_8bit_size: int = number(quantized.MIN_8BIT_SIZE, NONNEG)
    bf16_stochastic_round: bool = flag(False)
    rounding_seed: int = number(0, NONNEG)

    def check(self) -> None:
        init_fields(self, bias_correction=check_bias_correction(self.bias_correction))
        init_fields(self, **check_low_precision(self))
        if (
            self.amsgrad
            and self.amsgrad_variant == "corrected"
            and self.eps_placement != "after_correction"
        ):
            raise ValueError(
                "amsgrad_variant='corrected' takes the maximum of the corrected v̂ₜ, which needs "
                "eps_placement='after_correction'"
            )

    def active_slots(self) -> tuple[str, ...]:
        return self.slots if self.amsgrad else ("m", "v")

    # -- low-precision state (Dettmers et al., 2022): dequantize → step in fp32 → quantize ----

    def init(self, params: Params) -> AdamState:
        state = super().init(params)
        if self.state_precision == "fp32":
            return state
        for leaf in tree_flatten(params)[0]:
            if not isinstance(leaf, np.ndarray):
                raise TypeError(
                    f"state_precision={self.state_precision!r} keeps NumPy state; got a "
                    f"{type(leaf).__name__} (for PyTorch, use adamlab.torch.Adam8bit or AdamBF16)"
                )
        return state._replace(m=self._store(state.m, "m", 0), v=self._store(state.v, "v", 0))

    def step(self, params: Params, grads: Params, state: AdamState) -> tuple[Params, AdamState]:
        if self.state_precision == "fp32":
            return super().step(params, grads, state)
        full = self._dequantized(state)  # 1. m̃ₜ₋₁, ṽₜ₋₁ in float32
        params, new = super().step(params, grads, full)  # 2. the step above, unchanged
        if new is full:  # not taken (nonfinite="skip"): the stored state stands
            return params, state
        m = self._store(new.m, "m", new.t, like=state.m)  # 3. mₜ, vₜ quantized again
        v = self._store(new.v, "v", new.t, like=state.v)
        return params, new._replace(m=m, v=v)

    def diagnostics(self, state: AdamState) -> dict[str, Any]:
        """As :meth:`Optimizer.diagnostics`, from the dequantized moments; with low-precision
        state also the rounding error of the last step's quantization: ``m_error`` = m̃ₜ − mₜ,
        ``v_error``, and their effect on the corrected moments, ``m_hat_error`` =
        m_error/(1 − β₁ᵗ) and ``v_hat_error`` = v_error/(1 − β₂ᵗ)."""
        if self.state_precision == "fp32":
            return super().diagnostics(state)
        out = super().diagnostics(self._dequantized(state))
        c1, c2 = self.corrections(int(state.t), self.hypers(int(state.t)))
        m_err = tree_map(quantized.rounding_error, state.m)
        v_err = tree_map(quantized.rounding_error, state.v)
        out["m_error"], out["v_error"] = m_err, v_err
        out["m_hat_error"] = tree_map(lambda e: e / c1, m_err)
        out["v_hat_error"] = tree_map(lambda e: e / c2, v_err)
        return out

    def _dequantized(self, state: AdamState) -> AdamState:
        load = quantized.load
        return state._replace(m=tree_map(load, state.m), v=tree_map(load, state.v))

    def _store(self, tree: Params, slot: str, t: int, like: Params = None) -> Params:
        """Each leaf of a freshly computed moment in the state precision (m in the signed map,
        v in the unsigned one); leaf k's stochastic rounding draws from stream k."""
        leaves, treedef, _ = tree_flatten(tree)
        olds = [None] * len(leaves) if like is None else tree_flatten(like)[0]
        code = quantized.SLOT_M if slot == "m" else quantized.SLOT_V
        out = []
        for k, (x, old) in enumerate(zip(leaves, olds, strict=True)):
            stream = old.stream if isinstance(old, quantized.BFloat16) else k
            random = None
            if self.state_precision == "bf16" and self.bf16_stochastic_round and t > 0:
                key = quantized.stream_key(self.rounding_seed, t, stream, code)
                random = quantized.rounding_bits(key, x.shape[-1] if x.ndim else 1)
                # every row alike: the rows of a batch are runs, each as if alone
                random = np.broadcast_to(random, x.shape) if x.ndim else random.reshape(())
            sizes = {"block_size": self.block_size, "min_8bit_size": self.min_8bit_size}
            precision, signed = self.state_precision, slot == "m"
            out.append(
                quantized.store(
                    x, precision=precision, signed=signed, stream=stream, random=random, **sizes
                )
            )
        return tree_unflatten(treedef, out)

    def corrections(self, t: int, h: Hypers) -> tuple[Any, Any]:
        """The divisors used at step t: (1 − β₁ᵗ, 1 − β₂ᵗ), or 1 where correction is off."""
        first, second = self.bias_correction
        c1 = 1 - power(h.beta1, t) if first else 1.0
        c2 = 1 - power(h.beta2, t) if second else 1.0
        return c1, c2

    def update_leaf(self, xp: Any, x: Any, g: Any, s: Hypers, t: int, h: Hypers):
        lr, b1, b2, eps = h.lr, h.beta1, h.beta2, h.eps
        x, g = signed_and_decayed(x, g, h, decoupled=self.decoupled_weight_decay)
        m = b1 * s.m + (1 - b1) * g
        v = b2 * s.v + (1 - b2) * g * g
        c1, c2 = self.corrections(t, h)
        new = {"m": m, "v": v}

        if self.amsgrad and self.amsgrad_variant == "corrected":
            v_hat = new["v_max"] = xp.maximum(s.v_max, v / c2)
        elif self.amsgrad:
            v = new["v_max"] = xp.maximum(s.v_max, v)
            v_hat = v / c2
        else:
            v_hat = v / c2

        if self.eps_placement == "after_correction":  # Algorithm 1
            m_hat = m / c1
            x = x - lr * m_hat / (xp.sqrt(v_hat + self.eps_root) + eps)
        else:  # §2: αₜ = α·√(1 − β₂ᵗ)/(1 − β₁ᵗ), ε̂ added to the uncorrected √vₜ
            alpha_t = lr * sqrt(c2) / c1
            x = x - alpha_t * m / (xp.sqrt(v + self.eps_root) + eps)
        return x, new

    def diagnostics_shared(self, t: int, h: Hypers) -> dict[str, Any]:
        return bias_factors(t, h)

    def diagnostics_leaf(self, xp: Any, s: Hypers, t: int, h: Hypers) -> dict[str, Any]:
        c1, c2 = self.corrections(t, h)
        if self.amsgrad and self.amsgrad_variant == "corrected":
            v_hat = s.v_max
        else:
            v_hat = (s.v_max if self.amsgrad else s.v) / c2
        if self.eps_placement == "after_correction":
            effective_lr = h.lr / (xp.sqrt(v_hat + self.eps_root) + h.eps)
        else:
            effective_lr = h.lr * sqrt(c2) / (xp.sqrt(v_hat * c2 + self.eps_root) + h.eps)
        return {"m_hat": s.m / c1, "v_hat": v_hat, "effective_lr": effective_lr}


def check_low_precision(opt: Adam) -> dict[str, Any]:
    """Validate the state-precision arguments; return the integers to store."""
    out = {}
    for name in ("block_size", "min_8bit_size", "rounding_seed"):
        value = getattr(opt, name)
        if float(value) != int(value):
            raise ValueError(f"Invalid {name}: {value!r}; it must be a whole number")
        out[name] = int(value)
    if out["rounding_seed"] >= 2**53:  # (held as a float: a larger seed would be rounded)
        raise ValueError(
            f"Invalid rounding_seed: {out['rounding_seed']!r}; it must be a whole number in "
            "[0, 2**53)"
        )
    bs = out["block_size"]
    if bs & (bs - 1):
        raise ValueError(
            f"Invalid block_size: {bs!r}; it must be a positive power of two (256 is the usual)"
        )
    if opt.amsgrad and opt.state_precision != "fp32":
        raise ValueError(
            f"amsgrad=True needs state_precision='fp32' (got {opt.state_precision!r}): the "
            "running maximum of v is not kept in low precision"
        )
    return out


@dataclasses.dataclass(frozen=True, eq=False)
class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay θ ← θ(1 − αλ), λ = ``weight_decay`` = 1e-2.

    Identical to ``Adam(..., weight_decay=1e-2, decoupled_weight_decay=True)``; see
    :class:`Adam` for the update and every other argument (Loshchilov & Hutter, 2019).
    """

    name: ClassVar[str] = "adamw"
    weight_decay: Hyper = hyper(1e-2, NONNEG)
    decoupled_weight_decay: bool = flag(True, kw_only=True)
