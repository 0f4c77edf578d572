"""A user's own function: ``from_expression("(x-2)**2 + 3*sin(x)")``, differentiated exactly.

The text is parsed with Python's :mod:`ast` into a syntax tree and *walked against a
whitelist*; nothing is ever evaluated as Python. Allowed:

* numbers (``2``, ``0.5``, ``1e-3``) and the constants ``pi`` and ``e``;
* the variables ``x, y, z`` or ``x1, x2, …, xn`` (not both styles in one expression);
* ``+ - * / **``, unary ``-`` and ``+``, parentheses (``^`` is refused with a hint to use ``**``);
* the functions ``sin cos tan exp log sqrt abs tanh sinh cosh``, ``atan``/``arctan``,
  ``asin``/``arcsin``, ``acos``/``arccos``, each with exactly one argument.

Everything else — attribute access, subscripts, calls of anything but those names, keyword
arguments, lambdas, comprehensions, strings, comparisons, other names — is refused with a
one-line ``ValueError`` naming what was refused, as are texts longer than 500 characters,
nesting deeper than 100 levels, and exponents of magnitude above 1000 (so ``9**9**9`` cannot
make the calculus hang).

The checked tree is rebuilt node by node as a SymPy expression (no ``sympify`` of the text,
which would ``eval`` it), differentiated exactly by SymPy, and turned into NumPy functions
with ``lambdify``; ``loss`` and ``grad`` are then vectorised over leading batch dimensions.

Dimension and variable order: with ``x, y, z`` the dimension is the position of the last
letter used (``x`` → 1, ``x, y`` → 2, ``y`` alone → 2 with ``x`` unused); with ``x1 … xn`` it
is the largest index n. Pass ``variables=`` to fix the names and order yourself.
Start: the origin unless ``x0`` is given. Plotting domain: [−5, 5] per coordinate (widened
to contain the start) unless ``domain`` is given. x* and f* are unknown unless given.
"""

from __future__ import annotations

import ast
import dataclasses
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .base import ParametricProblem, box

MAX_LENGTH = 500
MAX_DEPTH = 100
MAX_EXPONENT = 1000

LETTERS = ("x", "y", "z")
_INDEXED = re.compile(r"x([1-9][0-9]{0,3})")

#: function name -> SymPy function name
FUNCTIONS = {
    "sin": "sin",
    "cos": "cos",
    "tan": "tan",
    "exp": "exp",
    "log": "log",
    "sqrt": "sqrt",
    "abs": "Abs",
    "tanh": "tanh",
    "sinh": "sinh",
    "cosh": "cosh",
    "atan": "atan",
    "arctan": "atan",
    "asin": "asin",
    "arcsin": "asin",
    "acos": "acos",
    "arccos": "acos",
}
CONSTANTS = ("pi", "e")

_ALLOWED = (
    "numbers, the variables x, y, z or x1..xn, + - * / **, parentheses, pi, e and the "
    f"functions {', '.join(FUNCTIONS)}"
)


def _refuse(what: str) -> ValueError:
    return ValueError(f"refused expression: {what} (allowed: {_ALLOWED})")


_DESCRIBE = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscripts",
    ast.Lambda: "lambda",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.Compare: "comparisons",
    ast.BoolOp: "boolean operators",
    ast.IfExp: "conditional expressions",
    ast.NamedExpr: "assignment (:=)",
    ast.JoinedStr: "strings",
    ast.List: "lists",
    ast.Tuple: "tuples",
    ast.Dict: "dicts",
    ast.Set: "sets",
    ast.Starred: "starred arguments",
    ast.Await: "await",
}

_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}


@dataclasses.dataclass(frozen=True)
class Parsed:
    """A checked expression: the SymPy tree and the variable names it uses."""

    expr: Any  # sympy.Expr
    names: frozenset[str]


def parse(text: str) -> Parsed:
    """Check ``text`` against the whitelist and build its SymPy expression.

    Raises ``ValueError`` (one line) for anything outside the whitelist.
    """
    if not isinstance(text, str):
        raise _refuse(f"expected a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise _refuse(f"{len(text)} characters is longer than the limit of {MAX_LENGTH}")
    if not text.strip():
        raise _refuse("the expression is empty")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        msg = getattr(e, "msg", None) or str(e) or type(e).__name__
        raise _refuse(f"it is not a valid formula ({msg})") from None
    import sympy

    names: set[str] = set()
    body = _build(tree.body, sympy, names, depth=0)
    if body.has(sympy.I):  # e.g. sqrt(-1) or log(-1): SymPy made it complex
        raise _refuse("it has a complex value (the square root or log of a negative constant)")
    return Parsed(body, frozenset(names))


def _build(node: ast.AST, sp: Any, names: set[str], depth: int) -> Any:
    """Turn one whitelisted AST node into SymPy; refuse everything else."""
    if depth > MAX_DEPTH:
        raise _refuse(f"nesting deeper than {MAX_DEPTH} levels")
    d = depth + 1
    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            kind = "strings" if isinstance(v, (str, bytes)) else f"the constant {v!r}"
            raise _refuse(f"{kind} are not numbers" if kind == "strings" else f"{kind}")
        if isinstance(v, int):
            if abs(v) > 10**15:
                return _float(sp, float(v) if abs(v) < 10**308 else math.inf, "number")
            return sp.Integer(v)
        return _float(sp, v, "number")
    if isinstance(node, ast.Name):
        n = node.id
        if n in CONSTANTS:
            return sp.pi if n == "pi" else sp.E
        if n in LETTERS or _INDEXED.fullmatch(n):
            names.add(n)
            return sp.Symbol(n, real=True)
        if n in FUNCTIONS:
            raise _refuse(f"the function {n!r} must be called, e.g. {n}(x)")
        raise _refuse(f"the name {n!r} is not a variable, constant or allowed function")
    if isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.USub):
            return -_build(node.operand, sp, names, d)
        if isinstance(node.op, ast.UAdd):
            return _build(node.operand, sp, names, d)
        raise _refuse(f"the operator {type(node.op).__name__}")
    if isinstance(node, ast.BinOp):
        op = type(node.op)
        if op is ast.BitXor:
            raise _refuse("'^' (write powers as **)")
        if op not in _BINOPS:
            raise _refuse(f"the operator {type(node.op).__name__}")
        a = _build(node.left, sp, names, d)
        b = _build(node.right, sp, names, d)
        if op is ast.Add:
            return a + b
        if op is ast.Sub:
            return a - b
        if op is ast.Mult:
            return a * b
        if op is ast.Div:
            if b.is_number and b == 0:
                raise _refuse("division by zero")
            return a / b
        return _power(sp, a, b)
    if isinstance(node, ast.Call):
        func = node.func
        if not isinstance(func, ast.Name):
            what = "attribute access" if isinstance(func, ast.Attribute) else "this call"
            raise _refuse(f"{what} ({_snippet(func)})")
        if func.id not in FUNCTIONS:
            raise _refuse(f"the function {func.id!r}")
        if node.keywords:
            raise _refuse(f"keyword arguments in {func.id}()")
        if len(node.args) != 1:
            raise _refuse(f"{func.id}() takes exactly one argument, got {len(node.args)}")
        arg = _build(node.args[0], sp, names, d)
        return getattr(sp, FUNCTIONS[func.id])(arg)
    what = _DESCRIBE.get(type(node), type(node).__name__)
    raise _refuse(f"{what} ({_snippet(node)})")


def _snippet(node: ast.AST) -> str:
    try:
        s = ast.unparse(node)
    except Exception:  # pragma: no cover - unparse handles every parsed node
        return type(node).__name__
    return s if len(s) <= 40 else s[:37] + "..."


def _float(sp: Any, v: float, what: str) -> Any:
    if not math.isfinite(v):
        raise _refuse(f"the {what} {v!r} is not a finite float")
    return sp.Float(v)


def _power(sp: Any, a: Any, b: Any) -> Any:
    """a**b, refusing exponents that would make SymPy's exact arithmetic explode."""
    if b.is_number:
        try:
            e = float(b)
        except TypeError:  # complex
            raise _refuse("a complex exponent") from None
        if abs(e) > MAX_EXPONENT:
            raise _refuse(f"the exponent {e:g} is larger than {MAX_EXPONENT} in magnitude")
        if a.is_number:  # both constant: evaluate in floating point, never as a huge integer
            try:
                value = float(a) ** e
            except (OverflowError, ZeroDivisionError, TypeError):
                raise _refuse(f"the constant power ({a})**({b}) is not a finite real") from None
            if isinstance(value, complex) or not math.isfinite(value):
                raise _refuse(f"the constant power ({a})**({b}) is not a finite real")
            if a.is_Integer and b.is_Integer and e >= 0 and abs(value) < 1e15:
                return sp.Integer(int(a) ** int(b))
            return sp.Float(value)
    return a**b


def _variables(names: frozenset[str], given: Sequence[str] | None) -> list[str]:
    if given is not None:
        given = list(given)
        for n in given:
            if not (n in LETTERS or _INDEXED.fullmatch(n)):
                raise ValueError(f"Invalid variable name {n!r}; use x, y, z or x1..xn")
        if len(set(given)) != len(given):
            raise ValueError(f"variables must be distinct, got {given}")
        missing = sorted(names - set(given))
        if missing:
            raise _refuse(f"the variable {missing[0]!r} is not among variables={given}")
        return given
    if not names:
        raise _refuse("it uses no variable (use x, y, z or x1..xn)")
    letters = {n for n in names if n in LETTERS}
    indexed = names - letters
    if letters and indexed:
        raise _refuse(
            f"mixing variable styles ({', '.join(sorted(letters))} with "
            f"{', '.join(sorted(indexed))}); use x, y, z or x1..xn"
        )
    if letters:
        return list(LETTERS[: max(LETTERS.index(n) for n in letters) + 1])
    n = max(int(v[1:]) for v in indexed)
    return [f"x{i}" for i in range(1, n + 1)]


def _vectorise(fn: Callable[..., Any]) -> Callable[[np.ndarray], np.ndarray]:
    def call(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        with np.errstate(all="ignore"):  # log(-1) etc. give NaN; the runner reports it
            out = fn(*(x[..., i] for i in range(x.shape[-1])))
        return np.broadcast_to(np.asarray(out, dtype=np.float64), x.shape[:-1]).copy()

    return call


@dataclasses.dataclass(frozen=True, eq=False)
class Expression(ParametricProblem):
    """f given as text (see the module): exact gradient by SymPy, evaluated by NumPy."""

    text: str = ""
    variables: tuple[str, ...] | None = None
    name: str = dataclasses.field(default="expression", kw_only=True)
    dim: int = dataclasses.field(default=0, init=False, kw_only=True)

    def __post_init__(self) -> None:
        parsed = parse(self.text)
        names = _variables(parsed.names, self.variables)
        import sympy

        symbols = [sympy.Symbol(n, real=True) for n in names]
        derivatives = [sympy.diff(parsed.expr, s) for s in symbols]
        object.__setattr__(self, "variables", tuple(names))
        object.__setattr__(self, "dim", len(names))
        object.__setattr__(self, "expr", parsed.expr)
        object.__setattr__(self, "derivatives", tuple(derivatives))
        object.__setattr__(
            self, "_f", _vectorise(sympy.lambdify(symbols, parsed.expr, modules="numpy"))
        )
        object.__setattr__(
            self,
            "_df",
            tuple(_vectorise(sympy.lambdify(symbols, d, modules="numpy")) for d in derivatives),
        )
        super().__post_init__()

    def defaults(self) -> dict[str, Any]:
        d = len(self.variables)
        x0 = np.zeros(d) if self.x0 is None else np.asarray(self.x0, dtype=np.float64)
        reach = float(np.max(np.abs(x0), initial=0.0))
        half = 5.0 if reach < 5.0 else math.ceil(reach * 1.2)
        return {
            "description": f"f({', '.join(self.variables)}) = {' '.join(self.text.split())}",
            "x0": np.zeros(d),
            "domain": box(d, -half, half),
        }

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # the lambdified functions do not pickle; rebuild them from the text (process pools)
        fields = ("x0", "domain", "x_star", "f_star", "name", "description")
        return (_rebuild, (self.text, self.variables, {k: getattr(self, k) for k in fields}))

    def loss(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1] != self.dim:
            raise ValueError(
                f"x has {x.shape[-1]} coordinate(s); {self.description} needs {self.dim}"
            )
        return self._f(x)  # type: ignore[attr-defined]

    def grad(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1] != self.dim:
            raise ValueError(
                f"x has {x.shape[-1]} coordinate(s); {self.description} needs {self.dim}"
            )
        return np.stack([df(x) for df in self._df], axis=-1)  # type: ignore[attr-defined]


def _rebuild(text: str, variables: tuple[str, ...], fields: dict[str, Any]) -> Expression:
    return Expression(text, variables, **fields)


def from_expression(
    text: str,
    *,
    x0: Sequence[float] | None = None,
    domain: Any = None,
    variables: Sequence[str] | None = None,
    x_star: Sequence[float] | None = None,
    f_star: float | None = None,
    name: str = "expression",
) -> Expression:
    """A problem from a formula such as ``"(x-2)**2 + 3*sin(x)"`` (see the module for syntax).

    Raises ``ValueError`` with a one-line message for anything outside the whitelist.

    Example:
        >>> p = from_expression("(x - 2)**2 + y**2")
        >>> p.dim, p.grad([3.0, 1.0]).tolist()
        (2, [2.0, 2.0])
    """
    return Expression(
        text,
        None if variables is None else tuple(variables),
        x0=x0,
        domain=domain,
        x_star=x_star,
        f_star=f_star,
        name=name,
    )
