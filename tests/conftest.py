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
    test. In the full run nothing skips: tests/test_install.py fails unless every package of
    the test extra is installed and imports. (No file-wide importorskip: a broken install
    must not turn into a green run.)"""

    def load(name: str):
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"{name} is not installed (the test extra has it)")
        return importlib.import_module(name)

    return load
