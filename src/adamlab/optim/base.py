"""What every optimizer shares: parameter trees, hyperparameter checks, and the step driver.

An optimizer in adamlab is a frozen dataclass of hyperparameters with two pure methods,

    state = opt.init(params)
    params, state = opt.step(params, grads, state)

``params`` is one array, or a (nested) list, tuple or dict of arrays. Arrays are NumPy by
default; any Array-API array (PyTorch tensors, ``array_api_strict``, ...) works through
``array_api_compat``. Nothing is mutated: every step returns new arrays and a new state.

A subclass writes the math once, for one array (a *leaf*):

* ``slots``: the names of its per-parameter state arrays, e.g. ``("m", "v")``;
* ``init_leaf(xp, x) -> dict`` of those arrays for one parameter;
* ``update_leaf(xp, x, g, s, t, h) -> (x, dict)``: one step of the rule for one parameter,
  where ``s`` holds the slots, ``t`` is the step number (1 for the first step) and ``h`` the
  hyperparameters evaluated at ``t`` (schedules called, arrays cast to the parameter's dtype);
* ``diagnostics_leaf(xp, s, t, h) -> dict``: what the rule is doing (m̂, v̂, effective step).

The drop-in ``torch.optim`` optimizers and the fused kernels reuse exactly these pieces.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal, NamedTuple

import array_api_compat
import numpy as np

from .powers import power

Params = Any  # an array, or a (nested) list / tuple / dict of arrays
Hyper = Any  # float, a schedule (callable of t), or an array broadcasting against params
NonFinitePolicy = Literal["raise", "skip", "propagate"]


class NonFiniteGradientError(FloatingPointError, ValueError):
    """A gradient held NaN or ±Inf and the optimizer's policy is ``nonfinite="raise"``."""


# --------------------------------------------------------------------------------------------
# Parameter trees
# --------------------------------------------------------------------------------------------


class TreeDef(NamedTuple):
    """The structure of a parameter tree: ``kind`` is "leaf", "list", "tuple" or "dict"."""

    kind: str
    keys: tuple = ()
    children: tuple = ()


def namespace(x: Any) -> Any:
    """The Array-API namespace of ``x``.

    NumPy ≥ 2.1 implements everything the rules use, so NumPy arrays get ``numpy`` itself: no
    wrapper on the hot path, and no import of ``array_api_compat.numpy`` (which costs a third
    of a second at start-up). Other arrays go through ``array_api_compat``.
    """
    if isinstance(x, np.ndarray):
        return np
    return array_api_compat.array_namespace(x)


_LEAF = TreeDef("leaf")


def _is_array(x: Any) -> bool:
    return array_api_compat.is_array_api_obj(x) and not isinstance(x, (list, tuple, dict))


def tree_flatten(tree: Params, name: str = "params") -> tuple[list[Any], TreeDef, list[str]]:
    """Return the leaves of ``tree``, its structure, and a printable path for each leaf."""
    if not isinstance(tree, (Mapping, list, tuple)):  # one array: the common case, kept fast
        return [tree], _LEAF, [name]
    leaves: list[Any] = []
    paths: list[str] = []

    def walk(node: Any, path: str) -> TreeDef:
        if isinstance(node, Mapping):
            keys = tuple(node)
            return TreeDef("dict", keys, tuple(walk(node[k], f"{path}[{k!r}]") for k in keys))
        if isinstance(node, (list, tuple)):
            kind = "list" if isinstance(node, list) else "tuple"
            kids = tuple(walk(c, f"{path}[{i}]") for i, c in enumerate(node))
            return TreeDef(kind, tuple(range(len(node))), kids)
        leaves.append(node)
        paths.append(path)
        return TreeDef("leaf")

    treedef = walk(tree, name)
    return leaves, treedef, paths


def tree_unflatten(treedef: TreeDef, leaves: list[Any]) -> Params:
    """Inverse of :func:`tree_flatten`."""
    it = iter(leaves)

    def build(td: TreeDef) -> Any:
        if td.kind == "leaf":
            return next(it)
        kids = [build(c) for c in td.children]
        if td.kind == "dict":
            return dict(zip(td.keys, kids, strict=True))
        return kids if td.kind == "list" else tuple(kids)

    return build(treedef)


def tree_map(fn: Callable[..., Any], tree: Params, *rest: Params) -> Params:
    """Apply ``fn`` leaf by leaf to trees of the same structure."""
    leaves, treedef, _ = tree_flatten(tree)
    others = [tree_flatten(r)[0] for r in rest]
    return tree_unflatten(treedef, [fn(*ls) for ls in zip(leaves, *others, strict=True)])


def as_leaf(x: Any, path: str) -> Any:
    """Check one parameter leaf: a real floating-point array (Python/NumPy scalars are lifted)."""
    if isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{path} is a boolean; parameters must be floating-point arrays")
    if isinstance(x, numbers.Number) and not isinstance(x, np.ndarray):
        if isinstance(x, numbers.Integral):
            raise TypeError(
                f"{path} is the integer {x!r}; parameters must be floating point "
                f"(write {x}.0, or cast with astype(float))"
            )
        x = np.asarray(x)
    elif isinstance(x, np.generic):
        x = np.asarray(x)
    if not _is_array(x):
        raise TypeError(f"{path} is a {type(x).__name__}, not an array")
    xp = namespace(x)
    if not xp.isdtype(x.dtype, "real floating"):
        kind = "complex" if xp.isdtype(x.dtype, "complex floating") else "integer or boolean"
        hint = (
            " (the core rules are real-valued: optimise the real and imaginary parts as two arrays)"
            if kind == "complex"
            else "; cast it to a floating-point dtype"
        )
        raise TypeError(f"{path} has dtype {x.dtype}, which is {kind}{hint}")
    return x


def _leaves_like(grads: Params, treedef: TreeDef, params: list[Any], paths: list[str]) -> list:
    """Flatten ``grads`` and check it matches the parameters leaf by leaf."""
    g_leaves, g_def, _ = tree_flatten(grads, "grads")
    if g_def != treedef:
        raise ValueError(
            "grads do not have the structure of params: "
            f"params is {_describe(treedef)}, grads is {_describe(g_def)}"
        )
    out = []
    for g, x, path in zip(g_leaves, params, paths, strict=True):
        gpath = "grads" + path[len("params") :]
        if isinstance(g, (numbers.Number, np.generic)) and not isinstance(g, bool):
            g = np.asarray(g)
        if not _is_array(g):
            raise TypeError(f"{gpath} is a {type(g).__name__}, not an array")
        if tuple(g.shape) != tuple(x.shape):
            raise ValueError(
                f"{gpath} has shape {tuple(g.shape)} but {path} has shape {tuple(x.shape)}"
            )
        if g.dtype != x.dtype:
            xp = namespace(x)
            if array_api_compat.is_numpy_array(g) and not array_api_compat.is_numpy_array(x):
                g = xp.asarray(g)
            g = xp.astype(g, x.dtype)
        out.append(g)
    return out


def _describe(td: TreeDef) -> str:
    if td.kind == "leaf":
        return "an array"
    if td.kind == "dict":
        return f"a dict with keys {list(td.keys)}"
    return f"a {td.kind} of {len(td.children)}"


# --------------------------------------------------------------------------------------------
# Hyperparameter checks
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Range:
    """A valid interval for a hyperparameter, e.g. ``Range(0, 1, hi_open=True)`` is [0, 1).

    An end left as ``None`` is closed when finite and open when infinite ([0, inf) refuses
    ``inf``); ``hi_open=False`` at infinity admits it on purpose ([0, inf]).
    """

    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool | None = None
    hi_open: bool | None = None

    @property
    def open_ends(self) -> tuple[bool, bool]:
        """(lo end open, hi end open), the defaults resolved."""
        lo_open = math.isinf(self.lo) if self.lo_open is None else self.lo_open
        hi_open = math.isinf(self.hi) if self.hi_open is None else self.hi_open
        return lo_open, hi_open

    def __str__(self) -> str:
        lo_open, hi_open = self.open_ends
        fmt = lambda v: "inf" if v == math.inf else "-inf" if v == -math.inf else f"{v:g}"  # noqa: E731
        return f"{'(' if lo_open else '['}{fmt(self.lo)}, {fmt(self.hi)}{')' if hi_open else ']'}"

    def holds(self, v: np.ndarray) -> np.ndarray:
        lo_open, hi_open = self.open_ends
        ok_lo = v > self.lo if lo_open else v >= self.lo
        ok_hi = v < self.hi if hi_open else v <= self.hi
        return ok_lo & ok_hi


NONNEG = Range(0.0)
UNIT = Range(0.0, 1.0, hi_open=True)  # betas, alpha, momentum-like decays
UNIT_CLOSED = Range(0.0, 1.0)


def check_value(name: str, value: Any, valid: Range, *, where: str = "") -> Any:
    """Validate a float or an array hyperparameter; return it as float or float64 array.

    Raises ``ValueError`` naming the argument, the offending value and the valid range.
    """
    if isinstance(value, (bool, str, bytes)) or value is None:
        raise TypeError(
            f"{name} must be a number, a schedule or an array, got {type(value).__name__} {value!r}"
        )
    if isinstance(value, numbers.Real):
        try:
            v = float(value)
        except OverflowError:  # a whole number too large for a float
            raise ValueError(
                f"Invalid {name}: a number of {len(str(value))} digits{where}; it must lie in "
                f"{valid}"
            ) from None
        if not valid.holds(np.float64(v)):
            raise ValueError(f"Invalid {name}: {value!r}{where}; it must lie in {valid}")
        return v
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a number, a schedule or an array, got {type(value).__name__}"
        ) from None
    if arr.ndim == 0:
        return check_value(name, float(arr), valid, where=where)
    bad = ~valid.holds(arr)
    if bad.any():
        raise ValueError(
            f"Invalid {name}: {float(arr[bad].flat[0])!r} (in an array of shape {arr.shape}){where}; "
            f"every entry must lie in {valid}"
        )
    return arr


def check_hyper(name: str, value: Hyper, valid: Range) -> Hyper:
    """Validate a hyperparameter that may also be a schedule (checked when it is evaluated)."""
    if callable(value):
        return value
    return check_value(name, value, valid)


def check_flag(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(
            f"Invalid {name}: {value!r}; choose one of {', '.join(map(repr, choices))}"
        )
    return value


def check_pair(name: str, pair: Any, valid: Range, names: tuple[str, str]) -> tuple[Hyper, Hyper]:
    """A pair (``betas``); each entry a float, a schedule, or an array, in ``valid``."""
    if isinstance(pair, (str, bytes)) or not hasattr(pair, "__len__") or len(pair) != 2:
        raise ValueError(f"Invalid {name}: {pair!r}; expected a pair ({', '.join(names)})")
    return (
        check_hyper(f"{names[0]} ({name}[0])", pair[0], valid),
        check_hyper(f"{names[1]} ({name}[1])", pair[1], valid),
    )


def check_bias_correction(value: Any) -> tuple[bool, bool]:
    """``True``/``False`` for both moments, or a pair ``(first, second)``."""
    if isinstance(value, (bool, np.bool_)):
        return (bool(value), bool(value))
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return (
            check_flag("bias_correction[0]", value[0]),
            check_flag("bias_correction[1]", value[1]),
        )
    raise TypeError(
        f"bias_correction must be True, False or a pair (first_moment, second_moment), got {value!r}"
    )


# --------------------------------------------------------------------------------------------
# The optimizer base
# --------------------------------------------------------------------------------------------


class Hypers(dict):
    """Hyperparameters evaluated at one step; attribute access for readability (``h.lr``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


# --------------------------------------------------------------------------------------------
# Declaring hyperparameters: once, as the dataclass field, with what it may be
# --------------------------------------------------------------------------------------------


def hyper(default: Any, valid: Range, **kw: Any) -> Any:
    """A hyperparameter that may be a float, a schedule (a callable of t) or an array that
    broadcasts against the parameters (K configurations in one pass), valid in ``valid``."""
    return dataclasses.field(default=default, metadata={"kind": "hyper", "valid": valid}, **kw)


def hyper_pair(default: tuple, valid: Range, names: tuple[str, str], **kw: Any) -> Any:
    """A pair of hyperparameters (``betas``), each as :func:`hyper`; ``names`` are what a sweep
    calls its entries (``beta1``, ``beta2``)."""
    meta = {"kind": "pair", "valid": valid, "names": names}
    return dataclasses.field(default=default, metadata=meta, **kw)


def number(default: float, valid: Range, **kw: Any) -> Any:
    """A plain number (never a schedule or an array), valid in ``valid``."""
    return dataclasses.field(default=default, metadata={"kind": "number", "valid": valid}, **kw)


def flag(default: bool, **kw: Any) -> Any:
    """A switch: True or False."""
    return dataclasses.field(default=default, metadata={"kind": "flag"}, **kw)


def choice(default: str, options: tuple[str, ...], **kw: Any) -> Any:
    """One of a few names."""
    return dataclasses.field(default=default, metadata={"kind": "choice", "options": options}, **kw)


def other(default: Any, **kw: Any) -> Any:
    """An argument the optimizer checks itself, in ``check()`` (e.g. ``bias_correction``)."""
    return dataclasses.field(default=default, metadata={"kind": "other"}, **kw)


#: the NaN/Inf gradient policies (see :class:`Optimizer`)
NONFINITE = ("raise", "skip", "propagate")


@functools.cache
def _declared(cls: type) -> dict[str, dict[str, Any]]:
    """name → metadata of every declared hyperparameter of an optimizer class, in order."""
    return {f.name: dict(f.metadata) for f in dataclasses.fields(cls) if "kind" in f.metadata}


class Optimizer:
    """Base of every adamlab optimizer (a frozen dataclass of hyperparameters).

    Subclasses declare ``State`` (a NamedTuple whose first field is ``t``) and ``slots``,
    declare each hyperparameter once, as a field made by :func:`hyper`, :func:`hyper_pair`,
    :func:`number`, :func:`flag`, :func:`choice` or :func:`other` (its default and what it may
    be), and write ``init_leaf`` / ``update_leaf`` / ``diagnostics_leaf``.
    """

    name: ClassVar[str]
    #: per-parameter state arrays, in the order of the State fields that follow ``t``
    slots: ClassVar[tuple[str, ...]]
    nonfinite: NonFinitePolicy

    @classmethod
    def dynamic(cls) -> dict[str, Range]:
        """The hyperparameters that may be schedules or arrays, by name (a pair's entries by
        their own names, ``beta1``/``beta2``), and their valid ranges."""
        out: dict[str, Range] = {}
        for name, meta in _declared(cls).items():
            if meta["kind"] == "hyper":
                out[name] = meta["valid"]
            elif meta["kind"] == "pair":
                out.update(dict.fromkeys(meta["names"], meta["valid"]))
        return out

    @classmethod
    def declarations(cls) -> dict[str, dict[str, Any]]:
        """name → what it is (``kind``: hyper, pair, number, flag, choice, other) and may be
        (``valid`` range, ``options``): for listings, forms and the web playground."""
        return {k: dict(v) for k, v in _declared(cls).items()}

    def __post_init__(self) -> None:
        """Validate every argument from its declaration, then ``check()``.

        Each failure is a ``ValueError`` (or ``TypeError``) naming the argument, the value and
        the valid range, raised at construction.
        """
        values: dict[str, Any] = {}
        for name, meta in _declared(type(self)).items():
            value, kind = getattr(self, name), meta["kind"]
            if kind == "hyper":
                values[name] = check_hyper(name, value, meta["valid"])
            elif kind == "pair":
                values[name] = check_pair(name, value, meta["valid"], meta["names"])
            elif kind == "number":
                if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
                    raise TypeError(
                        f"{name} must be a number, got {type(value).__name__} {value!r}"
                    )
                values[name] = check_value(name, value, meta["valid"])
            elif kind == "flag":
                values[name] = check_flag(name, value)
            elif kind == "choice":
                values[name] = check_choice(name, value, meta["options"])
        init_fields(self, **values)
        self.check()

    def check(self) -> None:
        """Rules that tie arguments together (e.g. Nesterov needs momentum); subclass hook."""

    # -- subclass hooks ---------------------------------------------------------------------

    def active_slots(self) -> tuple[str, ...]:
        """The slots this configuration uses (e.g. ``v_max`` only with ``amsgrad``)."""
        return self.slots

    def init_leaf(self, xp: Any, x: Any) -> dict[str, Any]:
        return {s: xp.zeros_like(x) for s in self.active_slots()}

    def update_leaf(self, xp: Any, x: Any, g: Any, s: Hypers, t: int, h: Hypers):
        raise NotImplementedError

    def diagnostics_leaf(self, xp: Any, s: Hypers, t: int, h: Hypers) -> dict[str, Any]:
        """Per-parameter quantities (trees shaped like the parameters)."""
        return {}

    def diagnostics_shared(self, t: int, h: Hypers) -> dict[str, Any]:
        """Quantities shared by every parameter (the bias-correction factors)."""
        return {}

    def scalars_init(self) -> dict[str, Any]:
        """State that is one value for all parameters (e.g. NAdam's running product μ₁…μₜ)."""
        return {}

    def scalars_update(self, sc: dict[str, Any], t: int, h: Hypers) -> dict[str, Any]:
        return sc

    # -- hyperparameters --------------------------------------------------------------------

    def raw_hypers(self) -> dict[str, Hyper]:
        """The dynamic hyperparameters as given (floats, schedules or arrays), by name (a
        pair's entries by their own names)."""
        out: dict[str, Hyper] = {}
        for name, meta in _declared(type(self)).items():
            if meta["kind"] == "hyper":
                out[name] = getattr(self, name)
            elif meta["kind"] == "pair":
                out.update(zip(meta["names"], getattr(self, name), strict=True))
        return out

    def hypers(self, t: int) -> Hypers:
        """Every hyperparameter at step ``t`` (t = 1 is the first step): schedules called."""
        static = self.__dict__.get("_static_hypers")
        if static is None:  # the dataclass fields, gathered once (the instance is frozen)
            static = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]
            object.__setattr__(self, "_static_hypers", static)
        h = Hypers(static)
        for name, value in self.raw_hypers().items():
            if callable(value):
                valid = type(self).dynamic()[name]
                value = check_value(name, value(t), valid, where=f" at step t={t}")
            h[name] = value
        return h

    def describe(self) -> dict[str, Any]:
        """Hyperparameters as plain data (for legends, manifests and the CLI)."""
        out = {"name": self.name}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray):
                v = v.tolist()
            elif callable(v):
                v = repr(v)
            elif isinstance(v, tuple):
                v = [
                    e.tolist() if isinstance(e, np.ndarray) else repr(e) if callable(e) else e
                    for e in v
                ]
            out[f.name] = v
        return out

    def _check_broadcast(self, x: Any, path: str) -> None:
        for name, value in self.raw_hypers().items():
            if isinstance(value, np.ndarray):
                try:
                    shape = np.broadcast_shapes(value.shape, tuple(x.shape))
                except ValueError:
                    shape = None
                if shape != tuple(x.shape):
                    raise ValueError(
                        f"{name} has shape {value.shape}, which does not broadcast to "
                        f"{path} of shape {tuple(x.shape)}"
                    )

    # -- the pure API -------------------------------------------------------------------------

    def init(self, params: Params) -> NamedTuple:
        """Fresh state for ``params``: step count ``t = 0`` and zeroed moments."""
        leaves, treedef, paths = tree_flatten(params)
        leaves = [as_leaf(x, p) for x, p in zip(leaves, paths, strict=True)]
        per_leaf = []
        for x, path in zip(leaves, paths, strict=True):
            self._check_broadcast(x, path)
            per_leaf.append(self.init_leaf(namespace(x), x))
        return self._pack(0, treedef, per_leaf, self.scalars_init())

    def step(self, params: Params, grads: Params, state: NamedTuple) -> tuple[Params, NamedTuple]:
        """One step of the rule: returns new parameters and new state; inputs are untouched."""
        if not isinstance(state, self.State):  # type: ignore[attr-defined]
            raise TypeError(
                f"state is a {type(state).__name__}; {type(self).__name__}.step needs the "
                f"{self.State.__name__} returned by {type(self).__name__}.init"  # type: ignore[attr-defined]
            )
        leaves, treedef, paths = tree_flatten(params)
        leaves = [as_leaf(x, p) for x, p in zip(leaves, paths, strict=True)]
        g_leaves = _leaves_like(grads, treedef, leaves, paths)
        slot_leaves = self._unpack(state, treedef)
        t = int(state.t) + 1

        if self.nonfinite != "propagate":
            bad = self._first_nonfinite(g_leaves, paths)
            if bad is not None:
                if self.nonfinite == "skip":
                    return params, state
                raise NonFiniteGradientError(
                    f"{bad} holds NaN or Inf at step t={t}; the step was not taken and the state "
                    "is unchanged (construct the optimizer with nonfinite='skip' to skip such "
                    "steps, or nonfinite='propagate' to let them through as PyTorch does)"
                )

        h = self.hypers(t)
        scalars = self.scalars_update({k: getattr(state, k) for k in self.scalars_init()}, t, h)
        h.update(scalars)
        arrays = any(isinstance(v, np.ndarray) for v in h.values())  # decided once per step
        new_x, new_s = [], []
        for x, g, s in zip(leaves, g_leaves, slot_leaves, strict=True):
            xp = namespace(x)
            x1, s1 = self.update_leaf(xp, x, g, Hypers(s), t, self._cast(xp, h, x) if arrays else h)
            new_x.append(_as_dtype(xp, x1, x))
            new_s.append({k: _as_dtype(xp, v, x) for k, v in s1.items()})
        return tree_unflatten(treedef, new_x), self._pack(t, treedef, new_s, scalars)

    def diagnostics(self, state: NamedTuple) -> dict[str, Any]:
        """What the rule is doing after ``state.t`` steps (trees shaped like the parameters).

        For the Adam family: ``m_hat``, ``v_hat``, the bias-correction factors ``bias1`` =
        1−β1ᵗ and ``bias2`` = 1−β2ᵗ, and ``effective_lr``, the per-coordinate step size
        α/(√v̂+ε) that multiplies the (corrected) first moment.
        """
        t = int(state.t)
        if t < 1:
            raise ValueError(
                "diagnostics describe a step that was taken: call step() at least once"
            )
        h = self.hypers(t)
        h.update({k: getattr(state, k) for k in self.scalars_init()})
        out = dict(self.diagnostics_shared(t, h))
        if not self.active_slots():
            return out
        _, treedef, _ = tree_flatten(getattr(state, self.active_slots()[0]))
        per_leaf = []
        for s in self._unpack(state, treedef):
            ref = next(iter(s.values()))
            xp = namespace(ref)
            per_leaf.append(self.diagnostics_leaf(xp, Hypers(s), t, self._cast(xp, h, ref)))
        for key in per_leaf[0]:
            out[key] = tree_unflatten(treedef, [d[key] for d in per_leaf])
        return out

    # -- helpers ------------------------------------------------------------------------------

    def _first_nonfinite(self, g_leaves: list, paths: list[str]) -> str | None:
        for g, path in zip(g_leaves, paths, strict=True):
            xp = namespace(g)
            if not bool(xp.all(xp.isfinite(g))):
                return "grads" + path[len("params") :]
        return None

    def _cast(self, xp: Any, h: Hypers, x: Any) -> Hypers:
        """Array hyperparameters become arrays of the parameter's namespace and dtype.

        Floats stay Python floats: like NumPy's weak scalars they take the array's dtype, so
        float32 parameters stay float32, and a (K, 1) array of K configurations gives, row by
        row, the same arithmetic as K runs with one float each.
        """
        if not any(isinstance(v, np.ndarray) for v in h.values()):
            return h
        out = Hypers(h)
        for k, v in h.items():
            if isinstance(v, np.ndarray):
                out[k] = v if xp is np and v.dtype == x.dtype else xp.asarray(v, dtype=x.dtype)
        return out

    def _pack(self, t: int, treedef: TreeDef, per_leaf: list[dict], scalars: dict) -> NamedTuple:
        fields = {
            name: tree_unflatten(treedef, [d[name] for d in per_leaf])
            for name in self.active_slots()
        }
        return self.State(t=t, **fields, **scalars)  # type: ignore[attr-defined]

    def _unpack(self, state: NamedTuple, treedef: TreeDef) -> list[dict[str, Any]]:
        per_slot = {}
        for name in self.active_slots():
            tree = getattr(state, name)
            if tree is None:
                raise ValueError(
                    f"state.{name} is missing: was this state made by another configuration?"
                )
            leaves, td, _ = tree_flatten(tree, f"state.{name}")
            if td != treedef:
                raise ValueError(f"state.{name} does not have the structure of params")
            per_slot[name] = leaves
        return [{name: per_slot[name][i] for name in per_slot} for i in range(_count(treedef))]


def sqrt(v: Any) -> Any:
    """√v, correctly rounded, for a float or an array (never ``v ** 0.5``, which is libm's
    ``pow`` for a float and NumPy's ``sqrt`` for an array: not always the same bits)."""
    if isinstance(v, (float, int)):
        return math.sqrt(v)
    return namespace(v).sqrt(v)


def bias_factors(t: int, h: Hypers) -> dict[str, Any]:
    """The bias-correction factors 1 − β₁ᵗ and 1 − β₂ᵗ (what the diagnostics report)."""
    return {"bias1": 1 - power(h.beta1, t), "bias2": 1 - power(h.beta2, t)}


def init_fields(obj: Any, **values: Any) -> None:
    """Store validated values on a frozen dataclass (used in ``__post_init__``)."""
    for k, v in values.items():
        object.__setattr__(obj, k, v)


def is_zero(v: Any) -> bool:
    """True for a hyperparameter that is the float 0 (arrays and schedules never are)."""
    return isinstance(v, float) and v == 0.0


def signed_and_decayed(x: Any, g: Any, h: Hypers, *, decoupled: bool = False) -> tuple[Any, Any]:
    """The prologue PyTorch's rules share: ``maximize`` flips g; weight decay λ is added to
    the gradient (L2, g ← g + λx) or, decoupled (Loshchilov & Hutter), shrinks x ← x(1 − αλ)."""
    if h.maximize:
        g = -g
    if not is_zero(h.weight_decay):
        if decoupled:
            x = x * (1 - h.lr * h.weight_decay)
        else:
            g = g + h.weight_decay * x
    return x, g


def _count(td: TreeDef) -> int:
    return 1 if td.kind == "leaf" else sum(_count(c) for c in td.children)


def _as_dtype(xp: Any, y: Any, like: Any) -> Any:
    """Keep results arrays (not NumPy scalars) of the parameter's dtype."""
    if xp is np and not isinstance(y, np.ndarray):
        y = np.asarray(y)
    if y.dtype != like.dtype:
        y = xp.astype(y, like.dtype)
    return y
