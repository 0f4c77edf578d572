"""Shared bits of the plot helpers: colours, markers, names. No computation on data."""

from __future__ import annotations

from typing import Any

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<")


def colors(result: Any) -> dict[str, str]:
    """One colour per optimizer label, the same in every panel (matplotlib's C0, C1, …)."""
    return {label: f"C{i % 10}" for i, label in enumerate(result.labels)}


def markers(result: Any) -> dict[str, str]:
    return {label: MARKERS[i % len(MARKERS)] for i, label in enumerate(result.labels)}


def short_name(label: str) -> str:
    """``"Adam(lr=0.1, …)"`` → ``"Adam"``."""
    return label.split("(", 1)[0].strip() or label


def first_seed(result: Any) -> list[Any]:
    """One trajectory per label: the first seed's."""
    seen: dict[str, Any] = {}
    for t in result.trajectories:
        seen.setdefault(t.label, t)
    return list(seen.values())


def formula_for(result: Any) -> str | None:
    """``f(x) = (x − 2)²`` where the problem writes itself out (or is the user's formula)."""
    f = result.problem.get("formula") or result.problem.get("expression")
    if not f:
        return None
    return f"f(x) = {f}" if result.problem["dim"] == 1 else f"f = {f}"


def title_for(result: Any) -> str:
    names = list(dict.fromkeys(short_name(lb) for lb in result.labels))
    problem = formula_for(result) or result.problem["name"]
    return f"{' vs. '.join(names)} on {problem}"
