"""Benchmark: sweeps on a cluster, in three parts, on this machine.

    python benchmarks/bench_distributed.py [--parts overhead,scaling,blocks] [--repeats 2]
        [--configs 100] [--mlp-lrs 30] [--mlp-seeds 2] [--mlp-steps 300]
        [--vec-configs 10000] [--vec-steps 1000]

1. **overhead**: the cost per configuration of running ``--configs`` configurations of Adam
   on a trivial problem (the 1-D seed quadratic, 10 steps: the work is nil, so the time is
   the overhead), the same learning rates for every contestant:

   * adamlab ``sweep(engine="dask")`` on a warm local cluster (2 worker processes), and
     ``engine="ray"`` on a warm local Ray (2 CPUs): blocks of the vectorised plan (here one
     block: 100 rows of a 1-D problem are far below ``MIN_BLOCK_PARAMS``); and the same with
     ``block_size=1``, a task per configuration, as Tune and Optuna run them;
   * Ray Tune, the same configurations as a grid of trials (a function trainable that calls
     ``run_config``, ``reuse_actors=True``: Tune's fastest setting; 2 trials at a time), in the
     same Ray session;
   * Optuna, the same configurations as trials (``GridSampler``, in memory, one at a time);
   * for scale, adamlab in this process: ``engine="vectorized"`` and ``engine="loop"`` (each
     configuration alone, what one trial of Tune or Optuna computes).

2. **scaling**: the digits MLP (``mlp-digits``, 2,410 parameters, minibatches of 32) with
   ``--mlp-lrs`` learning rates × ``--mlp-seeds`` seeds × ``--mlp-steps`` steps on a local
   Dask cluster of 1 and of 2 workers (each started and warmed up before the clock runs),
   against ``engine="vectorized"`` in this process. The CPU seconds of the worker processes
   are recorded too: on a machine shared with other work, 2 workers get less than 2 cores, so
   the table also gives the speed-up the CPU seconds imply with a core per worker (the
   1-worker run's CPU seconds over those of the busier of the 2 workers).

3. **blocks**: what shipping blocks costs on a vectorisable problem: Adam on Rosenbrock,
   ``--vec-configs`` configurations × ``--vec-steps`` steps, ``engine="vectorized"`` (one pass
   in this process) against ``dask`` and ``ray`` with 1 and 2 workers, and the fused numba
   kernel for reference.

Every adamlab table is checked against ``engine="vectorized"`` bit for bit. Times are the best
of ``--repeats`` rounds after a warm-up; contestants of a part run interleaved, one of each per
round. The benchmark never asserts on time: it prints tables with ratios and writes
``benchmarks/results/bench_distributed.json``. Needs ``pip install 'adamlab[dask,ray,ml]'``,
and for the peers ``pip install 'ray[tune]' optuna``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import command, machine, write_report

#: the trivial problem of part 1
TRIVIAL = {"problem": "quadratic", "steps": 10}


def load() -> list[float]:
    return list(os.getloadavg())


def same(a, b) -> bool:
    """Two sweep tables equal bit for bit (the list column by its floats' hex)."""
    import pandas as pd

    def hexed(t):
        if "final_x" not in t:
            return t
        return t.assign(final_x=[tuple(float(v).hex() for v in x) for x in t.final_x])

    try:
        pd.testing.assert_frame_equal(hexed(a), hexed(b), check_exact=True)
    except AssertionError:
        return False
    return True


def best_of(contestants: dict, repeats: int) -> dict[str, tuple[float, object]]:
    """Best time of each contestant over ``repeats`` rounds, one of each per round."""
    best = dict.fromkeys(contestants, float("inf"))
    out: dict[str, object] = {}
    for _ in range(repeats):
        for name, fn in contestants.items():
            t = time.perf_counter()
            out[name] = fn()
            best[name] = min(best[name], time.perf_counter() - t)
            print(f"    {name}: {time.perf_counter() - t:.3f} s", flush=True)
    return {name: (best[name], out[name]) for name in contestants}


def sweeper(configs, problem, kw):
    """``go(engine=…)``: a function that runs the sweep on that engine."""
    from adamlab.lab.sweep import sweep

    return lambda **engine: lambda: sweep("adam", configs, problem, **kw, **engine)


def dask_cluster(workers: int):
    """A local cluster as ``engine="dask"`` starts it (no MALLOC_TRIM_THRESHOLD_), and its
    client."""
    from dask.distributed import Client

    from adamlab.lab.sweep.distributed import local_dask_cluster

    cluster = local_dask_cluster(workers)
    return cluster, Client(cluster)


def start_ray(cpus: int = 2):
    import ray

    t = time.perf_counter()
    ray.init(
        num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR
    )
    return ray, time.perf_counter() - t


# -- part 1: overhead ------------------------------------------------------------------------


def tune_trainable(config):
    from ray import tune

    from adamlab.lab.sweep import run_config

    r = run_config("adam", {"lr": config["lr"]}, TRIVIAL["problem"], steps=TRIVIAL["steps"])
    tune.report({"final_loss": r["final_loss"]})


def run_tune(lrs):
    from ray import tune

    tuner = tune.Tuner(
        tune_trainable,
        param_space={"lr": tune.grid_search(lrs)},
        tune_config=tune.TuneConfig(reuse_actors=True),
        run_config=tune.RunConfig(storage_path=tempfile.mkdtemp(prefix="bench-tune-"), verbose=0),
    )
    results = tuner.fit()
    return sorted(r.metrics["final_loss"] for r in results)


def run_optuna(lrs):
    import optuna

    from adamlab.lab.sweep import run_config

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial):
        lr = trial.suggest_float("lr", min(lrs), max(lrs))
        return run_config("adam", {"lr": lr}, TRIVIAL["problem"], steps=TRIVIAL["steps"])["final_loss"]  # fmt: skip

    study = optuna.create_study(sampler=optuna.samplers.GridSampler({"lr": lrs}, seed=0))
    study.optimize(objective, n_trials=len(lrs))
    return sorted(t.value for t in study.trials)


def part_overhead(a, out: dict) -> None:
    from adamlab.lab.sweep import grid

    n = a.configs
    lrs = [float(v) for v in np.logspace(-3, 0, n)]
    configs = grid(lr=lrs)
    kw = {"steps": TRIVIAL["steps"], "progress": False}
    print(f"\n[1] overhead: Adam on the seed quadratic, {n} configurations x {kw['steps']} steps")
    cluster, client = dask_cluster(2)
    go = sweeper(configs, TRIVIAL["problem"], kw)
    contestants = {
        "adamlab vectorized (this process)": go(engine="vectorized"),
        "adamlab loop (this process, each alone)": go(engine="loop"),
        "adamlab dask (2 workers)": go(engine="dask", address=client),
        "adamlab dask, a task per configuration": go(engine="dask", address=client, block_size=1),
    }
    ray = None
    if not a.skip_ray:
        ray, init_s = start_ray(2)
        out["ray_init_seconds"] = init_s
        contestants["adamlab ray (2 CPUs)"] = go(engine="ray")
        contestants["adamlab ray, a task per configuration"] = go(engine="ray", block_size=1)
        if not a.skip_tune:
            contestants["Ray Tune (grid of trials, reuse_actors)"] = lambda: run_tune(lrs)
    if not a.skip_optuna:
        contestants["Optuna (GridSampler, in memory)"] = lambda: run_optuna(lrs)
    for name, fn in contestants.items():  # warm-up: workers import adamlab, Tune its actors
        if "Tune" not in name:
            fn()
    timed = best_of(contestants, a.repeats)
    ref = timed["adamlab vectorized (this process)"][1]
    exact = {k: same(v[1], ref) for k, v in timed.items() if k.startswith("adamlab")}
    losses = sorted(ref.final_loss)
    agree = {
        k: bool(np.array_equal(v[1], losses)) for k, v in timed.items() if not k.startswith("adamlab")
    }  # fmt: skip
    tune_s = timed.get("Ray Tune (grid of trials, reuse_actors)", (None,))[0]
    rows = []
    print(f"\n{'contestant':<44} {'total s':>9} {'ms/config':>10} {'Tune / this':>12}")
    for name, (secs, _) in timed.items():
        ratio = tune_s / secs if tune_s else None
        rows.append({"contestant": name, "seconds": secs, "ms_per_config": 1e3 * secs / n, "tune_over_this": ratio})  # fmt: skip
        print(f"{name:<44} {secs:>9.3f} {1e3 * secs / n:>10.2f} {ratio or float('nan'):>12.1f}")
    print(f"tables equal to vectorized bit for bit: {exact}; peers' losses equal: {agree}")
    out["overhead"] = {
        "problem": TRIVIAL["problem"], "steps": TRIVIAL["steps"], "configs": n, "rows": rows,
        "exact": exact, "peers_same_losses": agree, "load_avg_after": load(),
    }  # fmt: skip
    client.close()
    cluster.close()
    if ray is not None:
        ray.shutdown()


# -- part 2: scaling on the digits MLP ----------------------------------------------------------


def part_scaling(a, out: dict) -> None:
    import psutil

    from adamlab.lab.sweep import grid, sweep

    configs = grid(lr=[float(v) for v in np.logspace(-4, -0.5, a.mlp_lrs)])
    kw = {"steps": a.mlp_steps, "seeds": a.mlp_seeds, "progress": False}
    runs = len(configs) * a.mlp_seeds
    print(f"\n[2] scaling: Adam on mlp-digits, {len(configs)} learning rates x {a.mlp_seeds} seeds x "
          f"{a.mlp_steps} steps ({runs} runs)")  # fmt: skip
    clusters = {w: dask_cluster(w) for w in (1, 2)}
    pids = {w: list(c.run(os.getpid).values()) for w, (_, c) in clusters.items()}
    warm = grid(lr=[1e-3, 1e-2])
    for _, c in clusters.values():  # imports, the data set and numba's cache in every worker
        sweep("adam", warm, "mlp-digits", steps=4, engine="dask", address=c, block_size=1, progress=False)  # fmt: skip
    rounds: dict[str, list[dict]] = {}  # per contestant and round: wall and CPU seconds

    def timed_dask(w):
        def go():
            procs = [psutil.Process(p) for p in pids[w]]
            before = [sum(p.cpu_times()[:2]) for p in procs]
            t = time.perf_counter()
            table = sweep("adam", configs, "mlp-digits", engine="dask", address=clusters[w][1], **kw)  # fmt: skip
            wall = time.perf_counter() - t
            busy = [sum(p.cpu_times()[:2]) - b for p, b in zip(procs, before, strict=True)]
            rounds.setdefault(f"dask, {w} worker{'s' * (w > 1)}", []).append({"wall": wall, "worker_cpu": busy})  # fmt: skip
            return table

        return go

    def vectorized():
        t, c = time.perf_counter(), time.process_time()
        table = sweep("adam", configs, "mlp-digits", engine="vectorized", **kw)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        rounds.setdefault("vectorized (this process)", []).append({"wall": wall, "worker_cpu": [cpu]})  # fmt: skip
        return table

    contestants = {
        "vectorized (this process)": vectorized,
        "dask, 1 worker": timed_dask(1),
        "dask, 2 workers": timed_dask(2),
    }
    load_before = load()
    timed = best_of(contestants, a.repeats)
    ref = timed["vectorized (this process)"][1]
    exact = {k: same(v[1], ref) for k, v in timed.items()}
    one, two = timed["dask, 1 worker"][0], timed["dask, 2 workers"][0]
    vec = timed["vectorized (this process)"][0]
    # the machine is shared: how many cores each run got (CPU seconds / wall), and the
    # speed-up the CPU seconds imply were each worker given a core of its own (the 1-worker
    # run's CPU seconds over the busiest of the 2 workers'), medians over the rounds
    cores = {k: float(np.median([sum(r["worker_cpu"]) / r["wall"] for r in v])) for k, v in rounds.items()}  # fmt: skip
    cpu_total = {k: float(np.median([sum(r["worker_cpu"]) for r in v])) for k, v in rounds.items()}  # fmt: skip
    busiest2 = float(np.median([max(r["worker_cpu"]) for r in rounds["dask, 2 workers"]]))
    cpu_speedup = cpu_total["dask, 1 worker"] / busiest2
    print(f"\n{'contestant':<28} {'seconds':>9} {'speed-up vs 1 worker':>22} {'cores got':>10} {'CPU s':>8}")  # fmt: skip
    for name, (secs, _) in timed.items():
        print(f"{name:<28} {secs:>9.3f} {one / secs:>22.2f} {cores[name]:>10.2f} {cpu_total[name]:>8.2f}")  # fmt: skip
    print(f"2 workers / 1 worker: {one / two:.2f} measured (goal >= 1.8), {cpu_speedup:.2f} from CPU "
          f"seconds (a core per worker); load average before {load_before}, after {load()}; "
          f"tables exact: {exact}")  # fmt: skip
    out["scaling"] = {
        "problem": "mlp-digits", "lrs": len(configs), "seeds": a.mlp_seeds, "steps": a.mlp_steps,
        "runs": runs, "seconds": {k: v[0] for k, v in timed.items()},
        "speedup_2_over_1": one / two, "speedup_2_over_1_from_cpu_seconds": cpu_speedup,
        "vectorized_over_1_worker": vec / one, "cores_obtained": cores, "cpu_seconds": cpu_total,
        "rounds": rounds, "exact": exact, "load_avg_before": load_before,
        "load_avg_after": load(),
    }  # fmt: skip
    for cluster, client in clusters.values():
        client.close()
        cluster.close()


# -- part 3: what blocks cost on a vectorisable problem ----------------------------------------


def part_blocks(a, out: dict) -> None:
    from adamlab.lab.sweep import LogUniform, OneMinusLogUniform, sample, sweep

    space = {"lr": LogUniform(1e-4, 1.0), "beta1": OneMinusLogUniform(0.0, 0.99),
             "beta2": OneMinusLogUniform(0.9, 0.99999)}  # fmt: skip
    configs = sample(space, a.vec_configs, method="halton", seed=0)
    kw = {"steps": a.vec_steps, "progress": False}
    print(f"\n[3] blocks: Adam on Rosenbrock, {a.vec_configs} configurations x {a.vec_steps} steps")
    clusters = {w: dask_cluster(w) for w in (1, 2)}
    go = sweeper(configs, "rosenbrock", kw)
    contestants = {
        "vectorized (this process, one pass)": go(engine="vectorized"),
        "numba (fused kernel, this process)": go(engine="numba"),
    }
    for w, (_, c) in clusters.items():
        contestants[f"dask, {w} worker{'s' * (w > 1)}"] = go(engine="dask", address=c)
    ray = None
    if not a.skip_ray:
        ray, _ = start_ray(2)
        contestants["ray, 2 CPUs"] = go(engine="ray")
    small = configs[:8]
    for _, c in clusters.values():
        sweep("adam", small, "rosenbrock", engine="dask", address=c, **kw)
    if ray is not None:
        sweep("adam", small, "rosenbrock", engine="ray", **kw)
    sweep("adam", small, "rosenbrock", engine="numba", **kw)
    timed = best_of(contestants, a.repeats)
    ref_name = "vectorized (this process, one pass)"
    ref_s, ref = timed[ref_name]
    exact = {k: same(v[1], ref) for k, v in timed.items()}
    print(f"\n{'contestant':<38} {'seconds':>9} {'/ vectorized':>13}")
    for name, (secs, _) in timed.items():
        print(f"{name:<38} {secs:>9.3f} {secs / ref_s:>13.2f}")
    print(f"tables exact: {exact}")
    out["blocks"] = {
        "problem": "rosenbrock", "configs": a.vec_configs, "steps": a.vec_steps,
        "seconds": {k: v[0] for k, v in timed.items()},
        "over_vectorized": {k: v[0] / ref_s for k, v in timed.items()}, "exact": exact,
        "load_avg_after": load(),
    }  # fmt: skip
    for cluster, client in clusters.values():
        client.close()
        cluster.close()
    if ray is not None:
        ray.shutdown()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default="overhead,scaling,blocks")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--configs", type=int, default=100, help="part 1's configurations")
    ap.add_argument("--mlp-lrs", type=int, default=30)
    ap.add_argument("--mlp-seeds", type=int, default=2)
    ap.add_argument("--mlp-steps", type=int, default=300)
    ap.add_argument("--vec-configs", type=int, default=10_000)
    ap.add_argument("--vec-steps", type=int, default=1000)
    ap.add_argument("--skip-ray", action="store_true")
    ap.add_argument("--skip-tune", action="store_true")
    ap.add_argument("--skip-optuna", action="store_true")
    ap.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "bench_distributed.json")
    )
    a = ap.parse_args(argv)
    logging.getLogger("distributed").setLevel(logging.ERROR)  # Tune turns the root logger up
    import dask
    import distributed

    versions = {"numpy": np.__version__, "dask": dask.__version__, "distributed": distributed.__version__}  # fmt: skip
    for mod in ("ray", "optuna"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            versions[mod] = None
    print(f"{os.cpu_count()} CPU cores, load average {load()}; {versions}")
    result: dict = {
        "benchmark": "distributed_sweeps",
        "machine": machine(load_avg_at_start=load(), **versions),
        "command": command("benchmarks/bench_distributed.py", argv),
        "repeats": a.repeats,
    }  # fmt: skip
    parts = {"scaling": part_scaling, "overhead": part_overhead, "blocks": part_blocks}
    for name in a.parts.split(","):
        parts[name](a, result)
        result[name]["command"] = result["command"]
    out = Path(a.out)
    if out.exists():  # keep the parts not run this time
        old = json.loads(out.read_text())
        result = {**{k: v for k, v in old.items() if k in parts}, **result}
    write_report(out, result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
