"""Training steps (forward, backward, optimizer step): torch.optim.Adam vs adamlab.torch.Adam.

Contestants: ``torch.optim.Adam`` with its defaults (on the CPU: the for-loop), with
``foreach=True`` and with ``fused=True``, and ``adamlab.torch.Adam`` with its defaults (the
fused step; :func:`adamlab.torch.fast.cpu_kernel` says which kernel, recorded in the JSON);
"no step" is forward + backward alone, the baseline for that column; "memory floor" is a step
that moves the bytes of a float32 Adam step and does nothing else (:class:`FloorStep`): the
best total an exact float32 Adam step could reach on the machine (needs the C++ build).
``--contestants`` also takes "adamlab bf16" and "adamlab 8bit" (``AdamBF16``, ``Adam8bit``:
other optimizers' numbers, so not in the default comparison). Models (float32):

* ``wide``: 4 × Linear(2304, 2304), batch 32: 21.2M parameters in 8 tensors;
* ``small``: 48 × (Linear(256, 256), LayerNorm(256), GELU), batch 32: 3.2M parameters in
  192 tensors (many small PyTorch ops, many tensors);
* ``embedding``: EmbeddingBag(100000, 64, sum) + MLP 64 → 256 → 256 → 1, 256 bags of 8
  ids: 6.5M parameters in 7 tensors, dense gradients (a recommender's shape: the step is
  most of the work);
* ``transformer`` (not run by default): 4 × TransformerEncoderLayer(256, 4 heads,
  feed-forward 1024), 8 sequences of 32 tokens: 3.2M parameters in 48 tensors (compute
  dominates; the step is a few percent).

Everything runs in one process, in the environment the script is started in: it sets no
``OMP_*`` variable (``--passive`` re-runs it under ``OMP_WAIT_POLICY=PASSIVE``, for
comparison). Each contestant has its own copy of the model (same initial weights) and sees
the same batch. A round gives every contestant a turn, in an order that rotates from round
to round; a turn is two training steps of which the second is timed, so that its forward
and backward run right after the contestant's own optimizer step, as in a user's loop.
Timed phases: forward + backward (``zero_grad``, forward, loss, backward) and the optimizer
step. The table gives medians over rounds and, per contestant, the median over rounds of
its total time divided by torch fused's total time in the same round (paired, so slow
stretches of a shared machine cancel), with the 25th–75th percentiles of that ratio. The
forward + backward column is the check that neither thread pool slows the other: it should
be the same after every kind of step. Not a test: it never asserts on time.

    python benchmarks/bench_training_step.py                    # 3 models, 30 rounds
    python benchmarks/bench_training_step.py --quick --out /tmp/t.json  # 8 rounds: a first look
    python benchmarks/bench_training_step.py --models small --rounds 10 --out /tmp/t.json
    ADAMLAB_CPU_KERNEL=numba python benchmarks/bench_training_step.py   # the numba kernel
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import _common as common
import torch
from torch import nn

import adamlab.torch as at
from adamlab.torch import fast

MODELS = {
    "wide": "4 × Linear(2304, 2304), batch 32",
    "small": "48 × (Linear(256, 256), LayerNorm, GELU), batch 32",
    "embedding": "EmbeddingBag(100000, 64) + MLP 64-256-256-1, 256 bags of 8",
    "transformer": "4 × TransformerEncoderLayer(256, 4 heads, ff 1024), 8 × 32 tokens",
}


class _Recommender(nn.Module):
    def __init__(self):
        super().__init__()
        self.bags = nn.EmbeddingBag(100_000, 64, mode="sum")
        self.mlp = nn.Sequential(
            nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 1)
        )

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.bags(ids))


def make_model(name: str) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The model with fixed weights, and one batch (input, target)."""
    torch.manual_seed(0)
    if name == "wide":
        model = nn.Sequential(*[nn.Linear(2304, 2304) for _ in range(4)])
        x = torch.randn(32, 2304)
    elif name == "small":
        layers = []
        for _ in range(48):
            layers += [nn.Linear(256, 256), nn.LayerNorm(256), nn.GELU()]
        model = nn.Sequential(*layers)
        x = torch.randn(32, 256)
    elif name == "embedding":
        model = _Recommender()
        x = torch.randint(0, 100_000, (256, 8))
    elif name == "transformer":
        layer = nn.TransformerEncoderLayer(256, 4, 1024, dropout=0.0, batch_first=True)
        model = nn.TransformerEncoder(layer, 4, enable_nested_tensor=False)
        x = torch.randn(8, 32, 256)
    else:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(MODELS)}")
    with torch.no_grad():
        y = torch.randn_like(model(x))
    return model, x, y


class NoStep:
    """A baseline with no optimizer step: its forward + backward follows the previous
    forward + backward directly (the speed PyTorch's own ops have on their own)."""

    def __init__(self, params):
        self.params = list(params)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        pass


class FloorStep(torch.optim.Optimizer):
    """The memory floor of a float32 Adam step as a ``torch.optim`` optimizer: its ``step()``
    (wrapped by torch.optim, with the profiler's record and the step hooks, as every
    optimizer's is) runs one C++ launch on PyTorch's pool over the same blocks and threads as
    adamlab's kernel, reading p, g, m, v and writing p, m, v (28 bytes per parameter) with no
    arithmetic (p rewritten with its own value: the model trains nothing), after reading the
    gradients' addresses (``cpp_adam.floor_step``). An exact float32 Adam optimizer moves
    these bytes at least; this contestant's total is the best one could give here."""

    def __init__(self, params):
        import numpy as np

        from adamlab.kernels import cpp_adam

        super().__init__(params, {})
        self.params = [p for g in self.param_groups for p in g["params"]]
        self._floor = cpp_adam.floor_step
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        n = len(self.params)
        self.ptrs = np.zeros((4, n), dtype=np.int64)
        self.ptrs[0] = [p.data_ptr() for p in self.params]
        self.ptrs[2] = [t.data_ptr() for t in self.m]
        self.ptrs[3] = [t.data_ptr() for t in self.v]
        self.offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum([p.numel() for p in self.params], out=self.offsets[1:])

    @torch.no_grad()
    def step(self, closure=None) -> None:
        self.ptrs[1] = [p.grad.data_ptr() for p in self.params]
        self._floor(self.ptrs, self.offsets)


OPTIMIZERS = {
    "no step": NoStep,
    "memory floor": FloorStep,
    "torch default": lambda ps: torch.optim.Adam(ps, lr=1e-4),
    "torch foreach": lambda ps: torch.optim.Adam(ps, lr=1e-4, foreach=True),
    "torch fused": lambda ps: torch.optim.Adam(ps, lr=1e-4, fused=True),
    "adamlab": lambda ps: at.Adam(ps, lr=1e-4),
    # (bfloat16 and 8-bit moments: other optimizers' numbers, not in the default comparison)
    "adamlab bf16": lambda ps: at.AdamBF16(ps, lr=1e-4),
    "adamlab 8bit": lambda ps: at.Adam8bit(ps, lr=1e-4),
}
LOW_PRECISION = ("adamlab bf16", "adamlab 8bit")
DEFAULT = [name for name in OPTIMIZERS if name not in LOW_PRECISION]


class Contestant:
    def __init__(self, name: str, model_name: str):
        self.name = name
        self.model, self.x, self.y = make_model(model_name)
        self.opt = OPTIMIZERS[name](self.model.parameters())
        self.times: dict[str, list[float]] = {"fwd_bwd": [], "step": [], "total": []}

    def train_step(self) -> tuple[float, float]:
        t0 = time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        loss = nn.functional.mse_loss(self.model(self.x), self.y)
        loss.backward()
        t1 = time.perf_counter()
        self.opt.step()
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1

    def turn(self, record: bool) -> None:
        self.train_step()  # the timed step's forward follows this contestant's own step
        fb, st = self.train_step()
        if record:
            self.times["fwd_bwd"].append(fb)
            self.times["step"].append(st)
            self.times["total"].append(fb + st)


def measure(model_name: str, names: list[str], rounds: int, warmup: int) -> list[Contestant]:
    cs = [Contestant(n, model_name) for n in names]
    for r in range(warmup + rounds):
        k = r % len(cs)
        for c in cs[k:] + cs[:k]:
            c.turn(record=r >= warmup)
    return cs


def summarise(cs: list[Contestant], ref: str = "torch fused") -> dict[str, dict]:
    base = next(c for c in cs if c.name == ref)
    alone = next((c for c in cs if c.name == "no step"), None)
    rows = {}
    for c in cs:
        paired = [a / b for a, b in zip(c.times["total"], base.times["total"], strict=True)]
        step_paired = [a / b for a, b in zip(c.times["step"], base.times["step"], strict=True)]
        lo, med, hi = common.quartiles(paired)
        slo, smed, shi = common.quartiles(step_paired)
        if alone is not None:
            fb = [a / b for a, b in zip(c.times["fwd_bwd"], alone.times["fwd_bwd"], strict=True)]
            flo, fmed, fhi = common.quartiles(fb)
        else:
            flo = fmed = fhi = None
        rows[c.name] = {
            "fwd_bwd_vs_no_step": fmed,
            "fwd_bwd_vs_no_step_iqr": [flo, fhi],
            "fwd_bwd_ms": 1e3 * statistics.median(c.times["fwd_bwd"]),
            "step_ms": 1e3 * statistics.median(c.times["step"]),
            "total_ms": 1e3 * statistics.median(c.times["total"]),
            "total_vs_torch_fused": med,
            "total_vs_torch_fused_iqr": [lo, hi],
            "step_vs_torch_fused": smed,
            "step_vs_torch_fused_iqr": [slo, shi],
            "times_s": c.times,
        }
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="wide,small,embedding", help="comma-separated")
    ap.add_argument(
        "--contestants",
        default=",".join(DEFAULT),
        help=f"comma-separated, of: {', '.join(OPTIMIZERS)} (default: {', '.join(DEFAULT)})",
    )
    common.add_run_options(ap, "training_step.json")
    args = ap.parse_args(argv)
    common.start_run(args, __file__, argv)
    names = args.contestants.split(",")
    if "memory floor" in names and fast.cpu_kernel() != "cpp":
        print("no C++ build: the memory floor is left out", file=sys.stderr)
        names.remove("memory floor")
    report = {
        "command": common.command(sys.argv[0], argv),
        "machine": common.machine(),
        "environment": common.environment(),
        "torch_threads": torch.get_num_threads(),
        "adamlab_cpu_kernel": fast.cpu_kernel(),
        "rounds": args.rounds,
        "load_average_before": os.getloadavg(),
        "models": {},
    }
    for model_name in args.models.split(","):
        cs = measure(model_name, names, args.rounds, args.warmup)
        n_params = sum(p.numel() for p in cs[0].model.parameters())
        n_tensors = len(list(cs[0].model.parameters()))
        rows = summarise(cs)
        report["models"][model_name] = {
            "description": MODELS[model_name],
            "parameters": n_params,
            "tensors": n_tensors,
            "results": rows,
        }
        _print_table(model_name, n_params, n_tensors, rows)
        del cs
    report["numba_imported"] = "numba" in sys.modules
    report["load_average_after"] = os.getloadavg()
    common.write_report(args.out, report, indent=1)
    print(f"\nadamlab's CPU kernel: {report['adamlab_cpu_kernel']}; wrote {args.out}")
    return 0


def _print_table(model_name: str, n_params: int, n_tensors: int, rows: dict) -> None:
    print(f"\n{model_name}: {MODELS[model_name]} ({n_params / 1e6:.1f}M parameters, "
          f"{n_tensors} tensors), median ms")  # fmt: skip
    print(
        f"{'':14} {'fwd+bwd':>8} {'step':>8} {'total':>8} {'fwd+bwd × no step':>18} "
        f"{'step × fused':>13} {'total × fused (25–75%)':>23}"
    )
    for name, r in rows.items():
        lo, hi = r["total_vs_torch_fused_iqr"]
        fb = r["fwd_bwd_vs_no_step"]
        fb = f"{fb:18.2f}" if fb is not None else f"{'–':>18}"
        step = f"{r['step_vs_torch_fused']:13.2f}" if name != "no step" else f"{'–':>13}"
        total = (
            f"{r['total_vs_torch_fused']:10.2f} ({lo:.2f}–{hi:.2f})"
            if name != "no step"
            else f"{'–':>23}"
        )
        print(
            f"{name:14} {r['fwd_bwd_ms']:8.2f} {r['step_ms']:8.2f} {r['total_ms']:8.2f} "
            f"{fb} {step} {total}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
