"""Parameter trees and Array-API backends: the same rule on NumPy, PyTorch and array_api_strict."""

import importlib

import numpy as np
import pytest

import adamlab

OPTS = [
    adamlab.SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    adamlab.RMSprop(centered=True, momentum=0.3),
    adamlab.Adagrad(lr=0.1, initial_accumulator_value=0.1),
    adamlab.Adam(lr=0.1, amsgrad=True),
    adamlab.Adam(lr=0.1, bias_correction=(False, True), eps_placement="before_correction"),
    adamlab.AdamW(lr=0.1),
    adamlab.Adamax(lr=0.1),
    adamlab.NAdam(lr=0.1),
    adamlab.RAdam(lr=0.1),
]
IDS = [type(o).__name__ for o in OPTS]


def numpy_run(opt, steps=12):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 2))
    state = opt.init(x)
    out = [x]
    for _ in range(steps):
        x, state = opt.step(x, np.sin(3 * x) + rng.normal(size=x.shape), state)
        out.append(x)
    return out


@pytest.mark.parametrize("backend", ["torch", "array_api_strict"])
@pytest.mark.parametrize("opt", OPTS, ids=IDS)
def test_other_array_libraries_give_the_numpy_results(opt, backend):
    """The same rule on PyTorch CPU tensors and on array_api_strict arrays: same numbers as
    NumPy, and the arrays stay the caller's library (and float64)."""
    xp = importlib.import_module(backend)  # both are in the test extra
    rng = np.random.default_rng(0)
    x = xp.asarray(rng.normal(size=(3, 2)))
    state = opt.init(x)
    ref = numpy_run(opt)
    for k in range(12):
        noise = xp.asarray(rng.normal(size=(3, 2)))
        x, state = opt.step(x, xp.sin(3 * x) + noise, state)
        assert type(x).__module__.split(".")[0] == backend and x.dtype == xp.float64
        np.testing.assert_allclose(np.asarray(x), ref[k + 1], rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("opt", OPTS, ids=IDS)
def test_trees_list_tuple_dict_and_nesting_keep_their_structure(opt):
    rng = np.random.default_rng(1)
    a, b, c = rng.normal(size=3), rng.normal(size=(2, 2)), rng.normal(size=())
    trees = [a, [a, b], (a, b), {"a": a, "inner": {"b": b, "c": [c]}}]
    for tree in trees:
        state = opt.init(tree)
        grads = adamlab.optim.tree_map(lambda p: 2 * p, tree)
        new, state = opt.step(tree, grads, state)
        assert type(new) is type(tree)
        flat_new, td_new, _ = adamlab.optim.tree_flatten(new)
        flat_old, td_old, _ = adamlab.optim.tree_flatten(tree)
        assert td_new == td_old
        # each leaf moved exactly as it does alone
        for p, q in zip(flat_old, flat_new, strict=True):
            alone, _ = opt.step(p, 2 * p, opt.init(p))
            np.testing.assert_array_equal(q, alone)


def test_python_and_numpy_scalars_are_lifted_to_arrays():
    opt = adamlab.Adam(lr=0.1)
    for x0 in (8.0, np.float64(8.0), np.array(8.0)):
        x, _ = opt.step(x0, 12.0, opt.init(x0))
        assert isinstance(x, np.ndarray) and x.shape == () and float(x) == pytest.approx(7.9)


def test_grads_of_another_float_dtype_are_cast_to_the_parameters():
    x = np.ones(2, dtype=np.float32)
    opt = adamlab.Adam(lr=0.1)
    x1, state = opt.step(x, np.ones(2), opt.init(x))
    assert x1.dtype == np.float32 and state.m.dtype == np.float32


@pytest.mark.parametrize("opt", OPTS, ids=IDS)
def test_the_new_state_shares_no_memory_with_the_inputs(opt):
    """Zeroing a gradient buffer in place after a step (as training loops do) must not
    change the optimizer's state."""
    x, g = np.ones(3), np.array([1.0, -2.0, 3.0])
    _, state = opt.step(x, g, opt.init(x))
    before = [np.copy(f) for f in state[1:] if isinstance(f, np.ndarray)]
    g[...] = 0.0
    x[...] = 0.0
    after = [f for f in state[1:] if isinstance(f, np.ndarray)]
    for b, a in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)
