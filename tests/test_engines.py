"""The engine never changes the answer: the README's sweeps give the same table, bit for bit, on
``numba``, ``vectorized``, ``process`` and ``loop`` (diverged configurations included), so an
install without numba reproduces the README's numbers and figures. And an optional package that
is missing changes how a sweep runs or writes, never silently."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adamlab.cli import main
from adamlab.kernels import sweep as ks

pytestmark = pytest.mark.exact

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def readme_sweeps() -> list[list[str]]:
    """Every ``adamlab sweep …`` command the README quotes (console blocks and prose)."""
    text = README.replace("\\\n", " ")
    found = re.findall(r"^\$ adamlab sweep ([a-z]+ --.*)$", text, re.M)  # console blocks
    found += re.findall(r"`adamlab sweep ([a-z]+ --[^`]*)`", text)  # prose, across lines
    commands = []
    for cmd in found:
        argv = shlex.split(cmd.replace("\n", " "))
        if "--out" in argv:  # each test run chooses its own directory
            i = argv.index("--out")
            del argv[i : i + 2]
        commands.append(argv)
    return commands


COMMANDS = readme_sweeps()


def test_the_readme_quotes_its_sweeps():
    assert len(COMMANDS) >= 3
    assert {c[0] for c in COMMANDS} == {"adam", "sgd"}


def read_table(out: Path) -> pd.DataFrame:
    """The table a sweep wrote: Parquet, or CSV where pyarrow is not installed."""
    parquet = out / "sweep.parquet"
    return pd.read_parquet(parquet) if parquet.exists() else pd.read_csv(out / "sweep.csv")


def run_engines(argv, engines, tmp_path, capsys) -> dict[str, pd.DataFrame]:
    tables = {}
    for engine in engines:
        out = tmp_path / engine
        assert main(["sweep", *argv, "--engine", engine, "--out", str(out)]) == 0
        tables[engine] = read_table(out)
        printed = capsys.readouterr().out
        if engine == "auto" and argv[:3] == ["adam", "--problem", "rosenbrock"]:
            fused = "(rosenbrock: numba)" if ks.available() else "(rosenbrock: vectorized)"
            assert fused in printed
    ref = tables.pop("vectorized")
    assert ref.diverged.dtype == bool
    for engine, table in tables.items():
        pd.testing.assert_frame_equal(table, ref, check_exact=True, obj=engine)
    return ref


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: "-".join(a[:3]))
def test_the_fused_kernel_gives_the_readme_sweep_the_vectorised_table(argv, tmp_path, capsys):
    """numba ("auto") against the NumPy pass: what differs most between CPUs."""
    run_engines(argv, ("auto", "vectorized"), tmp_path, capsys)


@pytest.mark.slow  # the one-at-a-time engines take about two minutes on these grids
@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: "-".join(a[:3]))
def test_one_run_at_a_time_gives_the_readme_sweep_the_same_table(argv, tmp_path, capsys):
    """``loop`` (this process) and ``process`` (2 workers): each configuration alone, shape
    (1, dim), against its row in the vectorised pass; diverged runs included."""
    ref = run_engines(argv, ("vectorized", "loop", "process"), tmp_path, capsys)
    if argv[0] == "sgd":
        assert ref.diverged.any() and not ref.diverged.all()


def test_a_missing_pyarrow_is_said_out_loud(tmp_path, capsys, monkeypatch):
    argv = ["sweep", "adam", "--problem", "booth", "--grid", "lr=0.1,0.2", "--steps", "5"]
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "pyarrow", None)  # import pyarrow now raises ImportError
        assert main([*argv, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    line = f"wrote {tmp_path / 'sweep.csv'} (pyarrow not installed: pip install 'adamlab[data]'"
    assert line in out
    assert not (tmp_path / "sweep.parquet").exists()
    assert len(pd.read_csv(tmp_path / "sweep.csv")) == 2


@pytest.mark.skipif(not ks.available(), reason="compares a run with numba to one without")
def test_a_missing_numba_is_said_out_loud_and_changes_nothing(tmp_path, capsys, monkeypatch):
    argv = ["sweep", "adam", "--problem", "rosenbrock", "--grid", "lr=0.01,0.5,3", "--steps", "50"]
    assert main([*argv, "--out", str(tmp_path / "with")]) == 0
    monkeypatch.setattr(ks, "available", lambda: False)
    assert main([*argv, "--out", str(tmp_path / "without")]) == 0
    out = capsys.readouterr().out
    assert "(rosenbrock: numba)" in out and "(rosenbrock: vectorized)" in out
    assert "rosenbrock: numba not installed: pip install 'adamlab[fast]'" in out
    with_, without = (read_table(tmp_path / d) for d in ("with", "without"))
    pd.testing.assert_frame_equal(with_, without, check_exact=True)
    assert np.isfinite(with_.final_loss).all()
