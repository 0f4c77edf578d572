"""Bad input gets a clear error at the right moment, naming the value and the valid range."""

import re

import numpy as np
import pytest

import adamlab
from adamlab.optim.base import NonFiniteGradientError


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda: adamlab.Adam(lr=-0.1), r"Invalid lr: -0\.1.*\[0, inf\)"),
        (lambda: adamlab.Adam(betas=(1.0, 0.999)), r"Invalid beta1 \(betas\[0\]\): 1\.0.*\[0, 1\)"),
        (lambda: adamlab.Adam(betas=(0.9, -0.1)), r"Invalid beta2 \(betas\[1\]\): -0\.1.*\[0, 1\)"),
        (lambda: adamlab.Adam(betas=(0.9,)), r"Invalid betas: \(0\.9,\); expected a pair"),
        (lambda: adamlab.Adam(eps=-1e-8), r"Invalid eps: -1e-08.*\[0, inf\)"),
        (lambda: adamlab.Adam(weight_decay=-1), r"Invalid weight_decay: -1"),
        (lambda: adamlab.Adam(eps_root=-1.0), r"Invalid eps_root: -1\.0"),
        (lambda: adamlab.Adam(eps_placement="inside"), r"Invalid eps_placement: 'inside'; choose"),
        (lambda: adamlab.Adam(amsgrad_variant="max"), r"Invalid amsgrad_variant: 'max'"),
        (lambda: adamlab.Adam(nonfinite="ignore"), r"Invalid nonfinite: 'ignore'"),
        (lambda: adamlab.Adam(lr=float("nan")), r"Invalid lr: nan"),
        (lambda: adamlab.Adam(lr=float("inf")), r"Invalid lr: inf; it must lie in \[0, inf\)"),
        (lambda: adamlab.Adam(eps=float("inf")), r"Invalid eps: inf"),
        (lambda: adamlab.SGD(weight_decay=float("inf")), r"Invalid weight_decay: inf"),
        (
            lambda: adamlab.Adam(lr=np.array([[0.1], [-1.0]])),
            r"Invalid lr: -1\.0 \(in an array of shape \(2, 1\)\)",
        ),
        (lambda: adamlab.SGD(momentum=-0.5), r"Invalid momentum: -0\.5"),
        (lambda: adamlab.SGD(lr=0.1, nesterov=True), r"Invalid nesterov=True with momentum=0\.0"),
        (lambda: adamlab.SGD(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), r"dampening = 0"),
        (lambda: adamlab.SGD(dampening=2.0), r"Invalid dampening: 2\.0.*\[0, 1\]"),
        (lambda: adamlab.RMSprop(alpha=1.5), r"Invalid alpha: 1\.5"),
        (lambda: adamlab.Adagrad(lr_decay=-1.0), r"Invalid lr_decay: -1\.0"),
        (lambda: adamlab.Adagrad(initial_accumulator_value=-1.0), r"initial_accumulator_value"),
        (lambda: adamlab.NAdam(momentum_decay=-1.0), r"Invalid momentum_decay: -1\.0"),
        (lambda: adamlab.Adamax(betas=(0.9, 1.0)), r"Invalid beta2"),
        (lambda: adamlab.RAdam(eps_placement="x"), r"Invalid eps_placement"),
        (
            lambda: adamlab.Adam(
                amsgrad=True, amsgrad_variant="corrected", eps_placement="before_correction"
            ),
            r"amsgrad_variant='corrected'.*after_correction",
        ),
    ],
)
def test_invalid_hyperparameters_fail_at_construction(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda: adamlab.Adam(lr="0.1"), r"lr must be a number, a schedule or an array, got str"),
        (lambda: adamlab.Adam(lr=None), r"lr must be a number"),
        (lambda: adamlab.Adam(amsgrad="yes"), r"amsgrad must be True or False"),
        (
            lambda: adamlab.Adam(bias_correction=(True,)),
            r"bias_correction must be True, False or a pair",
        ),
    ],
)
def test_wrong_types_are_refused_with_a_message(make, pattern):
    with pytest.raises(TypeError, match=pattern):
        make()


def test_schedules_are_checked_when_evaluated():
    opt = adamlab.Adam(lr=lambda t: 0.1 if t < 3 else -0.1)
    x = np.ones(2)
    state = opt.init(x)
    for _ in range(2):
        x, state = opt.step(x, x, state)
    with pytest.raises(ValueError, match=r"Invalid lr: -0\.1 at step t=3"):
        opt.step(x, x, state)


def test_integer_parameters_are_refused():
    with pytest.raises(TypeError, match=r"params has dtype int64, which is integer"):
        adamlab.Adam().init(np.arange(3))
    with pytest.raises(TypeError, match=r"params\['w'\] is the integer 8; .*\(write 8\.0"):
        adamlab.Adam().init({"w": 8})


def test_complex_parameters_are_refused_with_a_hint():
    with pytest.raises(TypeError, match=r"complex.*real and imaginary parts"):
        adamlab.Adam().init(np.ones(2, dtype=complex))


def test_grads_with_another_structure_or_shape_name_the_leaf():
    opt = adamlab.Adam()
    params = {"w": np.ones((2, 3)), "b": np.zeros(3)}
    state = opt.init(params)
    with pytest.raises(
        ValueError, match=r"grads\['w'\] has shape \(3, 2\) but params\['w'\] has shape \(2, 3\)"
    ):
        opt.step(params, {"w": np.ones((3, 2)), "b": np.zeros(3)}, state)
    with pytest.raises(
        ValueError,
        match=r"params is a dict with keys \['w', 'b'\], grads is a dict with keys \['w'\]",
    ):
        opt.step(params, {"w": np.ones((2, 3))}, state)
    with pytest.raises(
        ValueError, match=r"grads\[1\] has shape \(2,\) but params\[1\] has shape \(3,\)"
    ):
        plist = [np.ones(2), np.ones(3)]
        opt.step(plist, [np.ones(2), np.ones(2)], opt.init(plist))


def test_state_of_another_optimizer_is_refused():
    x = np.ones(2)
    with pytest.raises(TypeError, match=r"state is a SGDState; Adam.step needs the AdamState"):
        adamlab.Adam().step(x, x, adamlab.SGD().init(x))


def test_array_hyperparameters_must_broadcast_to_the_parameters():
    opt = adamlab.Adam(lr=np.full((3, 1), 0.1))
    with pytest.raises(
        ValueError,
        match=r"lr has shape \(3, 1\), which does not broadcast to params of shape \(4, 2\)",
    ):
        opt.init(np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"does not broadcast to params of shape \(2,\)"):
        opt.init(np.ones(2))  # (3, 1) against (2,) would grow the parameters to (3, 2)


# --- NaN / Inf gradients: the documented policy -------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("cls", list(adamlab.OPTIMIZERS.values()))
def test_nonfinite_gradients_raise_by_default_and_leave_everything_untouched(cls, bad):
    opt = cls()
    params = {"a": np.ones(3), "b": np.ones(2)}
    state = opt.init(params)
    params, state = opt.step(params, {"a": np.ones(3), "b": np.ones(2)}, state)
    grads = {"a": np.ones(3), "b": np.array([1.0, bad])}
    with pytest.raises(
        NonFiniteGradientError, match=re.escape("grads['b'] holds NaN or Inf at step t=2")
    ):
        opt.step(params, grads, state)
    assert state.t == 1  # the caller's state is still valid: steps can continue
    params2, state2 = opt.step(params, {"a": np.ones(3), "b": np.ones(2)}, state)
    assert state2.t == 2 and np.all(np.isfinite(params2["b"]))


def test_nonfinite_error_is_a_floating_point_error():
    assert issubclass(NonFiniteGradientError, FloatingPointError)


@pytest.mark.parametrize("cls", list(adamlab.OPTIMIZERS.values()))
def test_skip_policy_skips_the_step_entirely(cls):
    opt = cls(nonfinite="skip")
    x = np.ones(3)
    state = opt.init(x)
    x1, state1 = opt.step(x, np.array([1.0, np.nan, 1.0]), state)
    assert x1 is x and state1 is state and state1.t == 0


def test_propagate_policy_lets_nan_through_like_pytorch():
    opt = adamlab.Adam(nonfinite="propagate")
    x = np.ones(2)
    x1, state = opt.step(x, np.array([np.nan, 1.0]), opt.init(x))
    assert np.isnan(x1[0]) and np.isfinite(x1[1]) and np.isnan(state.m[0]) and state.t == 1


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda: adamlab.SGD(dampening=lambda t: 0.1), r"dampening must be a number, got function"),
        (
            lambda: adamlab.Adagrad(lr_decay=np.array([0.1, 0.2])),
            r"lr_decay must be a number, got ndarray",
        ),
        (lambda: adamlab.Adam(eps_root=True), r"eps_root must be a number, got bool"),
    ],
)
def test_plain_float_arguments_refuse_schedules_and_arrays(make, pattern):
    with pytest.raises(TypeError, match=pattern):
        make()


def test_every_optimizer_declares_every_argument_it_validates():
    """Validation is declarative (Optimizer.__post_init__): every constructor argument is
    declared once, as its dataclass field, with what it may be; only Adam's bias_correction
    (a flag or a pair) is checked by hand, in check()."""
    import dataclasses

    kinds = {"hyper", "pair", "number", "flag", "choice", "other"}
    for cls in adamlab.OPTIMIZERS.values():
        fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "_"}
        for name, f in fields.items():
            assert f.metadata.get("kind") in kinds, (cls, name)
        others = {n for n, f in fields.items() if f.metadata["kind"] == "other"}
        assert others <= {"bias_correction"}, cls
        assert "nonfinite" in fields and fields["nonfinite"].metadata["kind"] == "choice"
    # a subclass keeps its parent's declarations (AdamW adds nothing, changes defaults only)
    assert adamlab.AdamW.declarations().keys() == adamlab.Adam.declarations().keys()
    assert adamlab.AdamW.dynamic() == adamlab.Adam.dynamic()
    assert set(adamlab.Adam.dynamic()) == {"lr", "beta1", "beta2", "eps", "weight_decay"}


def test_range_ends_and_their_defaults():
    import math

    from adamlab.optim.base import NONNEG, UNIT, Range

    assert Range().open_ends == (True, True) and str(Range()) == "(-inf, inf)"
    assert NONNEG.open_ends == (False, True) and str(NONNEG) == "[0, inf)"
    assert UNIT.open_ends == (False, True) and str(UNIT) == "[0, 1)"
    assert Range(0.0, math.inf, hi_open=False).open_ends == (False, False)  # inf admitted
    assert Range(0.0, 1.0, lo_open=True).open_ends == (True, False)
    assert list(Range(0.0, 1.0, lo_open=True).holds(np.array([0.0, 0.5, 1.0]))) == [
        False,
        True,
        True,
    ]
