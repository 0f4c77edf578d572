"""``torch.optim`` drop-ins whose math is adamlab's core: change one import.

    from adamlab.torch import Adam      # was: from torch.optim import Adam

Same signatures, defaults and ``state_dict`` layout as ``torch.optim`` (checkpoints load both
ways), plus adamlab's switches (``bias_correction``, ``eps_placement``, ...). Adam and AdamW
step contiguous CPU parameters with a fused numba kernel when numba is installed.
"""

from ._shell import CoreOptimizer
from .optimizers import SGD, Adagrad, Adam, Adamax, AdamW, NAdam, RAdam, RMSprop

__all__ = [
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "CoreOptimizer",
    "NAdam",
    "RAdam",
    "RMSprop",
]
