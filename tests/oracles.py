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
