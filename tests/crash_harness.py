"""Kill a file writer at every point where it touches the file system (not collected as tests).

``python tests/crash_harness.py DIR WRITER...``: for each writer, prepares DIR/WRITER/before
(the state the writer starts from: nothing, or an earlier version of its files), then for
k = 1, 2, … forks a child that copies it to DIR/WRITER/k, changes into it and runs the writer
with a profile hook that calls ``os._exit(KILLED)`` — a kill: no cleanup, no flushing of
Python's buffers, no ``finally`` — just before its k-th file-system call: ``os.open``,
``os.close``, ``os.fsync``, ``os.chmod``, ``os.replace``, ``os.rename``, ``os.unlink``,
``os.truncate``, ``open``, and the ``close``/``truncate`` (for the data writers in
``EVERY_WRITE`` also ``write``/``flush``) of an open file. It stops at the first k the writer
survives and prints one JSON line ``{WRITER: {"points": k - 1, "codes": [...]}}``.
DIR/WRITER/k holds what a kill at point k left behind; ``tests/test_crash_safety.py`` checks
every one of them. (Bytes that C code writes — pyarrow, Pillow — go to the temporary file
whatever happens; that they do is what the rename-and-fsync test there checks.)

It runs in a fresh process and forks from a parent that has started no threads (forking a
process with threads is not safe).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
from pathlib import Path

KILLED = 77
#: the file-system functions a kill may precede (matched by identity, not by name)
FS_FUNCTIONS = frozenset(
    (os.open, os.close, os.fsync, os.chmod, os.replace, os.rename, os.unlink, os.truncate,
     os.ftruncate, io.open)
)  # fmt: skip
#: and the methods of open files
FILE_METHODS = frozenset(("write", "flush", "close", "truncate"))
#: writers killed before every call, data writes included; the others (figures, whose bytes
#: all go to the temporary file) before every call but their many writes and flushes
EVERY_WRITE = ("result-json", "sweep")


def fs_call(arg, data: bool) -> bool:
    """Whether a profiled C call is a file-system call (``data``: writes count too)."""
    if arg in FS_FUNCTIONS:
        return True
    owner = getattr(arg, "__self__", None)
    if not isinstance(owner, io.IOBase):
        return False
    name = getattr(arg, "__name__", "")
    return name in FILE_METHODS if data else name in ("close", "truncate")


def seed_result():
    from adamlab.lab import compare

    return compare("quadratic", ["sgd:lr=0.1", "adam:lr=0.1"], steps=12)


def sweep_args(n_configs: int):
    import numpy as np

    from adamlab.lab.sweep import grid

    configs = grid(lr=list(np.logspace(-2, 0, n_configs)), bias_correction=[True, False])
    return ("adam", configs, "quadratic"), {"steps": 6, "seeds": 2, "engine": "vectorized"}


FRAMES = 3


def tiny_animation():
    """A three-frame animation on a small figure (what is saved matters, not what is drawn)."""
    from matplotlib.animation import FuncAnimation
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1, 1), dpi=30)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.set(xlim=(0, FRAMES), ylim=(0, FRAMES))  # every frame differs (Pillow merges equal ones)
    (line,) = ax.plot([0], [0])
    return FuncAnimation(fig, lambda i: line.set_data([0, i], [0, i]), frames=FRAMES, interval=100)


def writers():
    """name → (prepare(before_dir), write()) ; write runs in the current directory."""
    from matplotlib.figure import Figure

    from adamlab import plot
    from adamlab.lab.sweep import sweep

    result = seed_result()

    def figure():
        fig = Figure(figsize=(1.5, 1), dpi=40)
        fig.subplots().plot([0, 1], [1, 0])
        return fig

    def nothing(before: Path) -> None:
        pass

    def old(name: str):
        def prepare(before: Path) -> None:
            (before / name).write_text("old\n")

        return prepare

    def old_sweep(before: Path) -> None:  # a finished smaller sweep: records, table, manifest
        args, kw = sweep_args(2)
        sweep(*args, **kw, out=before, progress=False)

    def run_sweep() -> None:
        args, kw = sweep_args(3)
        sweep(*args, **kw, out=".", progress=False)

    anim = tiny_animation()
    return {
        "result-json": (old("r.json"), lambda: result.save("r.json")),
        "result-csv": (nothing, lambda: result.save("r.csv")),
        "result-parquet": (old("r.parquet"), lambda: result.save("r.parquet")),
        "figure-png": (old("f.png"), lambda: plot.save_figure(figure(), "f.png")),
        "animation-gif": (old("a.gif"), lambda: plot.save_animation(anim, "a.gif")),
        "animation-html": (nothing, lambda: plot.save_animation(anim, "a.html")),
        "sweep": (old_sweep, run_sweep),
    }


def run(name: str, prepare, write, out: Path, limit: int = 2000) -> dict:
    data = name in EVERY_WRITE
    before = out / "before"
    before.mkdir(parents=True)
    prepare(before)
    codes = []
    for k in range(1, limit + 1):
        here = out / str(k)
        pid = os.fork()
        if pid == 0:  # the child: the writer, killed at its k-th file-system call
            try:
                shutil.copytree(before, here)
                os.chdir(here)
                count = 0

                def hook(frame, event, arg):
                    nonlocal count
                    if event == "c_call" and fs_call(arg, data):
                        count += 1
                        if count == k:  # noqa: B023 - the child runs once, for this k
                            os._exit(KILLED)

                sys.setprofile(hook)
                write()
                sys.setprofile(None)
            except BaseException:
                import traceback

                traceback.print_exc()
                os._exit(1)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        codes.append(code)
        if code != KILLED:
            break
    return {"points": len(codes) - 1, "codes": codes}


def main(out: Path, names: list[str]) -> dict:
    table = writers()
    return {name: run(name, *table[name], out / name) for name in names}


if __name__ == "__main__":
    import warnings

    os.environ.setdefault("MPLBACKEND", "Agg")
    warnings.simplefilter("ignore")  # e.g. matplotlib: an animation deleted unrendered
    import matplotlib

    matplotlib.rcParams["svg.hashsalt"] = "crash"  # the same SVG ids in every child
    print(json.dumps(main(Path(sys.argv[1]), sys.argv[2:])))
