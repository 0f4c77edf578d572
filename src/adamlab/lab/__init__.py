"""The lab: run optimizers side by side on a problem and record everything they did.

    >>> from adamlab.lab import compare
    >>> result = compare("quadratic", ["sgd:lr=0.1", "adam:lr=0.1"], steps=50)
    >>> print(result.table())  # doctest: +SKIP

``compare`` returns a :class:`Result` (one :class:`Trajectory` per optimizer and seed) that
prints a table, computes metrics, exports to pandas / CSV / Parquet / JSON and loads back;
:mod:`adamlab.plot` draws it. Every run, alone or in a sweep (:mod:`adamlab.lab.sweep`), goes
through the one run loop of :mod:`adamlab.lab.loop`; every text spec through
:mod:`adamlab.lab.specs`.
"""

from .loop import Observer, Outcome, diverged, eval_every, run_loop
from .metrics import Metrics, auc_log_suboptimality, compute_metrics, steps_to_tolerance
from .result import Progress, Result
from .runner import SEED_OPTIMIZERS, compare, get_problem, loss_surface, run
from .specs import (
    label_for,
    optimizer_from_spec,
    parse_optimizer_spec,
    parse_problem_spec,
    parse_value,
    problem_from_spec,
)
from .sweep import (  # the package stays importable as adamlab.lab.sweep
    LogUniform,
    OneMinusLogUniform,
    Uniform,
    grid,
    run_config,
    sample,
    sweep,
    tune,
)
from .trajectory import Surface, Trajectory

__all__ = [
    "SEED_OPTIMIZERS", "LogUniform", "Metrics", "Observer", "OneMinusLogUniform", "Outcome", "Progress",
    "Result", "Surface", "Trajectory", "Uniform", "auc_log_suboptimality", "compare",
    "compute_metrics", "diverged", "eval_every", "get_problem", "grid", "label_for",
    "loss_surface", "optimizer_from_spec", "parse_optimizer_spec", "parse_problem_spec",
    "parse_value", "problem_from_spec", "run", "run_config", "run_loop", "sample",
    "steps_to_tolerance", "sweep", "tune",
]  # fmt: skip
