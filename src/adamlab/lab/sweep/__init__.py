"""Hyperparameter sweeps: thousands of configurations at once, resumable, and fair tuning.

A sweep runs one optimizer over a set of hyperparameter *configurations* × seeds × problems
and returns a tidy table, one row per (problem, configuration, seed)::

    from adamlab.lab.sweep import LogUniform, grid, sample, sweep

    configs = grid(lr=[1e-3, 1e-2, 1e-1], beta2=[0.99, 0.999, 0.9999])
    table = sweep("adam", configs, "rosenbrock", steps=1000, seeds=[0])

    configs = sample({"lr": LogUniform(1e-4, 1), "beta1": [0.0, 0.9]}, 64, method="halton")

The package, in the order a sweep uses it: :mod:`.space` (distributions, grids, samples),
:mod:`.plan` (validated configurations, groups, blocks and record keys), :mod:`.engines`
(``loop``, ``vectorized``, ``numba``, ``process``: one interface, one answer), :mod:`.store`
(the resumable directory), :mod:`.table` (the DataFrame and its summaries), :mod:`.tune`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ...optim import Optimizer
from ...problems import Problem
from .engines import ENGINES, NO_NUMBA, Engine, Numba, pick_engine, run_configs
from .plan import VECTOR_BUDGET, Plan, make_plan, problem_id, record_key, resolve_problem
from .space import (
    Dist,
    LogUniform,
    OneMinusLogUniform,
    Space,
    Uniform,
    grid,
    halton,
    sample,
    space_size,
)
from .store import RecordStore, SweepDirectory, SweepDirectoryError
from .table import NO_PYARROW, curve_summary, grid_summary, performance_profile, save_table
from .table import from_kernel as _from_kernel
from .table import from_records as _from_records
from .tune import tune

__all__ = [
    "ENGINES",
    "NO_NUMBA",
    "NO_PYARROW",
    "VECTOR_BUDGET",
    "Dist",
    "Engine",
    "LogUniform",
    "OneMinusLogUniform",
    "Plan",
    "RecordStore",
    "Space",
    "SweepDirectory",
    "SweepDirectoryError",
    "Uniform",
    "curve_summary",
    "grid",
    "grid_summary",
    "halton",
    "make_plan",
    "performance_profile",
    "pick_engine",
    "record_key",
    "run_config",
    "sample",
    "space_size",
    "sweep",
    "tune",
]  # fmt: skip


def sweep(
    optimizer: str | type[Optimizer],
    configs: Sequence[Mapping[str, Any]] | Space,
    problems: Problem | str | Sequence[Problem | str],
    *,
    steps: int = 100,
    seeds: int | Sequence[int] = (0,),
    n: int | None = None,
    method: str = "grid",
    sample_seed: int = 0,
    fixed: Mapping[str, Any] | None = None,
    target: float | None = None,
    start: Any = None,
    out: str | os.PathLike | None = None,
    force: bool = False,
    engine: str = "auto",
    workers: int = 2,
    progress: bool | None = None,
    curve: bool = False,
    eval_every: int | None = None,
    label: str | None = None,
):
    """Run ``optimizer`` over configurations × seeds × problems; return a tidy DataFrame.

    Args:
        optimizer: a name from ``adamlab.optim.OPTIMIZERS`` ("adam", "sgd", …) or a class.
        configs: a list of dicts (from :func:`grid` / :func:`sample`), or a search space
            (a dict of value lists / distributions) expanded by ``method`` and ``n``.
        problems: a Problem, a name or ``"name:key=value"`` spec, or a list of them.
        steps: optimizer steps per run (the same budget for every configuration).
        seeds: seeds (or a count: ``3`` means 0, 1, 2); each selects the oracle's sample
            stream, so stochastic problems give paired runs across configurations.
        n, method, sample_seed: when ``configs`` is a space: ``method`` "grid" (every
            combination), "random", "halton" or "sobol" with ``n`` points.
        fixed: hyperparameters shared by every configuration (e.g. ``{"eps": 1e-8}``).
        target: tolerance on loss − f* for ``steps_to_target``.
        start: a start point instead of ``problem.x0``.
        out: a directory for ``records.jsonl`` (resumable), ``sweep.json`` (what sweep it
            is) and ``sweep.parquet``; a different sweep there is refused unless ``force``.
        force: replace what a different sweep wrote into ``out``.
        engine: "auto", "vectorized", "numba", "process" or "loop" (each configuration
            alone, in this process: the reference). The table is the same whatever the engine.
        workers: processes for the "process" engine.
        progress: show a tqdm bar (None: only on a terminal).
        curve: keep each run's loss at every evaluation (column ``curve``).
        eval_every: evaluate the exact loss (for ``best_loss``, ``steps_to_target``, the
            curve) every this many steps and at the last; default as every run of the lab
            (:func:`adamlab.lab.loop.eval_every`). Non-finite parameters are checked every step.
        label: the ``optimizer`` column's value (default: the optimizer's name).

    Returns:
        A pandas DataFrame, one row per (problem, configuration, seed) (see
        :mod:`adamlab.lab.sweep.table`). ``df.attrs`` holds ``computed`` (runs done now),
        ``resumed`` (loaded from ``out``), ``seconds``, the engine used per problem, a note
        per problem where an optional package would have changed how it ran, and the files
        written.
    """
    plan = make_plan(
        optimizer, configs, problems, steps=steps, seeds=seeds, n=n, method=method,
        sample_seed=sample_seed, fixed=fixed, target=target, start=start,
        eval_every=eval_every, curve=curve, label=label,
    )  # fmt: skip
    picked = {problem_id(p): pick_engine(engine, p, plan, workers=workers) for p in plan.problems}
    directory = SweepDirectory(out, plan, force=force) if out is not None else None
    t0 = time.perf_counter()
    n_rows = sum(len(k) for k in plan.keys)
    unique = len({k for keys in plan.keys for k in keys.values()}) == n_rows
    attrs = {
        "optimizer": plan.label, "steps": plan.steps, "seeds": plan.seeds,
        "target": plan.target, "n_configs": len(plan.configs),
        "engines": {pid: e.name for pid, (e, _) in picked.items()},
        "engine_notes": {pid: note for pid, (_, note) in picked.items() if note},
    }  # fmt: skip
    if (
        directory is None
        and unique
        and all(isinstance(e, Numba) for e, _ in picked.values())
        and not plan.curve
        and not any(p.stochastic for p in plan.problems)
    ):  # no store, all fused: the kernel's columns go straight into the table
        bar = _bar(n_rows, f"sweep {plan.label}", progress)
        try:
            table = _from_kernel(plan, Numba(), bar)
        finally:
            bar.close()
        table.attrs.update(computed=n_rows, resumed=0, seconds=time.perf_counter() - t0, **attrs)
        return table

    done: dict[str, dict] = dict(directory.store.records) if directory else {}
    resumed = sum(k in done for keys in plan.keys for k in set(keys.values()))
    computed = 0
    try:
        for i, p in enumerate(plan.problems):
            eng = picked[problem_id(p)][0]
            blocks = list(plan.blocks(i, done, size=eng.block_size(plan, p)))
            bar = _bar(sum(len(b.cids) for b in blocks), f"sweep {plan.label} on {problem_id(p)}", progress)  # fmt: skip
            try:
                for block, recs in eng.map(plan, blocks):
                    new = [
                        plan.record(block, cid, rec)
                        for cid, rec in zip(block.cids, recs, strict=True)
                    ]
                    for r in new:
                        done[r["key"]] = r
                    if directory:
                        directory.store.add(new)
                    computed += len(new)
                    bar.update(len(new))
            finally:
                bar.close()
    finally:
        if directory:
            directory.store.close()
    table = _from_records(plan, done)
    table.attrs.update(
        computed=computed, resumed=resumed, seconds=time.perf_counter() - t0, **attrs
    )
    if directory is not None:
        path, note = save_table(table, directory.dir)
        table.attrs["written"] = {str(path): note}
    return table


def run_config(
    optimizer: str | type[Optimizer],
    config: Mapping[str, Any],
    problem: Problem | str,
    *,
    steps: int,
    seed: int = 0,
    target: float | None = None,
    start: Any = None,
    curve: bool = False,
    eval_every: int | None = None,
) -> dict[str, Any]:
    """Run ONE configuration alone: float hyperparameters, parameters of shape (1, dim) (a
    batch of one, so the problem's array code paths are the ones a sweep takes).

    This is the reference a vectorised sweep reproduces bit for bit; the record's metrics.
    """
    from .plan import optimizer_class

    return run_configs(
        optimizer_class(optimizer), [dict(config)], resolve_problem(problem), steps=steps,
        seed=seed, target=target, start=start, curve=curve, eval_every=eval_every, alone=True,
    )[0]  # fmt: skip


def _bar(total: int, desc: str, progress: bool | None) -> Any:
    """A tqdm bar (shown on a terminal when ``progress`` is None)."""
    from tqdm.auto import tqdm

    return tqdm(
        total=total, desc=desc, unit="run", disable=None if progress is None else not progress
    )
