"""A user's own function: a whitelist parser, exact SymPy derivatives, NumPy evaluation."""

import math

import numpy as np
import pytest
from oracles import central_differences

import adamlab
from adamlab.problems import Expression, from_expression

POINTS = np.array([[0.3, -1.2], [2.0, 0.5], [-1.7, 2.2]])


def test_the_issue_example_has_its_exact_derivative():
    p = from_expression("(x-2)**2 + 3*sin(x)")
    assert isinstance(p, Expression) and p.dim == 1 and p.variables == ("x",)
    x = np.array([[-1.0], [0.5], [2.0], [4.25]])
    np.testing.assert_allclose(p.loss(x), (x[:, 0] - 2) ** 2 + 3 * np.sin(x[:, 0]), rtol=1e-15)
    np.testing.assert_allclose(p.grad(x), 2 * (x - 2) + 3 * np.cos(x), rtol=1e-15)
    assert p.x0.tolist() == [0.0] and p.domain.tolist() == [[-5.0, 5.0]]
    assert p.description == "f(x) = (x-2)**2 + 3*sin(x)"
    assert p.x_star is None and p.f_star is None and not p.stochastic


@pytest.mark.parametrize(
    ("text", "f", "grad"),
    [
        ("x**2 + 10*y**2", lambda x, y: x**2 + 10 * y**2, lambda x, y: (2 * x, 20 * y)),
        (
            "exp(-x) * cos(y) + log(1 + x**2)",
            lambda x, y: np.exp(-x) * np.cos(y) + np.log(1 + x**2),
            lambda x, y: (-np.exp(-x) * np.cos(y) + 2 * x / (1 + x**2), -np.exp(-x) * np.sin(y)),
        ),
        (
            "sqrt(x**2 + y**2 + 1) - tanh(x*y)",
            lambda x, y: np.sqrt(x**2 + y**2 + 1) - np.tanh(x * y),
            lambda x, y: (
                x / np.sqrt(x**2 + y**2 + 1) - y / np.cosh(x * y) ** 2,
                y / np.sqrt(x**2 + y**2 + 1) - x / np.cosh(x * y) ** 2,
            ),
        ),
        (
            "abs(x) + arctan(y) / 2 - -x",
            lambda x, y: np.abs(x) + np.arctan(y) / 2 + x,
            lambda x, y: (np.sign(x) + 1, 0.5 / (1 + y**2)),
        ),
        (
            "pi*sinh(x) + e**y - cosh(y)/tan(1 + x**2)",
            lambda x, y: np.pi * np.sinh(x) + np.e**y - np.cosh(y) / np.tan(1 + x**2),
            lambda x, y: (
                np.pi * np.cosh(x) + np.cosh(y) * 2 * x / np.sin(1 + x**2) ** 2,
                np.e**y - np.sinh(y) / np.tan(1 + x**2),
            ),
        ),
    ],
)
def test_derivatives_equal_hand_derived_ones(text, f, grad):
    p = from_expression(text)
    assert p.dim == 2
    x, y = POINTS[:, 0], POINTS[:, 1]
    np.testing.assert_allclose(p.loss(POINTS), f(x, y), rtol=1e-12)
    np.testing.assert_allclose(p.grad(POINTS), np.stack(grad(x, y), axis=-1), rtol=1e-12)
    np.testing.assert_allclose(p.grad(POINTS), central_differences(p.loss, POINTS), rtol=1e-6)


def test_indexed_variables_dimension_and_batches():
    p = from_expression("x1**2 + 2*x3 - x2*x1")
    assert p.dim == 3 and p.variables == ("x1", "x2", "x3")
    x = np.arange(24.0).reshape(2, 4, 3) / 10
    assert p.loss(x).shape == (2, 4) and p.grad(x).shape == (2, 4, 3)
    g = p.grad(x)
    np.testing.assert_allclose(g[..., 0], 2 * x[..., 0] - x[..., 1])
    np.testing.assert_allclose(g[..., 1], -x[..., 0])
    np.testing.assert_array_equal(g[..., 2], 2.0)  # a constant derivative, broadcast
    assert from_expression("x5").dim == 5  # x1..x4 unused but kept in order
    assert from_expression("y**2").variables == ("x", "y")
    assert from_expression("x*y", variables=["y", "x"]).grad([2.0, 3.0]).tolist() == [3.0, 2.0]


def test_start_domain_and_known_minimum_can_be_given():
    p = from_expression("(x-2)**2 + (y+1)**2", x0=[8.0, 0.0], x_star=[2.0, -1.0], f_star=0.0)
    assert p.x0.tolist() == [8.0, 0.0]
    assert p.domain.tolist() == [[-10.0, 10.0], [-10.0, 10.0]]  # widened to hold the start
    assert p.loss(p.x_star) == p.f_star
    q = from_expression("x**2", domain=[[-1.0, 3.0]])
    assert q.domain.tolist() == [[-1.0, 3.0]]
    with pytest.raises(ValueError, match="x0 must be 2"):
        from_expression("x + y", x0=[1.0])


def test_adam_minimises_a_user_function():
    p = from_expression("(x-2)**2 + (y+1)**2 / 4")
    opt = adamlab.Adam(lr=0.1)
    x = p.x0
    state = opt.init(x)
    for _ in range(500):
        x, state = opt.step(x, p.grad(x), state)
    np.testing.assert_allclose(x, [2.0, -1.0], atol=1e-2)


def test_outside_the_domain_of_a_function_gives_nan_not_an_error():
    p = from_expression("log(x)")
    assert math.isnan(float(p.loss(np.array([-1.0]))))


REFUSED = [
    ("__import__('os').system('id')", "attribute access"),
    ("__import__('os')", "the function '__import__'"),
    ("x.real", "attribute access"),
    ("x[0]", "subscripts"),
    ("(lambda: 1)()", "this call"),
    ("lambda x: x", "lambda"),
    ("[x for x in (1, 2)]", "comprehensions"),
    ("open('/etc/passwd')", "the function 'open'"),
    ("eval('1')", "the function 'eval'"),
    ("x ^ 2", r"write powers as \*\*"),
    ("x // 2", "FloorDiv"),
    ("x < 1", "comparisons"),
    ("x if x else 1", "conditional"),
    ("'x'", "strings"),
    ("True * x", "True"),
    ("2j * x", "2j"),
    ("sin(x, x)", "exactly one argument"),
    ("exp(x=1)", "keyword"),
    ("w + x", "the name 'w'"),
    ("os", "the name 'os'"),
    ("sin", "must be called"),
    ("x + x1", "mixing variable styles"),
    ("42", "no variable"),
    ("", "empty"),
    ("x +", "not a valid formula"),
    ("x; import os", "not a valid formula"),
    ("9**9**9**9", "exponent"),
    ("x**100000", "exponent"),
    ("x / 0", "division by zero"),
    ("x + sqrt(-1)", "complex value"),
    ("x * log(-2)", "complex value"),
    ("(-8)**(1/3) * x", "not a finite real"),
    ("1e400 * x", "not a finite float"),
    ("x + " * 130 + "x", "longer than the limit of 500"),
    ("-" * 300 + "x", "nesting deeper"),
]


@pytest.mark.parametrize(("text", "why"), REFUSED, ids=[t[:30] for t, _ in REFUSED])
def test_unsupported_or_malicious_input_is_refused_with_one_line(text, why):
    with pytest.raises(ValueError, match=why) as info:
        from_expression(text)
    message = str(info.value)
    assert message.startswith("refused expression: ") and "\n" not in message


def test_the_parser_never_evaluates_the_text(monkeypatch):
    import builtins

    def forbidden(*args, **kwargs):
        raise AssertionError("eval called")

    from_expression("x")  # import SymPy before eval is taken away
    monkeypatch.setattr(builtins, "eval", forbidden)
    p = from_expression("sin(x) * y + 2**x")  # the whole pipeline runs without eval
    assert p.grad([0.0, 1.0]).tolist() == pytest.approx([1.0 + math.log(2.0), 0.0])
    with pytest.raises(ValueError, match="attribute access"):
        from_expression("__import__('os').system('echo pwned')")


def test_bad_explicit_variables_are_refused():
    with pytest.raises(ValueError, match="not among"):
        from_expression("x + y", variables=["x"])
    with pytest.raises(ValueError, match="Invalid variable name"):
        from_expression("x", variables=["x", "os"])


def test_an_expression_problem_pickles_for_process_pools():
    import pickle

    p = from_expression("x1**2 + sin(x2)", x0=[1.0, 2.0])
    q = pickle.loads(pickle.dumps(p))
    assert q.variables == p.variables and q.x0.tolist() == [1.0, 2.0]
    assert q.description == p.description
    np.testing.assert_array_equal(q.grad(POINTS), p.grad(POINTS))
