"""What ``POST /api/compare`` accepts: the ``adamlab compare`` vocabulary as JSON, checked
for shape and against the playground's limits before any work is done.

    {"problem": "rosenbrock", "opt": ["adam:lr=0.05", "sgd:lr=1e-3,momentum=0.9"],
     "steps": 1000, "start": [-1.2, 1], "seed": 0, "repeats": 1}

Every field is optional; ``{}`` is the seed demo, as ``adamlab compare`` with no options is.
``problem`` (``NAME[:K=V,...]``) and ``function`` (an expression) are the CLI's ``--problem``
and ``--function``; ``opt`` holds ``--opt`` specs (a string or a list); ``start`` is a number
or a list of numbers. The values inside the specs are the library's to judge: this module
checks only types and sizes, so that a refusal of a value always comes in the library's words.
"""

from __future__ import annotations

import dataclasses
import math
import shlex
from typing import Any

from ..lab.runner import SEED_OPTIMIZERS
from .errors import ApiError

#: the keys a compare request may hold (the CLI's option names)
FIELDS = ("problem", "function", "start", "opt", "steps", "seed", "repeats")

#: the seed demo's optimizers: what ``adamlab compare`` runs without ``--opt``
SEED_OPTS = SEED_OPTIMIZERS

#: seeds stay below 2**53, so that the page (JavaScript numbers) sends back the seed it got
MAX_SEED = 2**53 - 1


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one request may ask for. Each refusal names the limit and the value asked for.

    ``work`` bounds steps × optimizers × repeats (the optimizer steps one request runs);
    ``seconds`` is the compute time after which a run is stopped (its worker is killed).
    """

    steps: int = 20_000
    optimizers: int = 8
    repeats: int = 20
    work: int = 40_000
    dim: int = 10
    spec_length: int = 500
    seconds: float = 20.0
    body_bytes: int = 65_536
    waiting: int = 32

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class CompareRequest:
    """A checked request (the seed demo's values where the request gave none)."""

    problem: str = "quadratic"
    function: str | None = None
    start: tuple[float, ...] | None = None
    opt: tuple[str, ...] = SEED_OPTS
    steps: int = 50
    seed: int = 0
    repeats: int = 1

    def seeds(self) -> int | list[int]:
        """``seed``, or the list SEED … SEED+N−1 with ``repeats=N`` (as the CLI does)."""
        if self.repeats == 1:
            return self.seed
        return list(range(self.seed, self.seed + self.repeats))

    def command(self) -> list[str]:
        """The ``adamlab compare`` command line that runs the same comparison."""
        argv = ["adamlab", "compare"]
        if self.function is not None:
            argv += ["--function", self.function]
        elif self.problem != "quadratic":
            argv += ["--problem", self.problem]
        if self.start is not None:
            argv.append("--start=" + ",".join(repr(float(v)) for v in self.start))
        for spec in self.opt if self.opt != SEED_OPTS else ():
            argv += ["--opt", spec]
        if self.steps != 50:
            argv += ["--steps", str(self.steps)]
        if self.seed != 0:
            argv += ["--seed", str(self.seed)]
        if self.repeats != 1:
            argv += ["--repeats", str(self.repeats)]
        return argv

    def shell(self) -> str:
        """:meth:`command` quoted for a POSIX shell."""
        return shlex.join(self.command())


def _whole(body: dict[str, Any], key: str, default: int, lo: int, hi: int | None) -> int:
    value = body.get(key, default)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"{key} must be a whole number, got {value!r}", key)
    if value < lo:
        raise ApiError(400, f"{key} must be at least {lo}, got {value}", key)
    if hi is not None and value > hi:
        raise ApiError(422, f"{key} is {value}; the playground runs at most {hi} per request", key)
    return value


def _text(body: dict[str, Any], key: str, limit: int) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"{key} must be a string, got {type(value).__name__}", key)
    if len(value) > limit:
        raise ApiError(
            422, f"{key} is {len(value)} characters; the playground takes at most {limit}", key
        )
    return value


def parse_compare(body: Any, limits: Limits) -> CompareRequest:
    """Check a decoded JSON body; raise :class:`ApiError` (400 malformed, 422 over a limit)."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise ApiError(400, f"the request must be a JSON object, got {type(body).__name__}")
    unknown = [k for k in body if k not in FIELDS]
    if unknown:
        raise ApiError(
            400, f"unknown field {unknown[0]!r}; a compare request takes {', '.join(FIELDS)}",
            unknown[0],
        )  # fmt: skip

    # the expression's own length limit is the library's (it says so in its words)
    function = _text(body, "function", max(limits.spec_length, 10_000))
    problem = _text(body, "problem", limits.spec_length)
    if function is not None and problem is not None and problem.strip() != "quadratic":
        raise ApiError(400, "give either problem or function, not both", "function")

    start = body.get("start")
    if start is not None:
        if isinstance(start, (int, float)) and not isinstance(start, bool):
            start = [start]
        if not isinstance(start, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in start
        ):
            raise ApiError(
                400, f"start must be a number or a list of numbers, got {start!r}", "start"
            )
        if len(start) > limits.dim:
            raise ApiError(
                422, f"start has {len(start)} coordinates; the playground takes at most "
                f"{limits.dim}", "start",
            )  # fmt: skip
        if not all(math.isfinite(v) for v in start):
            raise ApiError(400, f"start must be finite, got {start}", "start")
        start = tuple(float(v) for v in start)

    opt = body.get("opt", list(SEED_OPTS))
    if isinstance(opt, str):
        opt = [opt]
    if not isinstance(opt, list) or not all(isinstance(s, str) for s in opt):
        raise ApiError(400, "opt must be an optimizer spec or a list of them, e.g. "
                       "[\"adam:lr=0.1\", \"sgd:lr=0.1\"]", "opt")  # fmt: skip
    if not opt:
        raise ApiError(400, "opt is empty: give at least one optimizer spec", "opt")
    if len(opt) > limits.optimizers:
        raise ApiError(
            422, f"{len(opt)} optimizers; the playground runs at most {limits.optimizers} optimizers "
            "side by side", "opt",
        )  # fmt: skip
    for i, spec in enumerate(opt):
        if len(spec) > limits.spec_length:
            raise ApiError(
                422, f"the spec is {len(spec)} characters; the playground takes at most "
                f"{limits.spec_length}", f"opt[{i}]",
            )  # fmt: skip

    steps = _whole(body, "steps", 50, 1, limits.steps)
    seed = _whole(body, "seed", 0, 0, None)
    if seed > MAX_SEED:
        raise ApiError(
            400, f"seed must be at most {MAX_SEED} (the largest whole number a web page holds "
            f"exactly), got {seed}", "seed",
        )  # fmt: skip
    repeats = _whole(body, "repeats", 1, 1, limits.repeats)
    work = steps * len(opt) * repeats
    if work > limits.work:
        raise ApiError(
            422, f"{steps} steps x {len(opt)} optimizers x {repeats} repeats = {work} optimizer "
            f"steps; the playground runs at most {limits.work} per request (use adamlab "
            "compare for more)", "steps",
        )  # fmt: skip
    return CompareRequest(
        problem=problem if problem is not None and function is None else "quadratic",
        function=function,
        start=start,
        opt=tuple(opt),
        steps=steps,
        seed=seed,
        repeats=repeats,
    )
