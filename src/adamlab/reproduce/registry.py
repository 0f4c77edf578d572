"""Reproductions by name (imported lazily: each pulls in what it needs when it runs)."""

from __future__ import annotations

import importlib
from typing import Any


def _lazy(module: str) -> Any:
    def call(out: Any, *, quick: bool = False) -> Any:
        return importlib.import_module(f"adamlab.reproduce.{module}").reproduce(out, quick=quick)

    call.__name__ = module
    return call


def _lazy_data(attr: str) -> Any:
    """A reproduction of :mod:`.kingma_ba` that reads a data set: ``data=`` a folder of
    MNIST-format files, ``"digits"``, or None (Fashion-MNIST; digits when ``quick``)."""

    def call(out: Any, *, quick: bool = False, data: Any = None, **kw: Any) -> Any:
        module = importlib.import_module("adamlab.reproduce.kingma_ba")
        return getattr(module, attr)(out, quick=quick, data=data, **kw)

    call.__name__ = attr
    return call


#: name -> callable(out_dir: Path, *, quick: bool) -> Reproduction
REPRODUCTIONS = {
    "seed": _lazy("seed"),
    "first-steps": _lazy("first_steps"),
    "amsgrad": _lazy("amsgrad"),
    "bias-correction": _lazy("bias_correction"),
    "low-memory": _lazy("low_memory"),
    "kingma-ba-logreg": _lazy_data("reproduce_logreg"),
    "kingma-ba-mlp": _lazy_data("reproduce_mlp"),
}

#: the reproductions that read a data set (they also take ``data=``; ``--data DIR``)
DATA_REPRODUCTIONS = ("kingma-ba-logreg", "kingma-ba-mlp")

#: one line each, for ``adamlab reproduce --list`` and the help text
DESCRIPTIONS = {
    "seed": "SGD vs Adam on (x-2)^2; when Adam wins over learning rates, and why",
    "first-steps": "Adam's first steps with/without bias correction (the 3.16*lr step)",
    "amsgrad": "Reddi et al. 2018: Adam ends at +1, AMSGrad at -1 (Theorem 1 and section 5)",
    "bias-correction": "Kingma & Ba 6.4: loss vs log10 lr with/without correction, digits MLP",
    "low-memory": "Dettmers et al. 2022: Adam with 8-bit / bf16 state vs fp32: loss and the "
    "quantization error of m_hat, v_hat",
    "kingma-ba-logreg": "Kingma & Ba 6.1: logistic regression, Adam vs AdaGrad, SGD-Nesterov "
    "(Fashion-MNIST)",
    "kingma-ba-mlp": "Kingma & Ba 6.2: 2x1000 ReLU net, with/without dropout, 5 optimizers "
    "(Fashion-MNIST)",
}
