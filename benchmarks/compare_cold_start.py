"""Cold wall time of ``adamlab compare`` against the seed lesson's plain NumPy + matplotlib script.

Each measurement is a fresh Python process (nothing imported, file cache warm), run several
times, alternating the two commands; the medians and their ratio are printed and written as
JSON. The baseline is the lesson's code as published, saving its figure to a PNG (Agg)
instead of showing it. Both write one PNG of the same figure size into a temporary directory.

    python benchmarks/compare_cold_start.py --repeats 9 --json compare_cold_start.json

Not a test: it never asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LESSON = """\
import matplotlib
matplotlib.use("Agg")
import numpy as np
import matplotlib.pyplot as plt

def loss(x):
    return (x - 2) ** 2

def grad(x):
    return 2 * (x - 2)

alpha = 0.1
beta1 = 0.9
beta2 = 0.999
eps = 1e-8
steps = 50

x_sgd = 8.0
sgd_traj = [x_sgd]

x_adam = 8.0
m = 0
v = 0
adam_traj = [x_adam]

for t in range(1, steps + 1):
    g = grad(x_sgd)
    x_sgd -= alpha * g
    sgd_traj.append(x_sgd)

    g = grad(x_adam)
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * (g ** 2)
    m_hat = m / (1 - beta1 ** t)
    v_hat = v / (1 - beta2 ** t)
    x_adam -= alpha * m_hat / (np.sqrt(v_hat) + eps)
    adam_traj.append(x_adam)

x_vals = np.linspace(-2, 8, 100)
y_vals = loss(x_vals)
plt.figure(figsize=(8, 5))
plt.plot(x_vals, y_vals, label="Loss Surface f(x)")
plt.plot(sgd_traj, [loss(x) for x in sgd_traj], "o-", label="SGD Path")
plt.plot(adam_traj, [loss(x) for x in adam_traj], "s-", label="Adam Path")
plt.xlabel("x")
plt.ylabel("Loss")
plt.title("Adam vs. SGD Parameter Updates")
plt.legend()
plt.grid(True)
plt.savefig("lesson.png")
"""


def adamlab_command() -> list[str]:
    """The installed ``adamlab`` script next to this interpreter, else ``python -m adamlab``."""
    script = Path(sys.executable).parent / "adamlab"
    if script.exists():
        return [str(script)]
    found = shutil.which("adamlab")
    return [found] if found else [sys.executable, "-m", "adamlab"]


def wall(cmd: list[str], cwd: str) -> float:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=9, help="runs of each command (default 9)")
    ap.add_argument("--json", default="compare_cold_start.json", help="where to write results")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "lesson.py").write_text(LESSON)
        commands = {
            "python_startup": [sys.executable, "-c", "pass"],
            "lesson_script": [sys.executable, "lesson.py"],
            "adamlab_compare": [*adamlab_command(), "compare", "--out", "tmp.png"],
        }
        for cmd in commands.values():  # one warm-up each: file cache, .pyc, font cache
            wall(cmd, tmp)
        times: dict[str, list[float]] = {k: [] for k in commands}
        for _ in range(args.repeats):  # interleaved, so that load drifts hit both alike
            for name, cmd in commands.items():
                times[name].append(wall(cmd, tmp))

    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["adamlab_compare"] / med["lesson_script"]
    print(f"cold wall time, median of {args.repeats} fresh processes:")
    for name in commands:
        print(
            f"  {name:<16} {med[name]:.3f} s   (min {min(times[name]):.3f}, max {max(times[name]):.3f})"
        )
    print(f"  ratio adamlab compare / lesson script = {ratio:.2f}")
    record = {
        "benchmark": "compare_cold_start",
        "repeats": args.repeats,
        "median_s": med,
        "times_s": times,
        "ratio_adamlab_over_lesson": ratio,
        "commands": {k: " ".join(v) for k, v in commands.items()},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    tmp_json = Path(args.json).with_name(Path(args.json).name + ".tmp")
    tmp_json.write_text(json.dumps(record, indent=1))
    os.replace(tmp_json, args.json)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
