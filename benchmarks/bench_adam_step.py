"""Median time of one Adam step: torch.optim (for-loop, foreach, fused) vs adamlab.torch.Adam.

Two workloads of 20M float32 parameters: (a) one tensor, (b) 200 tensors of mixed sizes.
The memory floor is a bare numba kernel that moves the same bytes as an Adam step (reads p,
g, m, v; writes p, m, v: 7 × 4 bytes per parameter) with a trivial update, over the same
chunks and threads as adamlab's kernel, reading the tensors' addresses every step as a step
must; nothing can step faster than that. "bare floor kernel" is the same kernel with the
addresses read once before timing: the floor less all per-step Python.

All variants live in one process and are timed in interleaved rounds (each round steps
every variant once), so they share the machine's state; the table reports medians. Not a
test: it never asserts on time.

PyTorch and numba each run an OpenMP thread pool. By default OpenMP workers spin for a while
after a parallel region, so on a small machine the pool that just ran steals the cores of
the one that runs next (on 2 cores this doubled every time here). The script therefore sets
``OMP_WAIT_POLICY=PASSIVE`` (for both pools) unless it is already set; it is recorded in the
JSON with the load average, because the numbers depend on both.

    python benchmarks/bench_adam_step.py                 # 20M parameters, 30 rounds
    python benchmarks/bench_adam_step.py --n 2000000 --rounds 10 --out /tmp/bench.json
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch and numba start OpenMP

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numba
import numpy as np
import torch
from numba import njit, prange

import adamlab
import adamlab.torch as at
from adamlab.kernels import adam_host
from adamlab.kernels.numba_adam import _views, warm_up


@njit(parallel=True, fastmath=False, cache=True, nogil=True)
def _floor_kernel(ptrs, sizes, chunks, marker, c):
    """Reads p, g, m, v and writes p, m, v once each, doing almost no arithmetic."""
    for j in prange(chunks.shape[0]):
        p, g, m, v, _ = _views(ptrs, sizes, chunks, j, marker)
        for i in range(p.size):
            gi = g[i]
            m[i] = m[i] + gi
            v[i] = v[i] + c
            p[i] = p[i] - gi


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
        chunks = adam_host.chunk_table(tuple(int(s) for s in sizes))
        _floor_kernel(ptrs, sizes, chunks, np.empty(0, np.float32), np.float32(1e-3))


class BareFloor(Floor):
    """The floor kernel alone: addresses, sizes and chunks read once, before timing. Stricter
    than :class:`Floor` by the Python work of a step (on 200 tensors that work is mostly
    cache misses: the kernel's stream has just evicted the tensors' metadata)."""

    def __init__(self, params):
        super().__init__(params)
        t = self.tensors
        self.ptrs = np.array([[x[i].data_ptr() for x in t] for i in (0, 1, 2, 3, 3)], np.int64)
        self.sizes = np.array([x[0].numel() for x in t], dtype=np.int64)
        self.chunks = adam_host.chunk_table(tuple(int(s) for s in self.sizes))
        self.marker = np.empty(0, np.float32)

    def step(self):
        _floor_kernel(self.ptrs, self.sizes, self.chunks, self.marker, np.float32(1e-3))


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


def variants(sizes: list[int]) -> dict[str, object]:
    mk = lambda seed: make_params(sizes, seed)  # noqa: E731
    return {
        "torch for-loop": torch.optim.Adam(mk(1), lr=1e-3, foreach=False),
        "torch foreach": torch.optim.Adam(mk(1), lr=1e-3, foreach=True),
        "torch fused": torch.optim.Adam(mk(1), lr=1e-3, fused=True),
        "adamlab": at.Adam(mk(1), lr=1e-3, fused=True),
        "memory floor": Floor(mk(1)),
        "bare floor kernel": BareFloor(mk(1)),
    }


def measure(opts: dict[str, object], rounds: int, warmup: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in opts}
    for r in range(warmup + rounds):
        for name, opt in opts.items():
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
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "adam_step.json"
    )
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    warm_up()
    workloads = {
        "one tensor": [args.n],
        f"{args.tensors} tensors": mixed_sizes(args.n, args.tensors),
    }
    bytes_per_step = 7 * 4 * args.n
    report = {
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *(argv or sys.argv[1:])]),
        "n_params": args.n,
        "bytes_per_step": bytes_per_step,
        "threads": {"torch": torch.get_num_threads(), "numba": numba.get_num_threads()},
        "machine": {
            "cpu": _cpu_name(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numba": numba.__version__,
            "adamlab": adamlab.__version__,
        },
        "rounds": args.rounds,
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
        "numba_threading_layer": None,
        "load_average_before": os.getloadavg(),
        "workloads": {},
    }
    for wname, sizes in workloads.items():
        opts = variants(sizes)
        times = measure(opts, args.rounds, args.warmup)
        med = {k: statistics.median(v) for k, v in times.items()}
        rows = {}
        for name, t in med.items():
            rows[name] = {
                "median_ms": 1e3 * t,
                "min_ms": 1e3 * min(times[name]),
                "vs_torch_fused": t / med["torch fused"],
                "floor_fraction": med["memory floor"] / t,
                "GB_per_s": bytes_per_step / t / 1e9,
            }
        report["workloads"][wname] = {"tensors": len(sizes), "results": rows}
        del opts
        _print_table(wname, len(sizes), rows)
    report["numba_threading_layer"] = numba.threading_layer()
    report["load_average_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


def _print_table(wname: str, count: int, rows: dict) -> None:
    print(f"\n{wname} ({count} tensor{'s' if count > 1 else ''}), float32, median of rounds")
    print(f"{'':16} {'ms/step':>9} {'× torch fused':>14} {'% of floor':>11} {'GB/s':>7}")
    for name, r in rows.items():
        print(
            f"{name:16} {r['median_ms']:9.2f} {r['vs_torch_fused']:14.2f} "
            f"{100 * r['floor_fraction']:10.0f}% {r['GB_per_s']:7.1f}"
        )


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    raise SystemExit(main())
