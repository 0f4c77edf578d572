"""Reference computations shared by several test files (not collected as tests)."""

import math

import numpy as np


def seed_lesson(steps=50, alpha=0.1, beta1=0.9, beta2=0.999, eps=1e-8):
    """The seed lesson's hand-written loop (Kingma & Ba, Algorithm 1), its arithmetic
    verbatim: returns the SGD and the Adam iterates x₀ … x_steps."""
    x_sgd, x_adam, m, v = 8.0, 8.0, 0.0, 0.0
    sgd, adam = [x_sgd], [x_adam]
    for t in range(1, steps + 1):
        g = 2 * (x_sgd - 2)
        x_sgd -= alpha * g
        sgd.append(x_sgd)
        g = 2 * (x_adam - 2)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * (g**2)
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        x_adam -= alpha * m_hat / (math.sqrt(v_hat) + eps)
        adam.append(x_adam)
    return sgd, adam


def central_differences(f, x, h=1e-6):
    """∂f/∂xᵢ by central differences, for every point of a batch ``x`` of shape (..., n)."""
    g = np.empty_like(x)
    for i in range(x.shape[-1]):
        e = np.zeros(x.shape[-1])
        e[i] = h
        g[..., i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


#: Adam's first step without bias correction, in units of α: (1 − β₁)/√(1 − β₂)
UNCORRECTED_FIRST_STEP = (1 - 0.9) / math.sqrt(1 - 0.999)


# ---------------------------------------------------------------------------------------------
# The papers' equations, transcribed for one scalar parameter in plain Python floats: the
# independent oracles of the switches no other library has (tests/test_oracles.py).
# ---------------------------------------------------------------------------------------------


def adam_paper(grads, *, x0, lr, beta1, beta2, eps, correct=(True, True), section2=False):
    """Adam on one coordinate, as Kingma & Ba write it; returns x₀ … x_T.

    Algorithm 1, with each bias correction on or off (``correct``)::

        m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²
        m̂ = m/(1 − β₁ᵗ) (or m);  v̂ = v/(1 − β₂ᵗ) (or v)
        θ ← θ − α·m̂/(√v̂ + ε)

    ``section2=True``: the reformulation at the end of §2, "at the expense of clarity":
    αₜ = α·√(1 − β₂ᵗ)/(1 − β₁ᵗ) and θ ← θ − αₜ·m/(√v + ε̂).
    """
    x, m, v, path = x0, 0.0, 0.0, [x0]
    for t, g in enumerate(grads, start=1):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        if section2:
            alpha_t = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
            x = x - alpha_t * m / (math.sqrt(v) + eps)
        else:
            m_hat = m / (1 - beta1**t) if correct[0] else m
            v_hat = v / (1 - beta2**t) if correct[1] else v
            x = x - lr * m_hat / (math.sqrt(v_hat) + eps)
        path.append(x)
    return path


def adamax_paper(grads, *, x0, lr, beta1, beta2, eps=0.0, correct=True):
    """AdaMax, Algorithm 2 of Kingma & Ba (§7.1), on one coordinate; returns x₀ … x_T::

        m ← β₁m + (1 − β₁)g;  u ← max(β₂u, |g|)
        θ ← θ − (α/(1 − β₁ᵗ))·m/u      (α·m/u without the correction)

    ``eps`` > 0 places ε as PyTorch and optax do, u ← max(β₂u, |g| + ε); the paper has none.
    """
    x, m, u, path = x0, 0.0, 0.0, [x0]
    for t, g in enumerate(grads, start=1):
        m = beta1 * m + (1 - beta1) * g
        u = max(beta2 * u, abs(g) + eps)
        x = x - (lr / (1 - beta1**t) if correct else lr) * m / u
        path.append(x)
    return path


def nadam_torch(grads, *, x0, lr, beta1, beta2, eps, psi):
    """NAdam as PyTorch documents it (Dozat's μ schedule); returns per step the iterate and
    what the diagnostics report: μₜ, m̂ₜ = mₜ/(1 − β₁ᵗ), v̂ₜ, α/(√v̂ₜ + ε)::

        μₜ = β₁(1 − ½·0.96^(tψ));  m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²
        θ ← θ − α(1 − μₜ)/(1 − ∏ᵢ≤ₜμᵢ)·g/(√v̂ + ε) − αμₜ₊₁/(1 − ∏ᵢ≤ₜ₊₁μᵢ)·m/(√v̂ + ε)
    """
    x, m, v, prod, out = x0, 0.0, 0.0, 1.0, []
    for t, g in enumerate(grads, start=1):
        mu = beta1 * (1 - 0.5 * 0.96 ** (t * psi))
        mu_next = beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
        prod *= mu
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_hat = v / (1 - beta2**t)
        d = math.sqrt(v_hat) + eps
        x = x - lr * (1 - mu) / (1 - prod) * g / d - lr * mu_next / (1 - prod * mu_next) * m / d
        out.append(
            {"x": x, "mu": mu, "m_hat": m / (1 - beta1**t), "v_hat": v_hat,
             "effective_lr": lr / d, "bias1": 1 - beta1**t, "bias2": 1 - beta2**t}
        )  # fmt: skip
    return out
