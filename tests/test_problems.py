"""The analytic problems, the registry and the noise wrappers."""

import math

import numpy as np
import pytest
from oracles import central_differences

import adamlab
from adamlab.problems import (
    FACTORIES,
    PROBLEMS,
    Ackley,
    Himmelblau,
    IllConditioned,
    Noisy,
    Problem,
    Quadratic1D,
    Rastrigin,
    Rosenbrock,
    Sphere,
    StyblinskiTang,
    get_problem,
    parameters,
    with_noise,
)

ML_NAMES = {"logreg-cancer", "softmax-digits", "mlp-digits"}
CHEAP = [name for name in FACTORIES if name not in ML_NAMES]
EXTRA = [
    Sphere(dim=5),
    IllConditioned(10.0, theta=0.3, dim=4),
    IllConditioned(1000.0, theta=math.pi / 4),
    Rosenbrock(dim=5),
    Rosenbrock(a=2.0, b=10.0),
    Rastrigin(dim=3),
    Ackley(dim=4),
    StyblinskiTang(dim=3),
]


def all_cheap_problems() -> list[Problem]:
    return [PROBLEMS[name] for name in CHEAP] + EXTRA


def ids(problems):
    return [f"{p.name}-{p.dim}d" for p in problems]


def random_points(problem: Problem, shape, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lo, hi = problem.domain[:, 0], problem.domain[:, 1]
    return lo + (hi - lo) * rng.random((*shape, problem.dim))


@pytest.mark.parametrize("problem", all_cheap_problems(), ids=ids(all_cheap_problems()))
def test_gradient_matches_central_differences_on_a_batch(problem):
    x = random_points(problem, (4, 3))
    g = problem.grad(x)
    fd = central_differences(problem.loss, x)
    scale = 1 + np.abs(fd)
    np.testing.assert_array_less(np.abs(g - fd) / scale, 1e-5)


@pytest.mark.parametrize("problem", all_cheap_problems(), ids=ids(all_cheap_problems()))
def test_shapes_for_single_and_batched_points(problem):
    x1 = problem.x0
    assert np.shape(problem.loss(x1)) == ()
    assert problem.grad(x1).shape == (problem.dim,)
    xb = random_points(problem, (2, 5))
    assert problem.loss(xb).shape == (2, 5)
    assert problem.grad(xb).shape == (2, 5, problem.dim)
    assert problem.project(xb).shape == xb.shape
    # a batch is the same as its rows one by one
    np.testing.assert_allclose(problem.loss(xb)[1, 3], problem.loss(xb[1, 3]), rtol=1e-13)
    np.testing.assert_allclose(problem.grad(xb)[1, 3], problem.grad(xb[1, 3]), rtol=1e-13)
    loss, grad = problem.oracle(0)(xb, 1)
    assert np.shape(loss) == (2, 5) and grad.shape == (2, 5, problem.dim)


@pytest.mark.parametrize("problem", all_cheap_problems(), ids=ids(all_cheap_problems()))
def test_contract_fields(problem):
    assert problem.name and problem.description and "\n" not in problem.description
    assert problem.x0.shape == (problem.dim,) and problem.x0.dtype == np.float64
    assert problem.domain.shape == (problem.dim, 2)
    lo, hi = problem.domain[:, 0], problem.domain[:, 1]
    assert np.all(lo <= problem.x0) and np.all(problem.x0 <= hi), "start outside the plot box"
    if problem.x_star is not None:
        assert np.all(lo <= problem.x_star) and np.all(problem.x_star <= hi)
    summary = problem.summary()
    assert summary["name"] == problem.name and summary["dim"] == problem.dim


@pytest.mark.parametrize("problem", all_cheap_problems(), ids=ids(all_cheap_problems()))
def test_loss_at_x_star_is_f_star_and_x_star_is_a_local_minimum(problem):
    if problem.x_star is None:
        pytest.skip("no known minimiser")
    f_star = problem.loss(problem.x_star)
    assert f_star == pytest.approx(problem.f_star, abs=1e-12)
    rng = np.random.default_rng(1)
    around = problem.project(problem.x_star + 1e-3 * rng.standard_normal((50, problem.dim)))
    assert np.all(problem.loss(around) >= problem.f_star - 1e-12)
    if not problem.stochastic or isinstance(problem, Noisy):  # online problems: x* on the edge
        np.testing.assert_allclose(problem.grad(problem.x_star), 0.0, atol=1e-9)


def test_seed_problem_is_unchanged():
    p = PROBLEMS["quadratic"]
    assert isinstance(p, Quadratic1D) and p.dim == 1
    assert p.x0.tolist() == [8.0] and p.domain.tolist() == [[-2.0, 8.0]]
    assert p.loss(np.array([8.0])) == 36.0 and p.grad(np.array([8.0])).tolist() == [12.0]
    assert p.x_star.tolist() == [2.0] and p.f_star == 0.0 and not p.stochastic


def test_the_seed_quadratic_can_move_its_centre_consistently():
    p = get_problem("quadratic", center=5.0)
    assert p.x_star.tolist() == [5.0] and p.loss(p.x_star) == 0.0 and p.x0.tolist() == [11.0]
    assert p.domain.tolist() == [[1.0, 11.0]] and "(x - 5)^2" in p.description
    assert parameters("quadratic") == ["center", "x0", "domain"]
    assert get_problem("quadratic", x0=[3.0]).x0.tolist() == [3.0]
    assert get_problem("quadratic", x0=[20.0]).domain.tolist() == [[-2.0, 21.0]]


def test_himmelblau_has_four_minima_with_zero_loss():
    p = Himmelblau()
    np.testing.assert_allclose(p.loss(p.minima), 0.0, atol=1e-20)
    np.testing.assert_allclose(p.grad(p.minima), 0.0, atol=1e-11)


def test_ackley_gradient_is_finite_and_zero_at_the_optimum():
    p = Ackley(dim=3)
    assert np.all(p.grad(np.zeros(3)) == 0.0)
    tiny = np.array([1e-300, 0.0, -1e-300])
    assert np.all(np.isfinite(p.grad(tiny)))
    # off the origin the cone's gradient has norm a·b·exp(−b r)/√n ≈ 4/√3 close to 0
    g = p.grad(np.array([1e-9, 0.0, 0.0]))
    assert np.linalg.norm(g) == pytest.approx(20 * 0.2 / math.sqrt(3), rel=1e-6)


def test_ill_conditioned_has_the_requested_spectrum_and_rotation():
    axis = IllConditioned(100.0)
    rotated = IllConditioned(100.0, theta=math.pi / 4)
    for p in (axis, rotated):
        np.testing.assert_allclose(np.linalg.eigvalsh(p.hessian), [1.0, 100.0])
    np.testing.assert_allclose(axis.hessian, np.diag([1.0, 100.0]))
    assert abs(rotated.hessian[0, 1]) == pytest.approx(49.5)
    np.testing.assert_allclose(
        np.linalg.eigvalsh(IllConditioned(1e4, dim=5, theta=0.7).hessian),
        np.logspace(0, 4, 5),
        rtol=1e-10,
    )
    with pytest.raises(ValueError, match="kappa"):
        IllConditioned(0.5)


def test_adams_diagonal_scaling_helps_when_axis_aligned_not_when_rotated():
    def final_loss(problem):
        opt = adamlab.Adam(lr=0.1)
        x = problem.x0
        state = opt.init(x)
        for _ in range(200):
            x, state = opt.step(x, problem.grad(x), state)
        return float(problem.loss(x))

    assert final_loss(get_problem("ill-conditioned")) < 1e-6
    assert final_loss(get_problem("ill-conditioned-rotated")) > 0.1


def test_adam_solves_rosenbrock_from_the_classic_start():
    p = PROBLEMS["rosenbrock"]
    assert p.x0.tolist() == [-1.2, 1.0]
    opt = adamlab.Adam(lr=0.02)
    x = p.x0
    state = opt.init(x)
    for _ in range(3000):
        x, state = opt.step(x, p.grad(x), state)
    assert np.linalg.norm(x - p.x_star) < 0.05


def test_registry_and_factory():
    assert set(PROBLEMS) == set(FACTORIES)
    assert PROBLEMS["sphere"] is PROBLEMS["sphere"]  # cached default instance
    for name in CHEAP:
        assert PROBLEMS[name].name == name
    p = get_problem("ill-conditioned", kappa=1000.0, theta=0.3, dim=3)
    assert p.dim == 3 and np.linalg.cond(p.hessian) == pytest.approx(1000.0)
    assert get_problem("sphere", dim=7).x0.shape == (7,)
    assert get_problem("sphere", x0=[1.0, 1.0]).x0.tolist() == [1.0, 1.0]
    assert "kappa" in parameters("ill-conditioned")
    with pytest.raises(ValueError, match=r"unknown problem 'foo'; choose one of quadratic, "):
        get_problem("foo")
    with pytest.raises(ValueError, match=r"takes no parameter 'kapa'.*kappa"):
        get_problem("ill-conditioned", kapa=3)
    with pytest.raises(ValueError, match="x0 must be 2"):
        get_problem("beale", x0=[1.0, 2.0, 3.0])


# --------------------------------------------------------------------------------------------
# Noise
# --------------------------------------------------------------------------------------------

NOISY = [
    with_noise(Rosenbrock(), "gaussian", 0.5),
    with_noise(Rosenbrock(), "linear", 0.5),
    with_noise(Rosenbrock(), "student-t", 0.5, df=1.0),
    PROBLEMS["noisy-quadratic"],
    PROBLEMS["linear-noisy-beale"],
    PROBLEMS["heavy-tailed-quadratic"],
]


def noise_along(problem, seed, path):
    """The gradient noise an optimizer visiting the points ``path`` (one per step) is given."""
    oracle = problem.oracle(seed)
    return np.array([oracle(x, t)[1] - problem.grad(x) for t, x in enumerate(path, start=1)])


@pytest.mark.parametrize("problem", NOISY, ids=[p.name for p in NOISY])
def test_noise_is_paired_by_seed_and_independent_of_the_iterate(problem):
    path_a = random_points(problem, (20,), seed=1)  # two optimizers, two different paths
    path_b = random_points(problem, (20,), seed=2)
    noise_a = noise_along(problem, 7, path_a)
    np.testing.assert_allclose(noise_along(problem, 7, path_b), noise_a, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(noise_along(problem, 7, path_a), noise_a)  # repeatable
    assert not np.allclose(noise_along(problem, 8, path_a), noise_a)  # another seed differs
    assert np.std(noise_a) > 0.05 and np.all(np.std(noise_a, axis=0) > 0)  # fresh every step


@pytest.mark.parametrize("problem", NOISY, ids=[p.name for p in NOISY])
def test_noisy_problem_reports_the_exact_objective(problem):
    x = random_points(problem, (6,))
    np.testing.assert_array_equal(problem.loss(x), problem.base.loss(x))
    np.testing.assert_array_equal(problem.grad(x), problem.base.grad(x))
    assert problem.stochastic and problem.f_star == problem.base.f_star
    loss, _ = problem.oracle(3)(x, 5)
    if problem.kind == "linear":
        assert not np.allclose(loss, problem.loss(x))  # trains on the noisy objective
    else:
        np.testing.assert_array_equal(loss, problem.loss(x))


def test_batched_rows_get_the_noise_of_a_single_run():
    p = with_noise(Sphere(dim=3), "gaussian", 1.0)
    x = random_points(p, (4,))
    _, g_batch = p.oracle(11)(x, 3)
    for k in range(4):
        _, g_row = p.oracle(11)(x[k], 3)
        np.testing.assert_array_equal(g_batch[k], g_row)


def test_linear_noise_oracle_loss_and_gradient_are_consistent():
    p = with_noise(Rosenbrock(), "linear", 2.0)
    oracle = p.oracle(5)
    x = random_points(p, (3,))
    _, g = oracle(x, 9)
    fd = central_differences(lambda z: oracle(z, 9)[0], x)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-6)


def test_noise_has_the_requested_scale_and_tails():
    T = 4000
    gauss = with_noise(Sphere(dim=1), "gaussian", 0.3)
    cauchy = with_noise(Sphere(dim=1), "student-t", 0.3, df=1.0)
    z_g = np.array([gauss.oracle(0)(np.zeros(1), t)[1][0] for t in range(1, T + 1)])
    z_c = np.array([cauchy.oracle(0)(np.zeros(1), t)[1][0] for t in range(1, T + 1)])
    assert abs(np.mean(z_g)) < 0.03 and np.std(z_g) == pytest.approx(0.3, rel=0.05)
    assert np.max(np.abs(z_g)) < 0.3 * 5
    # Cauchy: the median |z| is σ (quartiles at ±σ), but the extremes are far out
    assert np.median(np.abs(z_c)) == pytest.approx(0.3, rel=0.1)
    assert np.max(np.abs(z_c)) > 0.3 * 100


def test_noise_arguments_are_checked():
    with pytest.raises(ValueError, match="unknown noise kind 'pink'"):
        with_noise(Sphere(), "pink")
    with pytest.raises(ValueError, match="sigma"):
        with_noise(Sphere(), "gaussian", -1.0)
    with pytest.raises(ValueError, match="seed"):
        with_noise(Sphere(), "gaussian").oracle(-3)
    p = get_problem("rosenbrock", noise="student-t", sigma=0.2, df=3.0)
    assert isinstance(p, Noisy) and p.sigma == 0.2 and p.df == 3.0
    assert p.name == "heavy-tailed-rosenbrock"
    with pytest.raises(ValueError, match="unknown noise"):
        get_problem("rosenbrock", noise="pink")
    # seed=None: a fresh, unrepeatable stream
    a = with_noise(Sphere(), "gaussian").oracle(None)(np.zeros(2), 1)[1]
    b = with_noise(Sphere(), "gaussian").oracle(None)(np.zeros(2), 1)[1]
    assert not np.array_equal(a, b)


@pytest.mark.parametrize(
    "problem", all_cheap_problems() + NOISY, ids=ids(all_cheap_problems() + NOISY)
)
def test_problems_pickle_for_process_pools(problem):
    import pickle

    q = pickle.loads(pickle.dumps(problem))
    x = random_points(problem, (3,))
    np.testing.assert_array_equal(q.loss(x), problem.loss(x))
    np.testing.assert_array_equal(q.oracle(4)(x, 2)[1], problem.oracle(4)(x, 2)[1])


def test_the_cold_path_loads_only_what_it_uses():
    import subprocess
    import sys

    code = (
        "import sys; from adamlab.problems import get_problem; p = get_problem('quadratic'); "
        "p.loss(p.x0); print(sorted(m for m in sys.modules if m.startswith(("
        "'adamlab.problems.', 'sympy', 'sklearn', 'scipy'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # adamlab's own light modules load at the top of files (noise: the registry's noisy
    # variants); what stays out is the heavy third-party code
    assert out.stdout.strip() == (
        "['adamlab.problems.base', 'adamlab.problems.noise', 'adamlab.problems.registry']"
    )


def test_lazy_names_resolve_and_unknown_ones_raise():
    import adamlab.problems as problems

    assert problems.Rosenbrock is Rosenbrock and "from_expression" in dir(problems)
    for name in problems.__all__:
        assert getattr(problems, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        problems.nope  # noqa: B018


def test_rotation_is_orthogonal_and_is_the_plane_rotation_in_2d():
    from adamlab.problems.analytic import rotation

    c, s = math.cos(0.3), math.sin(0.3)
    np.testing.assert_allclose(rotation(2, 0.3), [[c, -s], [s, c]])
    Q = rotation(50, 0.7)
    np.testing.assert_allclose(Q @ Q.T, np.eye(50), atol=1e-12)
    np.testing.assert_array_equal(rotation(4, 0.0), np.eye(4))


def test_the_seed_quadratic_minimiser_follows_its_centre():
    from adamlab.problems import Quadratic1D

    q = Quadratic1D(center=-1.5)
    assert q.x_star.tolist() == [-1.5] and q.loss(q.x_star[None])[0] == 0.0
    assert Quadratic1D().x_star.tolist() == [2.0]


@pytest.mark.parametrize(
    ("name", "param"),
    [("rastrigin", "A"), ("ackley", "a"), ("ackley", "b"), ("ackley", "c"), ("rosenbrock", "a"),
     ("rosenbrock", "b"), ("two-well", "tilt"), ("beale", "f_star"), ("quadratic", "center")],
)  # fmt: skip
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_a_parameter_that_is_not_finite_is_refused(name, param, value):
    """From a bug bash: `rastrigin:A=inf`, `ackley:c=-inf` and the like ran and diverged at
    step 1, where `quadratic:center=inf` was refused; every scalar parameter is now checked."""
    with pytest.raises(ValueError, match=rf"Invalid {param}: .*; it must be finite"):
        get_problem(name, **{param: value})
    get_problem(name, **{param: 1.5})  # a finite value is taken
