"""The playground's server (``adamlab serve``): its JSON API returns the library's own
numbers in the ``adamlab compare --json`` format, refuses bad input with the library's words
and a 4xx, keeps its limits, serves only its own files with strict headers, and stays up
under load. The page itself is tested in a real browser in ``test_serve_browser.py``.

The API is tested in-process (Starlette's TestClient, with the real worker processes); the
command, path traversal and load against the real server on a free port of 127.0.0.1.
"""

from __future__ import annotations

import importlib.util
import json
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

try:  # the serve extra; without it these tests must fail loudly, not skip
    from starlette.testclient import TestClient
except ImportError as e:  # pragma: no cover
    raise ImportError(
        f"tests/test_serve.py needs the serve extra: pip install -e '.[test]' ({e})"
    ) from e

import adamlab
from adamlab import plot
from adamlab.lab import Result, compare, optimizer_from_spec
from adamlab.serve import create_app, running
from adamlab.serve.request import SEED_OPTS, Limits

ROOT = Path(__file__).resolve().parents[1]
LOCAL = "http://127.0.0.1"


def load_bench():
    spec = importlib.util.spec_from_file_location(
        "bench_serve", ROOT / "benchmarks" / "bench_serve.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(workers=2), base_url=LOCAL) as c:
        yield c


@pytest.fixture(scope="module")
def server():
    with running() as base:
        yield base


def as_result(content: bytes, tmp_path: Path, name: str = "run.json") -> Result:
    path = tmp_path / name
    path.write_bytes(content)
    return Result.load(path)


def assert_same_runs(got: Result, want: Result) -> None:
    """Every recorded array equal, bit for bit (NaN where NaN)."""
    assert got.labels == want.labels
    assert got.seeds == want.seeds and got.steps == want.steps
    np.testing.assert_array_equal(got.start, want.start)
    for a, b in zip(got.trajectories, want.trajectories, strict=True):
        assert (a.label, a.seed, a.diverged_at, a.optimizer) == (
            b.label,
            b.seed,
            b.diverged_at,
            b.optimizer,
        )
        for name in ("x", "loss", "grad_norm", "step", "step_norm"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        assert a.diagnostics.keys() == b.diagnostics.keys()
        for k in a.diagnostics:
            np.testing.assert_array_equal(a.diagnostics[k], b.diagnostics[k], err_msg=k)
    assert got.metrics() == want.metrics()


# -- the seed demo and the compare --json format ------------------------------------------------


def test_empty_request_is_the_seed_demo_with_the_librarys_numbers(client, tmp_path):
    r = client.post("/api/compare", json={})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    got = as_result(r.content, tmp_path)
    want = compare("quadratic", list(SEED_OPTS), steps=50)
    assert_same_runs(got, want)
    assert [m.final_x[0] for m in got.metrics()] == [2.000085634861562, 3.7038434759725885]
    doc = r.json()
    assert doc["meta"]["table"] == want.table()
    assert doc["meta"]["command"] == ["adamlab", "compare"]
    assert doc["meta"]["criterion"] == "|x - 2| < 0.001"
    compute_ms = float(r.headers["server-timing"].split("compute;dur=")[1].split(",")[0])
    assert compute_ms > 0


def test_response_is_the_file_adamlab_compare_json_writes(client, tmp_path):
    """The same document as the CLI's --json file, up to when and how it was made."""
    proc = subprocess.run(
        [sys.executable, "-m", "adamlab", "compare", "--json", "cli.json", "--out", "cli.png"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    cli = json.loads((tmp_path / "cli.json").read_text())
    api = client.post("/api/compare", json={}).json()
    assert cli["meta"]["command"][:2] == api["meta"]["command"] == ["adamlab", "compare"]
    for doc in (cli, api):
        doc.pop("meta")
    assert api == cli
    # and the page's table is the one the command prints
    assert proc.stdout.startswith(client.post("/api/compare", json={}).json()["meta"]["table"])


def test_2d_problem_start_seeds_and_every_optimizer(client, tmp_path):
    opts = [f"{name}:lr=0.01" for name in adamlab.OPTIMIZERS]
    body = {"problem": "linear-noisy-beale", "opt": opts, "steps": 60, "start": [1.5, -0.5],
            "seed": 3, "repeats": 2}  # fmt: skip
    r = client.post("/api/compare", json=body)
    assert r.status_code == 200, r.text
    want = compare("linear-noisy-beale", opts, steps=60, start=[1.5, -0.5], seed=[3, 4])
    assert_same_runs(as_result(r.content, tmp_path), want)
    command = r.json()["meta"]["command"]
    assert command[:4] == ["adamlab", "compare", "--problem", "linear-noisy-beale"]
    assert "--start=1.5,-0.5" in command and command[-4:] == ["--seed", "3", "--repeats", "2"]


def test_expression_problem_and_schedule_spec(client, tmp_path):
    from adamlab.problems import from_expression

    body = {"function": "(x-1)**2 + 10*(y-x**2)**2", "opt": ["adam:lr=0.05"], "steps": 40}
    r = client.post("/api/compare", json=body)
    assert r.status_code == 200, r.text[:300]
    want = compare(from_expression(body["function"]), body["opt"], steps=40)
    assert_same_runs(as_result(r.content, tmp_path), want)
    # schedules in the spec grammar: Reddi et al.'s α/√t
    opts = [
        "adam:lr=inverse_sqrt(0.5),betas=0/0.1",
        "adam:lr=inverse_sqrt(0.5),betas=0/0.1,amsgrad=yes",
    ]
    r = client.post("/api/compare", json={"problem": "reddi-thm1", "opt": opts, "steps": 300})
    assert r.status_code == 200, r.text[:300]
    got = as_result(r.content, tmp_path, "reddi.json")
    assert_same_runs(got, compare("reddi-thm1", opts, steps=300))
    adam, amsgrad = (m.final_x[0] for m in got.metrics())
    assert adam > 0.9 and amsgrad < 0  # Adam goes the wrong way, AMSGrad does not


# -- the library's refusals, in its words -------------------------------------------------------


def library_message(spec: str) -> str:
    with pytest.raises((ValueError, TypeError)) as e:
        optimizer_from_spec(spec)
    return str(e.value)


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ("adam:lr=-1", "lr"),
        ("adam:betas=0.9/1.0", "betas"),
        ("adam:lr=0.1,eps_placement=sideways", "eps_placement"),
        ("adam:bias_correction=maybe", "bias_correction"),
        ("sgd:lr=0.1,momentum=-0.5", "momentum"),
        ("sgd:nesterov=true", "nesterov"),  # refused on the defaults (momentum 0)
        ("adam:amsgrad=true,amsgrad_variant=corrected,eps_placement=before_correction", None),
        ("adam:beta=0.9", None),  # an unknown key: the spec itself is refused
        ("adamx:lr=1", None),
        ("adam:lr", None),
    ],
)
def test_optimizer_errors_name_the_field_and_key_in_the_librarys_words(client, spec, key):
    r = client.post("/api/compare", json={"opt": ["sgd:lr=0.1", spec]})
    assert r.status_code == 400
    body = r.json()
    assert body["error"] == library_message(spec)
    assert body["field"] == "opt[1]"
    assert body.get("key") == key


@pytest.mark.parametrize(
    ("body", "field", "status", "words"),
    [
        ({"problem": "nope"}, "problem", 400, "unknown problem 'nope'"),
        ({"problem": "rosenbrock:b=abc"}, "problem", 400, "b must be a number"),
        ({"function": "__import__('os').system('id')"}, "function", 400, "refused expression"),
        ({"function": "x" * 501}, "function", 400, "longer than the limit of 500"),
        ({"problem": "quadratic", "start": [1.0, 2.0]}, "start", 400, "start has 2 coordinate"),
        ({"problem": "rosenbrock", "function": "x**2"}, "function", 400, "not both"),
        ({"start": "8"}, "start", 400, "a number or a list of numbers"),
        ({"steps": 0}, "steps", 400, "at least 1"),
        ({"steps": 2.5}, "steps", 400, "whole number"),
        ({"steps": True}, "steps", 400, "whole number"),
        ({"seed": -1}, "seed", 400, "at least 0"),
        ({"seed": 2**53}, "seed", 400, "at most 9007199254740991"),
        ({"problem": ""}, "problem", 400, "unknown problem ''"),
        ({"opt": []}, "opt", 400, "at least one"),
        ({"opt": [1, 2]}, "opt", 400, "spec or a list"),
        ({"colour": "red"}, "colour", 400, "unknown field 'colour'"),
        ([1, 2, 3], None, 400, "JSON object"),
        # the playground's limits, each with its own message
        ({"steps": 20_001}, "steps", 422, "at most 20000"),
        ({"opt": ["sgd:lr=0.1"] * 9}, "opt", 422, "at most 8 optimizers"),
        ({"repeats": 21}, "repeats", 422, "at most 20"),
        ({"steps": 5001, "opt": ["sgd:lr=0.1"] * 8}, "steps", 422, "at most 40000 per request"),
        ({"problem": "mlp-digits"}, "problem", 422, "at most 10"),
        ({"problem": "sphere:dim=11"}, "problem", 422, "has 11 coordinates"),
        ({"start": [0.0] * 11}, "start", 422, "at most 10"),
        ({"opt": ["adam:lr=0.1" + "0" * 500]}, "opt[0]", 422, "at most 500"),
        ({"problem": "sphere:dim=100000000000"}, None, 422, "more memory"),
    ],
)
def test_bad_requests_get_a_4xx_json_error(client, body, field, status, words):
    r = client.post("/api/compare", json=body)
    assert r.status_code == status, r.text[:300]
    err = r.json()
    assert words in err["error"] and err["field"] == field
    assert "Traceback" not in r.text


def test_malformed_bodies(client):
    cases = [
        (b"{not json", "application/json", 400, "not valid JSON"),
        (b'{"steps": NaN}', "application/json", 400, "not strict JSON"),
        (b"[" * 100_000, "application/json", 413, "limit"),
        (b"[" * 20_000 + b"]" * 20_000, "application/json", 400, "not valid JSON"),
        (b"{}", "text/plain", 415, "Content-Type: application/json"),
        (b"\xff\xfe", "application/json", 400, "not valid JSON"),
    ]
    for content, ctype, status, words in cases:
        r = client.post("/api/compare", content=content, headers={"content-type": ctype})
        assert r.status_code == status and words in r.json()["error"], (content[:20], r.text)


def test_odd_input_never_gets_a_500(client):
    """Odd but well-formed input everywhere: always 200 or a 4xx with a JSON message."""
    texts = ["", " ", ":", "adam:", "adam:,", "adam:lr==1", "adam:lr=1/2/3", "adam:lr=(", "adam:lr=)",
             "adam:lr=cosine(", "adam:lr=cosine(0.1)", "adam:lr=nosuch(1)", "adam:lr=inf",
             "adam:lr=nan", "adam:lr=1e999", "adam:betas=0.9", "adam:betas=a/b",
             "adam:bias_correction=true/true/true", "sgd:lr=" + "9" * 400, "\x00", "ü:ä=ö",
             "rmsprop:alpha=1", "nadam:momentum_decay=inf", "radam:eps_placement=1"]  # fmt: skip
    problems = ["", ":", "rosenbrock:", "rosenbrock:a", "rosenbrock:a=1,a=2", "sphere:dim=0",
                "sphere:dim=-1", "sphere:dim=1.5", "ill-conditioned:kappa=0", "reddi-thm1:C=1",
                "noisy-quadratic:sigma=-1", "two-well:tilt=inf", "rosenbrock:noise=gaussian",
                "quadratic:center=nan"]  # fmt: skip
    functions = ["", "x +", "1/0", "x/0", "log(-1)*x", "9**9**9", "x**1e6", "(" * 200 + "x" + ")" * 200,
                 "sin(x, y)", "lambda: 1", "x1 + x999", "x.real", "x[0]", "'x'", "1 < x"]  # fmt: skip
    bodies = [{"opt": [t]} for t in texts] + [{"problem": p} for p in problems]
    bodies += [{"function": f, "opt": ["adam:lr=0.1"], "steps": 5} for f in functions]
    bodies += [
        {"start": [1e308]},
        {"start": [-1e308]},
        {"problem": "rosenbrock", "start": [1e300, 1e300]},
    ]
    for body in bodies:
        r = client.post("/api/compare", json=body)
        assert r.status_code == 200 or 400 <= r.status_code < 500, (
            body,
            r.status_code,
            r.text[:300],
        )
        if r.status_code != 200:
            assert isinstance(r.json()["error"], str) and r.json()["error"], body


# -- listings -------------------------------------------------------------------------------------


def test_optimizers_listing_is_the_librarys(client):
    doc = client.get("/api/optimizers").json()
    listed = {o["name"]: o for o in doc["optimizers"]}
    assert list(listed) == list(adamlab.OPTIMIZERS)
    for name, cls in adamlab.OPTIMIZERS.items():
        defaults = cls().describe()
        hypers = {h["name"]: h for h in listed[name]["hyperparameters"]}
        assert set(hypers) == set(defaults) - {"name"}
        for key, h in hypers.items():
            assert h["default"] == defaults[key], (name, key)
            if h["kind"] in ("number", "pair"):  # the range the optimizer's own check quotes
                with pytest.raises(ValueError, match=re.escape(h["range"]["text"])):
                    value = -1.0 if h["range"]["lo"] == 0 else float("nan")
                    cls(**{key: (value, value) if h["kind"] == "pair" else value})
    adam = {h["name"]: h for h in listed["adam"]["hyperparameters"]}
    assert adam["bias_correction"]["kind"] == "flag-pair"
    assert adam["eps_placement"]["choices"] == ["after_correction", "before_correction"]
    assert adam["betas"]["range"] == {
        "text": "[0, 1)",
        "lo": 0.0,
        "hi": 1.0,
        "lo_open": False,
        "hi_open": True,
    }
    assert "3.16" in adam["bias_correction"]["help"]
    from adamlab.lab.specs import SCHEDULES

    assert [s["name"] for s in doc["schedules"]] == list(SCHEDULES)
    cosine = next(s for s in doc["schedules"] if s["name"] == "cosine")
    assert [a["name"] for a in cosine["arguments"]][:2] == ["init", "total_steps"]


def test_problems_listing_is_the_librarys(client):
    from adamlab.problems import PROBLEMS

    doc = client.get("/api/problems").json()
    listed = {p["name"]: p for p in doc["problems"]}
    assert list(listed) == list(PROBLEMS)
    for name, p in listed.items():
        assert p["dim"] == PROBLEMS[name].dim and p["playground"] == (p["dim"] <= 10)
    assert listed["rosenbrock"]["x0"] == [-1.2, 1.0] and listed["rosenbrock"]["group"] == "surface"
    assert {q["name"]: q["default"] for q in listed["ill-conditioned"]["parameters"]} == {
        "kappa": 100.0, "theta": 0.0, "dim": 2}  # fmt: skip
    assert listed["reddi-thm1"]["group"] == "online"
    assert doc["expression"]["max_length"] == 500
    index = client.get("/api").json()
    assert index["seed_demo"]["opt"] == list(SEED_OPTS) and index["limits"]["optimizers"] == 8


# -- exports --------------------------------------------------------------------------------------


def test_exports_are_the_librarys_files(client, tmp_path):
    body = {
        "problem": "rosenbrock",
        "opt": ["adam:lr=0.05", "sgd:lr=1e-3,momentum=0.9"],
        "steps": 80,
    }
    want = compare("rosenbrock", body["opt"], steps=80)
    r = client.post("/api/export?format=json", json=body)
    assert (
        r.status_code == 200
        and 'filename="adamlab-compare.json"' in r.headers["content-disposition"]
    )
    assert_same_runs(as_result(r.content, tmp_path), want)
    r = client.post("/api/export?format=csv", json=body)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    import pandas as pd

    frame = pd.read_csv(__import__("io").BytesIO(r.content))
    pd.testing.assert_frame_equal(frame, want.to_frame(), check_dtype=False)
    r = client.post("/api/export?format=png&diagnostics=1", json=body)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    plot.save_figure(plot.figure_for(want, diagnostics=True), tmp_path / "want.png")
    assert r.content == (tmp_path / "want.png").read_bytes()  # the figure adamlab.plot draws
    r = client.post("/api/export?format=svg", json=body)
    assert r.status_code == 200 and r.content.lstrip().startswith(b"<?xml")
    r = client.post("/api/export?format=gif", json=body)
    assert r.status_code == 400 and r.json()["field"] == "format"


# -- limits in time and in the queue --------------------------------------------------------------


def test_a_run_over_the_time_limit_is_stopped_and_the_server_goes_on():
    with TestClient(create_app(workers=1, limits=Limits(seconds=0.5)), base_url=LOCAL) as c:
        assert c.post("/api/compare", json={}).status_code == 200  # the worker is warm
        t0 = time.perf_counter()
        r = c.post(
            "/api/compare", json={"problem": "rosenbrock", "opt": ["adam:lr=0.05"], "steps": 20_000}
        )
        assert time.perf_counter() - t0 < 10
        assert r.status_code == 422 and "limit of 0.5 s" in r.json()["error"]
        assert c.post("/api/compare", json={}).status_code == 200  # a new worker took over


def test_a_full_queue_answers_429_at_once():
    limits = Limits(waiting=0, seconds=120)  # the slow request is not stopped on a slow runner
    with TestClient(create_app(workers=1, limits=limits), base_url=LOCAL) as c:
        assert c.post("/api/compare", json={}).status_code == 200
        slow: dict = {}
        # the most work a request may ask for (steps × optimizers): seconds of a worker's time
        # (about 6 here, warm; 6,000 steps, once enough, took under the 1 s below on a fast run)
        body = {"problem": "rosenbrock", "opt": ["adam:lr=0.05", "adam:lr=0.01"], "steps": 20_000}
        t = threading.Thread(target=lambda: slow.update(r=c.post("/api/compare", json=body)))
        t.start()
        time.sleep(1.0)
        r = c.post("/api/compare", json={})
        t.join()
        assert r.status_code == 429 and "busy" in r.json()["error"]
        assert slow["r"].status_code == 200


# -- security -------------------------------------------------------------------------------------


def test_security_headers_on_every_response(client):
    for method, path in [("GET", "/"), ("GET", "/static/app.js"), ("GET", "/api/problems"),
                         ("GET", "/nope"), ("POST", "/api/compare")]:  # fmt: skip
        r = client.request(method, path, json={} if method == "POST" else None)
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp
        assert "http" not in csp and "unsafe" not in csp and "*" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"


def test_other_host_names_are_refused(client):
    r = client.get("/api", headers={"host": "attacker.example"})
    assert r.status_code == 400 and "127.0.0.1" in r.json()["error"]
    assert client.get("/api", headers={"host": "localhost:8765"}).status_code == 200


def test_unknown_paths_and_methods(client):
    assert client.get("/api/nope").json() == {"error": "not found: /api/nope", "field": None}
    assert client.get("/api/compare").status_code == 405
    assert client.delete("/").status_code == 405


def raw_get(base: str, path: str) -> tuple[int, bytes]:
    """A request with the path exactly as written (clients would normalise ``..`` away)."""
    host, port = base.split("//")[1].strip("/").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize(
    "path",
    [
        "/static/../app.py", "/static/../../serve/app.py", "/static/vendor/../../app.py",
        "/static/%2e%2e/app.py", "/static/%2E%2E/app.py", "/static/..%2fapp.py",
        "/static/..%2Fapp.py", "/static/%2e%2e%2fapp.py", "/static/..%5capp.py",
        "/static/..\\app.py", "/static/%252e%252e/app.py", "/static/....//app.py",
        "/static//etc/passwd", "/static/%2fetc%2fpasswd", "/static/%00../app.py",
        "/static/./../app.py", "/../src/adamlab/serve/app.py", "/%2e%2e/pyproject.toml",
    ],
)  # fmt: skip
def test_static_files_cannot_escape_their_folder(server, path):
    status, body = raw_get(server, path)
    assert status in (400, 404), (path, status)
    assert b"def create_app" not in body and b"root:" not in body and b"[project]" not in body


def test_static_files_are_served(server):
    status, body = raw_get(server, "/static/app.js")
    assert status == 200 and b"api.compare" in body
    status, body = raw_get(server, "/static/vendor/uPlot.LICENSE")
    assert status == 200 and b"MIT License" in body


# -- the command -------------------------------------------------------------------------------------


def test_command_refuses_a_busy_port(capsys):
    from adamlab.serve.command import run

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert run(port=port) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"adamlab: error: cannot listen on 127.0.0.1:{port}")


def test_command_warns_when_not_on_loopback():
    proc = subprocess.Popen(
        [sys.executable, "-m", "adamlab.serve", "--host", "0.0.0.0", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()
        assert line.startswith("adamlab playground: http://127.0.0.1:")
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert "warning: listening on 0.0.0.0, reachable from other machines" in err


def test_add_arguments_defaults():
    import argparse

    from adamlab.serve import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([])
    assert (args.host, args.port, args.open) == ("127.0.0.1", 8765, False)
    with pytest.raises(SystemExit):
        parser.parse_args(["--port", "70000"])


# -- under load ---------------------------------------------------------------------------------------


def test_under_load_every_request_gets_its_answer(server):
    """200 mixed requests, 8 at a time, to the real server: each gets the status the mix
    expects (200, or its 4xx with a JSON message), and the server is still up afterwards."""
    bench = load_bench()
    requests = bench.mix(200, seed=1)
    assert len({(r["method"], r["path"], r["expect"]) for r in requests}) > 10  # a real mix
    result = bench.load(server, requests, concurrency=8)
    assert result["unexpected"] == []
    for a in result["answers"]:
        if a["status"] >= 400:
            assert isinstance(a["error"], dict) and a["error"]["error"], a
    assert bench.send(server, {"method": "GET", "path": "/api"})["status"] == 200
    print(
        f"\nload: {result['requests_per_s']:.1f} requests/s, p95 {result['latency_s']['p95'] * 1e3:.0f} ms"
    )
