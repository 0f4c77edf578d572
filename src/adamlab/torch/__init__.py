"""``torch.optim`` drop-ins whose math is adamlab's core: change one import.

    from adamlab.torch import Adam      # was: from torch.optim import Adam

Same signatures, defaults and ``state_dict`` layout as ``torch.optim`` (checkpoints load both
ways), plus adamlab's switches (``bias_correction``, ``eps_placement``, ...). Adam and AdamW
step contiguous CPU parameters with a fused numba kernel when numba is installed.
``Adam8bit``/``AdamW8bit``/``AdamBF16``/``AdamWBF16`` keep m and v in 8 bits or bfloat16
(:mod:`adamlab.torch.lowmem`), and ``clip_grad_norm_`` hands its scale to the next fused step
of these and of Adam/AdamW (:mod:`adamlab.torch.clip`).
"""

from ._shell import CoreOptimizer
from .clip import clip_grad_norm_
from .lowmem import Adam8bit, AdamBF16, AdamW8bit, AdamWBF16, LowPrecisionAdam
from .optimizers import SGD, Adagrad, Adam, Adamax, AdamW, NAdam, RAdam, RMSprop

__all__ = [
    "SGD",
    "Adagrad",
    "Adam",
    "Adam8bit",
    "AdamBF16",
    "AdamW",
    "AdamW8bit",
    "AdamWBF16",
    "Adamax",
    "CoreOptimizer",
    "LowPrecisionAdam",
    "NAdam",
    "RAdam",
    "RMSprop",
    "clip_grad_norm_",
]
