"""State that does not belong to its parameter is refused before a step reads it.

A fused kernel reads as many elements of each state tensor as its parameter has: a state
loaded from another model's checkpoint, kept from before ``p.data`` was resized, or quantized
in blocks of another ``block_size`` would be read past its end (a crash, or garbage in the
parameters). ``load_state_dict`` refuses such a state with a ``ValueError`` (as torch.optim
refuses groups of another size), a step with a ``RuntimeError`` (as torch.optim's own step
fails on it); integer parameters with a gradient are refused at the step."""

from __future__ import annotations

import copy
import inspect
import re

import pytest
import torch

import adamlab.torch as at

CLASSES = [at.Adam, at.AdamW, at.AdamBF16, at.Adam8bit, at.SGD]


def _opt(cls, p):
    return cls([p], lr=0.01, momentum=0.9) if cls is at.SGD else cls([p])


def _stepped(cls, n, steps=2):
    p = torch.nn.Parameter(torch.randn(n))
    opt = _opt(cls, p)
    for _ in range(steps):
        p.grad = torch.randn(n)
        opt.step()
    return p, opt


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("n", [5, 40_000])
def test_a_checkpoint_of_other_sizes_is_refused_at_load(cls, n):
    _, opt = _stepped(cls, n)
    sd = copy.deepcopy(opt.state_dict())
    key = "momentum_buffer" if cls is at.SGD else "exp_avg"
    sd["state"][0][key] = torch.zeros(2, dtype=sd["state"][0][key].dtype)
    q = torch.nn.Parameter(torch.zeros(n))
    fresh = _opt(cls, q)
    with pytest.raises(ValueError, match=rf"parameter 0: its state '{key}' has shape \(2,\)"):
        fresh.load_state_dict(sd)
    assert len(fresh.state) == 0  # nothing loaded
    fresh.load_state_dict(opt.state_dict())  # its own checkpoint loads and steps
    q.grad = torch.randn(n)
    fresh.step()


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("n", [5, 40_000])
def test_a_parameter_resized_after_a_step_is_refused_at_the_step(cls, n):
    """Also after steps that kept a plan (the planned step notices the new size and the full
    path refuses the state), and with fused=False."""
    for fused in (None, False):
        p = torch.nn.Parameter(torch.randn(n))
        opt = cls([p], lr=0.01, momentum=0.9, fused=fused) if cls is at.SGD else cls([p])
        if cls is not at.SGD:
            opt.param_groups[0]["fused"] = fused
        for _ in range(3):
            p.grad = torch.randn(n)
            opt.step()
        before = p.detach().clone()
        p.data = torch.randn(4 * n)
        p.grad = torch.randn(4 * n)
        with pytest.raises(RuntimeError, match=r"state does not fit it: its state '\w+' has"):
            opt.step()
        p.data = before  # the state is left as it was: the old size steps again
        p.grad = torch.randn(n)
        opt.step()


@pytest.mark.parametrize("cls", [at.Adam8bit, at.AdamW8bit])
def test_block_size_changed_after_a_step_is_refused(cls):
    p, opt = _stepped(cls, 10_000)
    opt.param_groups[0]["block_size"] = 64
    p.grad = torch.randn(10_000)
    with pytest.raises(RuntimeError, match=r"'exp_avg_absmax' has shape \(40,\).*157 \(blocks"):
        opt.step()


def test_an_8bit_checkpoint_does_not_load_into_float_adam():
    """Its uint8 codes would load as moments of 0 … 255."""
    _, eight = _stepped(at.Adam8bit, 10_000)
    q = torch.nn.Parameter(torch.zeros(10_000))
    with pytest.raises(ValueError, match=r"8-bit moments .*load it into adamlab.torch.Adam8bit"):
        at.Adam([q]).load_state_dict(eight.state_dict())
    at.Adam8bit([q]).load_state_dict(eight.state_dict())  # where it belongs


OPTIMIZERS = [
    getattr(at, name)
    for name in at.__all__
    if isinstance(getattr(at, name), type)
    and issubclass(getattr(at, name), at.CoreOptimizer)
    and getattr(at, name) not in (at.CoreOptimizer, at.LowPrecisionAdam)
]


def test_every_optimizer_is_in_the_integer_test():
    assert {c.__name__ for c in OPTIMIZERS} >= {
        "SGD", "RMSprop", "Adagrad", "Adam", "AdamW", "Adamax", "NAdam", "RAdam",
        "Adam8bit", "AdamW8bit", "AdamBF16", "AdamWBF16",
    }  # fmt: skip


@pytest.mark.parametrize("cls", OPTIMIZERS, ids=lambda c: c.__name__)
def test_integer_parameters_with_a_gradient_are_refused_at_the_step(cls):
    """An integer parameter with a gradient stepped as integers; it is refused (torch.optim
    fails there too). A frozen one, without a gradient, is left alone, as torch.optim leaves
    it, also after steps that kept a plan."""
    kwargs = {"lr": 0.1} if cls is at.SGD else {}
    q = torch.nn.Parameter(torch.randn(300_000))
    frozen = torch.tensor([5, 7])
    opt = cls([q, frozen], **kwargs)
    for _ in range(3):
        q.grad = torch.randn(300_000)
        opt.step()
    assert frozen.tolist() == [5, 7]
    frozen.grad = torch.tensor([1, -1])
    with pytest.raises(TypeError, match=r"shape \(2,\) with a gradient has dtype torch\.int64"):
        opt.step()
    assert frozen.tolist() == [5, 7]


@pytest.mark.parametrize("cls", OPTIMIZERS, ids=lambda c: c.__name__)
def test_the_capturable_error_names_a_torch_optimizer_that_exists(cls):
    kwargs = {"lr": 0.1} if cls is at.SGD else {}
    if "capturable" not in inspect.signature(cls).parameters:
        return
    with pytest.raises(ValueError, match=r"use torch\.optim\.(\w+) for graph capture") as err:
        cls([torch.nn.Parameter(torch.zeros(2))], capturable=True, **kwargs)
    name = re.search(r"use torch\.optim\.(\w+) for", str(err.value))[1]
    assert hasattr(torch.optim, name)
