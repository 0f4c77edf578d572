"""The ``adamlab`` command: the seed demo's output, listings, re-plotting, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from adamlab import OPTIMIZERS, __version__
from adamlab.cli import main
from adamlab.lab import Result

SEED_TABLE = """\
optimizer                         final x   final loss  steps to |x - 2| < 0.001
--------------------------------  --------  ----------  ------------------------
SGD(lr=0.1)                       2.000086  7.333e-09   39
Adam(lr=0.1, betas=(0.9, 0.999))  3.703843  2.903083    never"""


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_default_compare_is_the_seed_demo(in_tmp, capsys):
    code, out, err = run(capsys, "compare")
    assert code == 0 and err == ""
    assert out.startswith(SEED_TABLE + "\n")
    assert "wrote adamlab-compare.png" in out
    png = in_tmp / "adamlab-compare.png"
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in in_tmp.iterdir()) == ["adamlab-compare.png"]


def test_default_compare_in_a_fresh_process(in_tmp):
    proc = subprocess.run(
        [sys.executable, "-m", "adamlab", "compare", "--out", "seed.svg"],
        capture_output=True,
        text=True,
        cwd=in_tmp,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(SEED_TABLE) and proc.stderr == ""
    assert (in_tmp / "seed.svg").read_text().lstrip().startswith("<?xml")


def test_cold_path_imports_no_heavy_optional_packages(in_tmp):
    code = (
        "import sys; from adamlab.cli import main; main(['compare', '--out', 'x.png']); "
        "print(sorted(m for m in ('pandas', 'sympy', 'torch', 'sklearn', 'scipy', "
        "'matplotlib.pyplot', 'tqdm', 'jax') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=in_tmp)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_compare_with_options_json_and_replot(in_tmp, capsys):
    code, out, err = run(
        capsys, "compare", "--opt", "adam:lr=0.5,betas=0.8/0.99", "--opt", "sgd:lr=0.2,momentum=0.5",
        "--steps", "30", "--start", "-3", "--json", "r.json", "--out", "r.pdf", "--diagnostics",
    )  # fmt: skip
    assert code == 0, err
    assert "Adam(lr=0.5, betas=(0.8, 0.99))" in out and "SGD(lr=0.2, momentum=0.5)" in out
    assert "bias1" in out and "m_hat" in out  # --diagnostics prints them
    data = json.loads((in_tmp / "r.json").read_text())
    assert data["start"] == [-3.0] and data["steps"] == 30 and len(data["trajectories"]) == 2
    assert data["meta"]["command"][:2] == ["adamlab", "compare"]
    assert (in_tmp / "r.pdf").read_bytes()[:4] == b"%PDF"

    code, out2, err = run(capsys, "plot", "r.json", "--out", "again.png")
    assert code == 0, err
    assert out2.splitlines()[:4] == out.splitlines()[:4]  # the same table, without re-running
    assert (in_tmp / "again.png").read_bytes()[:4] == b"\x89PNG"
    code, _, _ = run(capsys, "plot", "r.json")
    assert code == 0 and (in_tmp / "r.png").exists()


def test_negative_multi_coordinate_start_and_repeats(in_tmp, capsys):
    code, out, err = run(
        capsys, "compare", "--problem", "rosenbrock:noise=gaussian,sigma=0.1", "--start",
        "-1.5,-2", "--repeats", "3", "--steps", "5", "--no-figure", "--json", "r.json",
    )  # fmt: skip
    assert code == 0, err
    assert "3 seeds" in out and [p.name for p in in_tmp.iterdir()] == ["r.json"]
    back = Result.load(in_tmp / "r.json")
    assert back.start.tolist() == [-1.5, -2.0] and back.seeds == [0, 1, 2]
    assert all(t.x[0].tolist() == [-1.5, -2.0] for t in back.trajectories)


@pytest.mark.parametrize(
    "argv",
    [["--start", "-1.2,1"], ["--start=-1.2,1"], ["--start", "-1.2,1", "--steps", "3"],
     ["--steps", "3", "--start", "-1.2,1"], ["--start", "-.5,-1e-1"]],
)  # fmt: skip
def test_a_negative_first_coordinate_is_one_value_either_way(in_tmp, capsys, argv):
    """README: "A negative first coordinate works either way: --start -1.2,1 or
    --start=-1.2,1" — the value is not read as an option, and nothing after it is lost."""
    code, _, err = run(capsys, "compare", "--problem", "rosenbrock", *argv, "--no-figure",
                       "--json", "r.json")  # fmt: skip
    assert code == 0, err
    back = Result.load(in_tmp / "r.json")
    text = next(a for a in argv if "," in a).removeprefix("--start=")
    assert back.start.tolist() == [float(v) for v in text.split(",")]
    assert back.steps == (3 if "3" in argv else 50)


def test_steps_to_tolerance_falls_back_to_the_gradient_norm_and_takes_tol(in_tmp, capsys):
    """README: the "steps to" column counts ‖x − x*‖ < TOL where x* is known, else f − f* < TOL
    where f* is, else ‖∇f‖ < TOL. A function of your own has neither: the gradient norm, from
    the step it stayed below TOL, here recomputed by hand from the iterates (f′ = 4x³ − 3)."""
    argv = ["compare", "--function", "x**4 - 3*x", "--start", "2", "--opt", "sgd:lr=0.05",
            "--steps", "60", "--no-figure", "--json", "r.json"]  # fmt: skip
    found = {}
    for tol in (0.01, 1e-9):
        code, out, err = run(capsys, *argv, "--tol", str(tol))
        assert code == 0, err
        head, _, row = out.splitlines()[:3]
        assert head.split("  ")[-1].strip() == f"steps to |grad f| < {tol:g}"
        x = Result.load(in_tmp / "r.json").trajectories[0].x[:, 0]
        inside = [abs(4 * v**3 - 3) < tol for v in x]
        want = next(t for t in range(len(x)) if all(inside[t:]))
        assert row.split()[-1] == str(want)
        # and the --json file's metrics count to the same tolerance as the printed table
        doc = json.loads((in_tmp / "r.json").read_text())
        assert doc["meta"]["tol"] == tol and doc["metrics"][0]["steps_to_tol"] == want
        found[tol] = want
    assert found == {0.01: 11, 1e-9: 35}  # the tolerance is really used


def test_the_criterion_follows_what_the_problem_knows(in_tmp, capsys):
    """x* known: the distance (SGD's |x − 2| = 6·0.8ᵗ is below 0.5 from t = 12 on); f* known
    without x*: the loss gap ((x − 2)² = 36·0.64ᵗ < 0.5 from t = 10)."""
    from adamlab.lab import compare
    from adamlab.problems import from_expression

    _, out, _ = run(capsys, "compare", "--steps", "60", "--no-figure", "--tol", "0.5")
    assert out.splitlines()[0].endswith("steps to |x - 2| < 0.5")
    assert out.splitlines()[2].split()[-1] == "12"
    r = compare(from_expression("(x - 2)**2", x0=[8.0], f_star=0.0), ["sgd:lr=0.1"], steps=60)
    table = r.table(tol=0.5).splitlines()
    assert table[0].endswith("steps to f - 0 < 0.5") and table[2].split()[-1] == "10"
    assert r.metrics(tol=0.5, on="grad")[0].steps_to_tol == 15  # |f′| = 2|x − 2| = 12·0.8ᵗ


@pytest.mark.parametrize("ext", [".gif", ".html"])
def test_animated_outputs(in_tmp, capsys, ext):
    code, _, err = run(capsys, "compare", "--steps", "8", "--out", f"a{ext}")
    assert code == 0, err
    head = (in_tmp / f"a{ext}").read_bytes()[:15]
    assert head.startswith(b"GIF89a" if ext == ".gif" else b"<!DOCTYPE html>")


def test_problems_and_optimizers_lists(capsys):
    code, out, _ = run(capsys, "problems")
    assert code == 0
    line = next(ln for ln in out.splitlines() if ln.startswith("quadratic"))
    assert "dim 1" in line and "start 8" in line and "(x - 2)^2" in line
    columns = {ln.index(" start ") for ln in out.splitlines()}
    assert len(columns) == 1, "the start column moves"  # mlp-digits' dim has four digits
    code, out, _ = run(capsys, "optimizers")
    lines = out.splitlines()
    assert code == 0 and [ln.split()[0] for ln in lines] == list(OPTIMIZERS)
    adam = next(ln for ln in lines if ln.startswith("adam "))
    assert "lr=0.001" in adam and "betas=0.9/0.999" in adam and "eps=1e-08" in adam


def test_version_and_bare_command(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and __version__ in out
    code, out, _ = run(capsys)
    assert code == 0 and "compare" in out and "problems" in out


BAD_INPUT = {
    "unknown problem": (["compare", "--problem", "nope"], "nope"),
    "unknown optimizer": (["compare", "--opt", "adma:lr=1"], "unknown optimizer 'adma'"),
    "malformed opt": (["compare", "--opt", "adam:lr"], "malformed"),
    "unknown key": (["compare", "--opt", "adam:beta=0.9"], "valid: lr, betas, eps"),
    "invalid lr": (["compare", "--opt", "adam:lr=-1"], "Invalid lr: -1"),
    "invalid betas": (["compare", "--opt", "adam:betas=0.9/1.5"], "beta2"),
    "wrong type": (["compare", "--opt", "adam:amsgrad=3"], "amsgrad must be True or False"),
    "nan start": (["compare", "--start", "nan"], "finite"),
    "inf start": (["compare", "--start", "1,inf"], "coordinate"),
    "text start": (["compare", "--start", "abc"], "'abc' is not a number"),
    "missing dir": (["compare", "--out", "no/such/dir/x.png"], "does not exist"),
    "output is a dir": (["compare", "--out", "."], "--out"),
    "unknown extension": (["compare", "--out", "x.jpg"], "unknown extension '.jpg'"),
    "bad json extension": (["compare", "--json", "x.txt"], "--json"),
    "negative steps": (["compare", "--steps", "-1"], "--steps"),
    "text steps": (["compare", "--steps", "many"], "not a whole number"),
    "unknown option": (["compare", "--bogus"], "unrecognized arguments"),
    # named before the required arguments it displaced (argparse checks those first)
    "unknown option, arguments missing": (
        ["sweep", "--nosuchflag"],
        "error: unrecognized arguments: --nosuchflag",
    ),
    "arguments missing": (["sweep"], "the following arguments are required: optimizer"),
    "unknown option after a positional": (
        ["sweep", "adam", "--nosuchflag"],
        "error: unrecognized arguments: --nosuchflag",
    ),
    "a negative number is not an unknown option": (
        ["sweep", "adam", "-5"],
        "error: the following arguments are required: --problem",
    ),
    "unknown command": (["frobnicate"], "invalid choice"),
    # from a bug bash: each of these was a traceback or a silent default
    "hyperparameter of another shape": (
        ["compare", "--opt", "adam:lr=0.1/0.2"],
        "--opt 'adam:lr=0.1/0.2': lr has shape (2,), which does not broadcast to params of shape",
    ),
    "sweep configuration of another shape": (
        ["sweep", "adam", "--problem", "quadratic", "--grid", "lr=0.1/0.2"],
        "configuration {'lr': (0.1, 0.2)}: lr has shape (2,), which does not broadcast",
    ),
    "seed past int64": (
        ["compare", "--seed", "99999999999999999999999999999"],
        "--seed: 99999999999999999999999999999 must lie in [0, 2**63 - repeats]",
    ),
    "sweep seed past int64": (
        ["sweep", "adam", "--problem", "quadratic", "--grid", "lr=0.1", "--seeds", "0,2e63"],
        "seeds",
    ),
    "sweep seed 2**63": (
        [
            "sweep",
            "adam",
            "--problem",
            "quadratic",
            "--grid",
            "lr=0.1",
            "--seeds",
            "0,9223372036854775808",
        ],
        "seeds must lie in [0, 2**63); got 9223372036854775808",
    ),
    "sweep target nan": (
        ["sweep", "adam", "--problem", "quadratic", "--grid", "lr=0.1", "--target", "nan"],
        "Invalid target: nan; it must be a finite number",
    ),
    "sweep target infinite": (
        ["sweep", "adam", "--problem", "quadratic", "--grid", "lr=0.1", "--target", "inf"],
        "Invalid target: inf; it must be a finite number",
    ),
    "empty result path": (["plot", ""], "the result's path is empty"),
    "a hyperparameter in --grid and --fixed": (
        ["sweep", "adam", "--problem", "quadratic", "--grid", "lr=0.1", "--fixed", "lr=0.2"],
        "lr is given twice (--grid and --fixed): give each hyperparameter once",
    ),
    "a hyperparameter in two --grid": (
        ["sweep", "adam", "--problem", "quadratic", "--grid", "lr=0.1", "--grid", "lr=0.2"],
        "lr is given twice (--grid and --grid)",
    ),
    "a hyperparameter in --grid and --sample": (
        [
            "sweep",
            "adam",
            "--problem",
            "quadratic",
            "--grid",
            "lr=0.1",
            "--sample",
            "lr=0.01:0.1",
            "--n",
            "2",
        ],
        "lr is given twice (--grid and --sample)",
    ),
    "empty figure path": (["compare", "--out", ""], "--out ''"),
    "reproduce --list with a name": (["reproduce", "--list", "nope"], "--list takes no name"),
    "reproduce, empty name": (["reproduce", ""], "the reproduction's name is empty"),
    "evil expression": (
        ["compare", "--function", "__import__('os').system('id')"],
        "--function: refused expression: attribute access (__import__('os').system)",
    ),
    "missing result": (["plot", "nothing.json"], "nothing.json"),
    "not a result": (["plot", "fake.json"], "not a saved adamlab result"),
    "not a result type": (
        ["plot", "sub/notes.txt"],
        "cannot load 'sub/notes.txt': expected .json, .csv or .parquet",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_one_line_exit_2_no_file(in_tmp, capsys, case):
    argv, needle = BAD_INPUT[case]
    (in_tmp / "fake.json").write_text('{"hello": 1}')
    (in_tmp / "sub").mkdir()
    (in_tmp / "sub" / "notes.txt").write_text("not a result")
    before = sorted(p.name for p in in_tmp.iterdir())
    code, out, err = run(capsys, *argv)
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("adamlab: error: "), err
    assert needle in lines[0]
    assert "Traceback" not in err and out == ""
    assert sorted(p.name for p in in_tmp.iterdir()) == before  # no output, no partial file


def test_bad_input_in_a_fresh_process_has_no_traceback(in_tmp):
    proc = subprocess.run(
        [sys.executable, "-m", "adamlab", "compare", "--opt", "adam:lr=-1"],
        capture_output=True,
        text=True,
        cwd=in_tmp,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "adamlab: error: --opt 'adam:lr=-1': Invalid lr: -1; it must lie in [0, inf)"
    ]
    assert list(in_tmp.iterdir()) == []


def test_every_subcommand_is_there_and_a_broken_one_is_not_silently_dropped(monkeypatch):
    """The CLI is one package with plain imports: sweep and reproduce are always there, and an
    ImportError in a command module is an import error, not a missing command."""
    import adamlab.cli

    parser = adamlab.cli.build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    assert set(sub.choices) == {
        "compare", "problems", "optimizers", "plot", "sweep", "reproduce", "serve",
    }  # fmt: skip
    broken = "import sys; sys.modules['adamlab.cli.sweep'] = None; import adamlab.cli"
    out = subprocess.run([sys.executable, "-c", broken], capture_output=True, text=True)
    assert out.returncode == 1 and "import of adamlab.cli.sweep halted" in out.stderr


def test_a_bug_is_a_traceback_and_a_user_error_one_line(monkeypatch, capsys):
    """Only the parsing boundary turns an error into one line: a TypeError raised inside the
    library (a bug) keeps its traceback; ADAMLAB_DEBUG=1 shows a user error's too."""
    import adamlab.cli.compare

    def broken(*args, **kwargs):
        raise TypeError("a bug deep inside")

    monkeypatch.setattr(adamlab.cli.compare, "compare", broken)
    with pytest.raises(TypeError, match="a bug deep inside"):
        main(["compare", "--no-figure"])
    assert run(capsys, "compare", "--opt", "adam:lr=-1")[0] == 2
    monkeypatch.setenv("ADAMLAB_DEBUG", "1")
    with pytest.raises(Exception, match="Invalid lr: -1"):
        main(["compare", "--opt", "adam:lr=-1", "--no-figure"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--problem", "rosenbrock:a=abc"], "problem 'rosenbrock': a must be a number, got 'abc'"),
        (
            ["--problem", "ill-conditioned:kappa="],
            "--problem: malformed 'kappa=' in 'ill-conditioned:kappa='; write KEY=VALUE",
        ),
        (["--problem", "noisy-quadratic:sigma=lots"], "sigma must be a number"),
        (["--steps", "0"], "--steps"),
    ],
)
def test_bad_problem_parameters_and_zero_steps_are_one_line_errors(
    capsys, tmp_path, monkeypatch, args, message
):
    monkeypatch.chdir(tmp_path)
    code, _out, err = run(capsys, "compare", *args)
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_a_pole_on_the_loss_surface_still_draws(capsys, tmp_path, monkeypatch):
    """1/x near 0: the figure is drawn and both files are written."""
    monkeypatch.chdir(tmp_path)
    code, _out, err = run(
        capsys, "compare", "--function", "1/x", "--start", "0.001", "--opt", "sgd:lr=1",
        "--steps", "5", "--json", "r.json", "--out", "r.png",
    )  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "r.png"]


@pytest.mark.parametrize("out", ["r.png", "r.gif"])
def test_a_figure_that_cannot_be_drawn_leaves_no_file(capsys, tmp_path, monkeypatch, out):
    """If drawing fails (a bug: its traceback shows), nothing is written — not even the
    result file, which would otherwise be written before the figure."""
    import adamlab.plot

    def broken(*args, **kwargs):
        raise RuntimeError("cannot draw this")

    monkeypatch.setattr(adamlab.plot, "figure_for", broken)
    monkeypatch.setattr(adamlab.plot, "animate", broken)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RuntimeError, match="cannot draw this"):
        main(["compare", "--steps", "5", "--json", "r.json", "--out", out])
    assert list(tmp_path.iterdir()) == []


def test_running_out_of_memory_is_one_line_exit_2(monkeypatch, capsys):
    """A run that asks for more than the machine has (``--repeats 10**12``, a problem of
    10**11 dimensions) ends in MemoryError: one line and exit 2, not a traceback. (Simulated:
    a real allocation of that size may be granted lazily and then killed.)"""
    from adamlab.cli import compare

    def huge(args):
        raise MemoryError

    monkeypatch.setattr(compare, "run", huge)
    code, out, err = run(capsys, "compare")
    assert code == 2 and out == ""
    assert err.splitlines() == [
        "adamlab: error: not enough memory for this run: ask for fewer steps, repeats, seeds, "
        "configurations or dimensions"
    ]
