"""The test extra is installed, whole: so no test elsewhere can skip for a missing package.

Other files import the test extra's packages plainly (no file-wide ``importorskip``); the one
exception, ``optional_module`` in conftest.py, skips only where a package is not installed at
all (the exactness matrix's venv without the extras runs a few ``exact`` files). This file,
which that venv does not run, makes the full run fail instead: every requirement of
``[project.optional-dependencies] test`` in pyproject.toml must be installed at an admitted
version and import (a broken install — a missing shared library, a half-upgraded package — is
an error here, not a skip anywhere).
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
EXTRA = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
    "optional-dependencies"
]["test"]
REQUIREMENTS = [Requirement(r) for r in EXTRA]

#: distributions whose import name is not their name (or that are programs, not modules)
MODULES = {"scikit-learn": ["sklearn"], "pytest-xdist": ["xdist"]}


def modules_of(dist: str) -> list[str]:
    if dist in MODULES:
        return MODULES[dist]
    tops = [m for m, dists in md.packages_distributions().items() if dist in dists]
    return sorted(m for m in tops if not m.startswith("_")) or [dist.replace("-", "_")]


@pytest.mark.parametrize("req", REQUIREMENTS, ids=str)
def test_every_package_of_the_test_extra_is_installed_and_imports(req):
    if req.marker is not None and not req.marker.evaluate():
        return  # not for this platform or Python
    try:
        version = md.version(req.name)
    except md.PackageNotFoundError:
        pytest.fail(f"{req.name} is missing: python -m pip install -e '.[test]'")
    assert req.specifier.contains(version, prereleases=True), f"{req.name} {version} ∉ {req}"
    if req.name == "ruff":  # a program: it must run from this interpreter
        out = subprocess.run([sys.executable, "-m", "ruff", "--version"], capture_output=True)
        assert out.returncode == 0, out.stderr
        return
    for module in modules_of(req.name):
        importlib.import_module(module)


def test_the_list_above_is_the_extra():
    assert {r.name for r in REQUIREMENTS} >= {"pytest", "torch", "numba", "pyarrow", "ruff"}
