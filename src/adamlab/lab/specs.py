"""Optimizers from short text specs, and the labels that name them in tables and legends.

A spec is ``NAME[:KEY=VALUE,...]``, e.g. ``adam:lr=0.1,betas=0.9/0.999`` or ``sgd:lr=0.05``.
Values are read as booleans (``true``/``false``), integers, floats, tuples (``a/b``), or left
as strings (``eps_placement=before_correction``). Unknown names and keys are refused with a
message that lists the valid ones; invalid values are refused by the optimizer itself.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from ..optim import OPTIMIZERS, Optimizer

_INT = re.compile(r"^[+-]?\d+$")


def parse_value(text: str) -> Any:
    """``"true"`` → True, ``"3"`` → 3, ``"1e-3"`` → 0.001, ``"0.9/0.999"`` → (0.9, 0.999)."""
    text = text.strip()
    if "/" in text:
        return tuple(parse_value(part) for part in text.split("/"))
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if _INT.match(text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


def hyperparameter_names(cls: type[Optimizer]) -> list[str]:
    """The constructor arguments of an optimizer class, in declaration order."""
    return [f.name for f in dataclasses.fields(cls) if not f.name.startswith("_")]  # type: ignore[arg-type]


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split ``"adam:lr=0.1,betas=0.9/0.999"`` into ``("adam", {"lr": 0.1, "betas": (0.9, 0.999)})``.

    Raises ``ValueError`` for an unknown optimizer, an unknown key, or a malformed pair.
    """
    name, _, rest = spec.strip().partition(":")
    name = name.strip().lower()
    if name not in OPTIMIZERS:
        raise ValueError(
            f"unknown optimizer {name!r} in {spec!r}; choose one of {', '.join(OPTIMIZERS)}"
        )
    cls = OPTIMIZERS[name]
    valid = hyperparameter_names(cls)
    kwargs: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key or not value.strip():
            raise ValueError(f"malformed {item!r} in {spec!r}; write KEY=VALUE, e.g. lr=0.1")
        if key not in valid:
            raise ValueError(
                f"unknown hyperparameter {key!r} for {name}; valid: {', '.join(valid)}"
            )
        if key in kwargs:
            raise ValueError(f"hyperparameter {key!r} given twice in {spec!r}")
        kwargs[key] = parse_value(value)
    return name, kwargs


def optimizer_from_spec(spec: str) -> Optimizer:
    """Build an optimizer from a spec; the optimizer validates the values (ValueError/TypeError)."""
    name, kwargs = parse_spec(spec)
    return OPTIMIZERS[name](**kwargs)


# Shown in a label whatever their value; every other hyperparameter only when not default.
_ALWAYS = ("lr", "betas")
_NEVER = ("nonfinite",)


def fmt_value(v: Any, sep: str | None = None) -> str:
    """A hyperparameter as text: ``0.1``, ``1e-08``, ``(0.9, 0.999)`` (``0.9/0.999`` with
    ``sep="/"``, the ``--opt`` syntax), ``True``."""
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
