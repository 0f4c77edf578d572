"""What a comparison recorded: one :class:`~adamlab.lab.trajectory.Trajectory` per optimizer
(and seed), gathered in a :class:`Result` that computes metrics, prints a table, exports and
loads back (:mod:`adamlab.lab.files`).

On large problems only some coordinates are *tracked* (by default two when dim > 64, see
:func:`adamlab.lab.compare`): ``x``, ``step`` and per-coordinate diagnostics hold those
columns, while ``loss``, ``grad_norm``, ``distance`` and ``step_norm`` are always computed on
the full parameter vector.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:  # pandas is an optional extra, imported only when a table is asked for
    import pandas

from . import files
from .files import FORMAT
from .metrics import FLOOR, Metrics, compute_metrics, fmt_number, suboptimality
from .trajectory import Surface, Trajectory, _arr

#: column titles of the held-out numbers in tables
_EXTRA_NAMES = {
    "train_accuracy": "train acc",
    "test_accuracy": "test acc",
    "test_loss": "test loss",
}


def _versions() -> dict[str, str]:
    import sys

    from .. import __version__

    out = {"adamlab": __version__, "numpy": np.__version__, "python": platform.python_version()}
    mpl = sys.modules.get("matplotlib")
    if mpl is not None:
        out["matplotlib"] = mpl.__version__
    return out


@dataclasses.dataclass(frozen=True, eq=False)
class Progress:
    """One optimizer's progress against the step, summarised over its seeds.

    ``median``, ``low`` and ``high`` are per step t = 0 … T (NaN where no run is left:
    after a divergence); ``low``/``high`` span the min–max or the quartiles. ``diverged``
    holds, per diverged run, its last finite (step, value); ``all_positive`` says whether
    every finite value is > 0 (a log axis can show it).
    """

    label: str
    what: str
    steps: np.ndarray
    median: np.ndarray
    low: np.ndarray
    high: np.ndarray
    seeds: int
    diverged: list[tuple[int, float]]
    diverged_at: int | None
    all_positive: bool

    def __repr__(self) -> str:
        last = self.median[np.isfinite(self.median)]
        end = fmt_number(float(last[-1])) if last.size else "nan"
        return (
            f"Progress({self.label!r}, {self.what}, {self.seeds} seed(s), steps 0…"
            f"{int(self.steps[-1]) if len(self.steps) else 0}, final median {end}, "
            f"{len(self.diverged)} diverged)"
        )


@dataclasses.dataclass(eq=False)
class Result:
    """Everything one comparison recorded, ready for tables, files and plots.

    Attributes:
        problem: the problem as plain data (name, description, dim, x0, x_star, f_star,
            domain, stochastic).
        trajectories: one per optimizer × seed, in the order given.
        steps: the number of steps requested.
        seeds: the noise seeds.
        start: the shared start x₀ (all coordinates).
        tracked: the coordinate indices stored in ``x``/``step``/diagnostics.
        surface: the loss on a grid (problems of dimension 1 or 2), else None.
        meta: versions, creation time and anything the caller adds (e.g. the command line).
    """

    problem: dict[str, Any]
    trajectories: list[Trajectory]
    steps: int
    seeds: list[int]
    start: np.ndarray
    tracked: list[int]
    surface: Surface | None = None
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    # -- access ------------------------------------------------------------------------------

    @property
    def labels(self) -> list[str]:
        """The optimizer labels, each once, in order."""
        return list(dict.fromkeys(t.label for t in self.trajectories))

    def __getitem__(self, label: str) -> Trajectory:
        """The (first-seed) trajectory of ``label``."""
        for t in self.trajectories:
            if t.label == label:
                return t
        raise KeyError(f"no trajectory {label!r}; labels: {self.labels}")

    @property
    def f_star(self) -> float | None:
        fs = self.problem.get("f_star")
        return None if fs is None else float(fs)

    @property
    def x_star(self) -> np.ndarray | None:
        xs = self.problem.get("x_star")
        return None if xs is None else _arr(xs)

    # -- metrics -----------------------------------------------------------------------------

    def default_criterion(self) -> Literal["x", "loss", "grad"]:
        """Steps-to-tolerance counts on ‖x − x*‖ where x* is known, else on f − f* where f*
        is, else on the gradient norm ‖∇f‖ (a stationary point)."""
        if self.x_star is not None:
            return "x"
        return "loss" if self.f_star is not None else "grad"

    def metrics(
        self, tol: float = 1e-3, on: Literal["x", "loss", "grad"] | None = None
    ) -> list[Metrics]:
        """One :class:`Metrics` per trajectory (see :func:`compute_metrics`)."""
        on = on or self.default_criterion()
        return [compute_metrics(t, f_star=self.f_star, tol=tol, on=on) for t in self.trajectories]

    def series(self, t: Trajectory, what: str = "suboptimality") -> np.ndarray:
        """A trajectory's per-step ``suboptimality`` (f − f*, or the loss where f* is unknown;
        exact zeros at 1e−16 so a log scale can show them), ``loss``, ``grad_norm`` or
        ``distance``."""
        if what == "suboptimality":
            y = suboptimality(t.loss, self.f_star)
            return np.where(y <= 0, FLOOR, y)
        if what == "distance":
            if t.distance is None:
                raise ValueError("no distances recorded: the problem has no known x*")
            return t.distance
        if what not in ("loss", "grad_norm"):
            raise ValueError(
                f"unknown quantity {what!r}; choose suboptimality, loss, grad_norm or distance"
            )
        return getattr(t, what)

    def progress(
        self, label: str, what: str = "suboptimality", band: Literal["minmax", "iqr"] = "minmax"
    ) -> Progress:
        """The median over seeds of :meth:`series` at every step, with a min–max or
        interquartile band (what :func:`adamlab.plot.plot_loss` draws)."""
        import warnings

        runs = [t for t in self.trajectories if t.label == label]
        if not runs:
            raise ValueError(f"no trajectory labelled {label!r}; labels: {self.labels}")
        series = [self.series(t, what) for t in runs]
        Y = np.full((len(runs), max(len(y) for y in series)), np.nan)
        for i, y in enumerate(series):
            Y[i, : len(y)] = y
        Y[~np.isfinite(Y)] = np.nan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns after divergence
            median = np.nanmedian(Y, axis=0)
            low, high = (
                (np.nanmin(Y, axis=0), np.nanmax(Y, axis=0))
                if band == "minmax"
                else (np.nanpercentile(Y, 25, axis=0), np.nanpercentile(Y, 75, axis=0))
            )
        diverged = []
        for t, y in zip(runs, series, strict=True):
            ok = np.flatnonzero(np.isfinite(y))
            if t.diverged_at is not None and ok.size:
                diverged.append((int(t.t[ok[-1]]), float(y[ok[-1]])))
        first = next((t.diverged_at for t in runs if t.diverged_at is not None), None)
        longest = max(runs, key=lambda t: len(t.t))
        return Progress(
            label=label, what=what, steps=longest.t, median=median, low=low,
            high=high, seeds=len(runs), diverged=diverged, diverged_at=first,
            all_positive=bool(np.all(np.nan_to_num(Y, nan=1.0) > 0)),
        )  # fmt: skip

    def criterion_text(
        self, tol: float = 1e-3, on: Literal["x", "loss", "grad"] | None = None
    ) -> str:
        """The tolerance in words, e.g. ``|x - 2| < 0.001``."""
        on = on or self.default_criterion()
        if on == "grad":
            return f"|grad f| < {tol:g}"
        if on == "loss":
            fs = self.f_star
            return f"f - {fmt_number(fs)} < {tol:g}" if fs is not None else f"f < {tol:g}"
        xs = self.x_star
        assert xs is not None
        if xs.size == 1:
            c = float(xs[0])
            inside = "x" if c == 0 else f"x - {fmt_number(c)}" if c > 0 else f"x + {fmt_number(-c)}"
            return f"|{inside}| < {tol:g}"
        return f"|x - x*| < {tol:g}"

    def table(self, tol: float = 1e-3, on: Literal["x", "loss", "grad"] | None = None) -> str:
        """A plain-text table: optimizer, final x (dim ≤ 3), final loss, steps to tolerance.

        With several seeds, one row per optimizer: medians over the seeds, and steps to
        tolerance as the median over the seeds that reached it, with how many did.
        """
        rows = self.metrics(tol, on)
        show_x = len(self.tracked) == self.problem["dim"] and self.problem["dim"] <= 3
        head = ["optimizer"]
        if show_x:
            head.append("final x")
        extras = list(dict.fromkeys(k for t in self.trajectories for k in t.final))
        head += ["final loss", *(_EXTRA_NAMES.get(k, k) for k in extras)]
        head.append(f"steps to {self.criterion_text(tol, on)}")
        body: list[list[str]] = []
        for label in self.labels:
            ms = [m for m in rows if m.label == label]
            cells = [label]
            if len(ms) == 1:
                m = ms[0]
                if show_x:
                    xs = [fmt_number(v) for v in m.final_x]
                    cells.append(xs[0] if len(xs) == 1 else "(" + ", ".join(xs) + ")")
                cells.append(fmt_number(m.final_loss))
                cells += [fmt_number(self._final(label, k)) for k in extras]
                reached = str(m.steps_to_tol) if m.steps_to_tol is not None else "never"
                if m.diverged_at is not None:
                    reached += f" (diverged at step {m.diverged_at})"
                elif m.diverged:
                    reached += " (diverged: ended above its start)"
                cells.append(reached)
            else:
                if show_x:
                    cells.append(f"({len(ms)} seeds)")
                cells.append(fmt_number(float(np.median([m.final_loss for m in ms]))))
                cells += [fmt_number(self._final(label, k)) for k in extras]
                hit = [m.steps_to_tol for m in ms if m.steps_to_tol is not None]
                text = f"{int(np.median(hit))}, " if hit else "never, "
                text += f"{len(hit)}/{len(ms)} seeds"
                div = sum(m.diverged for m in ms)
                if div:
                    text += f", {div} diverged"
                cells.append(text)
            body.append(cells)
        widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
        line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()  # noqa: E731
        lines = [line(head), line(["-" * w for w in widths]), *map(line, body)]
        if len(self.seeds) > 1:
            lines.append(
                f"(medians over {len(self.seeds)} seeds; 'steps to' over the seeds that got there)"
            )
        return "\n".join(lines)

    def diagnostics_table(self, coord: int | None = None, rows: int = 8) -> str:
        """What each optimizer did inside, at a few steps (1, 2, 3, 5, 10, … and the last):
        the tracked coordinate's xₜ and step, and every recorded diagnostic (m, m̂, v, v̂,
        the bias factors 1 − β₁ᵗ and 1 − β₂ᵗ, the effective step size)."""
        coord = self.tracked[0] if coord is None else coord
        j = self.tracked.index(coord)
        blocks = []
        for t in self.trajectories:
            if t.seed != self.seeds[0]:
                continue
            T = t.steps_taken
            marks = sorted(
                {s for s in (1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000) if s <= T}
                | ({T} if T else set())
            )
            if len(marks) > rows:
                marks = [*marks[: rows - 1], T]
            names = ["step", f"x[{coord}]", f"dx[{coord}]", *t.diagnostics]
            cells = [names]
            for s in dict.fromkeys(int(t.t[t.row(s)]) for s in marks):
                r = t.row(s)
                row = [str(s), fmt_number(float(t.x[r, j])), fmt_number(float(t.step[r, j]))]
                for v in t.diagnostics.values():
                    row.append(fmt_number(float(v[r] if v.ndim == 1 else v[r, j])))
                cells.append(row)
            widths = [max(len(r[i]) for r in cells) for i in range(len(names))]
            lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
            where = f", coordinate {coord}" if self.problem["dim"] > 1 else ""
            blocks.append(f"{t.label}{where}:\n" + "\n".join(lines))
        return "\n\n".join(blocks)

    def _final(self, label: str, key: str) -> float | None:
        """The median over seeds of a trajectory's ``final[key]`` (None where absent)."""
        vals = [t.final[key] for t in self.trajectories if t.label == label and key in t.final]
        return float(np.median(vals)) if vals else None

    # -- export ------------------------------------------------------------------------------

    def manifest(self) -> dict[str, Any]:
        """Everything but the per-step data: versions, seeds, configuration, problem,
        hyperparameters, metrics, and the loss surface (so that plots need no re-run).
        The metrics count steps to the tolerance ``meta["tol"]`` where the caller set one
        (``adamlab compare --tol``), else 1e-3, as :meth:`table` does."""
        metrics = self.metrics(float(self.meta.get("tol", 1e-3)))
        return {
            "format": FORMAT,
            "meta": {"versions": _versions(), **self.meta},
            "problem": self.problem,
            "steps": self.steps,
            "seeds": self.seeds,
            "start": self.start.tolist(),
            "tracked": self.tracked,
            "optimizers": [
                {"label": lb, "hyperparameters": self[lb].optimizer} for lb in self.labels
            ],
            "runs": [
                {
                    "label": t.label,
                    "seed": t.seed,
                    "diverged_at": t.diverged_at,
                    "diverged_reason": t.diverged_reason,
                    "final": t.final,
                    "diagnostics": {
                        k: "shared" if v.ndim == 1 else "per-coordinate"
                        for k, v in t.diagnostics.items()
                    },
                }
                for t in self.trajectories
            ],
            "metrics": [dataclasses.asdict(m) for m in metrics],
            "surface": None if self.surface is None else self.surface.to_dict(),
        }

    def to_dict(self) -> dict[str, Any]:
        """Manifest plus data: the content of the ``.json`` file."""
        return {**self.manifest(), "trajectories": [t.to_dict() for t in self.trajectories]}

    def to_frame(self) -> pandas.DataFrame:
        """A tidy pandas DataFrame: one row per optimizer × seed × step.

        Columns: label, optimizer, seed, step, loss, grad_norm, distance, step_norm,
        ``x[i]`` and ``dx[i]`` per tracked coordinate i, and one column per diagnostic
        (``bias1``) or per diagnostic and coordinate (``m_hat[0]``). Needs pandas
        (``pip install 'adamlab[data]'``).
        """
        return files.to_frame(self)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``.json`` (everything), ``.csv`` (+ ``.manifest.json``) or ``.parquet``,
        atomically (:mod:`adamlab.lab.files`). Returns the path."""
        return files.save(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Result:
        """Read a Result written by :meth:`save` (or ``adamlab compare --json``).

        A file that is not a saved result, or whose fields are missing or malformed, raises
        ``ValueError`` saying so (never a ``KeyError`` from deep inside).
        """
        try:
            result = cls._load(Path(path))
            _check_rows(result)
            return result
        except files.NotAResultError:  # (its own message: not wrapped in a second one)
            raise
        except (
            KeyError, TypeError, IndexError, AttributeError, ValueError, OverflowError,
            RecursionError,
        ) as e:  # fmt: skip
            detail = f"missing field {e}" if isinstance(e, KeyError) else str(e)
            raise ValueError(f"{str(path)!r} is not a valid adamlab result ({detail})") from None

    @classmethod
    def _load(cls, path: Path) -> Result:
        return cls._from_manifest(*files.read(path))

    @classmethod
    def _from_manifest(cls, m: dict[str, Any], trajs: list[Trajectory]) -> Result:
        return cls(
            problem=m["problem"],
            trajectories=trajs,
            steps=int(m["steps"]),
            seeds=[int(s) for s in m["seeds"]],
            start=_arr(m["start"]),
            tracked=[int(i) for i in m["tracked"]],
            surface=None if m.get("surface") is None else Surface.from_dict(m["surface"]),
            meta={k: v for k, v in m.get("meta", {}).items() if k != "versions"},
        )


def _check_rows(result: Result) -> None:
    """What a saved result must hold for its table and figures: trajectories, each with as
    many rows of every recorded array as of losses, and a whole diverged_at (or none); a file
    damaged by hand fails here, not inside matplotlib."""
    if not result.trajectories:
        raise ValueError("it holds no trajectories")
    for tr in result.trajectories:
        n = len(tr.loss)
        if n == 0:
            raise ValueError(f"trajectory {tr.label!r} has no rows")
        arrays = {
            k: getattr(tr, k) for k in ("x", "grad_norm", "distance", "step", "step_norm", "t")
        }
        arrays.update(tr.diagnostics)
        for name, a in arrays.items():
            if a is not None and len(a) != n:
                raise ValueError(f"trajectory {tr.label!r}: {name} has {len(a)} rows, loss {n}")
        d = tr.diverged_at
        if d is not None and (isinstance(d, bool) or not isinstance(d, int) or d < 0):
            raise ValueError(f"trajectory {tr.label!r}: diverged_at {d!r} is not a step")


def now_utc() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


__all__ = ["Result", "Surface", "Trajectory"]
