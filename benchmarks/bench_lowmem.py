"""Fewer bytes per step: 8-bit and bfloat16 Adam state, and clip_grad_norm_ fused into the step.

Contestants, each with its own float32 parameter of ``--params`` elements in ``--tensors``
tensors (same values) and a fixed gradient (same values):

* ``torch fused``: ``torch.optim.Adam(fused=True)``, float32 state (the reference of ratios);
* ``adamlab 8bit``: ``adamlab.torch.Adam8bit`` (block-wise 8-bit m and v, fused C++ step);
* ``adamlab bf16``: ``adamlab.torch.AdamBF16`` (bfloat16 m and v);
* ``adamlab bf16 sr``: the same with ``bf16_stochastic_round=True``;
* ``bnb 8bit``: bitsandbytes' ``Adam8bit`` on the CPU, if bitsandbytes is installed;
* ``torchao 8bit``: torchao's ``Adam8bit`` (its step compiled by ``torch.compile``), if torchao
  is installed. It quantizes a tensor only if its size is a multiple of its block size (256)
  and at least 4,096; other tensors keep float32 state (``--params 2000000``, say, is not a
  multiple of 256). The peers run ``--peer-rounds`` of the rounds only: they are slow;
* ``arithmetic floor``: the arithmetic of a float32 step of as many elements with Adam's
  defaults (the element rule the 8-bit and bfloat16 steps run), over the same threads, each
  thread on its own scratch arrays in its L1 cache (``cpp_adam.arith_floor``): next to no
  memory traffic. No step through this loop, on these threads, can be faster, whatever it
  stores its state in; only where the steps run the C++ kernel;
* ``torch clip+fused``: ``torch.nn.utils.clip_grad_norm_(max_norm=1)`` then torch's fused step;
* ``adamlab clip+8bit`` / ``adamlab clip+bf16`` / ``adamlab clip+fp32``:
  ``adamlab.torch.clip_grad_norm_`` then the 8-bit / bf16 / float32 (``adamlab.torch.Adam``)
  step, the coefficient applied inside the step.

A round gives every contestant one timed step (after one untimed), in an order that rotates
from round to round; the table gives the median time and, per contestant, the median over
rounds of its time divided by the reference's in the same round (paired: slow stretches of
a shared machine cancel), with the 25th–75th percentiles. Clip contestants are also paired
with ``torch clip+fused``. State bytes per parameter are counted from the optimizers' state
tensors; the peak memory of a step is the peak RSS of a fresh process that allocates the
parameter and gradient, then builds the optimizer and takes 3 steps, minus its RSS after
the allocation (and after glibc's ``malloc_trim``, so that no freed page still resident
absorbs the state), over the first step and over the two after it (so: the state plus
whatever the step allocates; Linux: VmHWM, reset through /proc/self/clear_refs). ``uptime`` is recorded: on
a shared machine the absolute numbers are noisy, the paired ratios less so. Not a test.

    python benchmarks/bench_lowmem.py                         # 20M parameters, 15 rounds
    python benchmarks/bench_lowmem.py --rounds 3 --params 2000000 --out /tmp/lowmem.json
    python benchmarks/bench_lowmem.py --passive    # OpenMP workers sleep after each region

The script sets no ``OMP_*`` variable itself (``--passive`` re-runs it under
``OMP_WAIT_POLICY=PASSIVE``); the JSON records it.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import statistics
import subprocess
import sys
import time
from pathlib import Path

import _common as common
import torch

import adamlab.torch as at

REF = "torch fused"
CLIP_REF = "torch clip+fused"
ARITH = "arithmetic floor"
MAX_NORM = 1.0


def bnb_or_none():
    try:
        import bitsandbytes as bnb
    except Exception:  # not installed, or no usable native library
        return None
    return bnb


def torchao_or_none():
    try:
        import torchao.optim
    except Exception:  # not installed, or not for this torch
        return None
    return torchao.optim


#: the slow peers, timed in the first --peer-rounds rounds only
PEERS = ("bnb 8bit", "torchao 8bit")


class ArithmeticFloor:
    """The arithmetic floor as an object with ``step()``: ``cpp_adam.arith_floor`` over as
    many elements as the parameters hold, with the scalars of Adam's 10th step (lr 1e-3, as
    ``adam_host.adam_step_args`` gives the kernels theirs).
    Each of PyTorch's threads steps its own slot of scratch (4 × 512 float32: 8 KiB)."""

    WIDTH = 512

    def __init__(self, params: list[torch.Tensor]):
        import numpy as np

        import adamlab
        from adamlab.kernels import adam_host, cpp_adam

        self.n = sum(p.numel() for p in params)
        rng = np.random.default_rng(0)
        slots = torch.get_num_threads()
        self.scratch = rng.standard_normal((slots, 4, self.WIDTH)).astype(np.float32)
        self.scratch[:, 1] *= 0.01  # g
        self.scratch[:, 3] = np.abs(self.scratch[:, 3])  # v
        self.sc, _ = adam_host.adam_step_args(adamlab.Adam(lr=1e-3), 10, np.float32)
        self.floor = cpp_adam.arith_floor
        self.state: dict = {}

    def step(self) -> None:
        self.floor(self.scratch, self.n, self.sc)


def make_optimizer(name: str, params: list[torch.Tensor]):
    if name == ARITH:
        return ArithmeticFloor(params)
    if name in (REF, CLIP_REF):
        return torch.optim.Adam(params, lr=1e-3, fused=True)
    if name in ("adamlab 8bit", "adamlab clip+8bit"):
        return at.Adam8bit(params, lr=1e-3)
    if name in ("adamlab bf16", "adamlab clip+bf16"):
        return at.AdamBF16(params, lr=1e-3)
    if name == "adamlab bf16 sr":
        return at.AdamBF16(params, lr=1e-3, bf16_stochastic_round=True)
    if name == "adamlab clip+fp32":
        return at.Adam(params, lr=1e-3)
    if name == "bnb 8bit":
        return bnb_or_none().optim.Adam8bit(params, lr=1e-3)
    if name == "torchao 8bit":
        return torchao_or_none().Adam8bit(params, lr=1e-3)
    raise KeyError(name)


def clip_fn(name: str):
    if name == CLIP_REF:
        return torch.nn.utils.clip_grad_norm_
    if name.startswith("adamlab clip"):
        return at.clip_grad_norm_
    return None


class Contestant:
    def __init__(self, name: str, n: int, tensors: int):
        g = torch.Generator().manual_seed(0)
        sizes = [n // tensors + (1 if i < n % tensors else 0) for i in range(tensors)]
        self.params = []
        for s in sizes:
            p = torch.nn.Parameter(torch.randn(s, generator=g))
            p.grad = torch.randn(s, generator=g) * 0.01  # norm ≈ 0.01·√n ≫ MAX_NORM
            self.params.append(p)
        self.name = name
        self.opt = make_optimizer(name, self.params)
        self.clip = clip_fn(name)
        self.times: list[float] = []

    def step(self) -> float:
        t0 = time.perf_counter()
        if self.clip is not None:
            self.clip(self.params, MAX_NORM)
        self.opt.step()
        return time.perf_counter() - t0

    def turn(self, record: bool) -> None:
        self.step()  # untimed: caches warm with this contestant's arrays
        dt = self.step()
        if record:
            self.times.append(dt)

    def state_bytes_per_param(self) -> float:
        total = 0
        for st in self.opt.state.values():
            for key, v in st.items():
                if key == "step" or key.startswith("qmap") or not torch.is_tensor(v):
                    continue
                if hasattr(v, "codes") and hasattr(v, "scale"):  # torchao's 8-bit subclass
                    total += v.codes.nbytes + v.scale.nbytes
                else:
                    total += v.numel() * v.element_size()
        return total / sum(p.numel() for p in self.params)


def peak_rss(name: str, n: int, tensors: int) -> tuple[float, float]:
    """MiB above the parameters and gradients at the peak of the first step (which allocates
    the state) and of the two steps after it (the state stays), in a fresh process."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", name, "--params", str(n), "--tensors", str(tensors)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    first, later = out.stdout.strip().splitlines()[-1].split()
    return float(first), float(later)


def child(name: str, n: int, tensors: int) -> None:
    c = Contestant.__new__(Contestant)
    g = torch.Generator().manual_seed(0)
    sizes = [n // tensors + (1 if i < n % tensors else 0) for i in range(tensors)]
    c.params = []
    for s in sizes:
        p = torch.nn.Parameter(torch.randn(s, generator=g))
        p.grad = torch.randn(s, generator=g) * 0.01
        c.params.append(p)
    warm = Contestant(name, 5000, 1)  # compilation, imports, thread pools: before the baseline
    warm.step()
    del warm
    _release_free_heap()
    # the high-water mark restarts here (Linux: writing 5 to clear_refs resets VmHWM)
    Path("/proc/self/clear_refs").write_text("5")
    base = _status_kib("VmRSS")
    c.name, c.opt, c.clip = name, make_optimizer(name, c.params), clip_fn(name)
    c.step()  # the first step allocates the state
    first = _status_kib("VmHWM") - base
    Path("/proc/self/clear_refs").write_text("5")
    for _ in range(2):
        c.step()
    print(first / 1024, (_status_kib("VmHWM") - base) / 1024)


def _release_free_heap() -> None:
    """Hand the C heap's free pages back to the system (glibc's malloc_trim) before the
    baseline: else a state allocated into memory freed earlier but still resident adds no
    RSS (the 8-bit state's absmax tables, 0.6 MiB, were missing from its peak)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: it may miss reused pages
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", type=int, default=20_000_000)
    ap.add_argument("--tensors", type=int, default=1)
    ap.add_argument(
        "--peer-rounds", "--bnb-rounds", type=int, default=7,
        help="rounds that include the slow peers (bitsandbytes, torchao)",
    )  # fmt: skip
    ap.add_argument("--no-peak", action="store_true", help="skip the peak-memory processes")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    common.add_run_options(ap, "lowmem.json", rounds=15, warmup=False)
    args = ap.parse_args(argv)
    common.start_run(args, __file__, argv)
    if args.child:
        child(args.child, args.params, args.tensors)
        return 0
    from adamlab.torch import fast

    names = [REF, "adamlab 8bit", "adamlab bf16", "adamlab bf16 sr", CLIP_REF]
    if fast.cpu_kernel() == "cpp":  # (the floor of the C++ kernel's loop, where the steps run it)
        names.append(ARITH)
    names += ["adamlab clip+8bit", "adamlab clip+bf16", "adamlab clip+fp32"]
    bnb, ao = bnb_or_none(), torchao_or_none()
    if args.peer_rounds > 0:
        names += [name for name, m in zip(PEERS, (bnb, ao), strict=True) if m is not None]
    load_before = uptime()
    cs = {name: Contestant(name, args.params, args.tensors) for name in names}
    for c in cs.values():  # compile / warm up
        c.step()
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            if name in PEERS and r >= args.peer_rounds:
                continue
            cs[name].turn(record=True)
        print(f"round {r + 1}/{args.rounds}", file=sys.stderr)
    load_after = uptime()
    rows = {}
    for name, c in cs.items():
        ref = CLIP_REF if "clip" in name else REF
        k = len(c.times)
        ratios = [a / b for a, b in zip(c.times, cs[ref].times[:k], strict=True)]
        vs_fp32 = [a / b for a, b in zip(c.times, cs[REF].times[:k], strict=True)]
        q = common.quartiles(ratios)
        rows[name] = {
            "ms_per_step": 1e3 * statistics.median(c.times),
            "rounds": k,
            "ratio_to": ref,
            "ratio_median": q[1],
            "ratio_p25": q[0],
            "ratio_p75": q[2],
            "ratio_to_torch_fused": statistics.median(vs_fp32),
            "state_bytes_per_param": c.state_bytes_per_param(),
        }
    for peer, key in (("bnb 8bit", "speedup_over_bnb"), ("torchao 8bit", "speedup_over_torchao")):
        if peer in rows:
            k = rows[peer]["rounds"]
            ours = cs["adamlab 8bit"].times[:k]
            sp = [b / a for a, b in zip(ours, cs[peer].times, strict=True)]
            rows["adamlab 8bit"][key] = statistics.median(sp)
    if not args.no_peak:
        for name in names:
            if name == ARITH:  # (scratch only)
                continue
            first, later = peak_rss(name, args.params, args.tensors)
            rows[name]["peak_first_step_mib"] = first
            rows[name]["peak_step_mib"] = later
    n = args.params
    # bytes moved per parameter by the step: 8-bit reads p, g (4+4), m, v (1+1), writes p, m, v
    floor = {"adamlab 8bit": 16 + 16 / 256, "adamlab bf16": 20.0, REF: 28.0}
    print(f"\n{n:,} parameters in {args.tensors} tensor(s), {torch.get_num_threads()} threads")
    print(f"uptime before: {load_before}\nuptime after:  {load_after}\n")
    print(f"{'contestant':<20} {'ms/step':>9} {'ratio':>7} {'(p25-p75)':>13}  {'vs':<17} "
          f"{'B/param':>8} {'peak MiB: 1st step':>19} {'later':>5}")  # fmt: skip
    for name, row in rows.items():
        peak = ""
        if "peak_step_mib" in row:
            peak = f"{row['peak_first_step_mib']:9.1f} {row['peak_step_mib']:9.1f}"
        print(
            f"{name:<20} {row['ms_per_step']:9.2f} {row['ratio_median']:7.3f} "
            f"({row['ratio_p25']:.3f}-{row['ratio_p75']:.3f})  {row['ratio_to']:<17} "
            f"{row['state_bytes_per_param']:8.3f} {peak}"
        )
    print()
    for key, who in (("speedup_over_bnb", "bnb's"), ("speedup_over_torchao", "torchao's")):
        if key in rows.get("adamlab 8bit", {}):
            print(f"adamlab 8bit is {rows['adamlab 8bit'][key]:.1f}x {who} Adam8bit")
    gbs = {k: floor[k] * n / (rows[k]["ms_per_step"] * 1e-3) / 1e9 for k in floor}
    print("effective bandwidth at the memory floor (GB/s): "
          + ", ".join(f"{k} {v:.1f}" for k, v in gbs.items()))  # fmt: skip
    report = {
        "benchmark": "lowmem",
        "command": common.command("benchmarks/bench_lowmem.py", argv),
        "params": n,
        "tensors": args.tensors,
        "rounds": args.rounds,
        "threads": torch.get_num_threads(),
        "environment": common.environment(),
        "uptime_before": load_before,
        "uptime_after": load_after,
        "bytes_per_param_floor": floor,
        "effective_GBps": gbs,
        "machine": common.machine(
            bitsandbytes=getattr(bnb, "__version__", None),
            torchao=common.dist_version("torchao") if ao is not None else None,
        ),
        "rows": rows,
    }
    common.write_report(args.out, report, indent=1)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
