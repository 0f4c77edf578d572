"""A sweep's plan: validated configurations, their groups, the problems, seeds and record keys.

Everything a sweep could refuse is refused here, before any run starts or any file is written.
Configurations that share their static flags (``amsgrad``, ``bias_correction``, a schedule …)
form a *group*: one optimizer with each dynamic hyperparameter a ``(K, 1)`` array, which is
what a vectorised engine steps in one pass. A *block* is what an engine runs at a time: one
problem, one seed, some configurations of one group.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import operator
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ... import __version__
from ...optim import OPTIMIZERS, Optimizer
from ...problems import Problem
from ..loop import eval_every as _eval_every
from ..specs import problem_from_spec
from .space import Space, grid, plain, sample

__all__ = ["Block", "Plan", "make_plan", "problem_id", "record_key"]


def optimizer_class(optimizer: str | type[Optimizer]) -> type[Optimizer]:
    if isinstance(optimizer, str):
        try:
            return OPTIMIZERS[optimizer.lower()]
        except KeyError:
            raise ValueError(
                f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}"
            ) from None
    if isinstance(optimizer, type) and issubclass(optimizer, Optimizer):
        return optimizer
    raise TypeError(f"optimizer must be a name or an Optimizer class, got {optimizer!r}")


@functools.cache
def _fields(cls: type[Optimizer]) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls) if f.name != "_"}  # type: ignore[arg-type]


def check_names(cls: type[Optimizer], names: Iterable[str]) -> None:
    fields = _fields(cls)
    allowed = set(fields) - {"nonfinite"}
    if "betas" in fields:
        allowed |= {"beta1", "beta2"}
    for name in names:
        if name not in allowed:
            raise ValueError(
                f"{cls.__name__} has no hyperparameter {name!r}; it takes "
                f"{', '.join(sorted(allowed))}"
            )


def dynamic(cls: type[Optimizer]) -> set[str]:
    return set(cls.dynamic())


def build(cls: type[Optimizer], values: Mapping[str, Any], *, nonfinite: str) -> Optimizer:
    """An optimizer from per-name values (floats or (K, 1) arrays); beta1/beta2 -> betas."""
    kw = dict(values)
    if "beta1" in kw or "beta2" in kw:
        default = _fields(cls)["betas"].default
        kw["betas"] = (kw.pop("beta1", default[0]), kw.pop("beta2", default[1]))
    if "nonfinite" in _fields(cls):
        kw["nonfinite"] = nonfinite
    return cls(**kw)


def is_number(v: Any) -> bool:
    """A value that vectorises as a (K, 1) array (schedules and flags do not)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def group_optimizer(cls: type[Optimizer], configs: Sequence[Mapping[str, Any]]) -> Optimizer:
    """One optimizer for configurations that share their static flags: each dynamic
    hyperparameter a (K, 1) array, validated in one go (``nonfinite="propagate"``)."""
    dyn = dynamic(cls)
    values = {k: v for k, v in configs[0].items() if k not in dyn or not is_number(v)}
    for k in configs[0]:
        if k not in values:
            col = list(map(operator.itemgetter(k), configs))
            if set(map(type, col)) != {float}:
                col = [float(v) for v in col]
            values[k] = np.array(col, dtype=float)[:, None]
    return build(cls, values, nonfinite="propagate")


def alone_optimizer(cls: type[Optimizer], config: Mapping[str, Any]) -> Optimizer:
    """The optimizer of one configuration alone: float hyperparameters (the reference)."""
    dyn = dynamic(cls)
    values = {k: (float(v) if k in dyn and is_number(v) else v) for k, v in config.items()}
    return build(cls, values, nonfinite="propagate")


def _signature(cls: type[Optimizer], config: Mapping[str, Any]) -> str:
    """What must be equal within a vectorised group: flags, and dynamic hyperparameters
    given as something other than a number (a schedule)."""
    dyn = dynamic(cls)
    return repr(sorted((k, v) for k, v in config.items() if k not in dyn or not is_number(v)))


def normalise(config: Mapping[str, Any]) -> dict[str, Any]:
    if all(type(v) in (float, int, bool, str) for v in config.values()):
        return dict(config)  # already plain (the common case)
    out = {}
    for k, v in config.items():
        v = plain(v)
        if isinstance(v, tuple) and k == "bias_correction":
            v = tuple(bool(e) for e in v)
        out[k] = v
    return out


_PLAIN = frozenset((float, int, bool, str))


def _all_plain(configs: Sequence[Mapping[str, Any]]) -> bool:
    types = set(map(type, itertools.chain.from_iterable(c.values() for c in configs)))
    return types <= _PLAIN


def _all_numbers(configs: Sequence[Mapping[str, Any]], name: str) -> bool:
    col = list(map(operator.itemgetter(name), configs))
    if set(map(type, col)) <= {float, int}:
        return True
    return all(is_number(v) for v in col)


def config_id(config: Mapping[str, Any]) -> str:
    """A canonical text of a (normalised) configuration: sorted (name, repr(value)) pairs."""
    return repr(sorted(config.items()))


def _config_ids(configs: Sequence[Mapping[str, Any]], names: Sequence[str]) -> list[str]:
    """:func:`config_id` of every configuration (all with exactly the keys ``names``), from
    one format string."""
    order = sorted(names)
    pairs = ("(" + repr(name).replace("%", "%%") + ", %r)" for name in order)
    fmt = "[" + ", ".join(pairs) + "]"
    if len(order) == 1:
        (name,) = order
        return [fmt % (c[name],) for c in configs]
    get = operator.itemgetter(*order)
    return [fmt % get(c) for c in configs]


def _prefix(problem: str, optimizer: str, run: Mapping[str, Any]) -> Any:
    """The hash of what a record's key shares with the sweep's other records: the problem,
    the optimizer, the run settings and adamlab's version (a record from another version of
    the code is computed again, not reused)."""
    doc = {"p": problem, "o": optimizer, "r": dict(run), "v": __version__}
    return hashlib.sha1(json.dumps(doc, sort_keys=True).encode())


def _key(prefix: Any, cid_text: str, seed: int) -> str:
    h = prefix.copy()
    h.update(f"|{cid_text}|{seed}".encode())
    return h.hexdigest()[:20]


def record_key(
    problem: str, optimizer: str, config: Mapping[str, Any], seed: int, run: Mapping
) -> str:
    """A stable id for one (problem, optimizer, configuration, seed, run settings, adamlab
    version): what a record is the result of."""
    return _key(_prefix(problem, optimizer, run), config_id(normalise(config)), seed)


def problem_id(p: Problem) -> str:
    return getattr(p, "name", type(p).__name__)


def resolve_problem(p: Problem | str) -> Problem:
    """A problem, or one named like ``compare``'s: ``"rosenbrock"`` or ``"rosenbrock:a=2"``."""
    if isinstance(p, Problem):
        return p
    if not isinstance(p, str):
        raise TypeError(f"problem must be a Problem or a name, got {p!r}")
    return problem_from_spec(p)


@dataclasses.dataclass(frozen=True)
class Block:
    """What an engine runs at a time: some configurations of one group, one problem, one seed."""

    problem: Problem
    problem_index: int
    seed: int
    group: str
    cids: tuple[int, ...]


@dataclasses.dataclass
class Plan:
    """A validated sweep: everything needed to run it, and the key of every record."""

    cls: type[Optimizer]
    label: str
    configs: list[dict[str, Any]]
    names: list[str]
    groups: dict[str, list[int]]
    group_opts: dict[str, Optimizer]
    problems: list[Problem]
    seeds: list[int]  #: as asked (a repeated seed repeats rows)
    unique_seeds: list[int]
    steps: int
    target: float | None
    start: Any
    eval_every: int | None
    curve: bool
    run_settings: dict[str, Any]
    keys: list[dict[tuple[int, int], str]]  #: per problem: (config id, seed) → record key

    def row_keys(self, i: int) -> list[str]:
        """Problem i's keys in table order: configuration-major, seed-minor."""
        return list(self.keys[i].values())

    def blocks(
        self, i: int, done: Mapping[str, Any] = {}, *, size: int | None = None
    ) -> Iterator[Block]:
        """Problem i's pending work, seed by seed and group by group, in blocks of at most
        ``size`` configurations (default: the vectorised budget for the problem)."""
        p = self.problems[i]
        size = size or max(1, VECTOR_BUDGET // p.dim)
        for s in self.unique_seeds:
            for sig, cids in self.groups.items():
                todo = [c for c in cids if self.keys[i][(c, s)] not in done]
                for j in range(0, len(todo), size):
                    yield Block(p, i, s, sig, tuple(todo[j : j + size]))

    def optimizer_for(self, block: Block) -> Optimizer:
        """The block's group optimizer ((K, 1) hyperparameters), built once per whole group."""
        if len(block.cids) == len(self.groups[block.group]):
            return self.group_opts[block.group]
        return group_optimizer(self.cls, [self.configs[c] for c in block.cids])

    def record(self, block: Block, cid: int, metrics: Mapping[str, Any]) -> dict[str, Any]:
        """A table row: the identifying columns, the configuration, the metrics, the key."""
        return {
            "problem": problem_id(block.problem),
            "optimizer": self.label,
            "config_id": cid,
            "seed": block.seed,
            **self.configs[cid],
            **metrics,
            "key": self.keys[block.problem_index][(cid, block.seed)],
        }


#: parameters per vectorised block (K × dim): 100,000 configurations of a 2-D problem, 82 of
#: the 2,410-parameter digits MLP (whose batched forward pass holds K × n × hidden values)
VECTOR_BUDGET = 200_000


def make_plan(
    optimizer: str | type[Optimizer],
    configs: Sequence[Mapping[str, Any]] | Space,
    problems: Problem | str | Sequence[Problem | str],
    *,
    steps: int,
    seeds: int | Sequence[int],
    n: int | None = None,
    method: str = "grid",
    sample_seed: int = 0,
    fixed: Mapping[str, Any] | None = None,
    target: float | None = None,
    start: Any = None,
    eval_every: int | None = None,
    curve: bool = False,
    label: str | None = None,
) -> Plan:
    """Validate a sweep's arguments (see :func:`adamlab.lab.sweep.sweep`) into a :class:`Plan`."""
    cls = optimizer_class(optimizer)
    if isinstance(configs, Mapping):
        if method == "grid":
            configs = grid(**configs)
        else:
            if n is None:
                raise ValueError(f"method={method!r} needs n, the number of configurations")
            configs = sample(configs, n, method=method, seed=sample_seed)
    configs = list(configs)
    if fixed or not all(type(c) is dict for c in configs):
        base = dict(fixed or {})
        configs = [{**base, **c} for c in configs]  # fixed values first
    if not _all_plain(configs):
        configs = [normalise(c) for c in configs]
    if not configs:
        raise ValueError("no configurations to run")
    names = list(dict.fromkeys(itertools.chain.from_iterable(configs)))
    check_names(cls, names)
    for c in configs:
        if len(c) != len(names):
            missing = [k for k in names if k not in c]
            raise ValueError(
                f"configuration {c} lacks {missing}: give every configuration the same keys"
            )
    groups: dict[str, list[int]] = {}
    dyn = dynamic(cls)
    if all(k in dyn and _all_numbers(configs, k) for k in names):
        groups[""] = list(range(len(configs)))  # nothing static: one group
    else:
        for cid, c in enumerate(configs):
            groups.setdefault(_signature(cls, c), []).append(cid)
    group_opts: dict[str, Optimizer] = {}
    for sig, cids in groups.items():
        try:
            group_opts[sig] = group_optimizer(cls, [configs[cid] for cid in cids])
        except (TypeError, ValueError) as e:
            for cid in cids:  # name the first offending configuration
                try:
                    build(cls, configs[cid], nonfinite="propagate")
                except (TypeError, ValueError) as e1:
                    raise type(e1)(f"configuration {configs[cid]}: {e1}") from None
            raise type(e)(str(e)) from None
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        seeds = list(range(int(seeds)))
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds is empty")
    bad = [s for s in seeds if not 0 <= s < 2**63]
    if bad:
        raise ValueError(f"seeds must lie in [0, 2**63); got {bad[0]}")
    if target is not None and (
        isinstance(target, bool)
        or not isinstance(target, (int, float, np.integer, np.floating))
        or not np.isfinite(target)
    ):  # (below 0 is a loss threshold where f* is unknown; with f* known it is never met)
        raise ValueError(f"Invalid target: {target!r}; it must be a finite number")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    plist = [problems] if isinstance(problems, (Problem, str)) else list(problems)
    if not plist:
        raise ValueError("no problems to run")
    plist = [resolve_problem(p) for p in plist]
    for p in plist:
        _eval_every(p, int(steps), eval_every)  # refuses a bad eval_every up front
        if start is not None:
            p.check_start(start)
        x0 = np.asarray(p.x0 if start is None else start, dtype=float)
        for c in configs:  # a hyperparameter given as an array must fit the problem's shape
            if any(isinstance(v, (list, tuple, np.ndarray)) for v in c.values()):
                try:
                    build(cls, c, nonfinite="propagate").init(x0)
                except ValueError as e:
                    raise ValueError(f"configuration {c}: {e}") from None
    run_settings: dict[str, Any] = {
        "steps": int(steps),
        "target": target,
        "start": None if start is None else np.asarray(start, float).tolist(),
    }
    if eval_every is not None:
        run_settings["eval_every"] = int(eval_every)
    unique = list(dict.fromkeys(seeds))
    texts = _config_ids(configs, names)
    keys = []
    for p in plist:
        prefix = _prefix(problem_id(p), cls.name, run_settings)
        keys.append(
            {(cid, s): _key(prefix, text, s) for cid, text in enumerate(texts) for s in unique}
        )
    return Plan(
        cls=cls, label=label or cls.name, configs=configs, names=names, groups=groups,
        group_opts=group_opts, problems=plist, seeds=seeds, unique_seeds=unique,
        steps=int(steps), target=target, start=start, eval_every=eval_every, curve=curve,
        run_settings=run_settings, keys=keys,
    )  # fmt: skip
