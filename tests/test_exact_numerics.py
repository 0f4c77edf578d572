"""adamlab's own numerics (``adamlab._exact``): accurate, and the same bits whatever the array's
shape, layout or CPU, because they use IEEE + − × ÷ √ in a fixed order and nothing else.

The CPU part of that promise is checked by running this file under NumPy's CPU-feature switches
(``.ci/run``); here we check what one machine can: accuracy, element-wise purity (a value does
not depend on its neighbours or the layout), the defined summation order, and that the problems
and the run loop call nothing else.
"""

from __future__ import annotations

import ast
import functools
import math
import operator
from pathlib import Path

import numpy as np
import pytest

from adamlab import _exact as ex
from adamlab.problems import PROBLEMS, get_problem

pytestmark = pytest.mark.exact

RNG = np.random.default_rng(11)
SRC = Path(__file__).resolve().parents[1] / "src" / "adamlab"


def ulps(got, want):
    got, want = np.asarray(got, float), np.asarray(want, float)
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    spacing = np.spacing(np.maximum(np.abs(got), np.abs(want)))
    return float(np.max(np.where(same, 0.0, np.abs(got - want) / spacing)))


FUNCTIONS = {  # name: (ours, libm's, inputs, ulps allowed)
    "exp": (ex.exp, math.exp, np.r_[RNG.uniform(-745, 709, 20000), RNG.uniform(-1, 1, 5000)], 1),
    "expm1": (ex.expm1, math.expm1, np.r_[RNG.uniform(-3, 3, 20000), RNG.uniform(-1e-9, 1e-9, 99)], 2),
    "log": (ex.log, math.log, np.r_[np.exp(RNG.uniform(-700, 700, 20000)), RNG.uniform(0.5, 2, 5000), 5e-324], 1),
    "log1p": (ex.log1p, math.log1p, np.r_[RNG.uniform(-0.99, 5, 20000), RNG.uniform(-1e-9, 1e-9, 99)], 2),
    "log10": (ex.log10, math.log10, np.exp(RNG.uniform(-700, 700, 20000)), 2),
    "tanh": (ex.tanh, math.tanh, np.r_[RNG.uniform(-25, 25, 20000), RNG.uniform(-1e-9, 1e-9, 99)], 4),
    "sin": (ex.sin, math.sin, np.r_[RNG.uniform(-200, 200, 20000), RNG.uniform(-1, 1, 5000)], 2),
    "cos": (ex.cos, math.cos, np.r_[RNG.uniform(-200, 200, 20000), RNG.uniform(-1, 1, 5000)], 2),
    "softplus": (ex.softplus, lambda v: math.log1p(math.exp(-abs(v))) + max(v, 0.0), RNG.uniform(-40, 40, 20000), 3),
}  # fmt: skip


@pytest.mark.parametrize("name", FUNCTIONS)
def test_elementary_functions_are_accurate(name):
    ours, ref, x, allowed = FUNCTIONS[name]
    assert ulps(ours(x), [ref(float(v)) for v in x]) <= allowed


@pytest.mark.parametrize("name", FUNCTIONS)
def test_a_value_does_not_depend_on_shape_layout_or_neighbours(name):
    """f(x)[i] == f(x[i]): a 0-d array, a row of a (K, D) array, a strided view."""
    ours, _, x, _ = FUNCTIONS[name]
    x = x[:1200]
    full = ours(x)
    for i in range(0, 1200, 97):
        assert ours(x[i]) == full[i] or (np.isnan(full[i]) and np.isnan(ours(x[i])))
    assert np.array_equal(ours(x.reshape(40, 30)), full.reshape(40, 30), equal_nan=True)
    assert np.array_equal(ours(x[::7]), full[::7], equal_nan=True)
    assert np.array_equal(ours(np.asfortranarray(x.reshape(40, 30))), full.reshape(40, 30), equal_nan=True)  # fmt: skip


def test_special_values():
    inf, nan = math.inf, math.nan
    assert list(ex.exp(np.array([inf, -inf, 710.0, -746.0, 0.0]))) == [inf, 0.0, inf, 0.0, 1.0]
    assert np.isnan(ex.exp(nan))
    assert list(ex.log(np.array([0.0, inf, 1.0]))) == [-inf, inf, 0.0]
    assert np.isnan(ex.log(-1.0)) and np.isnan(ex.log(nan))
    assert list(ex.tanh(np.array([inf, -inf, 30.0]))) == [1.0, -1.0, 1.0]
    assert math.copysign(1.0, ex.tanh(-0.0)) == -1.0
    assert np.isnan(ex.sin(inf)) and np.isnan(ex.cos(nan))
    assert list(ex.softplus(np.array([-inf, inf, 800.0]))) == [0.0, inf, 800.0]


def test_sums_add_left_to_right():
    """Our order is the one a Python loop has, whatever the axis or layout."""
    x = RNG.standard_normal((7, 33, 5)) * 10.0 ** RNG.integers(-8, 8, (7, 33, 5))
    for axis in (0, 1, 2, -1):
        got = ex.sum_(x, axis=axis)
        want = np.apply_along_axis(lambda v: functools.reduce(operator.add, v.tolist()), axis, x)
        assert np.array_equal(got, want)
    assert ex.sum_(x, axis=(-2, -1)).shape == (7,)
    assert ex.sum_(np.zeros((3, 0)), axis=-1).tolist() == [0.0, 0.0, 0.0]
    assert float(ex.norm(np.array([3.0, 4.0]))) == 5.0
    assert float(ex.dot([1.0, 2.0], [3.0, 4.0])) == 11.0


def python_matmul(a, b):
    """Σₖ a[i,k]·b[k,j] added in order k = 0, 1, … with Python floats (IEEE, no FMA)."""
    n, k = a.shape
    m = b.shape[1]
    out = np.empty((n, m))
    for i in range(n):
        for j in range(m):
            acc = a[i, 0] * b[0, j]
            for q in range(1, k):
                acc = acc + a[i, q] * b[q, j]
            out[i, j] = acc
    return out


def test_matmul_accumulates_in_index_order_whatever_the_shape(monkeypatch):
    a = RNG.standard_normal((4, 6, 9))
    b = RNG.standard_normal((4, 9, 5))
    want = np.stack([python_matmul(a[i], b[i]) for i in range(4)])
    assert np.array_equal(ex.matmul(a, b), want)
    assert np.array_equal(ex.matmul(a[2], b[2]), want[2])  # alone == its row in a batch
    assert np.array_equal(ex.matmul(a[:, 1:2], b)[:, 0, :], want[:, 1, :])  # one row
    assert np.array_equal(ex.matmul(a[0, 0], b[0][:, 0]), want[0, 0, 0])  # vector · vector
    for path in ("_MATERIALISE", "_COMPILED"):  # each path: same order, same bits
        monkeypatch.setattr(ex, path, 0)
        assert np.array_equal(ex.matmul(a, b), want), path
    big_a, big_b = RNG.standard_normal((3, 40, 64)), RNG.standard_normal((64, 30))
    monkeypatch.setattr(ex, "_COMPILED", 1 << 40)
    slow = ex.matmul(big_a, big_b)
    monkeypatch.setattr(ex, "_COMPILED", 0)
    assert np.array_equal(ex.matmul(big_a, big_b), slow)  # numba, if installed, equals NumPy
    with pytest.raises(ValueError, match="do not align"):
        ex.matmul(a, a)


def test_log_grids_are_exact_at_the_ends_and_monotone():
    g = ex.geomspace(1e-4, 3.0, 19)
    assert g[0] == 1e-4 and g[-1] == 3.0 and np.all(np.diff(g) > 0)
    assert np.allclose(g, np.geomspace(1e-4, 3.0, 19), rtol=2e-15, atol=0)  # NumPy: via pow
    assert list(ex.logspace(-4, 0, 5)) == [1e-4, 1e-3, 1e-2, 0.1, 1.0]
    assert ex.geom_interp(2.0, 8.0, 0.5) == 4.0
    with pytest.raises(ValueError, match="positive ends"):
        ex.geomspace(0.0, 1.0, 3)


# --------------------------------------------------------------------------------------------
# Every built-in problem: a point alone and in a batch, the same bits
# --------------------------------------------------------------------------------------------

BUILTIN = [name for name in PROBLEMS if name not in ("custom",)]


@pytest.mark.parametrize("name", BUILTIN)
def test_problems_give_a_point_alone_the_bits_of_its_row_in_a_batch(name):
    p = get_problem(name)
    x0 = np.asarray(p.x0, float)
    xs = x0 + RNG.normal(scale=0.3, size=(5, p.dim))
    loss, grad = p.loss(xs), p.grad(xs)
    oracle = p.oracle(3)
    f_t, g_t = oracle(xs, 4)
    for k in range(5):
        assert p.loss(xs[k]) == loss[k]
        assert np.array_equal(p.grad(xs[k]), grad[k])
        assert np.array_equal(p.grad(xs[k : k + 1])[0], grad[k])
        f1, g1 = oracle(xs[k], 4)
        assert f1 == f_t[k] and np.array_equal(g1, g_t[k])


# --------------------------------------------------------------------------------------------
# Nothing else is called: a static guard on the code that computes runs
# --------------------------------------------------------------------------------------------

#: NumPy and math functions whose bits depend on the CPU, the libm or the BLAS
FORBIDDEN = {
    "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "logaddexp", "tanh", "sinh",
    "cosh", "sin", "cos", "tan", "arctan", "arcsin", "arccos", "atan", "asin", "acos",
    "power", "pow", "float_power", "matmul", "dot", "vdot", "inner", "einsum", "linalg",
    "logspace", "geomspace", "roots", "sum", "mean", "std", "var", "nansum", "nanmean",
}  # fmt: skip
GUARDED = [
    *sorted((SRC / "problems").glob("*.py")),
    *sorted((SRC / "optim").glob("*.py")),
    SRC / "lab" / "runner.py",
    SRC / "lab" / "metrics.py",
    SRC / "kernels" / "sweep.py",
]
#: the expression parser compiles the *user's* function with NumPy (documented), and the
#: power module's fallbacks apply outside β's range only
ALLOWED = {("expression.py", "*"), ("powers.py", "Pow")}


def offences(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        where = f"{path.name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN:
            base = node.value
            if isinstance(base, ast.Name) and base.id in ("np", "math", "numpy"):
                found.append(f"{where} {base.id}.{node.attr}")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
            found.append(f"{where} @")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            exponent, base = node.right, node.left
            constant_base = isinstance(base, ast.Constant)
            square = isinstance(exponent, ast.Constant) and exponent.value == 2
            if not (square or constant_base) and (path.name, "Pow") not in ALLOWED:
                found.append(f"{where} **")
    return found


def test_runs_compute_with_ieee_operations_and_adamlabs_own_functions_only():
    bad = []
    for path in GUARDED:
        if (path.name, "*") in ALLOWED:
            continue
        bad += offences(path)
    assert bad == [], "use adamlab._exact (or powers.power) instead of:\n" + "\n".join(bad)
