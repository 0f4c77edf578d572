"""The registry: every problem by its command-line name, and a factory with keyword arguments.

``PROBLEMS[name]`` is the default instance (cheap to build: the data sets of the ML tasks load
on first use). ``get_problem(name, **kwargs)`` builds one with other parameters, e.g.
``get_problem("ill-conditioned", kappa=1000, theta=0.3)``, ``get_problem("sphere", dim=10)``,
and wraps any problem in noise with ``noise=`` (``"gaussian"``, ``"linear"``,
``"student-t"``) plus ``sigma=`` / ``df=``: ``get_problem("rosenbrock", noise="gaussian",
sigma=0.5)``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from . import analytic, ml, online
from .base import Problem, Quadratic1D
from .noise import KINDS, with_noise

Factory = Callable[..., Problem]


def _noisy(base: Factory, kind: str, **preset: Any) -> Factory:
    def make(sigma: float = preset.get("sigma", 1.0), df: float | None = preset.get("df"),
             **kwargs: Any) -> Problem:  # fmt: skip
        return with_noise(base(**kwargs), kind, sigma, df=df)

    make.noisy_base = base  # type: ignore[attr-defined]
    return make


def _preset(cls: Factory, **preset: Any) -> Factory:
    def make(**kwargs: Any) -> Problem:
        return cls(**{**preset, **kwargs})

    make.__wrapped__ = cls  # type: ignore[attr-defined]
    return make


#: name -> factory(**kwargs) building that problem (the default instance with no kwargs)
FACTORIES: dict[str, Factory] = {
    "quadratic": Quadratic1D,
    "sphere": analytic.Sphere,
    "ill-conditioned": analytic.IllConditioned,
    "ill-conditioned-rotated": _preset(
        analytic.IllConditioned, theta=math.pi / 4, name="ill-conditioned-rotated"
    ),
    "rosenbrock": analytic.Rosenbrock,
    "beale": analytic.Beale,
    "booth": analytic.Booth,
    "himmelblau": analytic.Himmelblau,
    "rastrigin": analytic.Rastrigin,
    "ackley": analytic.Ackley,
    "styblinski-tang": analytic.StyblinskiTang,
    "saddle": analytic.Saddle,
    "two-well": analytic.TwoWell,
    "noisy-quadratic": _noisy(Quadratic1D, "gaussian", sigma=1.0),
    "linear-noisy-beale": _noisy(analytic.Beale, "linear", sigma=1.0),
    "heavy-tailed-quadratic": _noisy(Quadratic1D, "student-t", sigma=1.0, df=1.5),
    "reddi-thm1": online.reddi_theorem1,
    "reddi-sec5": online.reddi_section5,
    "reddi-stochastic": _preset(online.reddi_section5, probability=0.01),
    "logreg-cancer": ml.LogisticRegressionCancer,
    "softmax-digits": ml.SoftmaxDigits,
    "mlp-digits": ml.MLPDigits,
}


class Registry(Mapping[str, Problem]):
    """A read-only mapping name -> default instance, built on first access and cached."""

    def __init__(self, factories: dict[str, Factory]) -> None:
        self._factories = factories
        self._cache: dict[str, Problem] = {}

    def __getitem__(self, name: str) -> Problem:
        if name not in self._factories:
            raise KeyError(name)
        if name not in self._cache:
            self._cache[name] = self._factories[name]()
        return self._cache[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._factories)

    def __len__(self) -> int:
        return len(self._factories)

    def __repr__(self) -> str:
        return f"Registry({list(self._factories)})"


#: every problem by its command-line name -> its default instance
PROBLEMS: Mapping[str, Problem] = Registry(FACTORIES)


def _unknown(name: str) -> ValueError:
    return ValueError(f"unknown problem {name!r}; choose one of {', '.join(FACTORIES)}")


def get_problem(name: str, **kwargs: Any) -> Problem:
    """Build problem ``name`` with keyword parameters (none: the registered default).

    ``noise=KIND`` (with ``sigma=``, ``df=``) wraps the result in :class:`Noisy`.
    Raises ``ValueError`` for an unknown name or a parameter the problem does not take.
    """
    if not isinstance(name, str) or name not in FACTORIES:
        raise _unknown(name)
    noise = kwargs.pop("noise", None)
    noise_kw = {k: kwargs.pop(k) for k in ("sigma", "df") if noise is not None and k in kwargs}
    if noise is not None and noise not in KINDS:
        raise ValueError(f"unknown noise {noise!r}; choose one of {', '.join(KINDS)}")
    if not kwargs:
        problem = PROBLEMS[name]
    else:
        factory = FACTORIES[name]
        accepted = parameters(name)
        bad = [k for k in kwargs if k not in accepted]
        if bad:
            raise ValueError(
                f"problem {name!r} takes no parameter {bad[0]!r}; "
                f"its parameters are: {', '.join(accepted) or '(none)'}"
            )
        problem = factory(**kwargs)
    if noise is not None:
        problem = with_noise(problem, noise, **noise_kw)
    return problem


def parameters(name: str) -> list[str]:
    """The keyword parameters ``get_problem(name, ...)`` accepts (besides ``noise=``)."""
    if name not in FACTORIES:
        raise _unknown(name)
    return _params(FACTORIES[name])


def _params(factory: Factory) -> list[str]:
    if hasattr(factory, "noisy_base"):
        return ["sigma", "df", *_params(factory.noisy_base)]
    target = getattr(factory, "__wrapped__", factory)
    return [
        p.name
        for p in inspect.signature(target).parameters.values()
        if p.kind is not p.VAR_KEYWORD and p.name not in ("name", "description", "stochastic")
    ]


def describe() -> list[dict[str, Any]]:
    """``summary()`` of every registered default (what ``adamlab problems`` lists)."""
    return [PROBLEMS[name].summary() for name in FACTORIES]
