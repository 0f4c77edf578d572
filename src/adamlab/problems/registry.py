"""The registry: every problem by its command-line name, and a factory with keyword arguments.

``PROBLEMS[name]`` is the default instance (built on first access and cached; the data sets
of the ML tasks load on first use of the data). ``get_problem(name, **kwargs)`` builds one
with other parameters, e.g. ``get_problem("ill-conditioned", kappa=1000, theta=0.3)`` or
``get_problem("sphere", dim=10)``, and wraps any problem in noise with ``noise=``
(``"gaussian"``, ``"linear"``, ``"student-t"``) plus ``sigma=`` / ``df=``:
``get_problem("rosenbrock", noise="gaussian", sigma=0.5)``.

Problem modules are imported only when one of their problems is asked for, so the command's
cold path (the seed quadratic) loads none of them.
"""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Iterator, Mapping
from typing import Any

from .base import Problem
from .noise import NOISE_KINDS, with_noise

_HIDDEN = ("name", "description", "stochastic")


class Ref:
    """A factory named by module and attribute, imported on first call; ``preset`` kwargs."""

    def __init__(self, module: str, attr: str, **preset: Any) -> None:
        self.module, self.attr, self.preset = module, attr, preset

    def resolve(self) -> Any:
        return getattr(importlib.import_module(f"{__package__}.{self.module}"), self.attr)

    def __call__(self, **kwargs: Any) -> Problem:
        return self.resolve()(**{**self.preset, **kwargs})

    def parameters(self) -> list[str]:
        sig = inspect.signature(self.resolve())
        return [
            p.name
            for p in sig.parameters.values()
            if p.kind is not p.VAR_KEYWORD and p.name not in _HIDDEN
        ]


class NoisyRef:
    """A registered noisy variant: ``base`` wrapped in noise of ``kind`` (preset σ, df)."""

    def __init__(self, base: Ref, kind: str, **preset: Any) -> None:
        self.base, self.kind, self.preset = base, kind, preset

    def __call__(self, **kwargs: Any) -> Problem:
        noise = {k: kwargs.pop(k, v) for k, v in self.preset.items()}
        for k in ("sigma", "df"):
            if k in kwargs:
                noise[k] = kwargs.pop(k)
        return with_noise(self.base(**kwargs), self.kind, **noise)

    def parameters(self) -> list[str]:
        own = ["sigma", "df"] if self.kind == "student-t" else ["sigma"]
        return own + self.base.parameters()


#: name -> factory(**kwargs) building that problem (the default instance with no kwargs)
FACTORIES: dict[str, Ref | NoisyRef] = {
    "quadratic": Ref("base", "seed_quadratic"),
    "sphere": Ref("analytic", "Sphere"),
    "ill-conditioned": Ref("analytic", "IllConditioned"),
    "ill-conditioned-rotated": Ref(
        "analytic", "IllConditioned", theta=math.pi / 4, name="ill-conditioned-rotated"
    ),
    "rosenbrock": Ref("analytic", "Rosenbrock"),
    "beale": Ref("analytic", "Beale"),
    "booth": Ref("analytic", "Booth"),
    "himmelblau": Ref("analytic", "Himmelblau"),
    "rastrigin": Ref("analytic", "Rastrigin"),
    "ackley": Ref("analytic", "Ackley"),
    "styblinski-tang": Ref("analytic", "StyblinskiTang"),
    "saddle": Ref("analytic", "Saddle"),
    "two-well": Ref("analytic", "TwoWell"),
    "noisy-quadratic": NoisyRef(Ref("base", "Quadratic1D"), "gaussian", sigma=1.0),
    "linear-noisy-beale": NoisyRef(Ref("analytic", "Beale"), "linear", sigma=1.0),
    "heavy-tailed-quadratic": NoisyRef(Ref("base", "Quadratic1D"), "student-t", sigma=1.0, df=1.5),
    "reddi-thm1": Ref("online", "reddi_theorem1"),
    "reddi-sec5": Ref("online", "reddi_section5"),
    "reddi-stochastic": Ref("online", "reddi_section5", probability=0.01),
    "logreg-cancer": Ref("ml", "LogisticRegressionCancer"),
    "softmax-digits": Ref("ml", "SoftmaxDigits"),
    "mlp-digits": Ref("ml", "MLPDigits"),
}

#: problems that read a data folder (MNIST's IDX format; ``data_dir=``, ``--data DIR``) rather
#: than data that ships with a package. Built by name like the others (``get_problem``,
#: ``--problem``), but not in ``FACTORIES``/``PROBLEMS``, whose every default instance the
#: listings, the playground and the tests build and evaluate: these need a download and take
#: seconds per full-data loss.
DATA_FACTORIES: dict[str, Ref] = {
    "fashion-mnist-logreg": Ref("ml", "FashionMNISTLogReg"),
    "fashion-mnist-mlp": Ref("ml", "FashionMNISTMLP"),
}


def _factory(name: str) -> Ref | NoisyRef:
    return FACTORIES[name] if name in FACTORIES else DATA_FACTORIES[name]


class Registry(Mapping[str, Problem]):
    """A read-only mapping name -> default instance, built on first access and cached."""

    def __init__(self, factories: Mapping[str, Ref | NoisyRef]) -> None:
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


def _unknown(name: Any) -> ValueError:
    names = [*FACTORIES, *DATA_FACTORIES]
    return ValueError(f"unknown problem {name!r}; choose one of {', '.join(names)}")


def get_problem(name: str, **kwargs: Any) -> Problem:
    """Build problem ``name`` with keyword parameters (none: the registered default).

    ``noise=KIND`` (with ``sigma=``, ``df=``) wraps the result in
    :class:`~adamlab.problems.noise.Noisy`. Raises ``ValueError`` for an unknown name, an
    unknown noise kind, or a parameter the problem does not take.
    """
    if not isinstance(name, str) or (name not in FACTORIES and name not in DATA_FACTORIES):
        raise _unknown(name)
    noise = kwargs.pop("noise", None)
    if noise is not None and noise not in NOISE_KINDS:
        raise ValueError(f"unknown noise {noise!r}; choose one of {', '.join(NOISE_KINDS)}")
    noise_kw = {k: kwargs.pop(k) for k in ("sigma", "df") if noise is not None and k in kwargs}
    if not kwargs:
        problem = PROBLEMS[name] if name in FACTORIES else DATA_FACTORIES[name]()
    else:
        accepted = parameters(name)
        bad = [k for k in kwargs if k not in accepted]
        if bad:
            raise ValueError(
                f"problem {name!r} takes no parameter {bad[0]!r}; "
                f"its parameters are: {', '.join(accepted) or '(none)'}"
            )
        _check_numbers(name, kwargs)
        try:
            problem = _factory(name)(**kwargs)
        except (TypeError, ValueError) as e:
            given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
            raise ValueError(f"problem {name!r} with {given}: {e}") from None
    if noise is not None:
        _check_numbers(name, noise_kw)
        problem = with_noise(problem, noise, **noise_kw)
    return problem


def _check_numbers(name: str, kwargs: dict[str, Any]) -> None:
    """A parameter whose default is a number must be given a number (``kappa=abc`` names
    ``kappa``, rather than failing somewhere inside the problem's arithmetic)."""
    ref = _factory(name)
    target = ref.base if isinstance(ref, NoisyRef) else ref
    defaults = {p.name: p.default for p in inspect.signature(target.resolve()).parameters.values()}
    defaults.update(sigma=1.0, df=1.5)
    for key, value in kwargs.items():
        default = defaults.get(key)
        is_number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
        if is_number(default) and not is_number(value):
            raise ValueError(f"problem {name!r}: {key} must be a number, got {value!r}")


def parameters(name: str) -> list[str]:
    """The keyword parameters ``get_problem(name, ...)`` accepts (besides ``noise=``)."""
    if name not in FACTORIES and name not in DATA_FACTORIES:
        raise _unknown(name)
    return _factory(name).parameters()


def describe() -> list[dict[str, Any]]:
    """``summary()`` of every registered default (what ``adamlab problems`` lists)."""
    return [PROBLEMS[name].summary() for name in FACTORIES]
