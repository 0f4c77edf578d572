"""One run's record (:class:`Trajectory`) and the loss surface behind the plots (:class:`Surface`).

Row ``i`` of every per-step array describes the state after step ``t[i]`` (row 0 is the start;
``t[i] = i`` unless a very long run was thinned, see :class:`Trajectory`): ``x`` the
iterates, ``loss`` f(xₜ) (the exact objective, even on noisy problems; NaN at steps the loop
did not evaluate), ``grad_norm`` ‖∇f(xₜ)‖, ``step`` xₜ − xₜ₋₁, and ``diagnostics[k]`` what the
optimizer reported after step t (``m``, ``v``, ``m_hat``, ``v_hat``, ``bias1``, ``bias2``,
``effective_lr``, …). Row 0 of ``step`` and ``diagnostics`` is NaN.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .metrics import fmt_number

__all__ = ["Surface", "Trajectory"]


def _arr(v: Any) -> np.ndarray:
    return np.asarray(v, dtype=np.float64)


@dataclasses.dataclass(eq=False)
class Trajectory:
    """One optimizer's run from the shared start, on one seed's noise.

    Attributes:
        label: the name in tables and legends, e.g. ``"Adam(lr=0.1, betas=(0.9, 0.999))"``.
        optimizer: the optimizer's hyperparameters as plain data (``opt.describe()``).
        seed: the noise seed (paired: every optimizer of a comparison gets the same stream).
        x: iterates x₀…x_T of the tracked coordinates, shape (T+1, k).
        loss: exact f(xₜ), shape (T+1,).
        grad_norm: ‖∇f(xₜ)‖ of the exact gradient, shape (T+1,).
        distance: ‖xₜ − x*‖ where x* is known, else None.
        step: xₜ − xₜ₋₁ of the tracked coordinates, shape (T+1, k), row 0 NaN.
        step_norm: ‖xₜ − xₜ₋₁‖ over all coordinates, shape (T+1,), row 0 NaN.
        diagnostics: name → (T+1,) for shared quantities (``bias1``) or (T+1, k) per
            tracked coordinate (``m``, ``m_hat``, ``v``, ``v_hat``, ``effective_lr``), row 0 NaN.
        diverged_at: the step at which the loss went non-finite or the optimizer refused a
            non-finite gradient; the run stopped there (T = diverged_at, or diverged_at − 1
            when the step was refused). None for a complete run.
        diverged_reason: why, in words.
        final: held-out numbers of the last iterate where the problem defines them (the ML
            tasks: ``train_accuracy``, ``test_accuracy``, ``test_loss``).
        t: the step of each row. Row t is step t (``t = 0, 1, …, T``) unless the run was
            longer than twice :data:`adamlab.lab.runner.FULL_ROWS` steps: then the record is
            thinned evenly as the run goes on (every 2nd, 4th, … step; memory stays bounded at
            any length) and always keeps the last step.
    """

    label: str
    optimizer: dict[str, Any]
    seed: int
    x: np.ndarray
    loss: np.ndarray
    grad_norm: np.ndarray
    distance: np.ndarray | None
    step: np.ndarray
    step_norm: np.ndarray
    diagnostics: dict[str, np.ndarray]
    diverged_at: int | None = None
    diverged_reason: str | None = None
    final: dict[str, float] = dataclasses.field(default_factory=dict)
    t: np.ndarray = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.t is None:
            self.t = np.arange(len(self.loss))
        self.t = np.asarray(self.t, dtype=np.int64)

    @property
    def steps_taken(self) -> int:
        """T: the number of steps taken after the start."""
        return int(self.t[-1]) if len(self.t) else 0

    def row(self, step: int) -> int:
        """The row that holds ``step`` (the nearest recorded one at or before it)."""
        return max(0, int(np.searchsorted(self.t, step, side="right")) - 1)

    def __repr__(self) -> str:
        end = f", diverged_at={self.diverged_at}" if self.diverged_at is not None else ""
        return (
            f"Trajectory({self.label!r}, seed={self.seed}, steps={self.steps_taken}, "
            f"final loss={fmt_number(float(self.loss[-1]))}{end})"
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "label": self.label,
            "optimizer": self.optimizer,
            "seed": self.seed,
            "diverged_at": self.diverged_at,
            "diverged_reason": self.diverged_reason,
            "final": self.final,
            "t": self.t.tolist(),
        }
        for name in ("x", "loss", "grad_norm", "distance", "step", "step_norm"):
            v = getattr(self, name)
            out[name] = None if v is None else v.tolist()
        out["diagnostics"] = {k: v.tolist() for k, v in self.diagnostics.items()}
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Trajectory:
        def arr2(v: Any) -> np.ndarray:
            a = _arr(v)
            return a.reshape(len(a), -1) if a.ndim < 2 else a

        return cls(
            label=d["label"],
            optimizer=d["optimizer"],
            seed=int(d["seed"]),
            x=arr2(d["x"]),
            loss=_arr(d["loss"]),
            grad_norm=_arr(d["grad_norm"]),
            distance=None if d.get("distance") is None else _arr(d["distance"]),
            step=arr2(d["step"]),
            step_norm=_arr(d["step_norm"]),
            diagnostics={k: _arr(v) for k, v in d["diagnostics"].items()},
            diverged_at=d.get("diverged_at"),
            diverged_reason=d.get("diverged_reason"),
            final={k: float(v) for k, v in (d.get("final") or {}).items()},
            t=d.get("t"),
        )


@dataclasses.dataclass(eq=False)
class Surface:
    """The exact loss on a grid over the plotting box, computed by the lab so that plots
    (and a reloaded Result) need no problem object: ``axes`` is one grid vector per
    coordinate (1 or 2), ``loss`` the values, shape ``(len(axes[0]),)`` or ``(ny, nx)``."""

    axes: list[np.ndarray]
    loss: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {"axes": [a.tolist() for a in self.axes], "loss": self.loss.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Surface:
        return cls([_arr(a) for a in d["axes"]], _arr(d["loss"]))
