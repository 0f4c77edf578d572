"""Every optimizer and every flag combination PyTorch also has, equal to torch.optim.

float64, 500 steps on random gradients and random shapes: parameters and state agree to
1e-10 relative (atol 1e-12 on O(1) parameters).
"""

import itertools

import numpy as np
import pytest
import torch

import adamlab

STEPS = 500
# PyTorch's own state names for the same slots
TORCH_KEYS = {
    "Adam": {"m": "exp_avg", "v": "exp_avg_sq", "v_max": "max_exp_avg_sq"},
    "AdamW": {"m": "exp_avg", "v": "exp_avg_sq", "v_max": "max_exp_avg_sq"},
    "SGD": {"b": "momentum_buffer"},
    "RMSprop": {"v": "square_avg", "g_avg": "grad_avg", "b": "momentum_buffer"},
    "Adagrad": {"G": "sum"},
    "Adamax": {"m": "exp_avg", "u": "exp_inf"},
    "NAdam": {"m": "exp_avg", "v": "exp_avg_sq"},
    "RAdam": {"m": "exp_avg", "v": "exp_avg_sq"},
}


def grid(**axes):
    keys = list(axes)
    return [dict(zip(keys, vals, strict=True)) for vals in itertools.product(*axes.values())]


def cases():
    yield from (("Adam", c) for c in grid(
        lr=[1e-2], weight_decay=[0.0, 0.1], amsgrad=[False, True], maximize=[False, True],
        decoupled_weight_decay=[False, True],
    ))  # fmt: skip
    yield from (("AdamW", c) for c in grid(
        lr=[1e-2], weight_decay=[0.0, 0.1], amsgrad=[False, True], maximize=[False, True],
    ))  # fmt: skip
    for c in grid(
        lr=[1e-2], momentum=[0.0, 0.9], dampening=[0.0, 0.5], nesterov=[False, True],
        weight_decay=[0.0, 0.1], maximize=[False, True],
    ):  # fmt: skip
        if not c["nesterov"] or (c["momentum"] > 0 and c["dampening"] == 0):
            yield "SGD", c
    yield from (("RMSprop", c) for c in grid(
        lr=[1e-2], alpha=[0.9], centered=[False, True], momentum=[0.0, 0.5],
        weight_decay=[0.0, 0.1], maximize=[False, True],
    ))  # fmt: skip
    yield from (("Adagrad", c) for c in grid(
        lr=[5e-2], lr_decay=[0.0, 1e-2], initial_accumulator_value=[0.0, 0.1],
        weight_decay=[0.0, 0.1], maximize=[False, True],
    ))  # fmt: skip
    yield from (("Adamax", c) for c in grid(
        lr=[1e-2], weight_decay=[0.0, 0.1], maximize=[False, True]
    ))  # fmt: skip
    yield from (("NAdam", c) for c in grid(
        lr=[1e-2], weight_decay=[0.0, 0.1], momentum_decay=[4e-3, 0.1],
        decoupled_weight_decay=[False, True], maximize=[False, True],
    ))  # fmt: skip
    yield from (("RAdam", c) for c in grid(
        lr=[1e-2], weight_decay=[0.0, 0.1], decoupled_weight_decay=[False, True],
        maximize=[False, True],
    ))  # fmt: skip


CASES = list(cases())


@pytest.fixture(autouse=True)
def float64_scalars():
    # PyTorch keeps scalar state (NAdam's mu_product) in the default dtype: make it float64.
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_equal_to_torch_optim(name, kwargs, rng):
    shapes = [tuple(rng.integers(1, 6, size=rng.integers(0, 3))) for _ in range(3)]
    params = [rng.normal(size=s) for s in shapes]
    theirs = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    torch_opt = getattr(torch.optim, name)(theirs, **kwargs)
    opt = getattr(adamlab, name)(**kwargs)
    state = opt.init(params)

    for i in range(STEPS):
        scale = 10.0 ** rng.uniform(-3, 2)  # gradients over five orders of magnitude
        grads = [scale * rng.normal(size=s) for s in shapes]
        if i % 7 == 3:
            grads[0] = np.zeros(shapes[0])  # a zero gradient now and then
        for p, g in zip(theirs, grads, strict=True):
            p.grad = torch.tensor(g)
        torch_opt.step()
        params, state = opt.step(params, grads, state)

    for ours, p in zip(params, theirs, strict=True):
        np.testing.assert_allclose(ours, p.detach().numpy(), rtol=1e-10, atol=1e-12)
    keys = TORCH_KEYS[name]
    for slot in opt.active_slots():
        for k, p in enumerate(theirs):
            ref = torch_opt.state[p][keys[slot]].numpy()
            np.testing.assert_allclose(getattr(state, slot)[k], ref, rtol=1e-10, atol=1e-12)
    assert int(state.t) == STEPS


def test_the_case_table_covers_every_optimizer():
    """Every flag combination torch.optim also has, counted exactly (the README states the
    total): Adam 2⁴, AdamW 2³, SGD 2⁴ without Nesterov + 2² with it, RMSprop 2⁴, Adagrad 2⁴,
    Adamax 2², NAdam 2⁴, RAdam 2³."""
    assert {name for name, _ in CASES} == {cls.__name__ for cls in adamlab.OPTIMIZERS.values()}
    counts = {name: sum(n == name for n, _ in CASES) for name in TORCH_KEYS}
    assert counts == {"Adam": 16, "AdamW": 8, "SGD": 20, "RMSprop": 16, "Adagrad": 16,
                      "Adamax": 4, "NAdam": 16, "RAdam": 8}  # fmt: skip
    assert len(CASES) == sum(counts.values()) == 104
    assert len({(n, tuple(sorted(k.items()))) for n, k in CASES}) == len(CASES)
