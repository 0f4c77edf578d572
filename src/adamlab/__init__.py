"""adamlab: the Adam optimizer and its family — exact, fast, and visible.

The update rules (``adamlab.Adam``, ``adamlab.SGD``, …) load with the package. The lab
(``adamlab.compare``, ``adamlab.sweep``), the problems (``adamlab.problems``) and the plots
(``adamlab.plot``) load on first use, so ``import adamlab`` stays cheap.
"""

import importlib as _importlib
from typing import Any as _Any

from .optim import (
    OPTIMIZERS,
    SGD,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    NAdam,
    NonFiniteGradientError,
    Optimizer,
    RAdam,
    RMSprop,
    schedules,
)

__version__ = "0.1.0"

_LAZY = {
    "compare": ("adamlab.lab", "compare"),
    "Result": ("adamlab.lab", "Result"),
    "sweep": ("adamlab.lab.sweep", "sweep"),
    "tune": ("adamlab.lab.sweep", "tune"),
    "grid": ("adamlab.lab.sweep", "grid"),
    "sample": ("adamlab.lab.sweep", "sample"),
    "reproduce": ("adamlab.reproduce", None),
    "lab": ("adamlab.lab", None),
    "problems": ("adamlab.problems", None),
    "plot": ("adamlab.plot", None),
}


def __getattr__(name: str) -> _Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        mod = _importlib.import_module(module)
        value = getattr(mod, attr) if attr else mod
        globals()[name] = value
        return value
    raise AttributeError(f"module 'adamlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    """What ``dir(adamlab)`` lists: the public names, loaded or not."""
    return sorted(__all__)


__all__ = [
    "OPTIMIZERS",
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "NAdam",
    "NonFiniteGradientError",
    "Optimizer",
    "RAdam",
    "RMSprop",
    "Result",
    "__version__",
    "compare",
    "grid",
    "lab",
    "plot",
    "problems",
    "reproduce",
    "sample",
    "schedules",
    "sweep",
    "tune",
]
