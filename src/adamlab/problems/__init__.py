"""Test problems with exact gradients (see :mod:`adamlab.problems.base` for the contract).

* analytic surfaces (:mod:`.analytic`): sphere, ill-conditioned quadratic (κ, θ), Rosenbrock,
  Beale, Booth, Himmelblau, Rastrigin, Ackley, Styblinski–Tang, a bounded saddle, a two-well
  bowl, and the seed's 1-D quadratic;
* noisy variants of any problem (:mod:`.noise`), paired across optimizers by seed;
* the Reddi–Kale–Kumar (2018) online counterexamples on [−1, 1] (:mod:`.online`);
* a user's own formula, ``from_expression("(x-2)**2 + 3*sin(x)")`` (:mod:`.expression`);
* small ML tasks on data shipped with scikit-learn (:mod:`.ml`): logistic regression on
  breast cancer, softmax regression and an MLP on the digits;

``PROBLEMS`` maps every command-line name to its default instance; ``get_problem(name,
**kwargs)`` builds one with other parameters.
"""

from .analytic import (
    Ackley,
    Beale,
    Booth,
    Himmelblau,
    IllConditioned,
    Rastrigin,
    Rosenbrock,
    Saddle,
    Sphere,
    StyblinskiTang,
    TwoWell,
)
from .base import Oracle, ParametricProblem, Problem, Quadratic1D, resolve_seed, step_rng
from .expression import Expression, from_expression
from .ml import Classification, LogisticRegressionCancer, MLPDigits, SoftmaxDigits, load_split
from .noise import Noisy, with_noise
from .online import OnlineLinear, reddi_section5, reddi_theorem1
from .registry import FACTORIES, PROBLEMS, describe, get_problem, parameters

__all__ = [
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
