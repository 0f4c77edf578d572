"""One grammar for every text spec: ``compare --opt``, ``--problem``, ``sweep --grid``/``--sample``/
``--fixed``, ``reproduce`` and the web playground all parse through here.

::

    value     := bool | number | pair | schedule | word
    bool      := true | false | yes | no | on | off              (any case)
    number    := 3, 0.1, 1e-3, inf                                (nan is refused)
    pair      := value/value                                      betas=0.9/0.999
    schedule  := NAME(arg, ...), arg a number or KEY=number      lr=inverse_sqrt(0.5)
                 NAME one of adamlab.schedules                    lr=cosine(0.1, total_steps=1000)
    word      := a name: letters, digits, _ and -, with a letter   eps_placement=before_correction
                 or _, not first a - (so not a number)            state_precision=8bit
    spec      := NAME[:KEY=value,KEY=value,...]                   adam:lr=0.1,betas=0.9/0.999
    grid axis := NAME=value,value,... | NAME=lo:hi:n | NAME=lo:hi:n:log
    sample    := NAME=lo:hi | NAME=lo:hi:log | NAME=lo:hi:log1m | NAME=value,value,...

Commas inside a schedule's parentheses do not separate items. Every malformed piece (an empty
item, a trailing comma, an unknown name, key or schedule) is a ``ValueError`` that quotes it;
whether a value is *valid* for a hyperparameter is the optimizer's to say, at construction.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import numpy as np

from .. import _exact as ex
from ..optim import OPTIMIZERS, Optimizer, schedules
from ..problems import Problem
from ..problems import get_problem as _registered_problem

__all__ = [
    "fmt_value", "label_for", "optimizer_from_spec", "parse_fixed", "parse_grid_axis",
    "parse_items", "parse_optimizer_spec", "parse_problem_spec", "parse_sample_axis",
    "parse_seeds", "parse_value", "problem_from_spec", "split_items",
]  # fmt: skip

_TRUE = ("true", "yes", "on")
_FALSE = ("false", "no", "off")
_INT = re.compile(r"[+-]?\d+")
_WORD = re.compile(r"(?=[A-Za-z0-9_\-]*[A-Za-z_])[A-Za-z0-9_][A-Za-z0-9_\-]*")
_CALL = re.compile(r"([A-Za-z_]\w*)\((.*)\)", re.S)

#: the schedules a spec may name (``lr=inverse_sqrt(0.5)``)
SCHEDULES = {
    name: getattr(schedules, name)
    for name in ("constant", "step_decay", "exponential_decay", "linear_warmup", "cosine",
                 "inverse_sqrt")
}  # fmt: skip


def split_items(text: str, what: str) -> list[str]:
    """Split on commas outside parentheses; an empty item (``a,,b``, ``a,``) is an error."""
    items, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced ')' in {what}")
        if ch == "," and depth == 0:
            items.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise ValueError(f"unbalanced '(' in {what}")
    items.append("".join(cur))
    items = [i.strip() for i in items]
    if any(not i for i in items):
        raise ValueError(f"empty item in {what} (a stray or trailing comma?)")
    return items


def _number(text: str) -> int | float | None:
    if _INT.fullmatch(text):
        return int(text)
    try:
        v = float(text)
    except ValueError:
        return None
    if math.isnan(v):
        raise ValueError(f"{text!r} is not a number (NaN is refused)")
    return v


def _schedule(name: str, args: str, text: str) -> schedules.Schedule:
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")
    positional, keywords = [], {}
    for item in split_items(args, repr(text)) if args.strip() else []:
        key, eq, value = item.partition("=")
        number = _number((value if eq else item).strip())
        if number is None:
            raise ValueError(f"schedule arguments are numbers, got {item!r}")
        if eq:
            keywords[key.strip()] = number
        elif keywords:
            raise ValueError("a positional argument after a keyword argument")
        else:
            positional.append(number)
    try:
        return SCHEDULES[name](*positional, **keywords)
    except TypeError as e:  # wrong arity or keyword: the dataclass's own words
        fields = ", ".join(f.name for f in dataclasses.fields(SCHEDULES[name]))
        why = str(e).split("() ", 1)[-1]
        raise ValueError(f"{why}; {name} takes ({fields})") from None


def parse_value(text: str) -> Any:
    """A value of the grammar: ``"yes"`` → True, ``"3"`` → 3, ``"1e-3"`` → 0.001,
    ``"0.9/0.999"`` → (0.9, 0.999), ``"inverse_sqrt(0.5)"`` → a schedule,
    ``"before_correction"`` → the word itself."""
    t = text.strip()
    if not t:
        raise ValueError("empty value")
    call = _CALL.fullmatch(t)
    if call:
        return _schedule(call.group(1), call.group(2), t)
    if "/" in t:
        return tuple(parse_value(part) for part in t.split("/"))
    low = t.lower()
    if low in _TRUE or low in _FALSE:
        return low in _TRUE
    number = _number(t)
    if number is not None:
        return number
    if _WORD.fullmatch(t):
        return t
    raise ValueError(f"{t!r} is not a number, true/false, a/b pair, schedule or name")


def parse_items(text: str, what: str) -> dict[str, Any]:
    """``"lr=0.1,betas=0.9/0.999"`` → ``{"lr": 0.1, "betas": (0.9, 0.999)}``."""
    out: dict[str, Any] = {}
    for item in split_items(text, what):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key or not value.strip():
            raise ValueError(f"malformed {item!r} in {what}; write KEY=VALUE, e.g. lr=0.1")
        if key in out:
            raise ValueError(f"{key!r} given twice in {what}")
        try:
            out[key] = parse_value(value)
        except ValueError as e:
            raise ValueError(f"{key}={value.strip()}: {e}") from None
    return out


def _spec(spec: str) -> tuple[str, dict[str, Any]]:
    name, colon, rest = spec.strip().partition(":")
    if colon and not rest.strip():
        raise ValueError(f"nothing after ':' in {spec!r}; write NAME:KEY=VALUE,...")
    return name.strip().lower(), (parse_items(rest, repr(spec)) if colon else {})


# --------------------------------------------------------------------------------------------
# Optimizers
# --------------------------------------------------------------------------------------------


def hyperparameter_names(cls: type[Optimizer]) -> list[str]:
    """The constructor arguments of an optimizer class, in declaration order."""
    return [f.name for f in dataclasses.fields(cls) if not f.name.startswith("_")]  # type: ignore[arg-type]


def parse_optimizer_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"adam:lr=0.1,betas=0.9/0.999"`` → ``("adam", {"lr": 0.1, "betas": (0.9, 0.999)})``.

    Raises ``ValueError`` for an unknown optimizer, an unknown key, or a malformed item.
    """
    name, kwargs = _spec(spec)
    if name not in OPTIMIZERS:
        raise ValueError(
            f"unknown optimizer {name!r} in {spec!r}; choose one of {', '.join(OPTIMIZERS)}"
        )
    valid = hyperparameter_names(OPTIMIZERS[name])
    for key in kwargs:
        if key not in valid:
            raise ValueError(
                f"unknown hyperparameter {key!r} for {name}; valid: {', '.join(valid)}"
            )
    return name, kwargs


def optimizer_from_spec(spec: str) -> Optimizer:
    """Build an optimizer from a spec; the optimizer validates the values (ValueError/TypeError)."""
    name, kwargs = parse_optimizer_spec(spec)
    return OPTIMIZERS[name](**kwargs)


# --------------------------------------------------------------------------------------------
# Problems
# --------------------------------------------------------------------------------------------


def parse_problem_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"ill-conditioned:kappa=1000,theta=0.3"`` → ``("ill-conditioned", {...})``."""
    return _spec(spec)


def problem_from_spec(spec: str | Problem, **kwargs: Any) -> Problem:
    """A problem by name (``"rosenbrock"``), by ``"name:key=value,..."`` spec, or as given.

    Unknown names, unknown parameters and invalid values raise ``ValueError`` (the problem's).
    A problem made from a spec with parameters keeps the spec as its name, so that tables and
    records never mix it up with the default.
    """
    if isinstance(spec, Problem):
        if kwargs:
            raise TypeError("keyword arguments apply to a problem given by name only")
        return spec
    name, given = parse_problem_spec(spec)
    problem = _registered_problem(name, **{**given, **kwargs})
    if given:
        problem = dataclasses.replace(problem, name=spec.strip())
    return problem


# --------------------------------------------------------------------------------------------
# Sweep axes
# --------------------------------------------------------------------------------------------


def _axis(spec: str, flag: str) -> tuple[str, str]:
    name, sep, rest = spec.partition("=")
    if not sep or not name.strip() or not rest.strip():
        raise ValueError(f"malformed {flag} {spec!r}: expected NAME=VALUES")
    return name.strip(), rest.strip()


def _numbers(parts: list[str], spec: str, flag: str) -> list[float]:
    out = []
    for p in parts:
        v = parse_value(p)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"malformed {flag} {spec!r}: {p!r} is not a finite number")
        out.append(float(v))
    return out


def parse_grid_axis(spec: str) -> tuple[str, list[Any]]:
    """``lr=0.1,0.01`` → the values; ``lr=1e-4:1:9:log`` → 9 log-spaced; ``lo:hi:n`` linear."""
    name, rest = _axis(spec, "--grid")
    if ":" not in rest:
        return name, [parse_value(v) for v in split_items(rest, f"--grid {spec!r}")]
    parts = rest.split(":")
    if len(parts) not in (3, 4) or (len(parts) == 4 and parts[3] != "log"):
        raise ValueError(f"malformed --grid {spec!r}: expected NAME=lo:hi:n or NAME=lo:hi:n:log")
    lo, hi = _numbers(parts[:2], spec, "--grid")
    n = parse_value(parts[2])
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"malformed --grid {spec!r}: n must be a whole number >= 1")
    if len(parts) == 4:
        if lo <= 0 or hi <= 0:
            raise ValueError(f"malformed --grid {spec!r}: a log grid needs lo, hi > 0")
        return name, [float(v) for v in ex.geomspace(lo, hi, n)]
    return name, [float(v) for v in np.linspace(lo, hi, n)]


def parse_sample_axis(spec: str) -> tuple[str, Any]:
    """``lr=1e-4:1:log`` → a LogUniform; ``beta2=0.9:0.9999:log1m``; ``momentum=0,0.9`` → values."""
    from .sweep.space import LogUniform, OneMinusLogUniform, Uniform

    name, rest = _axis(spec, "--sample")
    if ":" not in rest:
        return name, [parse_value(v) for v in split_items(rest, f"--sample {spec!r}")]
    parts = rest.split(":")
    kinds = {None: Uniform, "log": LogUniform, "log1m": OneMinusLogUniform}
    kind = parts[2] if len(parts) == 3 else None
    if len(parts) not in (2, 3) or kind not in kinds:
        raise ValueError(
            f"malformed --sample {spec!r}: expected NAME=lo:hi, NAME=lo:hi:log or NAME=lo:hi:log1m"
        )
    lo, hi = _numbers(parts[:2], spec, "--sample")
    return name, kinds[kind](lo, hi)


def parse_fixed(spec: str) -> tuple[str, Any]:
    """``amsgrad=yes`` → ``("amsgrad", True)``; ``lr=inverse_sqrt(1)`` → a schedule."""
    name, rest = _axis(spec, "--fixed")
    return name, parse_value(rest)


def parse_seeds(text: str) -> list[int]:
    """``"3"`` → [0, 1, 2]; ``"0,4,7"`` → [0, 4, 7]."""
    try:
        if "," in text:
            seeds = [int(s) for s in split_items(text, f"--seeds {text!r}")]
            if any(s < 0 for s in seeds):
                raise ValueError
            return seeds
        n = int(text)
    except ValueError:
        raise ValueError(
            f"--seeds must be a count or a list of seeds >= 0 like 0,1,2, got {text!r}"
        ) from None
    if n < 1:
        raise ValueError(f"--seeds must be at least 1, got {n}")
    return list(range(n))


# --------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------

# Shown in a label whatever their value; every other hyperparameter only when not default.
_ALWAYS = ("lr", "betas")
_NEVER = ("nonfinite",)


def fmt_value(v: Any, sep: str | None = None) -> str:
    """A hyperparameter as text: ``0.1``, ``1e-08``, ``(0.9, 0.999)`` (``0.9/0.999`` with
    ``sep="/"``, the spec syntax), ``True``."""
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        parts = [fmt_value(e, sep) for e in v]
        return sep.join(parts) if sep else "(" + ", ".join(parts) + ")"
    return str(v)


def label_for(opt: Optimizer) -> str:
    """A short name with the key hyperparameters, e.g. ``Adam(lr=0.1, betas=(0.9, 0.999))``.

    ``lr`` and ``betas`` always appear; any other hyperparameter only when it differs from
    the class default.
    """
    mine = opt.describe()
    try:
        defaults = type(opt)().describe()
    except (TypeError, ValueError):  # pragma: no cover - every core optimizer has defaults
        defaults = {}
    parts = [
        f"{k}={fmt_value(v)}"
        for k, v in mine.items()
        if k != "name" and k not in _NEVER and (k in _ALWAYS or defaults.get(k) != v)
    ]
    return f"{type(opt).__name__}({', '.join(parts)})"
