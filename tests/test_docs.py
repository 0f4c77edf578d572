"""Docstrings are specifications: each rule states its update as math, with references,
and the runnable examples in them run."""

import doctest
import importlib
import pathlib
import subprocess
import sys

import pytest

import adamlab

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("cls", list(adamlab.OPTIMIZERS.values()), ids=lambda c: c.__name__)
def test_every_optimizer_states_its_update_rule_and_references(cls):
    doc = cls.__doc__
    assert ("θₜ" in doc and "t ≥ 1" in doc) or cls is adamlab.AdamW, cls
    module_doc = sys.modules[cls.__module__].__doc__
    assert "Reference" in module_doc or "Kingma & Ba" in module_doc


@pytest.mark.parametrize("module", ["adamlab.optim.adam", "adamlab.optim.sgd"])
def test_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_readme_core_example_runs():
    text = (ROOT / "README.md").read_text()
    block = (
        text.split("## The core: update rules written once", 1)[1]
        .split("```python", 1)[1]
        .split("```", 1)[0]
    )
    namespace: dict = {}
    exec(compile(block, "README", "exec"), namespace)
    assert namespace["state"].t == 50


def test_ruff_is_clean():
    """ruff is part of the test extra: run as a module of this interpreter (no PATH needed),
    and missing, it fails this test rather than skipping it."""
    out = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "src", "tests", "benchmarks"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
