"""The README is the contract: every ``$ adamlab …`` in its console blocks is run here, and what
it prints must be what the README shows.

Allowed differences, and only these: a line ``...`` in the README stands for any number of lines,
and a duration (``2.25 s``) may differ. Everything else (every number in every table) must be
equal, which is also how the README's numbers are proven the same on other CPUs: ``.ci/run``
runs this file again under NumPy's CPU-feature switches and the oldest NumPy admitted.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from adamlab.cli import main
from adamlab.kernels import sweep as kernel_sweep
from adamlab.lab.sweep import NO_NUMBA, NO_PYARROW

pytestmark = pytest.mark.exact

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
DURATION = re.compile(r"\b\d+(?:\.\d+)? s\b")
#: the plain progress line a run longer than a few seconds prints on a piped stderr
#: (lab.runner._Progress): how often it appears depends on the machine's speed, so the
#: README leaves it out and the comparison does too
PROGRESS = re.compile(r"^adamlab: step [\d,]+ of [\d,]+ \(\d+%\), \d+ s so far, about \d+ s left$")


def console_examples() -> list[tuple[str, list[str]]]:
    """(command, expected output lines) for every ``$ adamlab`` in a ```console block."""
    examples = []
    for block in re.findall(r"^```console\n(.*?)^```", README, re.M | re.S):
        block = block.replace("\\\n", " ")
        command, lines = None, []
        for line in block.splitlines():
            if line.startswith("$ "):
                if command:
                    examples.append((command, lines))
                command, lines = line[2:], []
            else:
                lines.append(line.rstrip())
        if command:
            examples.append((command, lines))
    return [(c, out) for c, out in examples if c.startswith("adamlab ")]


EXAMPLES = console_examples()


def without_extras(expected: list[str]) -> list[str]:
    """What the README says a sweep prints without numba or pyarrow (same numbers)."""
    out = []
    for line in expected:
        if "(rosenbrock: numba)" in line and not kernel_sweep.available():
            out += [line.replace("(rosenbrock: numba)", "(rosenbrock: vectorized)"),
                    f"rosenbrock: {NO_NUMBA}"]  # fmt: skip
            continue
        if line.startswith("wrote ") and line.endswith("sweep.parquet"):
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                line = line.replace("sweep.parquet", f"sweep.csv ({NO_PYARROW})")
        out.append(line)
    return out


def matches(expected: list[str], got: list[str]) -> bool:
    """Line by line, ``...`` matching any run of lines (shortest first)."""
    if not expected:
        return not got
    head, rest = expected[0], expected[1:]
    if head == "...":
        return any(matches(rest, got[i:]) for i in range(len(got) + 1))
    if not got:
        return False
    return DURATION.sub("# s", head) == DURATION.sub("# s", got[0]) and matches(rest, got[1:])


def test_the_readme_has_its_examples():
    commands = [c for c, _ in EXAMPLES]
    assert "adamlab compare" in commands
    assert any(c.startswith("adamlab sweep") for c in commands)
    assert any(c.startswith("adamlab reproduce bias-correction") for c in commands)


@pytest.mark.parametrize(("command", "expected"), EXAMPLES, ids=[c for c, _ in EXAMPLES])
def test_each_console_example_prints_what_the_readme_shows(
    command, expected, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    argv = shlex.split(command, comments=True)[1:]
    if argv[:1] == ["plot"]:  # the plot examples redraw the run the example before saved
        assert main(["compare", "--json", "run.json", "--out", "run.png"]) == 0
        capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    got = [line.rstrip() for line in (captured.out + captured.err).splitlines()]
    got = [line for line in got if not PROGRESS.match(line)]
    while got and not got[-1]:
        got.pop()
    while expected and not expected[-1]:
        expected = expected[:-1]
    assert code == (2 if any("adamlab: error:" in line for line in expected) else 0)
    expected = without_extras(expected)
    assert matches(expected, got), "\n".join(["README:", *expected, "", "printed:", *got])
