"""Fair tuning: several optimizers under one declared, equal budget, winners rerun on fresh seeds."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...optim import Optimizer
from ...problems import Problem
from .plan import problem_id, resolve_problem
from .space import Space, grid, sample, space_size

__all__ = ["tune"]


def tune(
    candidates: Mapping[str, tuple[str | type[Optimizer], Space]],
    problem: Problem | str,
    *,
    budget: int,
    steps: int,
    method: str = "halton",
    sample_seed: int = 0,
    tune_seeds: Sequence[int] = (0,),
    eval_seeds: Sequence[int] = (100, 101, 102),
    metric: str | None = None,
    target: float | None = None,
    fixed: Mapping[str, Mapping[str, Any]] | None = None,
    out: str | os.PathLike | None = None,
    engine: str = "auto",
    workers: int = 2,
    progress: bool | None = None,
):
    """Tune several optimizers under one declared, equal budget, then rerun the winners.

    Every candidate ``name -> (optimizer, space)`` gets ``budget`` configurations drawn by the
    same ``method`` and ``sample_seed`` from its space (spaces must have the same number of
    dimensions; with ``method="grid"`` the same number of grid points), the same ``steps``
    and ``tune_seeds``. The winner is the configuration with the lowest mean ``metric`` over
    the tuning seeds — by default ``test_loss`` where the problem has a held-out split,
    else ``final_loss`` (the exact loss, not the noisy samples the optimizer saw); or e.g.
    ``"steps_to_target"`` with a ``target``. Diverged runs (and NaN: a target never reached)
    count as +inf; ties are broken by the (held-out) loss. Each winner is rerun on ``eval_seeds`` (fresh seeds, never used for
    selection). Returns ``(summary, runs)``: one summary row per optimizer (best config,
    tuning score, evaluation mean/std/min/max) and every run's row, with ``phase`` "tune"
    (the search) or "eval" (the winner on the fresh seeds); the fairness terms are
    in ``summary.attrs``.
    """
    import pandas as pd

    p = resolve_problem(problem)
    dims = {}
    for name, (_, space) in candidates.items():
        d, size = space_size(space)
        dims[name] = (d, size)
    if len({d for d, _ in dims.values()}) > 1:
        raise ValueError(
            "unfair tuning: search spaces differ in dimension "
            + ", ".join(f"{k}: {d}" for k, (d, _) in dims.items())
        )
    if method == "grid" and len({s for _, s in dims.values()}) > 1:
        raise ValueError(
            "unfair tuning: grids differ in size "
            + ", ".join(f"{k}: {s}" for k, (_, s) in dims.items())
        )
    trials, rows = [], []
    for name, (opt, space) in candidates.items():
        configs = (
            grid(**space)
            if method == "grid"
            else sample(space, budget, method=method, seed=sample_seed)
        )
        if method == "grid" and len(configs) != budget:
            raise ValueError(f"{name}: the grid has {len(configs)} points but budget is {budget}")
        sub = None if out is None else Path(out) / name
        from . import sweep

        df = sweep(
            opt,
            configs,
            p,
            steps=steps,
            target=target,
            seeds=list(tune_seeds),
            fixed=(fixed or {}).get(name),
            out=sub,
            engine=engine,
            workers=workers,
            progress=progress,
            label=name,
        )
        col = metric or ("test_loss" if "test_loss" in df else "final_loss")
        score = df[col].where(~df["diverged"] & np.isfinite(df[col]), np.inf)
        mean = score.groupby(df["config_id"]).mean()
        # ties (e.g. no configuration reached the target) are broken by the loss
        loss_col = "test_loss" if "test_loss" in df else "final_loss"
        loss = df[loss_col].where(~df["diverged"] & np.isfinite(df[loss_col]), np.inf)
        tie = loss.groupby(df["config_id"]).mean()
        best = int(min(mean.index, key=lambda c: (mean[c], tie[c])))
        best_cfg = {k: df.loc[df.config_id == best, k].iloc[0] for k in configs[0]}
        ev = sweep(
            opt,
            [best_cfg],
            p,
            steps=steps,
            target=target,
            seeds=list(eval_seeds),
            fixed=(fixed or {}).get(name),
            out=None if sub is None else sub / "eval",
            engine=engine,
            workers=workers,
            progress=progress,
            label=name,
        )
        trials.append(df.assign(phase="tune"))
        trials.append(ev.assign(phase="eval"))
        rows.append({
            "optimizer": name, "metric": col, "best_config": best_cfg,
            "tune_score": float(mean.loc[best]),
            "eval_mean": float(ev[col].mean()), "eval_std": float(ev[col].std(ddof=0)),
            "eval_min": float(ev[col].min()), "eval_max": float(ev[col].max()),
            "eval_diverged": int(ev["diverged"].sum()),
        })  # fmt: skip
    summary = pd.DataFrame(rows)
    summary.attrs.update(
        budget=budget, method=method, sample_seed=sample_seed, steps=steps,
        tune_seeds=list(tune_seeds), eval_seeds=list(eval_seeds),
        space_dims={k: d for k, (d, _) in dims.items()}, problem=problem_id(p),
    )  # fmt: skip
    return summary, pd.concat(trials, ignore_index=True)
