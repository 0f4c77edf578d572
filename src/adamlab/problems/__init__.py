"""Test problems with exact gradients (see :mod:`adamlab.problems.base` for the contract)."""

from .base import Oracle, Problem, Quadratic1D

#: every problem by its command-line name
PROBLEMS: dict[str, Problem] = {p.name: p for p in (Quadratic1D(),)}

__all__ = ["PROBLEMS", "Oracle", "Problem", "Quadratic1D"]
