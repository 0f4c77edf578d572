"""benchmarks/_common.py: what every benchmark records and how it writes its report."""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def common():
    spec = importlib.util.spec_from_file_location("_common", ROOT / "benchmarks" / "_common.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_write_report_writes_json_and_makes_the_folder(common, tmp_path):
    out = tmp_path / "new" / "r.json"
    common.write_report(out, {"a": [1, 2.5], "b": None})
    assert json.loads(out.read_text()) == {"a": [1, 2.5], "b": None}
    assert out.read_text().endswith("\n")


def test_write_report_that_fails_leaves_the_last_report_whole(common, tmp_path, monkeypatch):
    out = tmp_path / "r.json"
    common.write_report(out, {"run": 1})
    before = out.read_bytes()
    with pytest.raises(TypeError):  # unserialisable: nothing written
        common.write_report(out, {"run": 2, "bad": object()})
    assert out.read_bytes() == before

    def cut_off(*args):  # the run dies after the new text is written, before the rename
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", cut_off)
    with pytest.raises(KeyboardInterrupt):
        common.write_report(out, {"run": 3, "long": list(range(1000))})
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]  # no temporary left


@pytest.mark.parametrize("xs", [[3.0, 1.0, 2.0], [0.9, 1.1, 0.8, 1.3, 1.0, 0.7], [2.0]])
def test_quartiles_are_statistics_inclusive_quartiles_and_median(common, xs):
    lo, mid, hi = common.quartiles(xs)
    assert mid == statistics.median(xs)
    if len(xs) > 1:
        q = statistics.quantiles(xs, n=4, method="inclusive")
        assert (lo, hi) == (q[0], q[2])
    else:
        assert lo == hi == xs[0]
    assert lo <= mid <= hi


def test_rerun_passive_drops_the_flag_and_sets_the_policy(common, monkeypatch):
    calls = []
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setattr(os, "execve", lambda exe, args, env: calls.append((exe, args, env)))
    common.rerun_passive("/x/bench.py", ["--quick", "--passive", "--out", "o.json"])
    [(exe, args, env)] = calls
    assert exe == sys.executable
    assert args == [sys.executable, "/x/bench.py", "--quick", "--out", "o.json"]
    assert env["OMP_WAIT_POLICY"] == "PASSIVE"
    common.rerun_passive("/x/bench.py", ["--passive"], flag=None)  # keeps every argument
    assert calls[-1][1] == [sys.executable, "/x/bench.py", "--passive"]


def test_rerun_passive_does_nothing_where_the_policy_is_set(common, monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.setattr(os, "execve", lambda *a: pytest.fail("re-ran"))
    common.rerun_passive("/x/bench.py", ["--passive"])


def test_command_machine_and_environment(common, monkeypatch):
    assert common.command("benchmarks/b.py", ["--n", "5"]) == "python benchmarks/b.py --n 5"
    import adamlab

    info = common.machine(peer="1.0")
    assert info["cores"] == os.cpu_count() and info["adamlab"] == adamlab.__version__
    assert info["cpu"] and info["python"] and info["peer"] == "1.0"
    assert ("torch" in info) == ("torch" in sys.modules)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    env = common.environment()
    assert env["OMP_NUM_THREADS"] == "3" and env["OMP_WAIT_POLICY"] is None
    assert set(env) == set(common.ENV_KEYS)


def test_run_options_quick_threads_and_passive(common, monkeypatch):
    import argparse

    torch = pytest.importorskip("torch")
    ap = argparse.ArgumentParser()
    common.add_run_options(ap, "x.json")
    args = ap.parse_args(["--quick", "--threads", "1"])
    assert args.out == ROOT / "benchmarks" / "results" / "x.json"
    before = torch.get_num_threads()
    try:
        common.start_run(args, "/x/bench.py", [])
        assert (args.rounds, args.warmup, torch.get_num_threads()) == (8, 2, 1)
    finally:
        torch.set_num_threads(before)
    calls = []
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setattr(os, "execve", lambda exe, a, env: calls.append(a))
    ap = argparse.ArgumentParser()
    common.add_run_options(ap, "x.json", rounds=15, warmup=False)
    args = ap.parse_args(["--passive"])
    assert args.rounds == 15 and not hasattr(args, "quick")
    common.start_run(args, "/x/bench.py", ["--passive"])
    assert calls == [[sys.executable, "/x/bench.py"]]


def test_dist_version_reads_the_installed_distribution(common):
    import numpy as np
    import sklearn

    assert common.dist_version("numpy") == np.__version__
    assert common.dist_version("scikit-learn") == sklearn.__version__  # (not its import name)
    assert common.dist_version("no-such-distribution-adamlab") is None
