"""Crash safety, tested for real: every file writer killed at every file-system call it makes,
the rename-and-fsync sequence of every writer, and the record store cut at every byte.

What is promised (README, "Bad input" and "Resume"): files are written to a temporary name
and renamed, so a reader never sees a half-written file; a sweep's records are appended one
line each, flushed and fsynced, so a killed sweep loses at most a torn last line, and a rerun
computes exactly what is missing.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from crash_harness import FRAMES, KILLED, seed_result, sweep_args, tiny_animation
from matplotlib.figure import Figure

from adamlab import _files, plot
from adamlab.lab import Result
from adamlab.lab.sweep import RecordStore, sweep
from adamlab.lab.sweep.table import save_table

HERE = Path(__file__).parent

#: writer → the files it writes (what a kill may leave behind, besides hidden temporaries):
#: every writing code path once (save_figure writes PNG, SVG and PDF by the same path; the
#: reproductions' text and JSON go through write_atomic, as result-json does)
TARGETS = {
    "result-json": ["r.json"],
    "result-csv": ["r.csv", "r.csv.manifest.json"],
    "result-parquet": ["r.parquet"],
    "figure-png": ["f.png"],
    "animation-gif": ["a.gif"],
    "animation-html": ["a.html"],
    "sweep": ["records.jsonl", "sweep.json", "sweep.parquet"],
}


# ---------------------------------------------------------------------------------------------
# killed at every point
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """Run the harness once for every writer (a fresh process that forks a child per point)."""
    out = tmp_path_factory.mktemp("crash")
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1420070400", "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, str(HERE / "crash_harness.py"), str(out), *TARGETS],
        capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return out, json.loads(proc.stdout.splitlines()[-1])


def states(out: Path, name: str, summary: dict):
    """(k, directory) for every kill point, and the directories before and after the writer."""
    runs = summary[name]
    codes = runs["codes"]
    assert codes[:-1] == [KILLED] * runs["points"] and codes[-1] == 0, codes
    base = out / name
    final = base / str(len(codes))
    return [(k, base / str(k)) for k in range(1, len(codes))], base / "before", final


def same_file(a: Path, b: Path) -> bool:
    """Byte for byte, except the random element ids of an HTML animation."""
    if not (a.exists() and b.exists()):
        return False
    x, y = a.read_bytes(), b.read_bytes()
    if a.suffix == ".html":
        x, y = (re.sub(rb"[0-9a-f]{32}", b"ID", z) for z in (x, y))
    return x == y


@pytest.mark.parametrize("name", [n for n in TARGETS if n != "sweep"])
def test_a_writer_killed_at_any_point_leaves_the_old_file_or_the_whole_new_one(killed, name):
    out, summary = killed
    points, before, final = states(out, name, summary)
    assert len(points) >= 10, "too few kill points to mean anything"
    seen = {"old": 0, "new": 0, "none": 0}
    for k, here in points:
        visible = sorted(p.name for p in here.iterdir() if not p.name.startswith("."))
        assert set(visible) <= set(TARGETS[name]), (k, visible)
        for p in here.iterdir():  # only our own temporaries may be left over
            assert not p.name.startswith(".") or ".tmp" in p.name, (k, p.name)
        for target in TARGETS[name]:
            now, old, new = here / target, before / target, final / target
            if not now.exists():
                assert not old.exists(), f"kill at point {k} removed {target}"
                seen["none"] += 1
            elif same_file(now, old):
                seen["old"] += 1
            else:
                assert same_file(now, new), f"kill at point {k} left a partial {target}"
                seen["new"] += 1
        if name == "result-csv" and (here / "r.csv").exists():
            # the table's manifest is written first: a table never lacks its manifest
            assert same_file(here / "r.csv.manifest.json", final / "r.csv.manifest.json")
    assert seen["new"] >= 1 and seen["old"] + seen["none"] >= 1, seen  # both sides were hit
    check_complete(name, final)


def check_complete(name: str, final: Path) -> None:
    """The uninterrupted run's files are what they should be (so "the whole new one" means
    something): the result loads back, the images decode, the animation has every frame."""
    if name.startswith("result-"):
        suffix = name.split("-")[1]
        back, ref = Result.load(final / f"r.{suffix}"), seed_result()
        assert back.labels == ref.labels and back.table() == ref.table()
    elif name == "figure-png":
        from matplotlib.image import imread

        assert imread(final / "f.png").shape[:2] == (40, 60)
    elif name == "animation-gif":
        from PIL import Image

        with Image.open(final / "a.gif") as im:
            assert im.n_frames == FRAMES
    elif name == "animation-html":
        text = (final / "a.html").read_text()
        assert text.rstrip().endswith("</html>") and text.count("data:image/png;base64") == FRAMES


def read_records(path: Path) -> list[dict]:
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"", "a kill between calls leaves no torn line"
    return [json.loads(line) for line in lines[:-1]]


def test_a_sweep_killed_at_any_point_loses_nothing_and_resumes_exactly(killed):
    out, summary = killed
    points, before, final = states(out, "sweep", summary)
    args, kw = sweep_args(3)
    clean = sweep(*args, **kw)  # the same sweep, in memory, never killed
    n = len(clean)
    old_keys = {r["key"] for r in read_records(before / "records.jsonl")}
    assert len(points) >= 30 and 0 < len(old_keys) < n
    final_table = pd.read_parquet(final / "sweep.parquet")
    for k, here in points:
        recs = read_records(here / "records.jsonl")
        keys = [r["key"] for r in recs]
        assert len(keys) == len(set(keys)) and old_keys <= set(keys) <= set(clean.key), k
        assert same_file(here / "sweep.json", before / "sweep.json") or same_file(
            here / "sweep.json", final / "sweep.json"
        )
        table = pd.read_parquet(here / "sweep.parquet")
        if not same_file(here / "sweep.parquet", before / "sweep.parquet"):
            pd.testing.assert_frame_equal(table, final_table)  # the whole new table …
            assert set(keys) == set(clean.key)  # … written only after every record
        again = sweep(*args, **kw, out=here, progress=False)  # resume
        assert again.attrs["resumed"] == len(keys) and again.attrs["computed"] == n - len(keys)
        for col in ("key", "final_loss", "best_loss", "diverged", "steps_to_target"):
            np.testing.assert_array_equal(again[col].to_numpy(), clean[col].to_numpy())
        assert len(read_records(here / "records.jsonl")) == n


# ---------------------------------------------------------------------------------------------
# the rename-and-fsync sequence
# ---------------------------------------------------------------------------------------------


class FsLog:
    """Records every ``os.fsync`` (which file or directory, by inode) and ``os.replace``."""

    def __init__(self, monkeypatch) -> None:
        self.events: list[tuple] = []
        fsync, replace = os.fsync, os.replace

        def logged_fsync(fd):
            st = os.fstat(fd)
            self.events.append(("fsync", (st.st_dev, st.st_ino), stat.S_ISDIR(st.st_mode)))
            return fsync(fd)

        def logged_replace(src, dst, **kwargs):
            st = os.stat(src)
            self.events.append(
                ("replace", (st.st_dev, st.st_ino), (os.path.abspath(src), os.path.abspath(dst)))
            )
            return replace(src, dst, **kwargs)

        monkeypatch.setattr(os, "fsync", logged_fsync)
        monkeypatch.setattr(os, "replace", logged_replace)

    @staticmethod
    def inode(path) -> tuple[int, int]:
        st = os.stat(path)
        return st.st_dev, st.st_ino

    def check_atomic(self, target) -> None:
        """``target`` was written as a temporary file next to it, fsynced, renamed over it,
        and then its directory was fsynced; and nothing wrote it in place afterwards."""
        target = Path(target).resolve()
        renames = [
            i for i, e in enumerate(self.events) if e[0] == "replace" and e[2][1] == str(target)
        ]
        assert renames, f"{target.name} was not written by a rename"
        i = renames[-1]
        _, ino, (src, _dst) = self.events[i]
        assert Path(src).parent == target.parent and Path(src).name.startswith(f".{target.name}.")
        assert ("fsync", ino, False) in self.events[:i], f"{target.name}: data not fsynced first"
        assert ("fsync", self.inode(target.parent), True) in self.events[i + 1 :], (
            f"{target.name}: the rename was not made durable (directory not fsynced)"
        )
        assert self.inode(target) == ino, f"{target.name} was rewritten in place after"

    def fsyncs_of(self, path) -> int:
        return self.events.count(("fsync", self.inode(path), False))


@pytest.fixture
def fslog(monkeypatch):
    return FsLog(monkeypatch)


@pytest.mark.parametrize("suffix", [".json", ".csv", ".parquet"])
def test_result_files_are_renamed_into_place_after_an_fsync(tmp_path, fslog, suffix):
    seed_result().save(tmp_path / f"r{suffix}")
    fslog.check_atomic(tmp_path / f"r{suffix}")
    if suffix == ".csv":
        fslog.check_atomic(tmp_path / "r.csv.manifest.json")


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf", ".gif", ".html"])
def test_figures_and_animations_are_renamed_into_place_after_an_fsync(tmp_path, fslog, suffix):
    if suffix in (".gif", ".html"):
        plot.save_animation(tiny_animation(), tmp_path / f"a{suffix}")
        fslog.check_atomic(tmp_path / f"a{suffix}")
    else:
        fig = Figure(figsize=(1, 1), dpi=30)
        fig.subplots().plot([0, 1])
        plot.save_figure(fig, tmp_path / f"f{suffix}")
        fslog.check_atomic(tmp_path / f"f{suffix}")


def test_a_sweep_directory_is_written_by_renames_and_fsynced_appends(tmp_path, fslog):
    args, kw = sweep_args(2)
    sweep(*args, **kw, out=tmp_path, progress=False)
    for name in ("sweep.json", "sweep.parquet"):
        fslog.check_atomic(tmp_path / name)
    # records: one fsync per block appended (2 seeds × 2 groups), and the new file's entry
    assert fslog.fsyncs_of(tmp_path / "records.jsonl") == 4
    assert ("fsync", fslog.inode(tmp_path), True) in fslog.events
    # the table without pyarrow: CSV, by the same route
    fslog.events.clear()
    save_table(pd.DataFrame({"a": [1.0]}), tmp_path)
    fslog.check_atomic(tmp_path / "sweep.parquet")


def test_the_record_store_fsyncs_every_append_before_returning(tmp_path, fslog):
    store = RecordStore(tmp_path)
    path = tmp_path / "records.jsonl"
    for i in range(3):
        before = fslog.fsyncs_of(path)
        store.add([{"key": f"k{i}", "value": i}])
        assert fslog.fsyncs_of(path) == before + 1
        assert path.read_bytes().endswith(b'"value": %d}\n' % i)  # flushed: on disk now
    store.add([{"key": "k0", "value": 99}])  # a known key: nothing written, nothing synced
    assert fslog.fsyncs_of(path) == 3 and path.read_bytes().count(b"\n") == 3
    store.close()


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "t.txt"
    target.write_text("old")

    def fail(f):
        f.write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        _files.write_atomic(target, fail)
    assert [p.name for p in tmp_path.iterdir()] == ["t.txt"] and target.read_text() == "old"


# ---------------------------------------------------------------------------------------------
# the record store, cut at every byte
# ---------------------------------------------------------------------------------------------


def test_records_cut_at_every_byte_load_exactly_the_complete_lines(tmp_path, monkeypatch):
    """A kill during a write can tear the last line at any byte. For every prefix of a records
    file (a real sweep record and short ones): exactly the complete lines load, the torn rest
    is cut, and appending after it gives a clean file."""
    args, kw = sweep_args(2)
    sweep(*args, **{**kw, "seeds": 1}, out=tmp_path / "full", progress=False)
    real = (tmp_path / "full" / "records.jsonl").read_bytes().split(b"\n")[0]
    lines = [real] + [json.dumps({"key": f"k{i}", "x": [i / 7, None]}).encode() for i in range(4)]
    data = b"".join(line + b"\n" for line in lines)
    ends = np.cumsum([len(line) + 1 for line in lines])
    monkeypatch.setattr(os, "fsync", lambda fd: None)  # durability is not what this checks
    work = tmp_path / "cut"
    work.mkdir()
    path = work / "records.jsonl"
    for cut in range(len(data) + 1):
        path.write_bytes(data[:cut])
        store = RecordStore(work)
        n = int(np.searchsorted(ends, cut, side="right"))  # complete lines within the cut
        assert list(store.records) == [json.loads(line)["key"] for line in lines[:n]], cut
        assert path.read_bytes() == data[: ends[n - 1] if n else 0], cut
        store.add([{"key": "new", "cut": cut}])
        store.close()
        assert [json.loads(x)["key"] for x in path.read_bytes().splitlines()][-1] == "new"
