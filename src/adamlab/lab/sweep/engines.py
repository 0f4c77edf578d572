"""Engines: how the blocks of a plan are run. One small interface, four engines, one answer.

An engine's ``map(plan, blocks)`` yields ``(block, records)`` as blocks finish, one record
(a dict of metrics) per configuration of the block, in the block's order:

* ``loop``: each configuration alone (float hyperparameters, parameters of shape (1, dim)),
  in this process — the reference;
* ``vectorized``: the block in one NumPy pass ((K, 1) hyperparameters, (K, dim) parameters);
* ``numba``: the block in the fused kernel (:mod:`adamlab.kernels.sweep`), for plain Adam on a
  problem that names a compiled surface (``Problem.surface()``); the rare configuration whose
  βᵗ the kernel cannot round with certainty is rerun vectorised;
* ``process``: like ``loop``, in a pool of worker processes;
* ``dask``, ``ray``: blocks of the vectorised plan as tasks on a cluster
  (:mod:`adamlab.lab.sweep.distributed`).

All of them step through the one run loop (:func:`adamlab.lab.loop.run_loop`) or, for the
kernel, the same operations in the same order: the table does not depend on the engine
(tested bit for bit on the README's sweeps). A distributed engine implements ``map``
(and ``start``, ``split``, ``close``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ...optim import Optimizer
from ...problems import Problem
from ..loop import MetricTracker, diverged, exact_loss, run_loop
from .plan import Block, Plan, alone_optimizer, group_optimizer

__all__ = ["ENGINES", "Engine", "pick_engine", "run_configs"]

#: what a sweep prints when an optional package would change how (never what) it ran
NO_NUMBA = "numba not installed: pip install 'adamlab[fast]' runs it fused, with the same results"


def run_configs(
    cls: type[Optimizer],
    configs: Sequence[Mapping[str, Any]],
    problem: Problem,
    *,
    steps: int,
    seed: int,
    target: float | None,
    start: Any = None,
    eval_every: int | None = None,
    curve: bool = False,
    alone: bool = False,
    opt: Optimizer | None = None,
) -> list[dict[str, Any]]:
    """Run configurations sharing their static flags through the one loop: together ((K, 1)
    hyperparameters, one pass) or ``alone`` (each with float hyperparameters, shape (1, dim):
    a batch of one, so the problem's array code paths are the ones a sweep takes)."""
    x0 = problem.check_start(problem.x0 if start is None else start)
    if x0.ndim != 1:
        raise ValueError(f"start must be one point of shape ({problem.dim},)")
    groups = [[c] for c in configs] if alone else [list(configs)]
    out = []
    for group in groups:
        if alone:
            o = alone_optimizer(cls, group[0])
        else:
            o = opt if opt is not None else group_optimizer(cls, group)
        tracker = MetricTracker(problem.f_star, target, curve=curve)
        x = np.repeat(x0[None, :], len(group), axis=0)
        outcome = run_loop(
            problem, o, x, steps=steps, seed=seed, every=eval_every, observers=[tracker]
        )
        out += tracker.records(outcome, problem.f_star)
    return out


class Engine:
    """Runs blocks of a plan; ``map`` yields (block, records) as blocks finish."""

    name = ""

    def block_size(self, plan: Plan, problem: Problem) -> int | None:
        """How many configurations a block holds (None: the vectorised budget)."""
        return None

    def run(self, plan: Plan, block: Block) -> list[dict[str, Any]]:
        raise NotImplementedError

    def map(self, plan: Plan, blocks: Iterable[Block]) -> Iterator[tuple[Block, list[dict]]]:
        for block in blocks:
            yield block, self.run(plan, block)

    def split(self, plan: Plan, blocks: list[Block]) -> list[Block]:
        """The pending blocks as this engine will run them (a distributed engine cuts them
        to keep its workers busy); called only when there is work to do."""
        return blocks

    def start(self) -> None:
        """Connect to what the engine runs on where that can fail (a cluster's address):
        called before the sweep writes anything."""

    def close(self) -> None:
        """Release what the engine started (a local cluster, a connection)."""

    def _args(self, plan: Plan, block: Block) -> dict[str, Any]:
        return {
            "steps": plan.steps, "seed": block.seed, "target": plan.target,
            "start": plan.start, "eval_every": plan.eval_every, "curve": plan.curve,
        }  # fmt: skip


class Loop(Engine):
    name = "loop"

    def run(self, plan: Plan, block: Block) -> list[dict[str, Any]]:
        configs = [plan.configs[c] for c in block.cids]
        return run_configs(plan.cls, configs, block.problem, alone=True, **self._args(plan, block))


class Vectorized(Engine):
    name = "vectorized"

    def run(self, plan: Plan, block: Block) -> list[dict[str, Any]]:
        configs = [plan.configs[c] for c in block.cids]
        return run_configs(
            plan.cls, configs, block.problem, opt=plan.optimizer_for(block),
            **self._args(plan, block),
        )  # fmt: skip


class Numba(Engine):
    name = "numba"

    def block_size(self, plan: Plan, problem: Problem) -> int | None:
        return max(len(c) for c in plan.groups.values())  # a whole group per kernel call

    def run(self, plan: Plan, block: Block) -> list[dict[str, Any]]:
        cols = self.columns(plan, block)
        names = ("final_loss", "best_loss", "gap", "steps_to_target", "diverged_at", "diverged")
        values = zip(*(cols[k].tolist() for k in names), strict=True)
        out = []
        for vals, f0, xk in zip(values, cols["loss0"].tolist(), cols["final_x"].tolist(), strict=True):  # fmt: skip
            rec = dict(zip(names, vals, strict=True))
            rec["loss0"] = f0
            rec["final_x"] = xk
            out.append(rec)
        return out

    def columns(self, plan: Plan, block: Block) -> dict[str, np.ndarray]:
        """The block's metrics as columns (what the table takes without per-run dicts); the
        kernel's raw arrays, given their meaning here, as :class:`MetricTracker` gives it."""
        from ...kernels import sweep as ks

        problem = block.problem
        opt = plan.optimizer_for(block)
        surface, params = problem.surface()  # type: ignore[misc]
        x0 = problem.check_start(problem.x0 if plan.start is None else plan.start)
        f_star = problem.f_star
        lr, b1, b2, eps = ks.hyperparameters(opt)
        res = ks.adam_surface(
            surface, params, lr, b1, b2, eps, steps=plan.steps, x0=x0,
            bias_correction=opt.bias_correction, ref=0.0 if f_star is None else f_star,
            tol=plan.target,
        )  # fmt: skip
        K = len(lr)
        f0 = np.full(K, float(exact_loss(problem, x0[None, :])[0]))
        final = res["f"]
        cols = {
            "final_loss": final, "best_loss": res["best"],
            "gap": final - f_star if f_star is not None else np.full(K, math.nan),
            "steps_to_target": res["first_within"], "diverged_at": res["first_nonfinite"],
            "diverged": diverged(final, f0, res["first_nonfinite"]), "loss0": f0,
            "final_x": res["x"],
        }  # fmt: skip
        redo = np.flatnonzero(~res["exact"])
        if redo.size:  # the rare unsure βᵗ: those configurations on the reference path
            configs = [plan.configs[block.cids[i]] for i in redo]
            args = self._args(plan, block)
            for i, rec in zip(redo, run_configs(plan.cls, configs, problem, **args), strict=True):
                for k, col in cols.items():
                    col[i] = rec[k]
        return cols

    @staticmethod
    def fits(opt: Optimizer, problem: Problem, *, installed: bool = True) -> bool:
        """Plain Adam on a problem with a compiled surface (``installed=False``: would it,
        were numba installed). Decided without importing numba when it does not apply."""
        from ...optim import Adam

        if type(opt) is not Adam or problem.surface() is None:
            return False
        from ...kernels import sweep as ks

        return ks.supports(opt) and (ks.available() or not installed)


class Process(Engine):
    """Each block of one configuration in a pool of worker processes (spawned)."""

    name = "process"

    def __init__(self, workers: int = 2) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a whole number >= 1, got {workers!r}")
        self.workers = workers

    def block_size(self, plan: Plan, problem: Problem) -> int | None:
        return 1

    def run(self, plan: Plan, block: Block) -> list[dict[str, Any]]:
        return Loop().run(plan, block)

    def map(self, plan: Plan, blocks: Iterable[Block]) -> Iterator[tuple[Block, list[dict]]]:
        blocks = list(blocks)
        if self.workers <= 1:
            yield from super().map(plan, blocks)
            return
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn")) as pool:
            futures = {
                pool.submit(
                    run_configs, plan.cls, [plan.configs[c] for c in b.cids], b.problem,
                    alone=True, **self._args(plan, b),
                ): b
                for b in blocks
            }  # fmt: skip
            for fut in as_completed(futures):
                yield futures[fut], fut.result()


ENGINES = ("auto", "vectorized", "numba", "process", "loop", "dask", "ray")


def pick_engine(
    engine: str,
    problem: Problem,
    plan: Plan,
    *,
    workers: int = 2,
    address: Any = None,
    block_size: int | None = None,
) -> tuple[Engine, str | None]:
    """The engine for ``problem`` ("auto" resolved), and a note when an optional package
    would have run it differently; ``ValueError`` if "numba" cannot run every group.

    "dask" and "ray" take the cluster's ``address`` (None: a local one of ``workers``
    processes), checked here: a missing package is an ``ImportError`` that says what to
    install, an address that does not answer a ``ConnectionError`` naming it."""
    if engine not in ENGINES:
        raise ValueError(f"Invalid engine: {engine!r}; choose {', '.join(map(repr, ENGINES))}")
    if block_size is not None and (
        isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1
    ):
        raise ValueError(f"block_size must be a whole number >= 1 or None, got {block_size!r}")
    if engine in ("dask", "ray"):
        from .distributed import Dask, Ray  # deferred: distributed.py builds on this module

        cls = Dask if engine == "dask" else Ray
        return cls(address=address, workers=workers, size=block_size), None
    if address is not None:
        raise ValueError(f"address is for engine='dask' or engine='ray', not engine={engine!r}")
    opts = plan.group_opts.values()
    if engine == "numba":
        for o in opts:
            if not Numba.fits(o, problem):
                raise ValueError(
                    f"engine='numba' has a fused kernel for plain Adam on a problem with a "
                    f"compiled 2-D surface (Rosenbrock), not {type(o).__name__} on "
                    f"{problem.name!r}; use engine='vectorized'"
                )
        return Numba(), None
    if engine == "auto":
        if not problem.vectorizable:
            return Process(workers), None
        if all(Numba.fits(o, problem) for o in opts):
            return Numba(), None
        note = NO_NUMBA if all(Numba.fits(o, problem, installed=False) for o in opts) else None
        return Vectorized(), note
    return {"vectorized": Vectorized(), "loop": Loop(), "process": Process(workers)}[engine], None
