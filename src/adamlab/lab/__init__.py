"""The lab: run optimizers side by side on a problem and record everything they did.

    >>> from adamlab.lab import compare
    >>> result = compare("quadratic", ["sgd:lr=0.1", "adam:lr=0.1"], steps=50)
    >>> print(result.table())  # doctest: +SKIP

``compare`` returns a :class:`Result` (one :class:`Trajectory` per optimizer and seed) that
prints a table, computes metrics, exports to pandas / CSV / Parquet / JSON and loads back;
:mod:`adamlab.plot` draws it.
"""

from .metrics import Metrics, auc_log_suboptimality, compute_metrics, steps_to_tolerance
from .result import Progress, Result, Surface, Trajectory
from .runner import compare, get_problem, loss_surface, run
from .specs import label_for, optimizer_from_spec, parse_spec, parse_value
from .sweep import (  # the module stays importable as adamlab.lab.sweep
    LogUniform,
    OneMinusLogUniform,
    Uniform,
    grid,
    run_config,
    sample,
    tune,
)

__all__ = [
    "LogUniform",
    "Metrics",
    "OneMinusLogUniform",
    "Progress",
    "Result",
    "Surface",
    "Trajectory",
    "Uniform",
    "auc_log_suboptimality",
    "compare",
    "compute_metrics",
    "get_problem",
    "grid",
    "label_for",
    "loss_surface",
    "optimizer_from_spec",
    "parse_spec",
    "parse_value",
    "run",
    "run_config",
    "sample",
    "steps_to_tolerance",
    "tune",
]
