"""adamlab: the Adam optimizer and its family — exact, fast, and visible."""

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
    "__version__",
    "schedules",
]
