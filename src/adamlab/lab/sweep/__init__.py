"""Hyperparameter sweeps: thousands of configurations at once, resumable, and fair tuning.

A sweep runs one optimizer over a set of hyperparameter *configurations* × seeds × problems
and returns a tidy table, one row per (problem, configuration, seed)::

    from adamlab.lab.sweep import LogUniform, grid, sample, sweep

    configs = grid(lr=[1e-3, 1e-2, 1e-1], beta2=[0.99, 0.999, 0.9999])
    table = sweep("adam", configs, "rosenbrock", steps=1000, seeds=[0])

    configs = sample({"lr": LogUniform(1e-4, 1), "beta1": [0.0, 0.9]}, 64, method="halton")

The package, in the order a sweep uses it: :mod:`.space` (distributions, grids, samples),
:mod:`.plan` (validated configurations, groups, blocks and record keys), :mod:`.engines`
(``loop``, ``vectorized``, ``numba``, ``process``: one interface, one answer),
:mod:`.distributed` (``dask``, ``ray``: the same blocks on a cluster), :mod:`.store`
(the resumable directory), :mod:`.table` (the DataFrame and its summaries), :mod:`.tune`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ...optim import Optimizer
from ...problems import Problem
from .distributed import BlockFailure, BlocksFailedError, describe_block
from .engines import ENGINES, NO_NUMBA, Engine, Numba, pick_engine, run_configs
from .plan import VECTOR_BUDGET, Block, Plan, make_plan, problem_id, record_key, resolve_problem
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
    "BlocksFailedError",
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
    address: Any = None,
    block_size: int | None = None,
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
        engine: "auto", "vectorized", "numba", "process", "loop" (each configuration
            alone, in this process: the reference), "dask" or "ray" (blocks on a cluster,
            :mod:`.distributed`). The table is the same whatever the engine.
        workers: processes for the "process" engine, and of the local cluster that "dask"
            and "ray" start when no ``address`` is given.
        address: where the cluster of "dask" or "ray" is: None (a local one), for Dask
            ``"tcp://host:8786"``, a ``distributed.Client`` or a cluster object (e.g.
            ``dask_jobqueue.SLURMCluster``), for Ray ``"auto"``, ``"ray://host:10001"`` or
            ``"host:6379"``. Checked before anything is written.
        block_size: configurations per block (default: the vectorised budget; "dask" and
            "ray" cut it to about four blocks per worker, none under 16,384 parameters).
            The table does not depend on it.
        progress: show a tqdm bar: runs and blocks done, failed blocks, ETA (None: only
            on a terminal). A failed block is one line on stderr, bar or not.
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

    Raises:
        BlocksFailedError: blocks failed on "dask" or "ray" (one line each on stderr while
            the others ran on); the finished runs are in ``out``: a rerun computes the rest.
    """
    plan = make_plan(
        optimizer, configs, problems, steps=steps, seeds=seeds, n=n, method=method,
        sample_seed=sample_seed, fixed=fixed, target=target, start=start,
        eval_every=eval_every, curve=curve, label=label,
    )  # fmt: skip
    picked: dict[str, tuple[Engine, str | None]] = {}
    for p in plan.problems:
        eng, note = pick_engine(
            engine, p, plan, workers=workers, address=address, block_size=block_size
        )
        eng = next((e for e, _ in picked.values() if e == eng), eng)  # one cluster for all
        picked[problem_id(p)] = (eng, note)
    engines = list({id(e): e for e, _ in picked.values()}.values())
    try:
        for eng in engines:  # connect to a cluster's address before anything is written
            eng.start()
        directory = SweepDirectory(out, plan, force=force) if out is not None else None
        return _run(plan, picked, directory, block_size=block_size, progress=progress)
    finally:
        for eng in engines:
            eng.close()


def _run(
    plan: Plan,
    picked: dict[str, tuple[Engine, str | None]],
    directory: SweepDirectory | None,
    *,
    block_size: int | None,
    progress: bool | None,
):
    """Run a plan's pending blocks on the picked engines, storing records as blocks finish;
    the table."""
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
    runs: list[tuple[Engine, list[Block]]] = []  # consecutive problems on one engine: one map
    for i, p in enumerate(plan.problems):
        eng = picked[problem_id(p)][0]
        blocks = list(plan.blocks(i, done, size=block_size or eng.block_size(plan, p)))
        if runs and runs[-1][0] is eng:
            runs[-1][1].extend(blocks)
        else:
            runs.append((eng, blocks))
    where = problem_id(plan.problems[0]) if len(plan.problems) == 1 else f"{len(plan.problems)} problems"  # fmt: skip
    bar = _bar(sum(len(b.cids) for _, bs in runs for b in bs), f"sweep {plan.label} on {where}", progress)  # fmt: skip
    failures: list[str] = []
    failed_runs = 0
    try:
        # one bar for the whole sweep: runs (and their ETA), blocks done, blocks failed
        runs = [(eng, eng.split(plan, blocks) if blocks else blocks) for eng, blocks in runs]
        n_blocks, n_done = sum(len(bs) for _, bs in runs), 0
        bar.set_postfix_str(f"0/{n_blocks} blocks", refresh=False)
        for eng, blocks in runs:
            for block, recs in eng.map(plan, blocks):
                n_done += 1
                if isinstance(recs, BlockFailure):
                    failures.append(f"block failed ({describe_block(block)}): {recs.reason}")
                    failed_runs += len(block.cids)
                    tqdm_write(failures[-1])
                    bar.total -= len(block.cids)
                    new = []
                else:
                    new = [
                        plan.record(block, cid, rec)
                        for cid, rec in zip(block.cids, recs, strict=True)
                    ]
                    for r in new:
                        done[r["key"]] = r
                    if directory:
                        directory.store.add(new)
                    computed += len(new)
                failed = f", {len(failures)} failed" if failures else ""
                bar.set_postfix_str(f"{n_done}/{n_blocks} blocks{failed}", refresh=False)
                bar.update(len(new))
    finally:
        bar.close()
        if directory:
            directory.store.close()
    if failures:
        kept = (
            f"the {computed} finished runs are saved in {str(directory.dir)!r}: a rerun "
            "computes only what is missing"
            if directory
            else f"the {computed} finished runs are lost (give out=, --out, to keep them)"
        )
        raise BlocksFailedError(
            f"{len(failures)} of {n_blocks} blocks failed ({failed_runs} runs), the first "
            f"{failures[0].removeprefix('block failed ')}; {kept}",
            failures,
        )
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


def tqdm_write(line: str) -> None:
    """A line on stderr that does not break a progress bar (shown even without one)."""
    from tqdm.auto import tqdm

    tqdm.write(line, file=sys.stderr)


def _bar(total: int, desc: str, progress: bool | None) -> Any:
    """A tqdm bar (shown on a terminal when ``progress`` is None)."""
    from tqdm.auto import tqdm

    return tqdm(
        total=total, desc=desc, unit="run", disable=None if progress is None else not progress
    )
