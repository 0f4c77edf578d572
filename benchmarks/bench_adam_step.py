"""Median time of one Adam step: torch.optim (for-loop, foreach, fused) vs adamlab.torch.Adam.

Two workloads of 20M float32 parameters: (a) one tensor, (b) 200 tensors of mixed sizes.
The memory floor is a bare kernel that moves the same bytes as an Adam step (reads p, g, m,
v; writes p, m, v: 7 × 4 bytes per parameter) with a trivial update, over the same blocks
and threads as adamlab's C++ kernel (on PyTorch's thread pool), reading the tensors'
addresses every step as a step must; nothing can step faster than that. "bare floor
kernel" is the same kernel with the addresses read once before timing: the floor less all
per-step Python.

All variants live in one process and are timed in interleaved rounds (each round steps
every variant once, in an order that rotates from round to round), so they share the
machine's state; the table reports medians, and "paired" is the median over rounds of a
variant's time over torch fused's in the same round (with its 25th–75th percentiles). Not
a test: it never asserts on time.

The script runs in the environment it is started in, as users' code does: it sets no
``OMP_*`` variable. ``--passive`` re-runs it under ``OMP_WAIT_POLICY=PASSIVE`` (OpenMP
workers sleep at once after a parallel region instead of spinning), for comparison;
``ADAMLAB_CPU_KERNEL=numba`` measures adamlab's numba kernel instead of the C++ one.

    python benchmarks/bench_adam_step.py                 # 20M parameters, 30 rounds
    python benchmarks/bench_adam_step.py --quick --out /tmp/a.json   # 8 rounds: a first look
    python benchmarks/bench_adam_step.py --n 2000000 --rounds 10 --out /tmp/bench.json
    python benchmarks/bench_adam_step.py --passive --out benchmarks/results/adam_step_passive.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import _common as common
import numpy as np
import torch

import adamlab.torch as at
from adamlab.kernels import cpp_adam
from adamlab.torch import fast


class Floor:
    """The memory floor as an object with ``step()``, over tensors laid out like Adam's. Each
    step reads the tensors' addresses and sizes again, as an optimizer step must (gradients
    can be new tensors every step)."""

    def __init__(self, params):
        self.tensors = [(p, p.grad, torch.zeros_like(p), torch.zeros_like(p)) for p in params]

    def step(self):
        ptrs = np.array(
            [[t[i].data_ptr() for t in self.tensors] for i in (0, 1, 2, 3, 3)], np.int64
        )
        sizes = np.array([t[0].numel() for t in self.tensors], dtype=np.int64)
        offsets = np.zeros(len(sizes) + 1, np.int64)
        np.cumsum(sizes, out=offsets[1:])
        cpp_adam.floor_step(ptrs, offsets)


class BareFloor(Floor):
    """The floor kernel alone: addresses and sizes read once, before timing. Stricter than
    :class:`Floor` by the Python work of a step (on 200 tensors that work is mostly cache
    misses: the kernel's stream has just evicted the tensors' metadata)."""

    def __init__(self, params):
        super().__init__(params)
        t = self.tensors
        self.ptrs = np.array([[x[i].data_ptr() for x in t] for i in (0, 1, 2, 3, 3)], np.int64)
        sizes = np.array([x[0].numel() for x in t], dtype=np.int64)
        self.offsets = np.zeros(len(sizes) + 1, np.int64)
        np.cumsum(sizes, out=self.offsets[1:])

    def step(self):
        cpp_adam.floor_step(self.ptrs, self.offsets)


def mixed_sizes(total: int, count: int, seed: int = 0) -> list[int]:
    """``count`` log-uniform sizes (a few big matrices, many small vectors) summing to ``total``."""
    rng = np.random.default_rng(seed)
    w = np.exp(rng.uniform(np.log(1.0), np.log(5000.0), size=count))
    sizes = np.maximum(1, np.floor(w / w.sum() * total)).astype(np.int64)
    sizes[np.argmax(sizes)] += total - int(sizes.sum())
    return [int(s) for s in sizes]


def make_params(sizes: list[int], seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    params = []
    for n in sizes:
        p = torch.randn(n, generator=gen).requires_grad_()
        p.grad = torch.randn(n, generator=gen)
        params.append(p)
    return params


def variants(sizes: list[int], floors: bool) -> dict[str, object]:
    mk = lambda seed: make_params(sizes, seed)  # noqa: E731
    out = {
        "torch for-loop": torch.optim.Adam(mk(1), lr=1e-3, foreach=False),
        "torch foreach": torch.optim.Adam(mk(1), lr=1e-3, foreach=True),
        "torch fused": torch.optim.Adam(mk(1), lr=1e-3, fused=True),
        "adamlab": at.Adam(mk(1), lr=1e-3, fused=True),
    }
    if floors:
        out["memory floor"] = Floor(mk(1))
        out["bare floor kernel"] = BareFloor(mk(1))
    return out


def measure(opts: dict[str, object], rounds: int, warmup: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in opts}
    items = list(opts.items())
    for r in range(warmup + rounds):
        k = r % len(items)
        for name, opt in items[k:] + items[:k]:
            t0 = time.perf_counter()
            opt.step()
            dt = time.perf_counter() - t0
            if r >= warmup:
                times[name].append(dt)
    return times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000_000, help="parameters per workload")
    ap.add_argument("--tensors", type=int, default=200, help="tensors in the mixed workload")
    common.add_run_options(ap, "adam_step.json")
    args = ap.parse_args(argv)
    common.start_run(args, __file__, argv)
    kernel = fast.cpu_kernel()  # builds or loads the C++ kernel (or settles on numba) now
    floors = cpp_adam.load() is not None
    workloads = {
        "one tensor": [args.n],
        f"{args.tensors} tensors": mixed_sizes(args.n, args.tensors),
    }
    bytes_per_step = 7 * 4 * args.n
    report = {
        "command": common.command(sys.argv[0], argv),
        "n_params": args.n,
        "bytes_per_step": bytes_per_step,
        "torch_threads": torch.get_num_threads(),
        "adamlab_cpu_kernel": kernel,
        "machine": common.machine(),
        "rounds": args.rounds,
        "environment": common.environment(),
        "load_average_before": os.getloadavg(),
        "workloads": {},
    }
    for wname, sizes in workloads.items():
        opts = variants(sizes, floors)
        times = measure(opts, args.rounds, args.warmup)
        med = {k: statistics.median(v) for k, v in times.items()}
        rows = {}
        for name, t in med.items():
            paired = [a / b for a, b in zip(times[name], times["torch fused"], strict=True)]
            lo, mid, hi = common.quartiles(paired)
            rows[name] = {
                "median_ms": 1e3 * t,
                "min_ms": 1e3 * min(times[name]),
                "vs_torch_fused": t / med["torch fused"],
                "paired_vs_torch_fused": mid,
                "paired_vs_torch_fused_iqr": [lo, hi],
                "floor_fraction": med["memory floor"] / t if floors else None,
                "GB_per_s": bytes_per_step / t / 1e9,
            }
        report["workloads"][wname] = {"tensors": len(sizes), "results": rows}
        del opts
        _print_table(wname, len(sizes), rows)
    if "numba" in sys.modules:
        import numba

        report["numba_threading_layer"] = numba.threading_layer()
    report["numba_imported"] = "numba" in sys.modules
    report["load_average_after"] = os.getloadavg()
    common.write_report(args.out, report)
    print(f"\nadamlab's CPU kernel: {kernel}; wrote {args.out}")
    return 0


def _print_table(wname: str, count: int, rows: dict) -> None:
    print(f"\n{wname} ({count} tensor{'s' if count > 1 else ''}), float32, median of rounds")
    print(
        f"{'':18} {'ms/step':>8} {'× torch fused':>14} {'paired (25–75%)':>21} "
        f"{'% of floor':>11} {'GB/s':>6}"
    )
    for name, r in rows.items():
        lo, hi = r["paired_vs_torch_fused_iqr"]
        floor = f"{100 * r['floor_fraction']:10.0f}%" if r["floor_fraction"] else f"{'–':>11}"
        print(
            f"{name:18} {r['median_ms']:8.2f} {r['vs_torch_fused']:14.2f} "
            f"{r['paired_vs_torch_fused']:7.2f} ({lo:.2f}–{hi:.2f}) {floor} {r['GB_per_s']:6.1f}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
