"""``kingma-ba-logreg`` and ``kingma-ba-mlp``: Kingma & Ba (2015) §6.1 and §6.2 on Fashion-MNIST.

The paper's protocol, on data of the paper's size (Fashion-MNIST: MNIST's format and size,
60,000 training and 10,000 test images of 28 × 28, 10 classes):

* §6.1, Figure 1 (left): L2-regularised multinomial logistic regression on the 784 pixels,
  minibatches of 128, step size αₜ = α/√t (t the step), Adam against AdaGrad and SGD with
  Nesterov momentum (0.9). The paper: "Adam yields similar convergence as SGD with momentum
  and both converge faster than Adagrad".
* §6.2, Figure 2: a network with two fully connected hidden layers of 1000 ReLU units,
  minibatches of 128, constant step size, with dropout (0.2 on the inputs, 0.5 on the hidden
  units, Hinton et al.'s rates; the paper does not give its own) and without it (L2 weight
  decay instead), Adam against AdaGrad, RMSProp, SGD-Nesterov and AdaDelta. The paper:
  "Adam shows better convergence than other methods". (Its deterministic-cost panel compares
  Adam with SFO, a quasi-Newton method not reproduced here; that panel here is the same five
  first-order methods without dropout.)

For every optimizer a grid of step sizes α (half a decade apart; a decade in ``quick``) runs on
the first seed, and the best α — lowest training cost at the end of the grid run, as the paper
reports "the best hyper-parameter setting" — runs on every seed. Every optimizer of a seed
starts from the same initial weights and sees the same minibatches (a permutation of the
training set per epoch, drawn from (seed, epoch)) and the same dropout masks: runs are paired.

Training uses the ``adamlab.torch`` drop-ins (``Adam``: the fused kernel; ``Adagrad``,
``RMSprop``, ``SGD``) in float32. AdaDelta is not in adamlab; its curve is PyTorch's
``torch.optim.Adadelta``, labelled so. A check reruns every optimizer that both have with
``torch.optim``'s class at its chosen α on the first seed, the same batches and masks, and
reports the largest relative difference of the per-step training cost.

Training cost: for the logistic regression the exact objective (mean cross-entropy over all
training images + ½λ‖W‖²) after every epoch; for the network, whose full-data pass costs a
quarter of an epoch, the mean of the minibatch costs over each tenth of an epoch (what the
optimizer saw, dropout included) — and for both the exact objective (dropout off) at the end,
beside the test accuracy.

Data (``data``): None is Fashion-MNIST from Debian's ``dataset-fashion-mnist``
(``/usr/share/datasets/fashion-mnist``), or scikit-learn's 8 × 8 digits in ``quick`` mode
(the same protocol on the small set that ships with scikit-learn); a folder of MNIST-format
files (MNIST itself, or small files) or ``"digits"`` choose explicitly. ``quick`` trains on at
most 2,048 training images for a few epochs with a coarser grid, the network 2 × 256 wide
rather than 2 × 1000 (about a minute each on 2 cores).

The full §6.2 run trains one epoch (the paper's Figure 2 shows 200): on 2 CPU cores an epoch
of the 2 × 1000 network takes 30–60 s per optimizer, and the full run is 20 training runs of
it besides the grid and the check. ``reproduce_mlp(out, epochs=N)`` (any :class:`Protocol`
field as a keyword) runs longer.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import _exact as ex
from ._common import Reproduction, finish

DIGITS = "digits"
#: optimizer -> its label in tables and figures
OPTIMIZERS = {
    "Adam": "Adam",
    "AdaGrad": "AdaGrad",
    "RMSProp": "RMSProp",
    "SGD-Nesterov": "SGD-Nesterov",
    "AdaDelta": "AdaDelta (torch.optim)",
}
COLORS = {"Adam": "C3", "AdaGrad": "C0", "RMSProp": "C2", "SGD-Nesterov": "C1", "AdaDelta": "C4"}
#: the momentum of SGD-Nesterov (not tuned; the paper does not give its value)
MOMENTUM = 0.9
#: dropout rates (input, hidden) of the §6.2 network with dropout
DROPOUT = (0.2, 0.5)
#: the random streams of a seed: minibatch order, initial weights, dropout masks
_ORDER, _INIT, _MASKS = 11, 12, 13
#: at most this many training images in ``quick`` mode
QUICK_TRAIN = 2048
#: the network's hidden layers in ``quick`` mode (the paper's 2 x 1000 takes minutes even on
#: the digits with 2 cores: the quick run checks the plumbing, the full run the claims)
QUICK_HIDDEN = (256, 256)


# ------------------------------------------------------------------------------------------------
# The protocols
# ------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Protocol:
    """What one reproduction runs: model, optimizers and their grids, lengths, seeds.

    ``grids``: optimizer -> (log10 α low, log10 α high); ``per_decade`` grid points per decade.
    ``grid_epochs``: length of the grid runs (None: the whole run, then the grid's best run is
    the first seed's curve). ``check_steps``: steps of the ``torch.optim`` check.
    """

    name: str
    hidden: tuple[int, ...]
    variants: tuple[str, ...]  #: "plain" (no dropout) and/or "dropout"
    grids: dict[str, tuple[float, float]]
    epochs: int
    seeds: tuple[int, ...]
    grid_epochs: float | None
    per_decade: int
    l2: float
    decay: bool  #: αₜ = α/√t
    check_steps: int
    batch_size: int = 128
    windows: int = 10  #: curve points per epoch of the network (minibatch-cost means)
    n_train: int | None = None  #: use only the first n training images (None: all)
    dtype: str = "float32"

    def grid(self, optimizer: str) -> list[float]:
        lo, hi = self.grids[optimizer]
        n = round((hi - lo) * self.per_decade) + 1
        return [float(v) for v in ex.logspace(lo, hi, n)]


def logreg_protocol(quick: bool = False, **overrides: Any) -> Protocol:
    """§6.1: the full run, or ``quick``; keyword arguments override any field."""
    p = Protocol(
        name="kingma-ba-logreg",
        hidden=(),
        variants=("plain",),
        grids={"Adam": (-2.5, 0.5), "AdaGrad": (-2.5, 0.5), "SGD-Nesterov": (-1.5, 1.5)},
        epochs=10,
        seeds=(0, 1) if quick else (0, 1, 2),
        grid_epochs=None if quick else 2,
        per_decade=1 if quick else 2,
        l2=1e-4,
        decay=True,
        check_steps=10**9,  # the whole first epoch
        n_train=QUICK_TRAIN if quick else None,
    )
    return dataclasses.replace(p, **overrides)


def mlp_protocol(quick: bool = False, **overrides: Any) -> Protocol:
    """§6.2: the full run, or ``quick``; keyword arguments override any field."""
    p = Protocol(
        name="kingma-ba-mlp",
        hidden=QUICK_HIDDEN if quick else (1000, 1000),
        variants=("dropout", "plain"),
        grids={
            "Adam": (-4.0, -2.0),
            "AdaGrad": (-3.5, -1.5),
            "RMSProp": (-4.5, -2.5),
            "SGD-Nesterov": (-2.5, -0.5),
            "AdaDelta": (-1.0, 1.0),
        },
        epochs=2 if quick else 1,
        seeds=(0, 1),
        grid_epochs=None if quick else 0.125,
        per_decade=1 if quick else 2,
        l2=1e-4,
        decay=False,
        check_steps=47,  # a tenth of a Fashion-MNIST epoch
        n_train=QUICK_TRAIN if quick else None,
    )
    return dataclasses.replace(p, **overrides)


# ------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Data:
    """A classification data set as float32 features in rows, int64 labels."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: int = 10

    def head(self, n: int | None) -> Data:
        """Only the first ``n`` training images (the test set unchanged)."""
        if n is None or n >= len(self.y_train):
            return self
        return dataclasses.replace(
            self, name=f"{self.name}, first {n} training images",
            X_train=self.X_train[:n], y_train=self.y_train[:n],
        )  # fmt: skip


def load_data(data: str | os.PathLike | None = None, *, quick: bool = False) -> Data:
    """The data of a run: None is Fashion-MNIST's Debian folder (digits when ``quick``),
    ``"digits"`` scikit-learn's digits, anything else a folder of MNIST-format files.

    A missing folder raises ``FileNotFoundError``, a bad file ``ValueError`` (one line each,
    naming what to provide); a missing scikit-learn ``ImportError``.
    """
    from adamlab.lab import get_problem

    if (data is None and quick) or data == DIGITS:
        split = get_problem("softmax-digits").data
        return Data(
            "digits (scikit-learn, 8x8, standardised)",
            split.X_train.astype(np.float32), split.y_train,
            split.X_test.astype(np.float32), split.y_test,
        )  # fmt: skip
    problem = get_problem("fashion-mnist-logreg", data_dir=None if data is None else str(data))
    split = problem.data
    name = "Fashion-MNIST" if data is None else f"MNIST-format data in {Path(data)}"
    pixels = lambda X: X.astype(np.float32) / np.float32(255.0)  # noqa: E731  [0, 1]
    return Data(
        f"{name} ({len(split.y_train)} train / {len(split.y_test)} test images, 28x28)",
        pixels(split.X_train), split.y_train, pixels(split.X_test), split.y_test,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------------
# Training (PyTorch, imported here only)
# ------------------------------------------------------------------------------------------------


def make_optimizer(name: str, params: list, lr: float, *, reference: bool = False) -> Any:
    """``name``'s optimizer over ``params``: adamlab's drop-in, or ``torch.optim``'s class
    when ``reference`` (AdaDelta is always ``torch.optim.Adadelta``: adamlab has none)."""
    import torch

    if reference or name == "AdaDelta":
        lib = torch.optim
    else:
        import adamlab.torch as lib
    if name == "Adam":
        return lib.Adam(params, lr=lr)
    if name == "AdaGrad":
        return lib.Adagrad(params, lr=lr)
    if name == "RMSProp":
        return lib.RMSprop(params, lr=lr)
    if name == "SGD-Nesterov":
        return lib.SGD(params, lr=lr, momentum=MOMENTUM, nesterov=True)
    if name == "AdaDelta":
        return torch.optim.Adadelta(params, lr=lr)
    raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")


@dataclasses.dataclass
class Run:
    """One training run: its setting, the cost after every step and the results."""

    optimizer: str
    lr: float
    seed: int
    variant: str
    steps_per_epoch: int
    batch_costs: list[float]  #: the minibatch cost of every step (what the optimizer saw)
    epoch_costs: list[float]  #: the exact training cost at the start and after every epoch
    final_cost: float  #: the exact training cost at the end (no dropout; NaN: not evaluated)
    test_accuracy: float  #: (NaN: not evaluated)
    seconds: float
    reference: bool = False

    @property
    def diverged(self) -> bool:
        return not math.isfinite(self.batch_costs[-1]) or math.isinf(self.final_cost)


class _Tensors:
    """The data as tensors of the run's dtype (made once per data set and dtype)."""

    def __init__(self, data: Data, dtype: str) -> None:
        import torch

        self.dtype = getattr(torch, dtype)
        self.X = torch.from_numpy(np.array(data.X_train)).to(self.dtype)
        self.y = torch.from_numpy(np.array(data.y_train))
        self.X_test = torch.from_numpy(np.array(data.X_test)).to(self.dtype)
        self.y_test = torch.from_numpy(np.array(data.y_test))
        self.classes = data.classes


def _init(torch, widths: list[int], seed: int, dtype) -> list:
    """Weights and biases, layer by layer: zeros for logistic regression; for the network
    N(0, 2/fan_in) (He et al., ReLU) and N(0, 1/fan_in) for the output layer, biases 0."""
    g = torch.Generator().manual_seed(
        int(np.random.SeedSequence([_INIT, seed]).generate_state(1)[0])
    )
    params = []
    for i in range(len(widths) - 1):
        fan_in, fan_out = widths[i], widths[i + 1]
        if len(widths) == 2:
            W = torch.zeros(fan_out, fan_in, dtype=dtype)
        else:
            gain = 2.0 if i + 2 < len(widths) else 1.0
            W = torch.randn(fan_out, fan_in, generator=g, dtype=dtype) * math.sqrt(gain / fan_in)
        params += [W.requires_grad_(), torch.zeros(fan_out, dtype=dtype).requires_grad_()]
    return params


def _forward(torch, params: list, x, masks=None):
    """Logits of the network ``params`` (W1, b1, …); ``masks``: a generator for dropout."""
    F = torch.nn.functional

    def drop(h, rate):
        keep = torch.rand(h.shape, generator=masks, dtype=h.dtype) >= rate
        return h * keep / (1.0 - rate)

    h = x if masks is None else drop(x, DROPOUT[0])
    n = len(params) // 2
    for i in range(n - 1):
        h = torch.relu(F.linear(h, params[2 * i], params[2 * i + 1]))
        if masks is not None:
            h = drop(h, DROPOUT[1])
    return F.linear(h, params[-2], params[-1])


def _cost(torch, params, logits, y, l2: float):
    """Mean cross-entropy + ½·l2·Σ‖W‖² (weights only)."""
    c = torch.nn.functional.cross_entropy(logits, y)
    if l2:
        c = c + 0.5 * l2 * sum((W * W).sum() for W in params[0::2])
    return c


def _evaluate(torch, params, X, y, l2: float, block: int = 10000) -> tuple[float, float]:
    """(exact cost, accuracy) over all of (X, y), no dropout."""
    total, hits = 0.0, 0
    with torch.no_grad():
        for lo in range(0, len(y), block):
            logits = _forward(torch, params, X[lo : lo + block])
            yb = y[lo : lo + block]
            total += float(torch.nn.functional.cross_entropy(logits, yb, reduction="sum"))
            hits += int((logits.argmax(dim=1) == yb).sum())
        cost = total / len(y)
        if l2:
            cost += 0.5 * l2 * float(sum((W * W).sum() for W in params[0::2]))
    return cost, hits / len(y)


def train(
    data: Data | _Tensors,
    protocol: Protocol,
    optimizer: str,
    lr: float,
    seed: int,
    variant: str = "plain",
    *,
    epochs: float | None = None,
    steps: int | None = None,
    reference: bool = False,
    epoch_costs: bool | None = None,
    evaluate: bool = True,
) -> Run:
    """One run of ``optimizer`` at step size ``lr`` on ``seed``'s batches and initial weights.

    ``epochs`` (default: the protocol's; fractions allowed) or ``steps`` bound its length;
    ``reference`` trains with ``torch.optim``'s class instead of adamlab's drop-in.
    ``epoch_costs``: evaluate the exact training cost after every epoch (default: for the
    logistic regression only); ``evaluate``: the exact training cost and the test accuracy at
    the end (a grid run of the network skips them: its criterion is the minibatch cost).
    """
    import torch

    t0 = time.perf_counter()
    T = data if isinstance(data, _Tensors) else _Tensors(data, protocol.dtype)
    n, B = len(T.y), protocol.batch_size
    per_epoch = -(-n // B)
    total = (
        steps
        if steps is not None
        else math.ceil((protocol.epochs if epochs is None else epochs) * per_epoch)
    )
    if epoch_costs is None:
        epoch_costs = not protocol.hidden
    widths = [T.X.shape[1], *protocol.hidden, T.classes]
    params = _init(torch, widths, seed, T.dtype)
    opt = make_optimizer(optimizer, params, lr, reference=reference)
    sched = None
    if protocol.decay:  # αₜ = α/√t: the scheduler has stepped t − 1 times before step t
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1.0 / math.sqrt(k + 1))
    masks = None
    if variant == "dropout":
        masks = torch.Generator().manual_seed(
            int(np.random.SeedSequence([_MASKS, seed]).generate_state(1)[0])
        )
    l2 = protocol.l2 if variant == "plain" else 0.0
    costs: list[float] = []
    per_epoch_costs = [_evaluate(torch, params, T.X, T.y, l2)[0]] if epoch_costs else []
    t, epoch = 0, 0
    while t < total:
        order = torch.from_numpy(np.random.default_rng([_ORDER, seed, epoch]).permutation(n))
        for lo in range(0, n, B):
            idx = order[lo : lo + B]
            c = _cost(torch, params, _forward(torch, params, T.X[idx], masks), T.y[idx], l2)
            opt.zero_grad(set_to_none=True)
            c.backward()
            opt.step()
            if sched is not None:
                sched.step()
            costs.append(float(c.detach()))
            t += 1
            if t == total or not math.isfinite(costs[-1]):
                break
        epoch += 1
        if epoch_costs and t % per_epoch == 0:
            per_epoch_costs.append(_evaluate(torch, params, T.X, T.y, l2)[0])
        if not math.isfinite(costs[-1]):
            break
    final, acc = math.nan, math.nan
    if not math.isfinite(costs[-1]):
        final = math.inf
    elif evaluate:
        done = epoch_costs and len(per_epoch_costs) == epoch + 1  # evaluated just now
        final = per_epoch_costs[-1] if done else _evaluate(torch, params, T.X, T.y, l2)[0]
        acc = _evaluate(torch, params, T.X_test, T.y_test, l2)[1]
    return Run(
        optimizer, lr, seed, variant, per_epoch, costs, per_epoch_costs, final, acc,
        time.perf_counter() - t0, reference,
    )  # fmt: skip


def curve(run: Run, protocol: Protocol) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, training cost) as drawn: the exact cost per epoch for the logistic
    regression, the mean minibatch cost per tenth of an epoch for the network."""
    if run.epoch_costs:
        return np.arange(len(run.epoch_costs), dtype=float), np.asarray(run.epoch_costs)
    w = max(1, -(-run.steps_per_epoch // protocol.windows))
    c = np.asarray(run.batch_costs)
    ends = np.arange(w, len(c) + w, w).clip(max=len(c))
    starts = np.concatenate([[0], ends[:-1]])
    means = np.array([ex.sum_(c[a:b]) / (b - a) for a, b in zip(starts, ends, strict=True)])
    return ends / run.steps_per_epoch, means


def score(run: Run, protocol: Protocol) -> float:
    """The grid's criterion, the training cost at the end of the run as drawn: the exact cost
    (logistic regression), or the mean minibatch cost of the last tenth of an epoch
    (network); inf if the run diverged."""
    if run.diverged:
        return math.inf
    if run.epoch_costs:
        return run.epoch_costs[-1] if math.isfinite(run.epoch_costs[-1]) else math.inf
    w = max(1, -(-run.steps_per_epoch // protocol.windows))
    last = np.asarray(run.batch_costs[-w:])
    value = float(ex.sum_(last) / len(last))
    return value if math.isfinite(value) else math.inf


def rel_diff(a: list[float], b: list[float]) -> float:
    """Largest |a − b| / |b| over the common steps (inf when one is not finite)."""
    n = min(len(a), len(b))
    x, y = np.asarray(a[:n]), np.asarray(b[:n])
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return math.inf
    return float(np.max(np.abs(x - y) / np.maximum(np.abs(y), 1e-300)))


# ------------------------------------------------------------------------------------------------
# The experiment: grid, seeds, the torch.optim check
# ------------------------------------------------------------------------------------------------


def experiment(data: Data, protocol: Protocol, progress: Any = None) -> dict[str, Any]:
    """Run the protocol; returns the grid, the chosen α, every run and the checks."""
    T = _Tensors(data, protocol.dtype)
    say = progress or (lambda text: None)
    out: dict[str, Any] = {"grid": {}, "best": {}, "runs": {}, "check": {}, "seconds": {}}
    t0 = time.perf_counter()
    seed0 = protocol.seeds[0]
    for variant in protocol.variants:
        out["grid"][variant], out["best"][variant], out["runs"][variant] = {}, {}, {}
        for opt in protocol.grids:
            runs = []
            for lr in protocol.grid(opt):
                say(f"{protocol.name}: grid {variant} {opt} lr={lr:.3g}")
                runs.append(train(T, protocol, opt, lr, seed0, variant,
                                  epochs=protocol.grid_epochs,
                                  evaluate=protocol.grid_epochs is None))  # fmt: skip
            scores = [score(r, protocol) for r in runs]
            k = int(np.argmin(scores))
            out["grid"][variant][opt] = {"lr": [r.lr for r in runs], "score": scores}
            out["best"][variant][opt] = {
                "lr": runs[k].lr, "edge": k in (0, len(runs) - 1) and len(runs) > 1,
            }  # fmt: skip
            out["runs"][variant][opt] = [runs[k]] if protocol.grid_epochs is None else []
    out["seconds"]["grid"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    for variant in protocol.variants:
        for opt in protocol.grids:
            have = {r.seed for r in out["runs"][variant][opt]}
            lr = out["best"][variant][opt]["lr"]
            for seed in protocol.seeds:
                if seed not in have:
                    say(f"{protocol.name}: {variant} {opt} lr={lr:.3g} seed {seed}")
                    out["runs"][variant][opt].append(train(T, protocol, opt, lr, seed, variant))
            out["runs"][variant][opt].sort(key=lambda r: r.seed)
    out["seconds"]["seeds"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    p64 = dataclasses.replace(protocol, dtype="float64")
    T64 = T if protocol.dtype == "float64" else None
    for variant in protocol.variants:
        out["check"][variant] = {}
        for opt in protocol.grids:
            if opt == "AdaDelta":
                continue
            mine = out["runs"][variant][opt][0]
            steps = min(protocol.check_steps, mine.steps_per_epoch, len(mine.batch_costs))
            say(f"{protocol.name}: torch.optim check {variant} {opt}, {steps} steps")
            once = dict(steps=steps, epoch_costs=False, evaluate=False)
            ref = train(T, protocol, opt, mine.lr, mine.seed, variant, reference=True, **once)
            # the same two runs in float64, where rounding cannot be what differs
            T64 = T64 or _Tensors(data, "float64")
            mine64 = train(T64, p64, opt, mine.lr, mine.seed, variant, **once)
            ref64 = train(T64, p64, opt, mine.lr, mine.seed, variant, reference=True, **once)
            out["check"][variant][opt] = {
                "steps": steps,
                "max_rel_diff": rel_diff(mine.batch_costs[:steps], ref.batch_costs),
                "max_rel_diff_float64": rel_diff(mine64.batch_costs, ref64.batch_costs),
            }
    out["seconds"]["check"] = time.perf_counter() - t2
    return out


# ------------------------------------------------------------------------------------------------
# Numbers, summary and figure
# ------------------------------------------------------------------------------------------------


def _stats(values: list[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=float)
    return {"median": float(np.median(v)), "min": float(v.min()), "max": float(v.max())}


def numbers_of(res: dict[str, Any], protocol: Protocol, data: Data) -> dict[str, Any]:
    """The JSON record: settings, grids, chosen α, per optimizer the final cost, test
    accuracy and curves over seeds, and the torch.optim check."""
    out: dict[str, Any] = {
        "data": data.name,
        "n_train": len(data.y_train),
        "n_test": len(data.y_test),
        "protocol": {k: v for k, v in dataclasses.asdict(protocol).items() if k not in ("name",)},
        "optimizers": {},
        "check": res["check"],
        "seconds": res["seconds"],
    }
    for variant in protocol.variants:
        table = {}
        for opt in protocol.grids:
            runs = res["runs"][variant][opt]
            curves = [curve(r, protocol) for r in runs]
            x = max((c[0] for c in curves), key=len)  # a diverged run stops early: pad it
            ys = np.full((len(runs), len(x)), np.nan)
            for i, (_, y) in enumerate(curves):
                ys[i, : len(y)] = y
            table[opt] = {
                "label": OPTIMIZERS[opt],
                "lr": res["best"][variant][opt]["lr"],
                "lr_at_grid_edge": res["best"][variant][opt]["edge"],
                "grid_lr": res["grid"][variant][opt]["lr"],
                "grid_score": res["grid"][variant][opt]["score"],
                "final_cost": _stats([r.final_cost for r in runs]),
                "test_accuracy": _stats([r.test_accuracy for r in runs]),
                "diverged": sum(r.diverged for r in runs),
                "curve_epochs": x.tolist(),
                "curve_median": np.median(ys, axis=0).tolist(),
                "curves": ys.tolist(),
                "seconds_per_run": _stats([r.seconds for r in runs]),
            }
        out["optimizers"][variant] = table
    return out


def _ranking(table: dict[str, Any]) -> list[str]:
    def key(opt: str) -> float:
        v = table[opt]["final_cost"]["median"]
        return math.inf if v is None else v

    return sorted(table, key=key)


def summary_of(numbers: dict[str, Any], protocol: Protocol, title: str) -> str:
    """The text summary: settings, one table per variant, the torch.optim check, times."""
    p = protocol
    grid_len = "the whole run" if p.grid_epochs is None else f"{p.grid_epochs:g} epoch(s)"
    lines = [
        f"{p.name}: {title}",
        f"data: {numbers['data']}; minibatch {p.batch_size}, {p.epochs} epoch(s), "
        f"seeds {list(p.seeds)}, {p.dtype}",
        f"grid: alpha {p.per_decade} per decade, on seed {p.seeds[0]} for {grid_len}; the "
        "best alpha (lowest training cost at the end) on every seed",
        "",
    ]
    for variant in p.variants:
        table = numbers["optimizers"][variant]
        if len(p.variants) > 1:
            lines.append(
                "with dropout:" if variant == "dropout" else f"without dropout (L2 {p.l2:g}):"
            )
        lines.append(
            f"  {'optimizer':<22} {'alpha':>8}  {'final training cost, median [range]':<36}"
            "  test accuracy, median"
        )
        for opt in _ranking(table):
            r = table[opt]
            fc, acc = r["final_cost"], r["test_accuracy"]
            cost = f"{_num(fc['median'])} [{_num(fc['min'])}, {_num(fc['max'])}]"
            notes = (" (at the grid's edge)" if r["lr_at_grid_edge"] else "") + (
                f" ({r['diverged']} diverged)" if r["diverged"] else ""
            )
            lines.append(
                f"  {r['label']:<22} {r['lr']:>8.3g}  {cost:<36}  {100 * acc['median']:.2f} %{notes}"
            )
        lines.append("")
    lines.append(
        "adamlab.torch vs torch.optim (first seed, chosen alpha, the same batches and masks):\n"
        f"  largest relative difference of the per-step training cost, in {p.dtype} (as trained)"
        " and in float64"
    )
    for variant in p.variants:
        for opt, c in numbers["check"][variant].items():
            lines.append(
                f"  {variant:<8} {opt:<13} {_num(c['max_rel_diff'], '.1e'):>8} "
                f"{_num(c['max_rel_diff_float64'], '.1e'):>8}   over {c['steps']} steps"
            )
    diffs = [c["max_rel_diff"] for v in numbers["check"].values() for c in v.values()]
    worst = max((math.inf if d is None else d for d in diffs), default=0.0)
    if p.dtype != "float64" and worst > 1e-5:
        lines.append(
            f"  ({p.dtype} rounding differences, amplified by the training: in float64 the two "
            "agree to rounding)"
        )
    s = numbers["seconds"]
    lines.append(
        f"\ntime: grid {s['grid']:.0f} s, seeds {s['seeds']:.0f} s, check {s['check']:.0f} s"
    )
    return "\n".join(lines)


def _num(v: float | None, spec: str = ".4f") -> str:
    return "diverged" if v is None or not math.isfinite(v) else format(v, spec)


def _json(obj: Any) -> Any:
    """``obj`` with non-finite floats as None (a diverged run's cost), for plain JSON."""
    if isinstance(obj, dict):
        return {k: _json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _draw_curves(ax, table: dict[str, Any], protocol: Protocol, title: str, log: bool) -> None:
    for opt, r in table.items():
        x = np.asarray(r["curve_epochs"])
        ys = np.asarray(r["curves"], dtype=float)
        with np.errstate(all="ignore"):
            ax.plot(x, np.median(ys, axis=0), color=COLORS[opt], lw=1.6,
                    label=f"{r['label']}, α = {r['lr']:.3g}")  # fmt: skip
            if len(ys) > 1:
                ax.fill_between(
                    x, ys.min(axis=0), ys.max(axis=0), color=COLORS[opt], alpha=0.18, lw=0
                )
    if log:
        ax.set_yscale("log")
        _log_labels(ax)
    ax.set_xlabel("iterations over the entire data set (epochs)")
    ax.set_ylabel("training cost")
    ax.set_title(title, loc="left", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)


def _log_labels(ax) -> None:
    """Label the minor ticks of a log axis too (a range under a decade has no major one)."""
    from matplotlib.ticker import FormatStrFormatter

    ax.yaxis.set_minor_formatter(FormatStrFormatter("%.2g"))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%.2g"))


def _draw_grid(ax, numbers: dict[str, Any], protocol: Protocol) -> None:
    styles = {"plain": "-", "dropout": "--"}
    for variant in protocol.variants:
        for opt, r in numbers["optimizers"][variant].items():
            s = np.asarray(r["grid_score"], dtype=float)
            shown = np.where(np.isfinite(s), s, np.nan)
            label = r["label"] + ("" if len(protocol.variants) == 1 else f", {variant}")
            ax.plot(r["grid_lr"], shown, styles[variant], marker="o", ms=3, color=COLORS[opt],
                    label=label)  # fmt: skip
            k = r["grid_lr"].index(r["lr"])
            ax.plot([r["lr"]], [shown[k]], marker="*", ms=11, color=COLORS[opt], ls="none")
    ax.set_xscale("log")
    ax.set_yscale("log")
    finite = [v for variant in protocol.variants for r in numbers["optimizers"][variant].values()
              for v in r["grid_score"] if v is not None]  # fmt: skip
    if finite:  # the diverging ends of the grid would flatten the rest
        ax.set_ylim(min(finite) / 1.1, min(max(finite), 3 * min(finite)) * 1.1)
    _log_labels(ax)
    ax.set_xlabel("step size α" + (" (αₜ = α/√t)" if protocol.decay else ""))
    length = (
        "the whole run" if protocol.grid_epochs is None else f"{protocol.grid_epochs:g} epoch(s)"
    )
    ax.set_ylabel(f"training cost after {length}")
    ax.set_title(f"grid on seed {protocol.seeds[0]} (★ best, run on every seed)", loc="left",
                 fontsize=10)  # fmt: skip
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=6.5, ncol=2 if len(protocol.variants) > 1 else 1, loc="upper center")


def titles(protocol: Protocol, short: str) -> tuple[str, str]:
    """(the summary's title, the figure's) for a data set named ``short``."""
    if not protocol.hidden:
        what = f"section 6.1 on {short}: L2-regularised logistic regression"
        return f"Kingma & Ba {what}, alpha_t = alpha/sqrt(t)", f"Kingma & Ba §6.1 on {short}"
    widths = " x ".join(map(str, protocol.hidden))
    what = f"on {short}: {widths} ReLU network, with and without dropout"
    return f"Kingma & Ba section 6.2 {what}", f"Kingma & Ba §6.2 {what}"


def figure(numbers: dict[str, Any], protocol: Protocol) -> Any:
    """The reproduction's figure from its numbers (the JSON record) alone."""
    from matplotlib.figure import Figure

    short = numbers["data"].split(" (")[0]
    _, title = titles(protocol, short)
    if not protocol.hidden:
        fig = Figure(figsize=(13, 4.8), layout="constrained")
        ax1, ax2 = fig.subplots(1, 2)
        table = numbers["optimizers"]["plain"]
        _draw_curves(ax1, table, protocol, "(a) L2-regularised logistic regression, "
                     "αₜ = α/√t (Figure 1, left)", log=False)  # fmt: skip
        # the paper's view: from the end of the first epoch (all start at log 10 = 2.30)
        after = [v for r in table.values() for c in r["curves"] for v in c[1:] if v is not None]
        if after:
            lo, hi = min(after), max(v for r in table.values() for v in r["curve_median"][1:2])
            ax1.set_ylim(lo - 0.08 * (hi - lo), hi + 0.25 * (hi - lo))
            ax1.text(0.02, 0.03, f"at epoch 0 all are at {table['Adam']['curve_median'][0]:.2f} "
                     "(zero weights), above the frame", transform=ax1.transAxes, va="bottom",
                     fontsize=8, color="0.35")  # fmt: skip
        _draw_grid(ax2, numbers, protocol)
        ax2.set_title("(b) " + ax2.get_title(loc="left"), loc="left", fontsize=10)
    else:
        fig = Figure(figsize=(17, 4.8), layout="constrained")
        axes = fig.subplots(1, 3)
        labels = {"dropout": "(a) with dropout (Figure 2a)",
                  "plain": f"(b) without dropout, L2 {protocol.l2:g}"}  # fmt: skip
        for ax, variant in zip(axes[:2], protocol.variants, strict=True):
            _draw_curves(ax, numbers["optimizers"][variant], protocol, labels[variant], log=True)
            ax.set_ylabel("training cost (mean minibatch cost per 1/10 epoch)")
        _draw_grid(axes[2], numbers, protocol)
        axes[2].set_title("(c) " + axes[2].get_title(loc="left"), loc="left", fontsize=10)
    fig.suptitle(
        f"{title}; median and range over {len(protocol.seeds)} seeds"
        + (" (quick)" if numbers.get("quick") else ""), x=0.01, ha="left", fontsize=11,
    )  # fmt: skip
    return fig


def protocol_of(numbers: dict[str, Any], name: str) -> Protocol:
    """The :class:`Protocol` recorded in a reproduction's numbers (its JSON file)."""
    p = dict(numbers["protocol"])
    p["grids"] = {k: tuple(v) for k, v in p["grids"].items()}
    for key in ("hidden", "variants", "seeds"):
        p[key] = tuple(p[key])
    return Protocol(name=name, **p)


def reproduce(
    out: Path, *, which: str, quick: bool = False, data: Any = None, progress: Any = None,
    **overrides: Any,
) -> Reproduction:  # fmt: skip
    """Run ``which`` ("logreg" or "mlp") and write its figure, summary and numbers."""
    t0 = time.perf_counter()
    protocol = (logreg_protocol if which == "logreg" else mlp_protocol)(quick, **overrides)
    dataset = load_data(data, quick=quick).head(protocol.n_train)
    res = experiment(dataset, protocol, progress)
    numbers = _json(numbers_of(res, protocol, dataset))
    numbers["quick"] = quick
    fig = figure(numbers, protocol)
    summary = summary_of(numbers, protocol, titles(protocol, dataset.name.split(" (")[0])[0])
    return finish(protocol.name, out, {"": fig}, summary, numbers, t0)


def reproduce_logreg(
    out: Path, *, quick: bool = False, data: Any = None, **kw: Any
) -> Reproduction:
    """``kingma-ba-logreg``: §6.1, Figure 1 (left)."""
    return reproduce(out, which="logreg", quick=quick, data=data, **kw)


def reproduce_mlp(out: Path, *, quick: bool = False, data: Any = None, **kw: Any) -> Reproduction:
    """``kingma-ba-mlp``: §6.2, Figure 2."""
    return reproduce(out, which="mlp", quick=quick, data=data, **kw)
