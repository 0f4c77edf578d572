"""``adamlab problems`` and ``adamlab optimizers``: what exists, one line each."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from .. import problems
from ..lab.specs import fmt_value
from ..optim import OPTIMIZERS


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("problems", help="list the test problems", description="List the problems.")
    p.set_defaults(func=run_problems)
    o = sub.add_parser(
        "optimizers", help="list the optimizers and their defaults", description="List optimizers."
    )
    o.set_defaults(func=run_optimizers)


def run_problems(args: argparse.Namespace) -> int:
    """One line per problem: name, dimension, start, description, parameters."""
    registry = problems.PROBLEMS
    width = max(map(len, registry))
    dims = max([3, *(len(str(p.dim)) for p in registry.values())])  # aligned columns
    for name, p in registry.items():
        start = ",".join(fmt_value(float(v)) for v in p.x0) if p.dim <= 4 else f"{p.dim} values"
        params = problem_parameters(p)
        extra = f" [{params}]" if params else ""
        print(f"{name:<{width}}  dim {p.dim:<{dims}} start {start:<12} {p.description}{extra}")
    return 0


def problem_parameters(problem: Any) -> str:
    """``kappa=10, theta=0``: a problem's own dataclass fields beyond the base contract."""
    base = {f.name for f in dataclasses.fields(problems.Problem)}
    parts = []
    for f in dataclasses.fields(problem):
        if f.name in base or f.name.startswith("_") or not f.repr:
            continue
        value = getattr(problem, f.name)
        if isinstance(value, (bool, int, float, str)):
            parts.append(f"{f.name}={fmt_value(value)}")
    return ", ".join(parts)


def run_optimizers(args: argparse.Namespace) -> int:
    """One line per optimizer with its default hyperparameters, in spec syntax."""
    width = max(map(len, OPTIMIZERS))
    for name, cls in OPTIMIZERS.items():
        d = cls().describe()
        d.pop("name")
        d.pop("nonfinite", None)
        hypers = " ".join(f"{k}={fmt_value(v, sep='/')}" for k, v in d.items())
        print(f"{name:<{width}}  {hypers}")
    return 0
