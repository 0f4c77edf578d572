"""Does it still train? Adam with float32, 8-bit and bfloat16 state on the lab's ML problems.

For each problem (``logreg-cancer``, ``softmax-digits``, ``mlp-digits``; minibatches of 32 as
the problems define them, the same batches for every variant) and each state precision, Adam
(lr 1e-2 unless ``--lr``) runs ``--steps`` steps from the problem's usual start with
:class:`adamlab.optim.Adam`; the table gives the final training loss (full batch), its ratio
to the full-precision run's, and the test accuracy; then the same ratio for full precision
under ``--seeds`` − 1 other minibatch orders: the spread that noise alone gives. Full precision is the problems' float64
(their parameters are float64); the 8-bit and bfloat16 states are quantized from float32
values. ``min_8bit_size=0``: these models are small (31 to 2,410 parameters), so with
bitsandbytes' default of 4,096 they would keep float32 state and the table would say
nothing. Not a test; the JSON goes to ``benchmarks/results/train_lowmem.json``.

    python benchmarks/train_lowmem.py                 # 3 problems, 2000 steps
    python benchmarks/train_lowmem.py --steps 300 --out /tmp/train.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

import adamlab
from adamlab import problems

VARIANTS = {
    "full": dict(),
    "8bit": dict(state_precision="8bit", min_8bit_size=0),
    "bf16": dict(state_precision="bf16"),
    "bf16 sr": dict(state_precision="bf16", bf16_stochastic_round=True),
}
PROBLEMS = ("logreg-cancer", "softmax-digits", "mlp-digits")


def run(problem, variant: dict, steps: int, lr: float, seed: int = 0) -> np.ndarray:
    opt = adamlab.optim.Adam(lr=lr, **variant)
    oracle = problem.oracle(seed)  # the minibatch order
    x = problem.x0.copy()
    s = opt.init(x)
    for t in range(steps):
        _, g = oracle(x, t)
        x, s = opt.step(x, g, s)
    return x


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--problems", default=",".join(PROBLEMS))
    ap.add_argument("--seeds", type=int, default=3, help="minibatch orders for the spread of full")
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "train_lowmem.json"
    )  # fmt: skip
    args = ap.parse_args(argv)
    rows = []
    print(f"{'problem':<16} {'state':<8} {'final loss':>11} {'/ full':>8} {'test acc':>9}")
    for name in args.problems.split(","):
        problem = problems.PROBLEMS[name]
        spread = [float(problem.loss(run(problem, {}, args.steps, args.lr, seed)))
                  for seed in range(1, args.seeds)]  # fmt: skip
        base = None
        for label, variant in VARIANTS.items():
            x = run(problem, variant, args.steps, args.lr)
            loss = float(problem.loss(x))
            acc = float(problem.test_accuracy(x))
            base = loss if base is None else base
            rows.append(dict(problem=name, state=label, final_loss=loss, ratio=loss / base,
                             test_accuracy=acc))  # fmt: skip
            print(f"{name:<16} {label:<8} {loss:11.6f} {loss / base:8.4f} {acc:9.4f}")
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
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "steps": args.steps,
        "lr": args.lr,
        "adamlab": adamlab.__version__,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
