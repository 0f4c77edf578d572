"""Sweeps on a cluster: ``engine="dask"`` and ``engine="ray"`` give the vectorised table bit for
bit whatever the block size and worker count; a worker killed mid-sweep loses and duplicates
nothing; a failing block is one line; bad addresses and missing extras fail before any work.

The Dask tests run on a real local ``dask.distributed`` cluster (2 worker processes, one per
module); the Ray tests on a local Ray (2 CPUs), or are skipped saying why.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import signal
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adamlab.cli import main
from adamlab.lab.sweep import BlocksFailedError, grid, sweep
from adamlab.lab.sweep.distributed import NO_RAY, balance, local_dask_cluster
from adamlab.lab.sweep.plan import make_plan
from adamlab.optim.schedules import exponential_decay

# SGD with and without (Nesterov) momentum on two surfaces, two seeds: three groups, and
# learning rates up to 5, so that many runs diverge (NaN and overflow are part of the table)
ANALYTIC = {
    "optimizer": "sgd",
    "configs": [
        c
        for c in grid(lr=list(np.logspace(-3, 0.7, 9)), momentum=[0.0, 0.9], nesterov=[False, True])
        if not (c["nesterov"] and c["momentum"] == 0.0)
    ],
    "problems": ["rosenbrock", "beale"],
    "steps": 150,
    "seeds": 2,
}
# Adam with and without bias correction on the digits MLP (minibatches: the seed matters)
MLP = {
    "optimizer": "adam",
    "configs": grid(lr=[1e-3, 0.03, 1.0, 30.0], bias_correction=[True, False]),
    "problems": "mlp-digits",
    "steps": 12,
    "seeds": [0, 1],
    "eval_every": 6,
}


def run(spec: dict, **kw) -> pd.DataFrame:
    s = dict(spec)
    return sweep(s.pop("optimizer"), s.pop("configs"), s.pop("problems"), **s, **kw)


def hexed(table: pd.DataFrame) -> pd.DataFrame:
    """The table with its list column as the exact bits (``[nan] == [nan]`` is False)."""
    if "final_x" not in table:  # the MLP's 2,410 parameters are not in the table
        return table
    return table.assign(final_x=[tuple(float(v).hex() for v in x) for x in table.final_x])


def assert_same(table: pd.DataFrame, ref: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(hexed(table), hexed(ref), check_exact=True)


def records(out: Path) -> list[dict]:
    with open(out / "records.jsonl") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="module")
def client():
    """One real local cluster for the module: 2 worker processes of one thread each, as
    ``engine="dask"`` starts it without an address."""
    from dask.distributed import Client

    cluster = local_dask_cluster(2)
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def analytic_ref():
    ref = run(ANALYTIC, engine="vectorized", progress=False)
    assert ref.diverged.any() and not ref.diverged.all()
    assert ref.final_loss.isna().any()  # overflowed runs: NaN in the table
    return ref


@pytest.fixture(scope="module")
def mlp_ref():
    ref = run(MLP, engine="vectorized", progress=False)
    assert ref.diverged.any() and not ref.diverged.all()
    return ref


# -- the same table, whatever the engine, block size and worker count ----------------------------


@pytest.mark.parametrize("block_size", [None, 3, 100])
def test_dask_gives_the_vectorised_table_bit_for_bit(client, analytic_ref, block_size):
    table = run(ANALYTIC, engine="dask", address=client, block_size=block_size, progress=False)
    assert table.attrs["engines"] == {"rosenbrock": "dask", "beale": "dask"}
    assert table.attrs["computed"] == len(analytic_ref)
    assert_same(table, analytic_ref)


@pytest.mark.parametrize("block_size", [None, 3])
def test_dask_gives_the_digits_mlp_sweep_bit_for_bit(client, mlp_ref, block_size):
    table = run(MLP, engine="dask", address=client, block_size=block_size, progress=False)
    assert {"test_loss", "test_accuracy", "train_accuracy"} <= set(table)
    assert_same(table, mlp_ref)


def test_blocks_hold_many_configurations_and_one_bar_counts_them(client, capsys):
    """64 configurations of a 4,096-parameter problem on 2 workers: 8 blocks of 8 (about four
    per worker), not 64 tasks; the one bar counts runs and blocks."""
    configs = grid(lr=list(np.logspace(-3, 0, 64)))
    problem = "sphere:dim=4096"
    sweep("adam", configs, problem, steps=20, engine="dask", address=client, progress=True)
    err = capsys.readouterr().err
    assert "64/64" in err and "8/8 blocks" in err
    plan = make_plan("adam", configs, problem, steps=20, seeds=1)
    blocks = balance(list(plan.blocks(0)), slots=2)
    assert [len(b.cids) for b in blocks] == [8] * 8
    assert sorted(c for b in blocks for c in b.cids) == list(range(64))
    uneven = balance(list(plan.blocks(0, size=30)), slots=3)  # 30, 30, 4: pieces of <= 6
    assert sorted(len(b.cids) for b in uneven) == [4] + [6] * 10
    # a cheap 2-D problem is not cut below MIN_BLOCK_PARAMS: 10,000 rows in two blocks
    plan = make_plan("adam", [{"lr": 0.1}] * 10_000, "rosenbrock", steps=20, seeds=1)
    assert [len(b.cids) for b in balance(list(plan.blocks(0)), slots=2)] == [5000, 5000]


def test_the_local_cluster_leaves_glibc_alone(client):
    """Dask's nanny sets MALLOC_TRIM_THRESHOLD_ in its workers, which makes vectorised blocks
    several times slower; the local cluster adamlab starts does not."""
    if os.environ.get("MALLOC_TRIM_THRESHOLD_") is not None:
        pytest.skip("this process's environment sets MALLOC_TRIM_THRESHOLD_ itself")
    assert set(client.run(os.getenv, "MALLOC_TRIM_THRESHOLD_").values()) == {None}


def test_the_command_line_starts_its_own_cluster_of_one_worker(tmp_path, capsys):
    """No --address: a local cluster of --workers processes; the written table is the
    vectorised one (Parquet round trip included)."""
    argv = ["sweep", "sgd", "--problem", "rosenbrock", "--grid", "lr=0.001,0.01,0.1,1,5",
            "--grid", "momentum=0,0.9", "--seeds", "2", "--steps", "100"]  # fmt: skip
    assert main([*argv, "--engine", "vectorized", "--out", str(tmp_path / "vec")]) == 0
    assert main([*argv, "--engine", "dask", "--workers", "1", "--out", str(tmp_path / "dask")]) == 0
    assert "(rosenbrock: dask)" in capsys.readouterr().out
    tables = [pd.read_parquet(tmp_path / d / "sweep.parquet") for d in ("vec", "dask")]
    pd.testing.assert_frame_equal(tables[1], tables[0], check_exact=True)
    assert tables[0].diverged.any()


# -- resumable, and fault tolerant -------------------------------------------------------------


def test_a_rerun_on_any_engine_skips_what_is_done(client, tmp_path):
    configs = grid(lr=list(np.logspace(-3, 0, 8)), beta2=[0.99, 0.999])
    first = sweep("adam", configs[:6], "beale", steps=40, seeds=2, out=tmp_path, progress=False)
    assert first.attrs["computed"] == 12
    full = sweep(
        "adam", configs, "beale", steps=40, seeds=2, out=tmp_path, engine="dask",
        address=client, progress=False,
    )  # fmt: skip
    assert full.attrs["resumed"] == 12 and full.attrs["computed"] == 20
    again = sweep("adam", configs, "beale", steps=40, seeds=2, out=tmp_path, engine="loop")
    assert again.attrs["resumed"] == 32 and again.attrs["computed"] == 0
    recs = records(tmp_path)
    assert len(recs) == 32 and len({r["key"] for r in recs}) == 32
    assert_same(full, sweep("adam", configs, "beale", steps=40, seeds=2, engine="vectorized"))


def test_a_worker_killed_mid_sweep_loses_nothing_and_duplicates_nothing(client, tmp_path):
    """SIGKILL one worker process while it runs a block: the scheduler reruns the block on a
    worker that lives; every record is written once and the table is the vectorised one."""
    pids = client.run(os.getpid)  # worker address -> process id
    configs = grid(lr=list(np.logspace(-3, 0, 12)))
    kw = {"steps": 800, "seeds": 2, "block_size": 2}  # 12 blocks of a few tenths of a second
    result: dict = {}

    def background():
        try:
            result["table"] = sweep(
                "adam", configs, "rosenbrock", engine="dask", address=client, out=tmp_path,
                progress=False, **kw,
            )  # fmt: skip
        except BaseException as e:  # pragma: no cover - reported below
            result["error"] = e

    thread = threading.Thread(target=background)
    thread.start()
    path, victim, deadline = tmp_path / "records.jsonl", None, time.monotonic() + 60
    while victim is None and time.monotonic() < deadline and thread.is_alive():
        if path.exists() and path.read_bytes().count(b"\n") >= 4:  # two blocks done
            busy = {w: ks for w, ks in client.processing().items() if ks}
            victim = next((w for w, ks in busy.items() if any("adamlab_block" in str(k) for k in ks)), None)  # fmt: skip
        time.sleep(0.01)
    assert victim is not None, "no worker was running a block"
    written_before = path.read_bytes().count(b"\n")
    os.kill(pids[victim], signal.SIGKILL)
    thread.join(timeout=120)
    assert not thread.is_alive() and "error" not in result, result.get("error")
    assert 4 <= written_before < 24, "the kill should land mid-sweep"
    assert pids[victim] not in client.run(os.getpid).values()  # that process is gone
    recs = records(tmp_path)
    assert len(recs) == 24 and len({r["key"] for r in recs}) == 24
    ref = sweep("adam", configs, "rosenbrock", engine="vectorized", progress=False, **kw)
    assert_same(result["table"], ref)


# -- visible: a failing block is one line, and the others go on -------------------------------


def test_a_failing_configuration_fails_its_block_with_the_librarys_message(
    client, tmp_path, capsys
):
    configs = grid(lr=[0.01, 0.1], beta1=[0.9, exponential_decay(2.0, 0.5)])
    with pytest.raises(BlocksFailedError) as info:
        sweep("adam", configs, "rosenbrock", steps=20, engine="dask", address=client,
              out=tmp_path, progress=False)  # fmt: skip
    err = capsys.readouterr().err
    line = "it must lie in [0, 1)"
    assert "Invalid beta1: 2.0 at step t=1" in str(info.value) and line in str(info.value)
    # the schedule's group (configurations 1 and 3) is one block; the other group runs on
    assert "1 of 2 blocks failed (2 runs)" in str(info.value)
    assert len(info.value.failures) == 1
    failed = [s for s in err.splitlines() if s.startswith("block failed (")]
    assert failed == [
        "block failed (rosenbrock, seed 0, 2 configurations (1, 3)): Invalid beta1: 2.0 at "
        "step t=1; it must lie in [0, 1)"
    ]
    assert "Traceback" not in err
    assert len(records(tmp_path)) == 2  # the good block's runs are kept


def test_the_command_line_says_each_failed_block_and_then_one_error(client, tmp_path, capsys):
    address = client.scheduler.address
    argv = ["sweep", "adam", "--problem", "booth", "--grid", "lr=0.01,0.1",
            "--grid", "beta1=0.9,exponential_decay(2.0,0.5)", "--steps", "10",
            "--engine", "dask", "--address", address, "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert sum(s.startswith("block failed (booth, seed 0, 2 configurations (1, 3)): Invalid beta1") for s in err) == 1  # fmt: skip
    assert err[-1].startswith("adamlab: error: 1 of 2 blocks failed")
    assert "Traceback" not in "\n".join(err)


# -- bad input: fast, one line, nothing written -------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("engine", "address"),
    [("dask", "tcp://127.0.0.1:{port}"), ("ray", "ray://127.0.0.1:{port}"), ("ray", "127.0.0.1:{port}")],
)  # fmt: skip
def test_an_unreachable_address_fails_in_seconds_naming_it(engine, address, tmp_path, capsys):
    if engine == "ray" and importlib.util.find_spec("ray") is None:
        pytest.skip(f"ray is not installed ({NO_RAY})")
    address = address.format(port=free_port())
    out = tmp_path / "out"
    t0 = time.monotonic()
    argv = ["sweep", "adam", "--problem", "booth", "--grid", "lr=0.1", "--engine", engine,
            "--address", address, "--out", str(out)]  # fmt: skip
    assert main(argv) == 2
    assert time.monotonic() - t0 < 10
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and address in err and "cannot reach" in err
    assert not out.exists()
    with pytest.raises(ConnectionError, match="cannot reach"):
        sweep("adam", [{"lr": 0.1}], "booth", engine=engine, address=address, out=out)
    assert not out.exists()


def test_bad_addresses_and_a_missing_extra_say_what_to_do(monkeypatch, tmp_path, capsys):
    with pytest.raises(ValueError, match="address is for engine='dask' or engine='ray'"):
        sweep("adam", [{"lr": 0.1}], "booth", engine="vectorized", address="tcp://h:1")
    with pytest.raises(ValueError, match="unknown scheme 'http'"):
        sweep("adam", [{"lr": 0.1}], "booth", engine="dask", address="http://h:1")
    with pytest.raises(ValueError, match="block_size must be a whole number"):
        sweep("adam", [{"lr": 0.1}], "booth", engine="dask", block_size=0)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n in ("distributed", "ray") else real(n, *a)
    )  # fmt: skip
    with pytest.raises(ImportError, match=r"pip install 'adamlab\[dask\]'"):
        sweep("adam", [{"lr": 0.1}], "booth", engine="dask")
    for engine, extra in (("dask", "dask"), ("ray", "ray")):
        out = tmp_path / engine
        argv = ["sweep", "adam", "--problem", "booth", "--grid", "lr=0.1", "--engine", engine,
                "--out", str(out)]  # fmt: skip
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"pip install 'adamlab[{extra}]'" in err
        assert not out.exists()


# -- Ray -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_local():
    """A local Ray of 2 CPUs for the module, or a skip that says why there is none."""
    if importlib.util.find_spec("ray") is None:
        pytest.skip(f"ray is not installed here ({NO_RAY}); the Ray engine is untested")
    import ray

    t0 = time.monotonic()
    try:
        ray.init(
            num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR
        )
    except Exception as e:  # a sandbox without shared memory, a port in use, …
        pytest.skip(f"ray is installed but a local ray.init failed here: {type(e).__name__}: {e}")
    yield ray, time.monotonic() - t0
    ray.shutdown()


@pytest.mark.parametrize("block_size", [None, 5])
def test_ray_gives_the_vectorised_table_bit_for_bit(ray_local, analytic_ref, block_size):
    table = run(ANALYTIC, engine="ray", block_size=block_size, progress=False)
    assert table.attrs["engines"] == {"rosenbrock": "ray", "beale": "ray"}
    assert_same(table, analytic_ref)


def test_ray_gives_the_digits_mlp_sweep_bit_for_bit(ray_local, mlp_ref):
    assert_same(run(MLP, engine="ray", progress=False), mlp_ref)


def test_ray_reports_a_failing_block_in_one_line(ray_local, capsys):
    configs = grid(lr=[0.01], beta1=[0.9, exponential_decay(2.0, 0.5)])
    with pytest.raises(BlocksFailedError, match=r"1 of 2 blocks failed .*Invalid beta1: 2.0"):
        sweep("adam", configs, "booth", steps=10, engine="ray", progress=False)
    err = capsys.readouterr().err
    assert "block failed (booth, seed 0, configuration 1): Invalid beta1: 2.0" in err
    assert "Traceback" not in err
