"""Where an Adam step's time goes besides memory: host work and the element rule's arithmetic.

Three measurements, each in one process (not a test: it never asserts on time):

1. **Tiny tensors**: a step of ``--tiny`` parameters of 4 elements each, where a step is all
   host work (Python, the plan's checks, the launch): adamlab.torch.Adam against
   torch.optim.Adam(fused=True), in blocks of 100 steps taking turns; median µs per step.
2. **Host work**: the 200-tensor workload of ``bench_adam_step.py`` (20M parameters), with
   adamlab's kernel launch replaced by nothing: what a step costs on top of its kernel, in
   steps one after the other (warm caches) and with each step preceded by a memory-floor
   pass over other tensors of the same sizes (as a real step's own stream leaves the
   caches). Median ms.
3. **The kernel's arithmetic**: adamlab's C++ float32 kernel alone (addresses read once) on
   arrays small enough to stay in the caches and on 20M parameters; ns per element on
   PyTorch's threads. Where the two are close, the step is bound by its arithmetic (three
   divisions and a square root per element, in the reference's order) as much as by
   memory. (This machine's speed drifts by tens of percent over minutes: compare figures
   of one run.)

    python benchmarks/bench_step_host.py                       # → benchmarks/results/step_host.json
    python benchmarks/bench_step_host.py --out /tmp/host.json --rounds 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import command, machine, write_report
from bench_adam_step import BareFloor, make_params, mixed_sizes

import adamlab
import adamlab.torch as at
from adamlab.kernels import adam_host, cpp_adam
from adamlab.torch import fast


def _median_us(times: list[float]) -> float:
    return statistics.median(times) * 1e6


def tiny(n_tensors: int, rounds: int) -> dict:
    def make(cls, **kw):
        ps = [torch.zeros(4, requires_grad=True) for _ in range(n_tensors)]
        for p in ps:
            p.grad = torch.ones(4)
        return cls(ps, lr=1e-3, **kw)

    opts = {"adamlab": make(at.Adam), "torch fused": make(torch.optim.Adam, fused=True)}
    times: dict[str, list[float]] = {k: [] for k in opts}
    for o in opts.values():
        for _ in range(20):
            o.step()
    for _ in range(rounds):  # blocks of 100 steps each, the optimizers taking turns
        for name, o in opts.items():
            for _ in range(100):
                t0 = time.perf_counter()
                o.step()
                times[name].append(time.perf_counter() - t0)
    return {name: {"median_us": _median_us(t)} for name, t in times.items()}


def host_cold(rounds: int) -> dict:
    sizes = mixed_sizes(20_000_000, 200)
    opt = at.Adam(make_params(sizes, 0), lr=1e-3)
    opt.step()
    opt.step()
    plan = next(iter(opt._fused_plans.values()))
    for launch in plan.launches:
        launch.go = lambda sc, fl: None  # everything but the kernel
    flush = BareFloor(make_params(sizes, 1))
    warm = []
    for _ in range(rounds):  # steps one after the other: the caches hold what a step touches
        t0 = time.perf_counter()
        opt.step()
        warm.append(time.perf_counter() - t0)
    cold = []
    for _ in range(rounds):  # each step after a stream like its own kernel's
        flush.step()
        t0 = time.perf_counter()
        opt.step()
        cold.append(time.perf_counter() - t0)
    return {
        "tensors": len(sizes),
        "after_a_cache_flush_ms": statistics.median(cold) * 1e3,
        "warm_ms": statistics.median(warm) * 1e3,
    }


def arithmetic(rounds: int) -> dict:
    opt = adamlab.Adam(lr=1e-3)
    sc, fl = adam_host.adam_step_args(opt, 5, np.float32)
    rng = np.random.default_rng(0)
    out = {}
    for n in (1 << 17, 1 << 20, 20_000_000):
        arrays = [rng.standard_normal(n).astype(np.float32) for _ in range(4)]
        arrays[3] = np.abs(arrays[3])
        p, g, m, v = arrays
        ptrs = np.array([[a.ctypes.data] for a in (p, g, m, v, m)], dtype=np.int64)
        go = cpp_adam.launcher("float32", ptrs, np.array([n], dtype=np.int64))
        reps = max(1, 40_000_000 // n)
        go(sc, fl)
        per = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            for _ in range(reps):
                go(sc, fl)
            per.append((time.perf_counter() - t0) / reps / n)
        out[str(n)] = {"bytes": 28 * n, "ns_per_element": min(per) * 1e9}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--tiny", type=int, default=200, help="tensors in the tiny-tensor step")
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "step_host.json"
    )  # fmt: skip
    args = ap.parse_args(argv)
    if fast.cpu_kernel() != "cpp":
        print("the C++ kernel is unavailable: this benchmark measures it", file=sys.stderr)
        return 2
    report = {
        "command": command("benchmarks/bench_step_host.py", argv),
        "machine": machine(),
        "torch_threads": torch.get_num_threads(),
        "load_average_before": os.getloadavg(),
        "tiny": {"tensors": args.tiny, **tiny(args.tiny, args.rounds)},
        "host_cold": host_cold(args.rounds),
        "arithmetic": arithmetic(min(args.rounds, 7)),
        "load_average_after": os.getloadavg(),
    }
    t = report["tiny"]
    print(f"{args.tiny} tiny tensors: adamlab {t['adamlab']['median_us']:.0f} us/step, "
          f"torch fused {t['torch fused']['median_us']:.0f} us/step")  # fmt: skip
    h = report["host_cold"]
    print(f"host work of a 200-tensor step: {h['after_a_cache_flush_ms']:.2f} ms after a cache "
          f"flush, {h['warm_ms']:.2f} ms warm")  # fmt: skip
    for n, a in report["arithmetic"].items():
        print(f"C++ float32 kernel, {int(n):>10,} elements ({a['bytes'] / 2**20:7.1f} MiB): "
              f"{a['ns_per_element']:.3f} ns/element")  # fmt: skip
    write_report(args.out, report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
