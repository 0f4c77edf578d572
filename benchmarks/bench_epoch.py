"""Benchmark: one epoch of Kingma & Ba's §6.2 network with adamlab's Adam and PyTorch's.

    python benchmarks/bench_epoch.py [--rounds 3] [--steps N] [--data DIR] [--out FILE]

The workload of ``adamlab reproduce kingma-ba-mlp``: a 784 → 1000 → 1000 → 10 ReLU network
(1,796,010 float32 parameters in 6 tensors), minibatches of 128, one epoch of Fashion-MNIST
(469 steps; ``--steps`` times fewer), the same initial weights and the same batch order for
every contestant. Contestants:

* ``adamlab.torch.Adam`` — the drop-in; its step runs adamlab's fused CPU kernel;
* ``torch.optim.Adam(fused=True)`` — PyTorch's fused CPU step, the one to match;
* ``torch.optim.Adam`` — PyTorch's default (its for-loop step on the CPU), for context.

Every round trains one epoch with each contestant in turn (interleaved, so that a change in the
machine's load hits all alike; the order rotates from round to round) from a fresh copy of the
same initial weights; reported are the
median over rounds of the epoch's wall time and of the time spent inside ``optimizer.step()``
(the rest — forward, backward, batching — is the same code for all three), and the ratios to
``torch.optim.Adam(fused=True)``. One round first, untimed, warms up every contestant (the C++
kernel is built or loaded then). The benchmark never asserts on time; it prints a table and
writes ``benchmarks/results/bench_epoch.json``. ``OMP_WAIT_POLICY=PASSIVE`` is set (by
re-running itself) unless ``--no-passive``: PyTorch's and numba's OpenMP pools otherwise spin
against each other on a small machine.

Without Fashion-MNIST (Debian's ``dataset-fashion-mnist``) or ``--data``, random bytes of
the same shape stand in: the time does not depend on the pixels.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from _common import command, environment, machine, rerun_passive, write_report

BATCH = 128
WIDTHS = (784, 1000, 1000, 10)


def load_images(data: str | None) -> tuple[np.ndarray, np.ndarray, str]:
    from adamlab.problems.idx import FASHION_MNIST_DIR, load_folder

    try:
        s = load_folder(data)
        return s.X_train, s.y_train, str(data or FASHION_MNIST_DIR)
    except FileNotFoundError:
        if data is not None:
            raise
        rng = np.random.default_rng(0)
        X = rng.integers(0, 256, size=(60000, 784), dtype=np.uint8)
        return X, rng.integers(0, 10, size=60000), "random bytes (Fashion-MNIST not installed)"


def contestants():
    import torch

    import adamlab.torch as at

    return {
        "adamlab.torch.Adam": lambda p: at.Adam(p, lr=1e-3),
        "torch Adam(fused=True)": lambda p: torch.optim.Adam(p, lr=1e-3, fused=True),
        "torch Adam (default)": lambda p: torch.optim.Adam(p, lr=1e-3),
    }


def initial_weights(torch):
    g = torch.Generator().manual_seed(0)
    params = []
    for fan_in, fan_out in itertools.pairwise(WIDTHS):
        params.append(torch.randn(fan_out, fan_in, generator=g) * (2.0 / fan_in) ** 0.5)
        params.append(torch.zeros(fan_out))
    return params


def epoch(torch, make_opt, init, X, y, order, steps: int) -> tuple[float, float, float]:
    """(epoch seconds, seconds inside step(), last minibatch cost) of one epoch."""
    F = torch.nn.functional
    params = [p.clone().requires_grad_() for p in init]
    opt = make_opt(params)
    in_step = 0.0
    t0 = time.perf_counter()
    for k in range(steps):
        idx = order[k * BATCH : (k + 1) * BATCH]
        h = X[idx]
        for i in range(0, len(params) - 2, 2):
            h = torch.relu(F.linear(h, params[i], params[i + 1]))
        loss = F.cross_entropy(F.linear(h, params[-2], params[-1]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        s = time.perf_counter()
        opt.step()
        in_step += time.perf_counter() - s
    return time.perf_counter() - t0, in_step, float(loss.detach())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="timed epochs per contestant")
    ap.add_argument("--steps", type=int, default=None, help="steps per epoch (default: all)")
    ap.add_argument("--data", default=None, help="a folder of MNIST-format files")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--no-passive", action="store_true", help="keep OMP_WAIT_POLICY as it is")
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "bench_epoch.json"
    )
    args = ap.parse_args(argv)
    if not args.no_passive:
        rerun_passive(__file__, argv, flag=None)

    import torch

    from adamlab.torch import fast

    if args.threads:
        torch.set_num_threads(args.threads)
    Xb, yb, source = load_images(args.data)
    X = torch.from_numpy(Xb.astype(np.float32) / np.float32(255.0))
    y = torch.from_numpy(np.array(yb, dtype=np.int64))
    per_epoch = -(-len(y) // BATCH)
    steps = min(args.steps or per_epoch, per_epoch)
    order = torch.from_numpy(np.random.default_rng(0).permutation(len(y)))
    init = initial_weights(torch)
    opts = contestants()
    kernel = fast.cpu_kernel() if hasattr(fast, "cpu_kernel") else "numba"

    for make in opts.values():  # warm-up: kernels built/loaded, caches filled
        epoch(torch, make, init, X, y, order, min(steps, 20))
    times: dict[str, list[tuple[float, float, float]]] = {k: [] for k in opts}
    load_before = os.getloadavg()
    names = list(opts)
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:  # each starts a round
            times[name].append(epoch(torch, opts[name], init, X, y, order, steps))
            print(f"round {r + 1}/{args.rounds} {name:<24} {times[name][-1][0]:7.2f} s",
                  file=sys.stderr, flush=True)  # fmt: skip
    ref = "torch Adam(fused=True)"
    med = {k: (statistics.median(t[0] for t in v), statistics.median(t[1] for t in v))
           for k, v in times.items()}  # fmt: skip
    rows = {}
    for name, (ep, st) in med.items():
        paired = [a[0] / b[0] for a, b in zip(times[name], times[ref], strict=True)]
        rows[name] = {
            "epoch_s": ep,
            "epoch_vs_torch_fused": ep / med[ref][0],
            "paired_epoch_vs_torch_fused": statistics.median(paired),
            "step_ms": 1e3 * st / steps,
            "step_vs_torch_fused": st / med[ref][1],
            "epoch_s_all_rounds": [t[0] for t in times[name]],
            "last_cost_round_1": times[name][0][2],
        }
    report = {
        "command": command("benchmarks/bench_epoch.py", argv),
        "workload": f"MLP {'-'.join(map(str, WIDTHS))} ReLU, float32, batch {BATCH}, "
        f"{steps} of {per_epoch} steps per epoch",
        "data": source,
        "rounds": args.rounds,
        "adamlab_cpu_kernel": kernel,
        "torch_threads": torch.get_num_threads(),
        "machine": machine(),
        "environment": environment(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "results": rows,
    }
    print(f"\n{report['workload']}; {source}; median of {args.rounds} interleaved rounds")
    print(
        f"{'optimizer':<24} {'epoch s':>8} {'x torch fused':>14} {'step ms':>8} {'x torch fused':>14}"
    )
    for name, r in rows.items():
        print(f"{name:<24} {r['epoch_s']:8.2f} {r['epoch_vs_torch_fused']:14.3f} "
              f"{r['step_ms']:8.2f} {r['step_vs_torch_fused']:14.3f}")  # fmt: skip
    write_report(args.out, report)
    print(f"\nadamlab's CPU kernel: {kernel}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
