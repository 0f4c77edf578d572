"""Benchmark: Adam on Rosenbrock, 10,000 configurations × 1,000 steps, three ways.

    python benchmarks/bench_sweep.py [--configs 10000] [--steps 1000] [--loop-subset 100]

Contestants, all float64, all on the same configurations (a scrambled Halton sample:
lr log-uniform in [1e-4, 1], β1 with 1 − β1 log-uniform in [1e-2, 1], β2 with 1 − β2
log-uniform in [1e-5, 1e-1], ε = 1e-8, bias correction on; every β distinct, so no
configuration shares work with another) from (−1.2, 1):

* adamlab numba: ``adamlab.kernels.sweep.adam_rosenbrock`` — gradient, update and loop fused
  in one parallel kernel (``track=False``: final parameters only, like the JAX side); and the
  whole ``adamlab.lab.sweep.sweep(..., engine="numba")`` call (per-step loss tracking, best
  loss, steps to target, divergence, and the pandas table);
* adamlab NumPy: the reference vectorised pass, ``adamlab.Adam`` with (K, 1) hyperparameter
  arrays stepping (K, 2) parameters (what ``engine="vectorized"`` runs);
* JAX: ``jit(vmap(run))`` where ``run`` is optax's ``adam`` in a ``lax.fori_loop`` over the
  steps with ``jax.grad`` of the same Rosenbrock (x64 enabled);
* a per-configuration Python loop of ``adamlab.Adam`` steps — timed on ``--loop-subset``
  configurations and extrapolated linearly to all of them (it says so in the table).

Times are the best of ``--repeats`` runs after one warm-up (JIT compile times are reported
separately); the numba kernel, the ``sweep()`` call and JAX run interleaved, one of each per
round, so that a change in the machine's load hits all three alike. The benchmark never
asserts on time; it prints a table with ratios to JAX and writes
``benchmarks/results/bench_sweep.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from _common import command, machine, write_report


def configs(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    from adamlab.lab.sweep import LogUniform, OneMinusLogUniform, sample

    space = {
        "lr": LogUniform(1e-4, 1.0),
        "beta1": OneMinusLogUniform(0.0, 0.99),
        "beta2": OneMinusLogUniform(0.9, 0.99999),
    }
    cs = sample(space, n, method="halton", seed=seed)
    return {k: np.array([c[k] for c in cs]) for k in space}


def interleaved(contestants: dict, repeats: int) -> dict[str, tuple[float, object]]:
    """Best time of each contestant over ``repeats`` rounds; every round runs each once, in
    turn, so a change in the machine's load hits them all alike."""
    best = dict.fromkeys(contestants, float("inf"))
    out: dict[str, object] = {}
    for _ in range(repeats):
        for name, fn in contestants.items():
            t = time.perf_counter()
            out[name] = fn()
            best[name] = min(best[name], time.perf_counter() - t)
    return {name: (best[name], out[name]) for name in contestants}


def setup_numba(c, steps):
    """The bare kernel (final x only); returns (run, compile seconds)."""
    from adamlab.kernels.sweep import adam_rosenbrock

    t0 = time.perf_counter()
    adam_rosenbrock(c["lr"][:4], c["beta1"][:4], c["beta2"][:4], steps=3, track=False)
    compile_s = time.perf_counter() - t0
    run = lambda: adam_rosenbrock(c["lr"], c["beta1"], c["beta2"], 1e-8, steps=steps, track=False)  # noqa: E731
    run()
    return run, compile_s


def setup_sweep_call(c, steps):
    """The whole library call: metrics every step and the table."""
    from adamlab.lab.sweep import sweep
    from adamlab.problems.analytic import Rosenbrock

    cs = [
        {"lr": float(a), "beta1": float(b), "beta2": float(d)}
        for a, b, d in zip(c["lr"], c["beta1"], c["beta2"], strict=True)
    ]
    run = lambda: sweep("adam", cs, Rosenbrock(), steps=steps, target=1e-6, engine="numba")  # noqa: E731
    run()
    return run


def bench_numpy(c, steps):
    import adamlab
    from adamlab.problems.analytic import Rosenbrock

    p = Rosenbrock()
    opt = adamlab.Adam(
        lr=c["lr"][:, None], betas=(c["beta1"][:, None], c["beta2"][:, None]),
        nonfinite="propagate",
    )  # fmt: skip
    x = np.tile(p.x0, (len(c["lr"]), 1))
    t = time.perf_counter()
    with np.errstate(all="ignore"):
        s = opt.init(x)
        for _ in range(steps):
            x, s = opt.step(x, p.grad(x), s)
    return time.perf_counter() - t, x


def setup_jax(c, steps):
    """optax's adam under jit(vmap(...)); returns (run, compile seconds, versions)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import optax

    def loss(p):
        return 100.0 * (p[1] - p[0] ** 2) ** 2 + (1.0 - p[0]) ** 2

    def run_one(lr, b1, b2):
        opt = optax.adam(lr, b1, b2, eps=1e-8)
        p = jnp.array([-1.2, 1.0], dtype=jnp.float64)
        s = opt.init(p)

        def body(_, carry):
            p, s = carry
            u, s = opt.update(jax.grad(loss)(p), s, p)
            return optax.apply_updates(p, u), s

        return jax.lax.fori_loop(0, steps, body, (p, s))[0]

    f = jax.jit(jax.vmap(run_one))
    args = tuple(jnp.asarray(c[k]) for k in ("lr", "beta1", "beta2"))
    t0 = time.perf_counter()
    f(*args).block_until_ready()
    compile_s = time.perf_counter() - t0
    return (lambda: f(*args).block_until_ready()), compile_s, jax.__version__, optax.__version__


def bench_loop(c, steps, subset):
    import adamlab
    from adamlab.problems.analytic import Rosenbrock

    p = Rosenbrock()
    xs = []
    t = time.perf_counter()
    with np.errstate(all="ignore"):
        for k in range(subset):
            opt = adamlab.Adam(
                lr=float(c["lr"][k]), betas=(float(c["beta1"][k]), float(c["beta2"][k])),
                nonfinite="propagate",
            )  # fmt: skip
            x = p.x0.copy()
            s = opt.init(x)
            for _ in range(steps):
                x, s = opt.step(x, p.grad(x), s)
            xs.append(x)
    return time.perf_counter() - t, np.array(xs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--loop-subset", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-numpy", action="store_true", help="skip the NumPy reference pass")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_sweep.json"))
    a = ap.parse_args(argv)

    import numba

    c = configs(a.configs)
    K, T = a.configs, a.steps
    print(f"Adam on Rosenbrock: {K} configurations x {T} steps, float64, "
          f"{os.cpu_count()} CPU cores, numba threads {numba.get_num_threads()}")  # fmt: skip

    nb_run, nb_compile = setup_numba(c, T)
    sw_run = setup_sweep_call(c, T)
    jx_run, jx_compile, jax_v, optax_v = setup_jax(c, T)
    timed = interleaved({"numba": nb_run, "sweep": sw_run, "jax": jx_run}, a.repeats)
    (nb_s, nb_res), (sw_s, _), (jx_s, jx_x) = timed["numba"], timed["sweep"], timed["jax"]
    nb_x, jx_x = nb_res["x"], np.asarray(jx_x)
    print(f"  adamlab numba kernel: {nb_s:.3f} s")
    print(f"  adamlab sweep(engine='numba'): {sw_s:.3f} s")
    print(f"  jax jit(vmap(optax.adam)): {jx_s:.3f} s")
    np_s, np_x = (None, None) if a.skip_numpy else bench_numpy(c, T)
    if np_s is not None:
        print(f"  adamlab NumPy vectorised: {np_s:.3f} s")
    lp_s, lp_x = bench_loop(c, T, a.loop_subset)
    lp_total = lp_s * K / a.loop_subset
    print(f"  python loop: {lp_s:.3f} s for {a.loop_subset} configs")

    # agreement: numba vs the NumPy reference is bit-exact; vs optax within rounding
    finite = np.isfinite(nb_x).all(axis=1) & np.isfinite(jx_x).all(axis=1)
    exact_vs_numpy = None if np_x is None else bool(np.array_equal(nb_x, np_x, equal_nan=True))
    exact_vs_loop = bool(np.array_equal(nb_x[: a.loop_subset], lp_x, equal_nan=True))
    dev = np.abs(nb_x - jx_x)[finite].max(axis=-1) if finite.any() else np.array([np.nan])
    rows = [
        ("adamlab numba kernel (final x only)", nb_s, False),
        ("adamlab sweep(engine='numba'), metrics + table", sw_s, False),
        ("jax jit(vmap(optax.adam)), x64", jx_s, False),
    ]
    if np_s is not None:
        rows.append(("adamlab NumPy vectorised pass (reference)", np_s, False))
    rows.append(
        (
            f"python loop of adamlab.Adam ({a.loop_subset} timed, x{K // a.loop_subset})",
            lp_total,
            True,
        )
    )
    print()
    print(f"{'contestant':<58} {'seconds':>9} {'/ jax':>8}")
    for name, secs, extrap in rows:
        star = "*" if extrap else " "
        print(f"{name:<58} {secs:>8.3f}{star} {secs / jx_s:>8.3f}")
    print("* extrapolated linearly from the timed subset")
    print(
        f"compile: numba {nb_compile:.1f} s (cached on disk after the first run), jax {jx_compile:.1f} s"
    )
    print(
        f"numba kernel == NumPy reference, bit for bit: {exact_vs_numpy}; == python loop: {exact_vs_loop}"
    )
    print(f"numba vs optax (different operation order): median |dx| {np.median(dev):.2e}, "
          f"max {np.max(dev):.2e} over {int(finite.sum())} finite runs")  # fmt: skip
    print(f"\nadamlab numba kernel / jax = {nb_s / jx_s:.3f}; "
          f"whole sweep() call / jax = {sw_s / jx_s:.3f}   (goal <= 0.35)")  # fmt: skip

    result = {
        "benchmark": "adam_rosenbrock_sweep",
        "configs": K, "steps": T, "dtype": "float64",
        "seconds": {
            "adamlab_numba_kernel": nb_s, "adamlab_sweep_numba": sw_s, "jax_jit_vmap_optax": jx_s,
            "adamlab_numpy_vectorised": np_s, "python_loop_extrapolated": lp_total,
            "python_loop_subset": lp_s,
        },
        "loop_subset": a.loop_subset,
        "ratios_to_jax": {name: secs / jx_s for name, secs, _ in rows},
        "compile_seconds": {"numba": nb_compile, "jax": jx_compile},
        "exact_vs_numpy_reference": exact_vs_numpy, "exact_vs_python_loop": exact_vs_loop,
        "max_abs_dev_vs_optax": float(np.max(dev)), "median_abs_dev_vs_optax": float(np.median(dev)),
        "machine": machine(
            numba_threads=numba.get_num_threads(), numpy=np.__version__, jax=jax_v, optax=optax_v
        ),
        "command": command("benchmarks/bench_sweep.py", argv),
        "repeats": a.repeats,
    }  # fmt: skip
    out = Path(a.out)
    write_report(out, result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
