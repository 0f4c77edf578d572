"""Test problems with exact gradients (see :mod:`adamlab.problems.base` for the contract).

* analytic surfaces (:mod:`.analytic`): sphere, ill-conditioned quadratic (κ, θ), Rosenbrock,
  Beale, Booth, Himmelblau, Rastrigin, Ackley, Styblinski–Tang, a bounded saddle, a two-well
  bowl, and the seed's 1-D quadratic;
* noisy variants of any problem (:mod:`.noise`), paired across optimizers by seed;
* the Reddi–Kale–Kumar (2018) online counterexamples on [−1, 1] (:mod:`.online`);
* a user's own formula, ``from_expression("(x-2)**2 + 3*sin(x)")`` (:mod:`.expression`);
* small ML tasks on data shipped with scikit-learn (:mod:`.ml`): logistic regression on
  breast cancer, softmax regression and an MLP on the digits.

``PROBLEMS`` maps every command-line name to its default instance; ``get_problem(name,
**kwargs)`` builds one with other parameters. The submodules load on first use (the names
below resolve lazily), so importing the package costs only the base and the registry.
"""

import importlib
from typing import Any

from .base import Oracle, ParametricProblem, Problem, Quadratic1D, resolve_seed, step_rng
from .registry import FACTORIES, PROBLEMS, describe, get_problem, parameters

_LAZY = {
    **dict.fromkeys(
        (
            "Ackley",
            "Beale",
            "Booth",
            "Himmelblau",
            "IllConditioned",
            "Rastrigin",
            "Rosenbrock",
            "Saddle",
            "Sphere",
            "StyblinskiTang",
            "TwoWell",
        ),
        "analytic",
    ),
    "Expression": "expression",
    "from_expression": "expression",
    "Classification": "ml",
    "LogisticRegressionCancer": "ml",
    "MLPDigits": "ml",
    "SoftmaxDigits": "ml",
    "load_split": "ml",
    "Noisy": "noise",
    "with_noise": "noise",
    "OnlineLinear": "online",
    "reddi_section5": "online",
    "reddi_theorem1": "online",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [  # the lazy names resolve through __getattr__
    "FACTORIES",
    "PROBLEMS",
    "Ackley",
    "Beale",
    "Booth",
    "Classification",
    "Expression",
    "Himmelblau",
    "IllConditioned",
    "LogisticRegressionCancer",
    "MLPDigits",
    "Noisy",
    "OnlineLinear",
    "Oracle",
    "ParametricProblem",
    "Problem",
    "Quadratic1D",
    "Rastrigin",
    "Rosenbrock",
    "Saddle",
    "SoftmaxDigits",
    "Sphere",
    "StyblinskiTang",
    "TwoWell",
    "describe",
    "from_expression",
    "get_problem",
    "load_split",
    "parameters",
    "reddi_section5",
    "reddi_theorem1",
    "resolve_seed",
    "step_rng",
    "with_noise",
]
