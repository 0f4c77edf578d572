import math

import pytest

from adamlab import schedules as s


def test_values():
    assert [s.constant(0.1)(t) for t in (1, 100)] == [0.1, 0.1]
    assert [s.step_decay(1.0, step_size=2, gamma=0.5)(t) for t in range(1, 6)] == [
        1,
        1,
        0.5,
        0.5,
        0.25,
    ]
    assert s.exponential_decay(2.0, gamma=0.5)(3) == 0.5
    assert [s.linear_warmup(1.0, 4)(t) for t in (1, 2, 4, 9)] == [0.25, 0.5, 1.0, 1.0]
    assert s.inverse_sqrt(0.3)(9) == pytest.approx(0.1)


def test_cosine_with_warmup():
    c = s.cosine(1.0, total_steps=110, warmup_steps=10, final=0.1)
    assert c(5) == 0.5 and c(10) == 1.0
    assert c(60) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi / 2)))
    assert c(110) == pytest.approx(0.1) and c(500) == pytest.approx(0.1)
    assert all(c(t) >= c(t + 1) for t in range(10, 120))


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda: s.constant(-1.0), r"Invalid value: -1\.0"),
        (lambda: s.step_decay(0.1, step_size=0), r"Invalid step_size: 0"),
        (lambda: s.exponential_decay(0.1, gamma=1.5), r"Invalid gamma: 1\.5"),
        (lambda: s.cosine(0.1, total_steps=10, warmup_steps=10), r"Invalid warmup_steps: 10"),
        (lambda: s.linear_warmup(0.1, warmup_steps=2.5), r"Invalid warmup_steps: 2\.5"),
    ],
)
def test_invalid_schedules(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


def test_schedules_print_their_configuration():
    assert (
        repr(s.cosine(0.1, 100)) == "cosine(init=0.1, total_steps=100, warmup_steps=0, final=0.0)"
    )
