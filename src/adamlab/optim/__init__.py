"""The update rules: one module per family, each written once, like its paper."""

from . import schedules
from .adagrad import Adagrad, AdagradState
from .adam import Adam, AdamState, AdamW
from .adamax import Adamax, AdamaxState
from .base import NonFiniteGradientError, Optimizer, tree_flatten, tree_map, tree_unflatten
from .nadam import NAdam, NAdamState
from .radam import RAdam, RAdamState
from .rmsprop import RMSprop, RMSpropState
from .sgd import SGD, SGDState

#: every optimizer by its command-line name ("adam", "sgd", ...), in order of complexity
OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.name: cls for cls in (SGD, RMSprop, Adagrad, Adam, AdamW, Adamax, NAdam, RAdam)
}

__all__ = [
    "OPTIMIZERS",
    "SGD",
    "Adagrad",
    "AdagradState",
    "Adam",
    "AdamState",
    "AdamW",
    "Adamax",
    "AdamaxState",
    "NAdam",
    "NAdamState",
    "NonFiniteGradientError",
    "Optimizer",
    "RAdam",
    "RAdamState",
    "RMSprop",
    "RMSpropState",
    "SGDState",
    "schedules",
    "tree_flatten",
    "tree_map",
    "tree_unflatten",
]
