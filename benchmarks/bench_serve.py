"""The playground under load, and its server time per run.

Starts the real server (``python -m adamlab.serve`` on a free port of 127.0.0.1), then:

1. **server time** (the ``Server-Timing: compute`` header: the run and its JSON, measured in
   the worker) of the seed demo, and of 2-D problems at 1,000 steps (one optimizer, and the
   README's three on Rosenbrock), medians of a few requests;
2. **load**: a fixed mix of requests (valid runs, the library's refusals, requests over the
   limits, listings, static files, figure exports, path-traversal attempts), sent N at a time;
   each must get the status the mix expects (200, or its 4xx with a JSON error), and the
   server must still answer afterwards. Prints requests/s and latency percentiles.

    python benchmarks/bench_serve.py --requests 240 --concurrency 8 \\
        --json benchmarks/results/bench_serve.json

Not a test (it never asserts on time); ``tests/test_serve.py`` runs the load part with
fewer requests and checks every answer.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).parent))  # _common, also when loaded by path
from _common import command, machine, write_report

SEED = {"problem": "quadratic", "steps": 50}


def mix(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` requests: ``{"method", "path", "body", "expect"}``, in a fixed pseudo-random order."""
    rng = random.Random(seed)
    kinds: list[tuple[float, Any]] = [
        (
            30,
            lambda: {
                "body": {**SEED, "opt": ["sgd:lr=0.1", f"adam:lr={rng.choice([0.01, 0.1, 0.5])}"]}
            },
        ),
        (
            8,
            lambda: {
                "body": {
                    "problem": rng.choice(["rosenbrock", "himmelblau", "saddle", "beale"]),
                    "opt": ["adam:lr=0.05", "sgd:lr=1e-3,momentum=0.9"],
                    "steps": 100,
                }
            },
        ),
        (
            4,
            lambda: {
                "body": {"function": "(x-2)**2 + 3*sin(x)", "opt": ["adam:lr=0.1"], "steps": 50}
            },
        ),
        (
            4,
            lambda: {
                "body": {
                    "problem": "reddi-thm1",
                    "opt": ["adam:lr=0.1,betas=0/0.1", "adam:lr=0.1,betas=0/0.1,amsgrad=true"],
                    "steps": 200,
                }
            },
        ),
        (
            6,
            lambda: {
                "body": {
                    "opt": [
                        rng.choice(
                            [
                                "adam:lr=-1",
                                "adam:betas=0.9/1",
                                "adam:beta=0.9",
                                "nope:lr=1",
                                "sgd:nesterov=true",
                            ]
                        )
                    ]
                },
                "expect": 400,
            },
        ),
        (3, lambda: {"body": {"function": "__import__('os').system('id')"}, "expect": 400}),
        (3, lambda: {"body": {"problem": "rosenbrock:b=abc"}, "expect": 400}),
        (3, lambda: {"body": {"steps": 10**6}, "expect": 422}),
        (2, lambda: {"body": {"opt": ["sgd:lr=0.1"] * 9}, "expect": 422}),
        (2, lambda: {"body": {"problem": "mlp-digits"}, "expect": 422}),
        (2, lambda: {"body": "not an object", "expect": 400}),
        (
            6,
            lambda: {
                "method": "GET",
                "path": rng.choice(["/", "/api", "/api/problems", "/api/optimizers"]),
            },
        ),
        (
            6,
            lambda: {
                "method": "GET",
                "path": rng.choice(
                    ["/static/app.js", "/static/style.css", "/static/vendor/uPlot.esm.js"]
                ),
            },
        ),
        (
            4,
            lambda: {
                "method": "GET",
                "path": rng.choice(
                    ["/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2fapp.py"]
                ),
                "expect": 404,
            },
        ),
        (
            3,
            lambda: {
                "path": f"/api/export?format={rng.choice(['png', 'svg', 'csv'])}",
                "body": SEED,
            },
        ),
    ]
    weights = [w for w, _ in kinds]
    out = []
    for _ in range(n):
        (_, make) = rng.choices(kinds, weights)[0]
        r = {"method": "POST", "path": "/api/compare", "expect": 200, **make()}
        out.append(r)
    return out


def send(base: str, req: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
    """One request on its own connection; the status, the JSON error if any, the time."""
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    body = None if req["method"] == "GET" else json.dumps(req["body"]).encode()
    headers = {"content-type": "application/json"} if body is not None else {}
    t0 = time.perf_counter()
    try:
        conn.request(req["method"], req["path"], body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        status, timing = resp.status, resp.getheader("server-timing") or ""
        ctype = resp.getheader("content-type") or ""
    finally:
        conn.close()
    seconds = time.perf_counter() - t0
    error = None
    if status >= 400:
        error = json.loads(data) if ctype.startswith("application/json") else data[:200]
    return {**req, "status": status, "seconds": seconds, "error": error, "timing": timing}


def load(base: str, requests: list[dict[str, Any]], concurrency: int) -> dict[str, Any]:
    """Send ``requests``, ``concurrency`` at a time; the answers and summary numbers."""
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        answers = list(pool.map(lambda r: send(base, r), requests))
    wall = time.perf_counter() - t0
    lat = sorted(a["seconds"] for a in answers)

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, round(p / 100 * (len(lat) - 1)))]

    by_status: dict[str, int] = {}
    for a in answers:
        by_status[str(a["status"])] = by_status.get(str(a["status"]), 0) + 1
    return {
        "answers": answers,
        "requests": len(answers),
        "concurrency": concurrency,
        "wall_s": wall,
        "requests_per_s": len(answers) / wall,
        "latency_s": {"p50": pct(50), "p95": pct(95), "p99": pct(99), "max": lat[-1]},
        "status": by_status,
        "unexpected": [
            {k: a[k] for k in ("method", "path", "body", "expect", "status", "error")}
            for a in answers
            if a["status"] != a["expect"]
        ],
    }


def compute_ms(base: str, body: dict[str, Any], repeats: int) -> dict[str, float]:
    """Median server time (compute, and total inside the server) of ``repeats`` runs."""
    compute, total = [], []
    for _ in range(repeats):
        a = send(base, {"method": "POST", "path": "/api/compare", "body": body, "expect": 200})
        if a["status"] != 200:
            raise RuntimeError(f"{body}: {a['status']} {a['error']}")
        parts = dict(p.strip().split(";dur=") for p in a["timing"].split(","))
        compute.append(float(parts["compute"]))
        total.append(float(parts["total"]))
    return {
        "compute_ms_median": statistics.median(compute),
        "compute_ms_min": min(compute),
        "server_total_ms_median": statistics.median(total),
        "repeats": repeats,
    }


RUNS = {
    "seed demo (SGD vs Adam, 50 steps)": {},
    "rosenbrock, 1 optimizer x 1000 steps": {
        "problem": "rosenbrock",
        "opt": ["adam:lr=0.05"],
        "steps": 1000,
    },
    "rosenbrock, the README's 3 optimizers x 1000 steps": {
        "problem": "rosenbrock",
        "steps": 1000,
        "opt": ["sgd:lr=1e-3,momentum=0.9", "adam:lr=0.05", "rmsprop:lr=0.01"],
    },
    "himmelblau, 1 optimizer x 1000 steps": {
        "problem": "himmelblau",
        "opt": ["adam:lr=0.05"],
        "steps": 1000,
    },
}


def _loadavg() -> float | None:
    """The 1-minute load average (other jobs on the machine slow every number here)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=240)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=7, help="runs per server-time median")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)

    from adamlab.serve import running

    load_before = _loadavg()
    with running() as base:
        send(base, {"method": "POST", "path": "/api/compare", "body": {}})  # workers warm
        times = {name: compute_ms(base, body, args.repeats) for name, body in RUNS.items()}
        result = load(base, mix(args.requests), args.concurrency)
        alive = send(base, {"method": "GET", "path": "/api"})["status"] == 200
    load_after = _loadavg()

    print("server time per run (median; compute = the run and its JSON, in the worker):")
    for name, t in times.items():
        print(
            f"  {name:<52} {t['compute_ms_median']:8.1f} ms   (server total "
            f"{t['server_total_ms_median']:.1f} ms)"
        )
    lat = result["latency_s"]
    print(
        f"load: {result['requests']} mixed requests, {result['concurrency']} at a time: "
        f"{result['requests_per_s']:.1f} requests/s, latency p50 {lat['p50'] * 1e3:.0f} ms, "
        f"p95 {lat['p95'] * 1e3:.0f} ms, max {lat['max'] * 1e3:.0f} ms"
    )
    print(
        f"  statuses {result['status']}; unexpected: {len(result['unexpected'])}; "
        f"server up afterwards: {alive}"
    )
    print(
        f"  machine: {os.cpu_count()} CPUs, load average {load_before} before, {load_after} after"
    )
    if args.json:
        out = {
            "benchmark": "bench_serve",
            "command": command("benchmarks/bench_serve.py", argv),
            "machine": machine(load_average_1min_before_after=[load_before, load_after]),
            "server_time": times,
            "load": {k: v for k, v in result.items() if k != "answers"},
            "server_up_afterwards": alive,
        }
        write_report(args.json, out)
        print(f"wrote {args.json}")
    return 0 if alive and not result["unexpected"] else 1


if __name__ == "__main__":
    sys.exit(main())
