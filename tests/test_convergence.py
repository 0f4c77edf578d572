"""One table of optimizers: each, at sensible settings, converges on a quadratic and on Rosenbrock.

Written against local problem definitions so the core's proof depends on nothing but the core.
"""

import numpy as np
import pytest

import adamlab
from adamlab import schedules as sched


def quadratic(x):
    """f = ½(x² + 10y²): condition number 10, minimum 0 at the origin."""
    return 0.5 * (x[0] ** 2 + 10 * x[1] ** 2), np.array([x[0], 10 * x[1]])


def rosenbrock(x):
    """f = (1 − a)² + 100(b − a²)², minimum 0 at (1, 1); start (−1.2, 1)."""
    a, b = x
    return (1 - a) ** 2 + 100 * (b - a * a) ** 2, np.array(
        [-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)]
    )


# name: (settings on the quadratic, settings on Rosenbrock)
TABLE = {
    "sgd": (adamlab.SGD(lr=0.1), adamlab.SGD(lr=1.5e-3)),
    "momentum": (adamlab.SGD(lr=0.05, momentum=0.9), adamlab.SGD(lr=1e-3, momentum=0.9)),
    "nesterov": (
        adamlab.SGD(lr=0.05, momentum=0.9, nesterov=True),
        adamlab.SGD(lr=1e-3, momentum=0.9, nesterov=True),
    ),
    "rmsprop": (
        adamlab.RMSprop(lr=sched.cosine(0.05, 3000)),
        adamlab.RMSprop(lr=sched.cosine(3e-3, 8000)),
    ),
    "rmsprop-centered": (
        adamlab.RMSprop(lr=sched.cosine(0.02, 3000), centered=True, momentum=0.5),
        adamlab.RMSprop(lr=sched.cosine(2e-3, 8000), centered=True, momentum=0.5),
    ),
    "adagrad": (adamlab.Adagrad(lr=0.5), adamlab.Adagrad(lr=1.0)),
    "adam": (adamlab.Adam(lr=0.1), adamlab.Adam(lr=2e-2)),
    "adam-no-correction": (
        adamlab.Adam(lr=0.05, bias_correction=False),
        adamlab.Adam(lr=5e-3, bias_correction=False),
    ),
    "adamw": (adamlab.AdamW(lr=0.1, weight_decay=1e-6), adamlab.AdamW(lr=2e-2, weight_decay=1e-6)),
    "amsgrad": (adamlab.Adam(lr=0.1, amsgrad=True), adamlab.Adam(lr=5e-2, amsgrad=True)),
    "adamax": (adamlab.Adamax(lr=0.1), adamlab.Adamax(lr=2e-2)),
    "nadam": (adamlab.NAdam(lr=0.05), adamlab.NAdam(lr=5e-3)),
    "radam": (adamlab.RAdam(lr=0.1), adamlab.RAdam(lr=sched.linear_warmup(2e-2, 50))),
}

PROBLEMS = {
    # problem: (function, start, steps budget, target loss)
    "quadratic": (quadratic, np.array([3.0, -2.0]), 3000, 1e-8),
    "rosenbrock": (rosenbrock, np.array([-1.2, 1.0]), 8000, 1e-4),
}


def test_the_table_covers_every_optimizer():
    used = {type(o) for pair in TABLE.values() for o in pair}
    assert used == set(adamlab.OPTIMIZERS.values())


@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("name", TABLE)
def test_converges(name, problem):
    f, x, budget, target = PROBLEMS[problem]
    opt = TABLE[name][problem == "rosenbrock"]
    state = opt.init(x)
    start_loss = f(x)[0]
    for _ in range(budget):
        loss, g = f(x)
        if loss < target:
            break
        x, state = opt.step(x, g, state)
    final = f(x)[0]
    assert final < target, f"{name} on {problem}: loss {final:.3g} after {state.t} steps"
    assert final < start_loss
