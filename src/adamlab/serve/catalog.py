"""The playground's one door into adamlab: every call the web app makes into the library is
in this module, so that a change in the library's layout is mended here alone.

* what exists: :func:`problems` and :func:`optimizers` (names, parameters, defaults, valid
  ranges, the library's own one-line help);
* a run: :func:`run` builds the problem and the optimizers from the request's specs with the
  library's own parsers, calls :func:`adamlab.lab.compare`, and returns the result file that
  ``adamlab compare --json`` writes (written by :meth:`Result.save`, read back as bytes);
* an export: :func:`export` the same run as ``.json``/``.csv`` (:meth:`Result.save`) or as the
  figure ``adamlab compare`` draws (:func:`adamlab.plot.figure_for`, ``.png``/``.svg``).

The library's refusals (``ValueError``, ``TypeError``, ``OverflowError``) become
:class:`ApiError` here, at the API's edge, with the library's message and the request field
it came from; nothing else is caught. The playground computes nothing itself.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from .. import __version__
from ..lab import compare, optimizer_from_spec, parse_optimizer_spec, problem_from_spec
from ..lab.specs import SCHEDULES
from ..optim import OPTIMIZERS
from ..problems import FACTORIES, PROBLEMS, Problem, parameters
from .errors import ApiError
from .request import CompareRequest, Limits

#: what :func:`export` writes, by the ``format`` the API takes
EXPORT_FORMATS = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "png": "image/png",
    "svg": "image/svg+xml",
}

#: contract fields a problem spec cannot set (they are arrays, or follow from the problem)
_CONTRACT = ("x0", "domain", "x_star", "f_star")

#: what the library raises for a value it refuses; OverflowError too: a whole number too
#: large for a float (``lr=999…9``) reaches ``float()`` before any range check
REFUSALS = (ValueError, TypeError, OverflowError)


# ---------------------------------------------------------------------------------------------
# what exists
# ---------------------------------------------------------------------------------------------


def _plain(v: Any) -> Any:
    """A JSON-safe scalar: an infinity becomes None (a range without that end)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _group(p: Problem, limits: Limits) -> str:
    from ..problems import Noisy, OnlineLinear

    if p.dim > limits.dim:
        return "large"
    if isinstance(p, OnlineLinear):
        return "online"
    if isinstance(p, Noisy):
        return "noisy"
    return "1-d" if p.dim == 1 else "surface"


def _parameter_default(name: str, p: Problem, key: str) -> Any:
    """A problem parameter's default: the instance's value, the wrapped problem's, or the
    factory's signature default (None where none is a plain scalar)."""
    for owner in (p, getattr(p, "base", None)):
        if owner is not None and hasattr(owner, key):
            value = getattr(owner, key)
            return value if isinstance(value, (bool, int, float, str)) else None
    ref = FACTORIES[name]
    target = getattr(ref, "base", ref)
    try:
        param = inspect.signature(target.resolve()).parameters.get(key)
    except (AttributeError, TypeError, ValueError):  # pragma: no cover - registry layout
        return None
    if param is None or not isinstance(param.default, (bool, int, float, str)):
        return None
    return param.default


def problems(limits: Limits) -> list[dict[str, Any]]:
    """Every registered problem: its summary, its parameters with defaults, a group, and
    whether the playground draws it (``playground``: dimension ≤ ``limits.dim``)."""
    out = []
    for name in FACTORIES:
        p = PROBLEMS[name]
        record = p.summary()
        record["name"] = name
        record["group"] = _group(p, limits)
        record["playground"] = p.dim <= limits.dim
        record["parameters"] = [
            {"name": k, "default": _plain(_parameter_default(name, p, k))}
            for k in parameters(name)
            if k not in _CONTRACT
        ]
        out.append(record)
    return out


def expression_syntax() -> dict[str, Any]:
    """What ``function`` accepts, from the expression module itself."""
    from ..problems import expression

    return {
        "max_length": expression.MAX_LENGTH,
        "variables": "x, y, z (by position) or x1 ... xn",
        "functions": sorted(expression.FUNCTIONS),
        "constants": list(expression.CONSTANTS),
        "operators": ["+", "-", "*", "/", "**"],
    }


def _help(cls: type) -> dict[str, str]:
    """Each argument's text from the ``Args:`` sections of the class's docstrings (its own,
    then its bases': AdamW documents its arguments on Adam), continuation lines joined."""
    out: dict[str, str] = {}
    for klass in cls.__mro__:
        doc = inspect.cleandoc(klass.__dict__.get("__doc__") or "")
        if "\nArgs:\n" not in doc:
            continue
        mine: dict[str, list[str]] = {}
        current: list[str] | None = None
        for line in doc.split("\nArgs:\n", 1)[1].splitlines():
            entry = _ENTRY.match(line)
            if entry:
                current = mine.setdefault(entry.group(1), [entry.group(2)])
            elif line.startswith("        ") and current is not None:
                current.append(line.strip())
            elif line.strip():
                break  # the next section (Example:, References:)
        for name, parts in mine.items():
            out.setdefault(name, " ".join(parts))
    return out


_ENTRY = re.compile(r"^    (\w+): (.*)$")


def _first_paragraph(obj: Any) -> str:
    return " ".join(inspect.cleandoc(obj.__doc__ or "").split("\n\n", 1)[0].split())


def _range(valid: Any) -> dict[str, Any]:
    lo_open, hi_open = valid.open_ends
    return {
        "text": str(valid),
        "lo": _plain(valid.lo),
        "hi": _plain(valid.hi),
        "lo_open": lo_open,
        "hi_open": hi_open,
    }


#: the API's kinds: what a form needs to know of each declared kind
_KINDS = {"hyper": "number", "pair": "pair", "number": "number", "flag": "flag", "choice": "choice"}


def optimizers() -> list[dict[str, Any]]:
    """Every optimizer: its hyperparameters in declaration order, each with its kind
    (``number``, ``pair``, ``flag``, ``flag-pair``, ``choice``), default, valid range or
    choices, whether it may be a schedule (``dynamic``), and the docstring's help."""
    out = []
    for name, cls in OPTIMIZERS.items():
        defaults = cls().describe()
        helps = _help(cls)
        hypers = []
        for key, decl in cls.declarations().items():
            default = defaults.get(key)
            kind = _KINDS.get(decl["kind"])
            if kind is None:  # checked by the optimizer itself: bias_correction (on/off/AdamD)
                bools = isinstance(default, list) and all(isinstance(v, bool) for v in default)
                kind = "flag-pair" if bools else "text"
            h: dict[str, Any] = {
                "name": key,
                "kind": kind,
                "default": _plain(default),
                "help": helps.get(key, ""),
            }
            if "valid" in decl:
                h["range"] = _range(decl["valid"])
                h["dynamic"] = decl["kind"] in ("hyper", "pair")
            if "options" in decl:
                h["choices"] = list(decl["options"])
            hypers.append(h)
        out.append(
            {
                "name": name,
                "class": cls.__name__,
                "summary": _first_paragraph(cls),
                "hyperparameters": hypers,
            }
        )
    return out


def schedule_list() -> list[dict[str, Any]]:
    """The schedules a spec may name (``lr=cosine(0.1, total_steps=1000)``), with their
    arguments (``default`` None: required) and the first paragraph of their docstrings."""
    out = []
    for name, cls in SCHEDULES.items():
        args = [
            {"name": f.name, "default": None if f.default is dataclasses.MISSING else f.default}
            for f in dataclasses.fields(cls)
        ]
        out.append({"name": name, "arguments": args, "summary": _first_paragraph(cls)})
    return out


def version() -> str:
    return __version__


# ---------------------------------------------------------------------------------------------
# a run
# ---------------------------------------------------------------------------------------------


def _refused_key(spec: str) -> str | None:
    """Which hyperparameter of ``spec`` the optimizer refuses on its own (each given value
    tried alone on the defaults, by the optimizer's own checks); None when only a
    combination is refused or the spec itself is malformed."""
    try:
        name, kwargs = parse_optimizer_spec(spec)
    except REFUSALS:
        return None
    for key, value in kwargs.items():
        try:
            OPTIMIZERS[name](**{key: value})
        except REFUSALS:
            return key
    return None


def build_problem(req: CompareRequest, limits: Limits) -> Problem:
    """The problem of ``req`` (a registered name or spec, or an expression), within the
    playground's dimension limit."""
    field = "function" if req.function is not None else "problem"
    try:
        if req.function is not None:
            from ..problems import from_expression

            problem = from_expression(req.function)
        else:
            problem = problem_from_spec(req.problem)
    except REFUSALS as e:
        raise ApiError(400, str(e), field) from None
    if problem.dim > limits.dim:
        raise ApiError(
            422,
            f"{problem.name!r} has {problem.dim} coordinates; the playground draws problems of "
            f"at most {limits.dim} (run it with adamlab compare)",
            field,
        )
    return problem


def build_optimizers(req: CompareRequest) -> list[Any]:
    out = []
    for i, spec in enumerate(req.opt):
        try:
            out.append(optimizer_from_spec(spec))
        except REFUSALS as e:
            raise ApiError(400, str(e), f"opt[{i}]", _refused_key(spec)) from None
    return out


def compute(req: CompareRequest, limits: Limits) -> Any:
    """Run the comparison of ``req`` with :func:`adamlab.lab.compare`; a :class:`Result`.

    The manifest's ``meta`` records the equivalent command line (``command``), the table
    ``adamlab compare`` prints for it (``table``) and its tolerance criterion (``criterion``).
    """
    problem = build_problem(req, limits)
    opts = build_optimizers(req)
    try:
        result = compare(
            problem,
            opts,
            steps=req.steps,
            start=None if req.start is None else list(req.start),
            seed=req.seeds(),
            meta={"command": req.command(), "via": f"adamlab serve {__version__}"},
        )
    except REFUSALS as e:
        raise ApiError(400, str(e), "start" if req.start is not None else None) from None
    result.meta["table"] = result.table()
    result.meta["criterion"] = result.criterion_text()
    return result


def _saved(result: Any, suffix: str) -> bytes:
    """The bytes :meth:`Result.save` writes for ``suffix`` (what ``--json FILE`` holds)."""
    with tempfile.TemporaryDirectory(prefix="adamlab-serve-") as d:
        path = Path(d) / f"run{suffix}"
        result.save(path)
        return path.read_bytes()


def _figure(result: Any, suffix: str, diagnostics: bool) -> bytes:
    """The figure ``adamlab compare --out FILE`` writes (with ``--diagnostics``: its panel)."""
    from .. import plot  # matplotlib: loaded when a figure is asked for (workers preload it)

    fig = plot.figure_for(result, diagnostics=diagnostics)
    with tempfile.TemporaryDirectory(prefix="adamlab-serve-") as d:
        path = Path(d) / f"figure{suffix}"
        plot.save_figure(fig, path)
        return path.read_bytes()


def run(req: CompareRequest, limits: Limits) -> bytes:
    """The result file of ``req`` in the ``adamlab compare --json`` format, as bytes."""
    return _saved(compute(req, limits), ".json")


def export(req: CompareRequest, limits: Limits, fmt: str, diagnostics: bool = False) -> bytes:
    """``req``'s run as ``json``, ``csv`` (the tidy table; the manifest is in the JSON), or
    the figure as ``png``/``svg`` (``fmt``: a key of :data:`EXPORT_FORMATS`)."""
    result = compute(req, limits)
    if fmt in ("json", "csv"):
        return _saved(result, f".{fmt}")
    return _figure(result, f".{fmt}", diagnostics)


# ---------------------------------------------------------------------------------------------
# jobs, as the worker processes run them
# ---------------------------------------------------------------------------------------------


def warm_up() -> None:
    """Import what requests will need (matplotlib, SymPy, pandas) and run a tiny comparison,
    so that the first request pays no import time."""
    import pandas  # noqa: F401 - the CSV export

    from .. import plot  # noqa: F401
    from ..problems import from_expression

    from_expression("x**2")
    compute(CompareRequest(steps=2), Limits())


def handle(job: dict[str, Any]) -> tuple[Any, ...]:
    """Run one job: ``{"kind": "compare" | "export", "request": CompareRequest, "limits":
    Limits, "format": ..., "diagnostics": ...}``. Returns ``("ok", bytes, seconds)`` or
    ``("error", status, message, field, key)``."""
    t0 = time.perf_counter()
    req, limits = job["request"], job["limits"]
    try:
        if job["kind"] == "compare":
            data = run(req, limits)
        else:
            data = export(req, limits, job["format"], bool(job.get("diagnostics")))
    except ApiError as e:
        return ("error", e.status, e.message, e.field, e.key)
    except MemoryError:
        return ("error", 422, "the run needs more memory than the playground allows a request",
                None, None)  # fmt: skip
    return ("ok", data, time.perf_counter() - t0)


__all__ = [
    "EXPORT_FORMATS",
    "build_optimizers",
    "build_problem",
    "compute",
    "export",
    "expression_syntax",
    "handle",
    "optimizers",
    "problems",
    "run",
    "schedule_list",
    "version",
    "warm_up",
]
