"""Paper reproductions in miniature: each writes its figure, a text summary and the numbers.

    adamlab reproduce NAME [--out DIR] [--quick]

========================  ==================================================================
``seed``                  SGD vs Adam (α = 0.1) on (x − 2)² from 8, and over learning rates
                          when Adam wins and why (its step is ≈ α whatever the gradient)
``first-steps``           Adam's first steps with and without bias correction: the ≈ 3.16α
                          first step, on (x − 2)² and on a badly scaled quadratic
``amsgrad``               Reddi, Kale & Kumar (2018) Theorem 1 and §5: Adam ends at +1,
                          AMSGrad at the optimum −1; average regret Rₜ/t
``bias-correction``       Kingma & Ba (2015) §6.4 in miniature: final loss vs log10 α of a
                          digits MLP for β₁ ∈ {0, 0.9}, β₂ ∈ {0.99, 0.999, 0.9999}, with and
                          without bias correction, over seeds
========================  ==================================================================

``run(name, out, quick=False)`` returns a :class:`Reproduction` (paths, summary, numbers).
"""

from __future__ import annotations

from ._common import Reproduction, run
from .registry import REPRODUCTIONS

__all__ = ["REPRODUCTIONS", "Reproduction", "run"]
