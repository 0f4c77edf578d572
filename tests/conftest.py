import importlib
import importlib.util
import os

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def rng():
    return np.random.default_rng(20150101)


@pytest.fixture
def optional_module():
    """``optional_module("torch")``: import an optional package inside one test. The test is
    skipped only where the package is not installed at all (the exactness matrix's venv
    without the extras, .ci/exactness); an installed package that fails to import fails the
    test. In the full run nothing of the test extra skips: tests/test_install.py fails unless
    every package of it is installed and imports. ``where`` names how to get a package the
    extra leaves out (bitsandbytes). (No file-wide importorskip: a broken install must not
    turn into a green run.)"""

    def load(name: str, where: str = "the test extra has it"):
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"{name} is not installed ({where})")
        return importlib.import_module(name)

    return load
