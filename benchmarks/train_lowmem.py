"""Does it still train? Adam with float32, 8-bit and bfloat16 state on small ML problems.

For each problem (``logreg-cancer``, ``softmax-digits``, ``mlp-digits``: minibatches of 32
as the problems define them; ``char-lm``, :class:`CharLM`, 148k parameters, minibatches of
64; the same batches for every variant) and each state precision, Adam (lr 1e-2, 3e-3 for
char-lm, unless ``--lr``) runs ``--steps`` steps from the problem's usual start with
:class:`adamlab.optim.Adam`; the table gives the final training loss (full batch), its ratio
to the full-precision run's, and the test accuracy (next character for char-lm); then the
same ratio for full precision under ``--seeds`` − 1 other minibatch orders: the spread that
noise alone gives. Full precision is the lab problems' float64 (char-lm: float32); the 8-bit
and bfloat16 states are quantized from float32 values. ``min_8bit_size=0``: the lab's models
are small (31 to 2,410 parameters), so with bitsandbytes' default of 4,096 they would keep
float32 state and the table would say nothing. BLAS runs on one thread. Not a test; the
JSON goes to ``benchmarks/results/train_lowmem.json``.

Needs scikit-learn (``pip install 'adamlab[ml]'``): the lab's data sets and char-lm's text.

    python benchmarks/train_lowmem.py                 # 4 problems, 2000 steps (~5 min)
    python benchmarks/train_lowmem.py --steps 300 --problems mlp-digits --out /tmp/train.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from _common import command, dist_version, machine, write_report

import adamlab
from adamlab import problems
from adamlab.optim import quantized

VARIANTS = {
    "full": dict(),
    "8bit": dict(state_precision="8bit", min_8bit_size=0),
    "bf16": dict(state_precision="bf16"),
    "bf16 sr": dict(state_precision="bf16", bf16_stochastic_round=True),
}
PROBLEMS = ("logreg-cancer", "softmax-digits", "mlp-digits", "char-lm")
#: Adam's learning rate per problem (1e-2 for the lab's; the language model wants less)
LRS = {"char-lm": 3e-3}


class CharLM:
    """A character-level language model on the text that ships with scikit-learn (the
    descriptions of its data sets, 43k characters, 92 symbols): the previous ``context``
    characters, embedded (``dim`` each), through a tanh layer of ``hidden`` units, to a
    softmax over the next character (Bengio et al. 2003's model). float32, 148k parameters
    by default; the last 10% of the text is held out. Same interface as the lab's problems
    as far as this script uses them (``x0``, ``oracle``, ``loss``, ``test_accuracy``)."""

    def __init__(self, context: int = 8, dim: int = 24, hidden: int = 512, batch: int = 64):
        import importlib.resources

        descr = importlib.resources.files("sklearn.datasets") / "descr"
        names = sorted(f.name for f in descr.iterdir() if f.name.endswith(".rst"))
        text = "".join((descr / n).read_text() for n in names)
        chars = sorted(set(text))
        ids = np.array([chars.index(c) for c in text], dtype=np.int64)
        cut = int(0.9 * ids.size)
        self.train_ids, self.test_ids = ids[:cut], ids[cut:]
        self.V, self.C, self.d, self.H, self.B = len(chars), context, dim, hidden, batch
        V, C, d, H = self.V, context, dim, hidden
        self.shapes = {"E": (V, d), "W1": (C * d, H), "b1": (H,), "W2": (H, V), "b2": (V,)}
        rng = np.random.default_rng(0)
        scale = {"E": 1.0, "W1": 1 / np.sqrt(C * d), "b1": 0.0, "W2": 0.1 / np.sqrt(H), "b2": 0.0}
        self.x0 = np.concatenate(
            [(rng.standard_normal(shape) * scale[k]).ravel() for k, shape in self.shapes.items()]
        ).astype(np.float32)

    def _unflatten(self, x):
        out, i = {}, 0
        for k, shape in self.shapes.items():
            n = int(np.prod(shape))
            out[k] = x[i : i + n].reshape(shape)
            i += n
        return out

    def _windows(self, ids, starts):
        idx = starts[:, None] + np.arange(self.C)[None, :]
        return ids[idx], ids[starts + self.C]

    def _loss_grad(self, x, ctx, y, need_grad=True):
        p = self._unflatten(x)
        B = len(y)
        emb = p["E"][ctx].reshape(B, -1)
        h = np.tanh(emb @ p["W1"] + p["b1"])
        logits = h @ p["W2"] + p["b2"]
        logits = logits - logits.max(axis=1, keepdims=True)
        logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        loss = -logp[np.arange(B), y].mean()
        if not need_grad:
            return loss, logp
        dlog = np.exp(logp)
        dlog[np.arange(B), y] -= 1
        dlog /= B
        dh = (dlog @ p["W2"].T) * (1 - h * h)
        dE = np.zeros_like(p["E"])
        np.add.at(dE, ctx.ravel(), (dh @ p["W1"].T).reshape(-1, self.d))
        grads = {"E": dE, "W1": emb.T @ dh, "b1": dh.sum(0), "W2": h.T @ dlog, "b2": dlog.sum(0)}
        return loss, np.concatenate([grads[k].ravel() for k in self.shapes]).astype(np.float32)

    def oracle(self, seed: int = 0):
        n = self.train_ids.size - self.C

        def minibatch(x, t):
            starts = np.random.default_rng([seed, t]).integers(0, n, self.B)
            return self._loss_grad(x, *self._windows(self.train_ids, starts))

        return minibatch

    def _all(self, x, ids):
        starts = np.arange(ids.size - self.C)
        total, correct = 0.0, 0
        for lo in range(0, starts.size, 4096):
            ctx, y = self._windows(ids, starts[lo : lo + 4096])
            loss, logp = self._loss_grad(x, ctx, y, need_grad=False)
            total += float(loss) * len(y)
            correct += int((logp.argmax(1) == y).sum())
        return total / starts.size, correct / starts.size

    def loss(self, x):
        return self._all(x, self.train_ids)[0]

    def test_accuracy(self, x):
        return self._all(x, self.test_ids)[1]


def get_problem(name: str):
    return CharLM() if name == "char-lm" else problems.PROBLEMS[name]


def run(problem, variant: dict, steps: int, lr: float, seed: int = 0) -> np.ndarray:
    return run_with_v(problem, variant, steps, lr, seed)[0]


def run_with_v(problem, variant: dict, steps: int, lr: float, seed: int = 0):
    """The final parameters, and how the final v compares with v computed exactly (float64)
    from the same gradients, v*ₜ = β₂·v*ₜ₋₁ + (1 − β₂)·gₜ²: the quartiles and the 10th and
    90th percentiles of v/v* over the elements where v* > 0. Rounding in the state adds up
    over the ~1/(1 − β₂) steps v remembers; this shows whether it leans one way."""
    opt = adamlab.optim.Adam(lr=lr, **variant)
    oracle = problem.oracle(seed)  # the minibatch order
    x = problem.x0.copy()
    s = opt.init(x)
    exact = np.zeros(x.shape, np.float64)
    b2 = float(opt.betas[1])
    for t in range(steps):
        _, g = oracle(x, t)
        x, s = opt.step(x, g, s)
        exact = b2 * exact + (1 - b2) * np.square(np.asarray(g, np.float64))
    v = np.asarray(quantized.load(s.v), np.float64)
    ratio = v[exact > 0] / exact[exact > 0]
    q = np.quantile(ratio, [0.1, 0.25, 0.5, 0.75, 0.9]) if ratio.size else [np.nan] * 5
    return x, dict(zip(("p10", "p25", "median", "p75", "p90"), map(float, q), strict=True))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--lr", type=float, default=None, help="for every problem (else LRS)")
    ap.add_argument("--problems", default=",".join(PROBLEMS))
    ap.add_argument("--seeds", type=int, default=3, help="minibatch orders for the spread of full")
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "train_lowmem.json"
    )  # fmt: skip
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # small matrices: BLAS threads only contend (on a shared machine, 40x)
    rows = []
    print(f"{'problem':<16} {'state':<8} {'final loss':>11} {'/ full':>8} {'test acc':>9} "
          f"{'v / exact v: p10':>17} {'median':>7} {'p90':>7}")  # fmt: skip
    for name in args.problems.split(","):
        problem = get_problem(name)
        lr = args.lr if args.lr is not None else LRS.get(name, 1e-2)
        spread = [float(problem.loss(run(problem, {}, args.steps, lr, seed)))
                  for seed in range(1, args.seeds)]  # fmt: skip
        base = None
        for label, variant in VARIANTS.items():
            x, v = run_with_v(problem, variant, args.steps, lr)
            loss = float(problem.loss(x))
            acc = float(problem.test_accuracy(x))
            base = loss if base is None else base
            rows.append(dict(problem=name, state=label, lr=lr, final_loss=loss, ratio=loss / base,
                             test_accuracy=acc, v_vs_exact=v))  # fmt: skip
            print(f"{name:<16} {label:<8} {loss:11.6f} {loss / base:8.4f} {acc:9.4f} "
                  f"{v['p10']:17.3f} {v['median']:7.3f} {v['p90']:7.3f}")  # fmt: skip
        if spread:
            lo, hi = min(spread) / base, max(spread) / base
            rows.append(dict(problem=name, state="full, other minibatch orders",
                             ratio_min=lo, ratio_max=hi, final_losses=spread))  # fmt: skip
            print(
                f"{name:<16} full at {len(spread)} other minibatch orders: / full {lo:.4f}-{hi:.4f}"
            )
            sys.stdout.flush()
    report = {
        "benchmark": "train_lowmem",
        "command": command("benchmarks/train_lowmem.py", argv),
        "steps": args.steps,
        "lr": args.lr if args.lr is not None else {n: LRS.get(n, 1e-2) for n in PROBLEMS},
        # (char-lm's text is scikit-learn's data-set descriptions: its version decides them)
        "machine": machine(numpy=np.__version__, scikit_learn=dist_version("scikit-learn")),
        "rows": rows,
    }
    write_report(args.out, report, indent=1)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
