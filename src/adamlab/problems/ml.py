"""Small real tasks on data that ships inside scikit-learn (no downloads).

* ``logreg-cancer``: logistic regression on the Wisconsin breast-cancer data (569 × 30,
  binary), D = 31 parameters;
* ``softmax-digits``: softmax (multinomial logistic) regression on the 8 × 8 digits
  (1797 × 64, 10 classes), D = 650;
* ``mlp-digits``: a one-hidden-layer perceptron on the digits, 64 → 32 (tanh or ReLU) → 10,
  D = 2410;
* ``fashion-mnist-logreg`` and ``fashion-mnist-mlp``: Kingma & Ba's §6.1 and §6.2 models on an
  MNIST-format folder read by :mod:`adamlab.problems.idx` (Fashion-MNIST from Debian's
  ``dataset-fashion-mnist`` by default; its own 60,000/10,000 split, pixels scaled to [0, 1]),
  minibatches of 128 (:class:`ImageClassification`).

Parameters are one flat float64 vector (so the lab treats these tasks like every other
problem); ``unflatten(x)`` / ``flatten(params)`` convert to and from the named arrays, whose
layout is ``layout``. The data are split once into train and test by ``split_seed``
(``test_fraction`` = 25 % held out) and standardised with the *training* mean and standard
deviation (constant pixels are left unscaled).

* ``loss(x)`` / ``grad(x)``: the full training objective, mean cross-entropy
  (+ ½·l2·‖weights‖², biases not decayed; ``l2`` = 0 by default) — the exact objective that
  is reported;
* ``oracle(seed)``: the minibatch loss and gradient; at step t the batch is ``batch_size``
  training examples drawn without replacement by a generator fixed by (seed, t) (every
  optimizer with the same seed gets the same batches; every row of a batched x too);
  ``batch_size=None`` gives the full batch;
* ``test_loss(x)``, ``accuracy(x, split="test")`` (also ``test_accuracy``/``train_accuracy``).

Everything, gradients included, is vectorised over leading batch dimensions of ``x``
(shape ``(..., D)``): the backpropagation is written by hand with broadcasting matmuls.
The arithmetic is adamlab's own (:mod:`adamlab._exact`): matrix products and sums accumulated in
index order, and exp/log/tanh from IEEE operations, never BLAS or the CPU's SIMD ``tanh``, so a
run gives the same bits on every machine (and a configuration alone the same as in a sweep).
The initial point ``x0`` is deterministic: zeros for the two convex models; for the MLP,
weights ~ N(0, 1/fan_in) drawn from ``init_seed`` and zero biases.

scikit-learn is an optional dependency (``pip install adamlab[ml]``); it is imported only
when a task first needs its data.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from typing import Any, ClassVar, NamedTuple

import numpy as np

from .. import _exact as ex
from .base import STREAM_MINIBATCH, Oracle, ParametricProblem, box, resolve_seed, step_rng

#: data set name -> (number of examples, features, classes) as scikit-learn ships them
DATASETS = {"breast_cancer": (569, 30, 2), "digits": (1797, 64, 10)}


class Split(NamedTuple):
    """A train/test split, standardised with the training statistics (read-only arrays)."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def _n_test(n: int, test_fraction: float) -> int:
    return max(1, min(n - 1, round(n * test_fraction)))


@functools.lru_cache(maxsize=16)
def load_split(dataset: str, test_fraction: float = 0.25, split_seed: int = 0) -> Split:
    """Load ``dataset`` from scikit-learn's bundled files and split/standardise it (cached)."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown data set {dataset!r}; choose one of {', '.join(DATASETS)}")
    try:
        from sklearn import datasets
    except ImportError:
        raise ImportError(
            f"the {dataset} task needs scikit-learn: pip install 'adamlab[ml]'"
        ) from None
    X, y = getattr(datasets, f"load_{dataset}")(return_X_y=True)
    n, d, classes = DATASETS[dataset]
    if X.shape != (n, d) or len(np.unique(y)) != classes:
        raise RuntimeError(
            f"scikit-learn's {dataset} has shape {X.shape} and {len(np.unique(y))} classes; "
            f"adamlab expects {(n, d)} and {classes}"
        )
    perm = np.random.default_rng(split_seed).permutation(n)
    n_test = _n_test(n, test_fraction)
    test, train = perm[:n_test], perm[n_test:]
    X = np.asarray(X, dtype=np.float64)
    n_train = len(train)
    mean = ex.sum_(X[train], axis=0) / n_train
    std = np.sqrt(ex.sum_((X[train] - mean) ** 2, axis=0) / n_train)
    std = np.where(std > 0, std, 1.0)
    Z = (X - mean) / std
    parts = (Z[train], y[train].astype(np.int64), Z[test], y[test].astype(np.int64))
    for a in parts:
        a.flags.writeable = False
    return Split(*parts)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - ex.log(ex.sum_(ex.exp(shifted), axis=-1, keepdims=True))


def _cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean cross-entropy over examples (axis −2) and its gradient w.r.t. the logits."""
    n, C = logits.shape[-2], logits.shape[-1]
    logp = _log_softmax(logits)
    onehot = np.eye(C)[y]
    loss = -ex.sum_(logp * onehot, axis=(-2, -1)) / n
    dlogits = (ex.exp(logp) - onehot) / n
    return loss, dlogits


def _check_batch_size(batch_size: Any) -> None:
    if batch_size is not None and (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise ValueError(f"Invalid batch_size: {batch_size!r}; a whole number >= 1, or None")


def _check_l2(l2: float) -> None:
    if not (math.isfinite(l2) and l2 >= 0):
        raise ValueError(f"Invalid l2: {l2!r}; it must be a finite number >= 0")


@dataclasses.dataclass(frozen=True, eq=False)
class Classification(ParametricProblem):
    """Base of the ML tasks: data, split, flat parameters, minibatch oracle, metrics."""

    dataset: ClassVar[str]
    batch_size: int | None = 32
    l2: float = 0.0
    test_fraction: float = 0.25
    split_seed: int = 0
    init_seed: int = 0
    dim: int = dataclasses.field(default=0, init=False, kw_only=True)
    stochastic: bool = dataclasses.field(default=True, init=False, kw_only=True)

    # -- subclasses ------------------------------------------------------------------------

    def shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        """The named parameter arrays, in their order in the flat vector."""
        raise NotImplementedError

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {k: np.zeros(s) for k, s in self.shapes()}

    def forward_backward(
        self, p: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray, need_grad: bool
    ) -> tuple[np.ndarray, dict[str, np.ndarray] | None]:
        """Mean loss over (X, y) for parameters ``p`` (leading batch dims) and its gradient."""
        raise NotImplementedError

    def predict(self, x: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Predicted class of every row of X, shape ``(..., n)``."""
        raise NotImplementedError

    # -- construction ------------------------------------------------------------------------

    def __post_init__(self) -> None:
        _check_batch_size(self.batch_size)
        if not 0 < self.test_fraction < 1:
            raise ValueError(
                f"Invalid test_fraction: {self.test_fraction!r}; it must lie in (0, 1)"
            )
        _check_l2(self.l2)
        for name in ("split_seed", "init_seed"):
            seed = getattr(self, name)
            if (
                isinstance(seed, bool)
                or not isinstance(seed, (int, np.integer))
                or not (0 <= seed < 2**63)
            ):
                raise ValueError(
                    f"Invalid {name}: {seed!r}; it must be a whole number in [0, 2**63)"
                )
        object.__setattr__(self, "dim", sum(math.prod(s) for _, s in self.shapes()))
        object.__setattr__(
            self, "stochastic", self.batch_size is not None and self.batch_size < self.n_train
        )
        super().__post_init__()

    def defaults(self) -> dict[str, Any]:
        x0 = self.flatten(self.init_params(np.random.default_rng(self.init_seed)))
        reach = max(3.0, math.ceil(float(np.max(np.abs(x0), initial=0.0))) + 1.0)
        return {"x0": x0, "domain": box(x0.size, -reach, reach)}

    @property
    def layout(self) -> list[tuple[str, tuple[int, ...], slice]]:
        """(name, shape, slice of the flat vector) for every parameter array."""
        out, start = [], 0
        for name, shape in self.shapes():
            size = math.prod(shape)
            out.append((name, shape, slice(start, start + size)))
            start += size
        return out

    def unflatten(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Named arrays (views) from flat parameters of shape ``(..., D)``."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1] != self.dim:
            raise ValueError(f"{self.name} has {self.dim} parameters; got x with {x.shape[-1]}")
        return {k: x[..., sl].reshape((*x.shape[:-1], *s)) for k, s, sl in self.layout}

    def flatten(self, params: dict[str, np.ndarray]) -> np.ndarray:
        """The flat vector ``(..., D)`` of named arrays (inverse of :meth:`unflatten`)."""
        parts = []
        for k, s, _ in self.layout:
            a = np.asarray(params[k], dtype=np.float64)
            parts.append(a.reshape((*a.shape[: a.ndim - len(s)], -1)))
        lead = np.broadcast_shapes(*(p.shape[:-1] for p in parts))
        return np.concatenate([np.broadcast_to(p, (*lead, p.shape[-1])) for p in parts], axis=-1)

    @property
    def n_train(self) -> int:
        n = DATASETS[self.dataset][0]
        return n - _n_test(n, self.test_fraction)

    @functools.cached_property
    def data(self) -> Split:
        """The standardised train/test split (loaded on first use, shared between tasks)."""
        return load_split(self.dataset, self.test_fraction, self.split_seed)

    @functools.cached_property
    def _decay_mask(self) -> np.ndarray:
        mask = np.zeros(self.dim)
        for name, _, sl in self.layout:
            if name.startswith("W"):
                mask[sl] = 1.0
        return mask

    # -- the objective -----------------------------------------------------------------------

    def _objective(
        self, x: np.ndarray, X: np.ndarray, y: np.ndarray, need_grad: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        x = np.asarray(x, dtype=np.float64)
        loss, g = self.forward_backward(self.unflatten(x), X, y, need_grad)
        grad = None if g is None else self.flatten(g)
        if self.l2:
            wx = x * self._decay_mask
            loss = loss + 0.5 * self.l2 * ex.sum_(wx * wx, axis=-1)
            if grad is not None:
                grad = grad + self.l2 * wx
        return loss, grad

    def loss(self, x: np.ndarray) -> np.ndarray:
        """The full training objective."""
        return self._objective(x, self.data.X_train, self.data.y_train, False)[0]

    def grad(self, x: np.ndarray) -> np.ndarray:
        return self._objective(x, self.data.X_train, self.data.y_train, True)[1]

    def loss_and_grad(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._objective(x, self.data.X_train, self.data.y_train, True)  # type: ignore[return-value]

    def batch_indices(self, seed: int, t: int) -> np.ndarray:
        """The training examples in the minibatch of step t (a function of (seed, t) only)."""
        n = self.n_train
        if self.batch_size is None or self.batch_size >= n:
            return np.arange(n)
        return step_rng(seed, t, STREAM_MINIBATCH).choice(n, self.batch_size, replace=False)

    def oracle(self, seed: int | None = 0) -> Oracle:
        seed = resolve_seed(seed)
        if not self.stochastic:
            return super().oracle(seed)
        data = self.data

        def minibatch(x: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
            idx = self.batch_indices(seed, t)
            return self._objective(x, data.X_train[idx], data.y_train[idx], True)  # type: ignore[return-value]

        return minibatch

    # -- held-out metrics ----------------------------------------------------------------------

    def _split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        if split == "test":
            return self.data.X_test, self.data.y_test
        if split == "train":
            return self.data.X_train, self.data.y_train
        raise ValueError(f"Invalid split: {split!r}; choose 'train' or 'test'")

    def test_loss(self, x: np.ndarray) -> np.ndarray:
        """The objective on the held-out examples (same form as ``loss``)."""
        return self._objective(x, self.data.X_test, self.data.y_test, False)[0]

    def accuracy(self, x: np.ndarray, split: str = "test") -> np.ndarray:
        """Fraction of correctly classified examples of ``split`` ("test" or "train")."""
        X, y = self._split(split)
        return np.count_nonzero(self.predict(x, X) == y, axis=-1) / len(y)

    def evaluate(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """``test_loss``, ``test_accuracy`` and ``train_accuracy`` at x."""
        return {
            "test_loss": self.test_loss(x),
            "test_accuracy": self.test_accuracy(x),
            "train_accuracy": self.train_accuracy(x),
        }

    def test_accuracy(self, x: np.ndarray) -> np.ndarray:
        return self.accuracy(x, "test")

    def train_accuracy(self, x: np.ndarray) -> np.ndarray:
        return self.accuracy(x, "train")

    def params_to_plot(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64)[..., :2]


def _tr(a: np.ndarray) -> np.ndarray:
    return np.swapaxes(a, -1, -2)


@dataclasses.dataclass(frozen=True, eq=False)
class LogisticRegressionCancer(Classification):
    """Logistic regression on breast cancer: p(y=1|x) = σ(wᵀx + b), D = 30 + 1.

    Loss: mean over examples of log(1 + e^z) − y·z with z = wᵀx + b (computed as
    softplus(z) = max(z, 0) + log(1 + e^−|z|), stable for any z); ∇w = Xᵀ(σ(z) − y)/n, ∇b = Σ(σ(z) − y)/n.
    """

    dataset: ClassVar[str] = "breast_cancer"
    name: str = dataclasses.field(default="logreg-cancer", kw_only=True)

    def shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        return [("W", (30,)), ("b", ())]

    def defaults(self) -> dict[str, Any]:
        return {
            **super().defaults(),
            "description": "logistic regression on breast cancer (569 x 30, 25% held out)",
        }

    def _z(self, p: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
        return ex.matmul(p["W"], X.T) + p["b"][..., None]

    def forward_backward(self, p, X, y, need_grad):
        z = self._z(p, X)
        loss = ex.sum_(ex.softplus(z) - y * z, axis=-1) / z.shape[-1]
        if not need_grad:
            return loss, None
        r = (0.5 * (1.0 + ex.tanh(0.5 * z)) - y) / X.shape[0]  # σ(z) − y, σ via tanh: stable
        return loss, {"W": ex.matmul(r, X), "b": ex.sum_(r, axis=-1)}

    def predict(self, x, X):
        return (self._z(self.unflatten(x), X) > 0).astype(np.int64)


@dataclasses.dataclass(frozen=True, eq=False)
class SoftmaxDigits(Classification):
    """Softmax regression on the digits: logits = W·x + b, W ∈ ℝ^(10×64), D = 650.

    Loss: mean cross-entropy −log softmax(logits)_y (log-sum-exp shifted by the max);
    ∇W = (P − Y)ᵀX/n, ∇b = Σ(P − Y)/n with P the softmax and Y the one-hot labels.
    """

    dataset: ClassVar[str] = "digits"
    name: str = dataclasses.field(default="softmax-digits", kw_only=True)

    def shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        return [("W", (10, 64)), ("b", (10,))]

    def defaults(self) -> dict[str, Any]:
        return {
            **super().defaults(),
            "description": "softmax regression on digits (1797 x 64, 10 classes, 25% held out)",
        }

    def _logits(self, p, X):
        return ex.matmul(X, _tr(p["W"])) + p["b"][..., None, :]

    def forward_backward(self, p, X, y, need_grad):
        loss, dlogits = _cross_entropy(self._logits(p, X), y)
        if not need_grad:
            return loss, None
        return loss, {"W": ex.matmul(_tr(dlogits), X), "b": ex.sum_(dlogits, axis=-2)}

    def predict(self, x, X):
        return np.argmax(self._logits(self.unflatten(x), X), axis=-1)


@dataclasses.dataclass(frozen=True, eq=False)
class MLPDigits(Classification):
    """One-hidden-layer perceptron on the digits: 64 → ``hidden`` (tanh/ReLU) → 10.

    h = act(W1·x + b1), logits = W2·h + b2; mean cross-entropy. Backpropagation:
    δ₂ = (P − Y)/n, ∇W2 = δ₂ᵀh, ∇b2 = Σδ₂, δ₁ = (δ₂W2) ⊙ act′(a), ∇W1 = δ₁ᵀX, ∇b1 = Σδ₁,
    with tanh′ = 1 − h² and ReLU′ = [a > 0]. D = 64·h + h + 10·h + 10 (2410 for h = 32).
    Initial weights ~ N(0, 1/fan_in) from ``init_seed``, biases 0.
    """

    dataset: ClassVar[str] = "digits"
    hidden: int = 32
    activation: str = "tanh"
    name: str = dataclasses.field(default="mlp-digits", kw_only=True)

    def __post_init__(self) -> None:
        if (
            isinstance(self.hidden, bool)
            or not isinstance(self.hidden, (int, np.integer))
            or self.hidden < 1
        ):
            raise ValueError(f"Invalid hidden: {self.hidden!r}; it must be a whole number >= 1")
        if self.activation not in ("tanh", "relu"):
            raise ValueError(f"Invalid activation: {self.activation!r}; choose 'tanh' or 'relu'")
        super().__post_init__()

    def shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        h = self.hidden
        return [("W1", (h, 64)), ("b1", (h,)), ("W2", (10, h)), ("b2", (10,))]

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        h = self.hidden
        return {
            "W1": rng.standard_normal((h, 64)) / math.sqrt(64),
            "b1": np.zeros(h),
            "W2": rng.standard_normal((10, h)) / math.sqrt(h),
            "b2": np.zeros(10),
        }

    def defaults(self) -> dict[str, Any]:
        return {
            **super().defaults(),
            "description": f"MLP 64-{self.hidden}({self.activation})-10 on digits "
            "(1797 x 64, 25% held out)",
        }

    def _forward(self, p, X):
        a = ex.matmul(X, _tr(p["W1"])) + p["b1"][..., None, :]
        h = ex.tanh(a) if self.activation == "tanh" else np.maximum(a, 0.0)
        return a, h, ex.matmul(h, _tr(p["W2"])) + p["b2"][..., None, :]

    def forward_backward(self, p, X, y, need_grad):
        a, h, logits = self._forward(p, X)
        loss, d2 = _cross_entropy(logits, y)
        if not need_grad:
            return loss, None
        dh = ex.matmul(d2, p["W2"])
        d1 = dh * (1.0 - h * h) if self.activation == "tanh" else dh * (a > 0)
        return loss, {
            "W1": ex.matmul(_tr(d1), X),
            "b1": ex.sum_(d1, axis=-2),
            "W2": ex.matmul(_tr(d2), h),
            "b2": ex.sum_(d2, axis=-2),
        }

    def predict(self, x, X):
        return np.argmax(self._forward(self.unflatten(x), X)[2], axis=-1)


# -- MNIST-format image sets from a data folder (Fashion-MNIST, MNIST) ----------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class ImageClassification(Classification):
    """Base of the tasks on an MNIST-format folder (:mod:`adamlab.problems.idx`).

    The data set's own split (60,000 training and 10,000 test images for Fashion-MNIST), pixels
    scaled to [0, 1] (x/255, no standardisation), minibatches of ``batch_size`` = 128 (Kingma &
    Ba's). ``data_dir``: the folder of the four IDX files; None is Debian's Fashion-MNIST
    folder. Nothing is read at construction: the data load on first use, and a missing folder
    or a bad file then raises ``FileNotFoundError`` / ``ValueError`` naming what to provide.

    The images stay in memory as bytes (47 MB, not 376 MB of float64); the full-data loss,
    gradient and accuracy run over blocks of ``chunk`` examples, each block's mean weighted by
    its share (in a fixed order: the same bits for a point alone and in a batch).
    """

    batch_size: int | None = 128
    data_dir: str | None = None
    test_fraction: float = dataclasses.field(default=0.0, init=False, repr=False)
    split_seed: int = dataclasses.field(default=0, init=False, repr=False)
    #: inputs (28 × 28 pixels) and classes
    features: ClassVar[int] = 784
    classes: ClassVar[int] = 10
    #: examples per block of the full-data passes
    chunk: ClassVar[int] = 4096

    def __post_init__(self) -> None:  # Classification's checks, without its data-set sizes
        _check_batch_size(self.batch_size)
        _check_l2(self.l2)
        if self.data_dir is not None and not isinstance(self.data_dir, (str, os.PathLike)):
            raise ValueError(f"Invalid data_dir: {self.data_dir!r}; give a folder's path")
        object.__setattr__(self, "dim", sum(math.prod(s) for _, s in self.shapes()))
        object.__setattr__(self, "stochastic", self.batch_size is not None)
        ParametricProblem.__post_init__(self)

    @property
    def n_train(self) -> int:
        return len(self.data.y_train)

    @functools.cached_property
    def data(self) -> Split:
        """The data set's train/test split as bytes, ``(n, 784)`` uint8 (loaded on first use)."""
        from .idx import load_folder

        return Split(*load_folder(self.data_dir))

    @staticmethod
    def scale(X: np.ndarray) -> np.ndarray:
        """Pixels (bytes) as float64 in [0, 1]: x/255, correctly rounded."""
        return np.asarray(X, dtype=np.float64) / 255.0

    def _blocks(self, n: int) -> list[tuple[int, int]]:
        return [(lo, min(n, lo + self.chunk)) for lo in range(0, n, self.chunk)]

    def _objective(self, x, X, y, need_grad):
        x = np.asarray(x, dtype=np.float64)
        p = self.unflatten(x)
        n = len(y)
        loss, grads = 0.0, None
        for lo, hi in self._blocks(n):
            w = (hi - lo) / n
            lb, gb = self.forward_backward(p, self.scale(X[lo:hi]), y[lo:hi], need_grad)
            loss = lb if w == 1 else loss + w * lb
            if need_grad:
                gw = gb if w == 1 else {k: w * g for k, g in gb.items()}
                grads = gw if grads is None else {k: grads[k] + gw[k] for k in grads}
        grad = None if grads is None else self.flatten(grads)
        if self.l2:
            wx = x * self._decay_mask
            loss = loss + 0.5 * self.l2 * ex.sum_(wx * wx, axis=-1)
            if grad is not None:
                grad = grad + self.l2 * wx
        return loss, grad

    def accuracy(self, x: np.ndarray, split: str = "test") -> np.ndarray:
        X, y = self._split(split)
        hits = 0
        for lo, hi in self._blocks(len(y)):
            hits = hits + np.count_nonzero(
                self.predict(x, self.scale(X[lo:hi])) == y[lo:hi], axis=-1
            )
        return np.asarray(hits) / len(y)


@dataclasses.dataclass(frozen=True, eq=False)
class FashionMNISTLogReg(ImageClassification):
    """Kingma & Ba §6.1's model on Fashion-MNIST: L2-regularised multinomial logistic
    regression, logits = W·x + b on the 784 pixels, W ∈ ℝ^(10×784), D = 7850.

    Loss: mean cross-entropy + ½·l2·‖W‖² (``l2`` = 1e-4; the bias is not decayed); the
    gradient is softmax-digits' (∇W = (P − Y)ᵀX/n + l2·W, ∇b = Σ(P − Y)/n). ``x0`` = 0.
    """

    l2: float = 1e-4
    name: str = dataclasses.field(default="fashion-mnist-logreg", kw_only=True)

    def shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        return [("W", (self.classes, self.features)), ("b", (self.classes,))]

    def defaults(self) -> dict[str, Any]:
        return {
            **super().defaults(),
            "description": "L2-regularised softmax regression on Fashion-MNIST "
            "(60000 + 10000 images, 28x28; a data folder: --data DIR)",
        }

    # the same model as softmax-digits, on 784 inputs
    _logits = SoftmaxDigits._logits
    forward_backward = SoftmaxDigits.forward_backward
    predict = SoftmaxDigits.predict


@dataclasses.dataclass(frozen=True, eq=False)
class FashionMNISTMLP(ImageClassification):
    """Kingma & Ba §6.2's network shape on Fashion-MNIST: ``layers`` hidden ReLU layers of
    ``hidden`` units, 784 → h → … → h → 10 (the paper: two layers of 1000; the default
    width here is 100, D = 89,610, because the lab's exact NumPy arithmetic takes about 40 s
    per full-data loss at width 1000 — ``adamlab reproduce kingma-ba-mlp`` trains the paper's
    width with PyTorch).

    hₗ = ReLU(Wₗhₗ₋₁ + bₗ) with h₀ = x, logits = W_out·h_L + b_out; mean cross-entropy
    (+ ½·l2·Σ‖W‖², ``l2`` = 0). Backpropagation: δ = (P − Y)/n at the logits; for each layer
    from the top, ∇W = δᵀh_below, ∇b = Σδ, and δ_below = (δW) ⊙ [a_below > 0]. Weights are
    named W1 … W{L+1} (the last is the output layer). Initial weights ~ N(0, 2/fan_in) for the
    ReLU layers (He et al.) and N(0, 1/fan_in) for the output layer, from ``init_seed``;
    biases 0.
    """

    hidden: int = 100
    layers: int = 2
    name: str = dataclasses.field(default="fashion-mnist-mlp", kw_only=True)

    def __post_init__(self) -> None:
        for key in ("hidden", "layers"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"Invalid {key}: {v!r}; it must be a whole number >= 1")
        super().__post_init__()

    def _widths(self) -> list[int]:
        return [self.features] + [self.hidden] * self.layers + [self.classes]

    def shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        w = self._widths()
        out: list[tuple[str, tuple[int, ...]]] = []
        for i in range(len(w) - 1):
            out += [(f"W{i + 1}", (w[i + 1], w[i])), (f"b{i + 1}", (w[i + 1],))]
        return out

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        w = self._widths()
        p = {}
        for i in range(len(w) - 1):
            gain = 2.0 if i + 2 < len(w) else 1.0
            p[f"W{i + 1}"] = rng.standard_normal((w[i + 1], w[i])) * math.sqrt(gain / w[i])
            p[f"b{i + 1}"] = np.zeros(w[i + 1])
        return p

    def defaults(self) -> dict[str, Any]:
        arch = "-".join(map(str, self._widths()))
        return {
            **super().defaults(),
            "description": f"MLP {arch} (ReLU) on Fashion-MNIST "
            "(60000 + 10000 images, 28x28; a data folder: --data DIR)",
        }

    def _forward(self, p, X):
        """Pre-activations a₁…a_L, activations h₀ = X … h_L, and the logits."""
        hs, pre = [X], []
        for i in range(1, self.layers + 1):
            a = ex.matmul(hs[-1], _tr(p[f"W{i}"])) + p[f"b{i}"][..., None, :]
            pre.append(a)
            hs.append(np.maximum(a, 0.0))
        out = self.layers + 1
        return pre, hs, ex.matmul(hs[-1], _tr(p[f"W{out}"])) + p[f"b{out}"][..., None, :]

    def forward_backward(self, p, X, y, need_grad):
        pre, hs, logits = self._forward(p, X)
        loss, d = _cross_entropy(logits, y)
        if not need_grad:
            return loss, None
        g = {}
        for i in range(self.layers + 1, 0, -1):  # from the output layer down
            g[f"W{i}"] = ex.matmul(_tr(d), hs[i - 1])
            g[f"b{i}"] = ex.sum_(d, axis=-2)
            if i > 1:
                d = ex.matmul(d, p[f"W{i}"]) * (pre[i - 2] > 0)
        return loss, g

    def predict(self, x, X):
        return np.argmax(self._forward(self.unflatten(x), X)[2], axis=-1)
