import subprocess
import sys

import numpy as np

import adamlab


def test_readme_example_runs_and_converges_towards_two():
    opt = adamlab.Adam(lr=0.1)
    x = np.array(8.0)
    state = opt.init(x)
    for _ in range(50):
        x, state = opt.step(x, 2 * (x - 2), state)
    assert state.t == 50
    assert isinstance(x, np.ndarray) and x.shape == ()
    assert abs(float(x) - 2) < abs(8.0 - 2) - 4  # moved most of the way from 8 towards 2


def test_version_flag():
    out = subprocess.run(
        [sys.executable, "-m", "adamlab.cli", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0
    assert adamlab.__version__ in out.stdout


def test_the_lab_loads_lazily_and_is_reachable_from_the_top():
    code = (
        "import sys, adamlab; assert 'adamlab.lab' not in sys.modules; "
        "assert callable(adamlab.compare); assert callable(adamlab.sweep); "
        "assert callable(adamlab.tune) and callable(adamlab.grid); "
        "assert 'seed' in adamlab.reproduce.REPRODUCTIONS; "
        "assert 'quadratic' in adamlab.problems.PROBLEMS"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
