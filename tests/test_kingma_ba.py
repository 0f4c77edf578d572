"""The Kingma & Ba §6.1/§6.2 reproductions, end to end on small MNIST-format files.

The tests write their own data folder (so CI needs no dataset-fashion-mnist package) and run
the ``--quick`` protocols on it; the network is made narrower where only the plumbing is
checked. The drop-ins are checked against ``torch.optim`` on the same batches.
"""

from __future__ import annotations

import dataclasses
import json
import math

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from test_idx import _replace, idx_bytes, write_folder

torch = pytest.importorskip("torch")

from adamlab.problems import idx as idx_module  # noqa: E402
from adamlab.reproduce import REPRODUCTIONS  # noqa: E402
from adamlab.reproduce import kingma_ba as kb  # noqa: E402
from adamlab.reproduce.registry import DATA_REPRODUCTIONS  # noqa: E402


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_folder(tmp_path_factory.mktemp("mnist-format"), n_train=300, n_test=100)


@pytest.fixture(scope="module")
def data(folder):
    return kb.load_data(folder)


def files_ok(r, out, name):
    assert {p.name for p in r.files} == {f"repro-{name}.{s}" for s in ("png", "txt", "json")}
    assert (out / f"repro-{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / f"repro-{name}.json").read_text()) == json.loads(json.dumps(r.numbers))
    assert (out / f"repro-{name}.txt").read_text().strip() == r.summary.strip()


# -- the protocols --------------------------------------------------------------------------------


def test_the_protocols_are_the_papers():
    lr = kb.logreg_protocol()
    assert lr.hidden == () and lr.batch_size == 128 and lr.decay and lr.l2 > 0
    assert list(lr.grids) == ["Adam", "AdaGrad", "SGD-Nesterov"]
    mlp = kb.mlp_protocol()
    assert mlp.hidden == (1000, 1000) and mlp.batch_size == 128 and not mlp.decay
    assert set(mlp.variants) == {"dropout", "plain"}
    assert list(mlp.grids) == ["Adam", "AdaGrad", "RMSProp", "SGD-Nesterov", "AdaDelta"]
    assert len(lr.seeds) >= 3 and len(mlp.seeds) >= 2
    for p in (lr, mlp):
        assert p.per_decade == 2  # a dense grid: half a decade apart
        for opt in p.grids:
            g = p.grid(opt)
            assert len(g) >= 5 and np.allclose(np.diff(np.log10(g)), 0.5)
        q = dataclasses.replace(p, per_decade=1)
        assert len(q.grid("Adam")) < len(p.grid("Adam"))
    quick = kb.mlp_protocol(quick=True)
    assert quick.per_decade == 1 and quick.n_train == 2048 and quick.grid_epochs is None
    assert quick.hidden == (256, 256) and len(quick.hidden) == len(mlp.hidden)
    assert set(DATA_REPRODUCTIONS) <= set(REPRODUCTIONS)


def test_adadelta_is_pytorchs_and_the_others_are_adamlabs():
    import adamlab.torch as at

    p = [torch.nn.Parameter(torch.zeros(3))]
    assert isinstance(kb.make_optimizer("Adam", p, 1e-3), at.Adam)
    assert isinstance(kb.make_optimizer("AdaGrad", p, 1e-3), at.Adagrad)
    assert isinstance(kb.make_optimizer("RMSProp", p, 1e-3), at.RMSprop)
    sgd = kb.make_optimizer("SGD-Nesterov", p, 1e-3)
    assert isinstance(sgd, at.SGD) and sgd.param_groups[0]["nesterov"]
    assert type(kb.make_optimizer("Adam", p, 1e-3, reference=True)) is torch.optim.Adam
    assert type(kb.make_optimizer("AdaDelta", p, 1.0)) is torch.optim.Adadelta
    assert "torch.optim" in kb.OPTIMIZERS["AdaDelta"]


def test_quick_without_data_is_the_digits_and_the_same_protocol_runs_on_them():
    """The CI path: no data folder, --quick -> scikit-learn's digits (8 x 8, standardised)."""
    pytest.importorskip("sklearn")
    d = kb.load_data(None, quick=True)
    assert d.name.startswith("digits") and d.X_train.dtype == np.float32
    assert d.X_train.shape[1] == d.X_test.shape[1] == 64 and len(d.y_test) > 0
    assert kb.load_data("digits").name == d.name
    p = kb.mlp_protocol(quick=True, hidden=(16,), epochs=1)
    run = kb.train(d.head(p.n_train), p, "Adam", 1e-2, 0, "dropout")
    assert len(run.batch_costs) == math.ceil(min(len(d.y_train), 2048) / 128)
    assert math.isfinite(run.final_cost) and 0.1 < run.test_accuracy <= 1


# -- pairing and the step-size schedule -----------------------------------------------------------


@pytest.mark.parametrize("variant", ["plain", "dropout"])
def test_every_optimizer_of_a_seed_sees_the_same_batches_weights_and_masks(data, variant):
    """With α = 0 nothing moves, so the costs are a function of the batches (and dropout
    masks) alone: equal across optimizers at a seed, different for another seed."""
    p = kb.mlp_protocol(quick=True, hidden=(16,), epochs=2)
    costs = {opt: kb.train(data, p, opt, 0.0, 3, variant).batch_costs
             for opt in ("Adam", "SGD-Nesterov", "AdaDelta")}  # fmt: skip
    assert costs["Adam"] == costs["SGD-Nesterov"] == costs["AdaDelta"]
    assert len(costs["Adam"]) == 2 * math.ceil(300 / 128)
    assert kb.train(data, p, "Adam", 0.0, 4, variant).batch_costs != costs["Adam"]


def test_logreg_step_size_decays_as_alpha_over_sqrt_t(data):
    p = kb.logreg_protocol(quick=True, epochs=1)
    seen = []
    orig = torch.optim.SGD.step

    def spy(self, *a, **k):
        seen.append(self.param_groups[0]["lr"])
        return orig(self, *a, **k)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.optim.SGD, "step", spy)
        kb.train(data, p, "SGD-Nesterov", 0.5, 0, reference=True)
    assert seen == pytest.approx([0.5 / math.sqrt(t) for t in range(1, len(seen) + 1)], rel=1e-12)
    assert len(seen) == 3


# -- adamlab.torch against torch.optim ------------------------------------------------------------


@pytest.mark.parametrize("variant", ["plain", "dropout"])
@pytest.mark.parametrize(("opt", "lr"), [("Adam", 1e-2), ("AdaGrad", 3e-2), ("RMSProp", 1e-3),
                                         ("SGD-Nesterov", 3e-2)])  # fmt: skip
def test_drop_ins_give_torch_optims_curves(data, opt, lr, variant):
    """Same seed, batches, masks and initial weights: the per-step training cost of the
    drop-in and of torch.optim's class agree to 1e-10 relative in float64 (the same update
    rule evaluated in a different order: a few ulps per step, not amplified beyond ~10⁻¹⁴ in
    these 15 steps), and to 1e-4 in float32 (there one ulp is 6e-8 and the net's
    nonlinearity amplifies it over the steps)."""
    for dtype, tol in (("float64", 1e-10), ("float32", 1e-4)):
        p = kb.mlp_protocol(quick=True, hidden=(32, 32), epochs=5, dtype=dtype)
        mine = kb.train(data, p, opt, lr, 0, variant)
        ref = kb.train(data, p, opt, lr, 0, variant, reference=True)
        assert len(mine.batch_costs) == len(ref.batch_costs) == 15
        assert mine.batch_costs[-1] < 0.9 * mine.batch_costs[0]  # it trains
        assert kb.rel_diff(mine.batch_costs, ref.batch_costs) < tol, dtype
        assert mine.final_cost == pytest.approx(ref.final_cost, rel=tol)


# -- end to end -----------------------------------------------------------------------------------


def test_quick_logreg_end_to_end_on_written_files(folder, tmp_path):
    r = REPRODUCTIONS["kingma-ba-logreg"](tmp_path, quick=True, data=folder)
    files_ok(r, tmp_path, "kingma-ba-logreg")
    n = r.numbers
    assert n["n_train"] == 300 and n["n_test"] == 100 and "MNIST-format data in" in n["data"]
    table = n["optimizers"]["plain"]
    assert set(table) == {"Adam", "AdaGrad", "SGD-Nesterov"}
    for opt, row in table.items():
        assert row["lr"] in row["grid_lr"] and len(row["grid_lr"]) == 4
        assert min(s for s in row["grid_score"] if s is not None) == pytest.approx(
            row["grid_score"][row["grid_lr"].index(row["lr"])]
        )
        assert len(row["curves"]) == 2 and len(row["curve_epochs"]) == 11  # epochs 0..10
        # zero weights: the cost is log 10 at the start; then it learns
        assert row["curve_median"][0] == pytest.approx(math.log(10), rel=1e-6)
        assert row["curve_median"][-1] < 0.5 * math.log(10)
        assert row["test_accuracy"]["median"] > 0.8, opt
        assert n["check"]["plain"][opt]["max_rel_diff"] < 1e-4  # float32, as trained
        assert n["check"]["plain"][opt]["max_rel_diff_float64"] < 1e-10
    assert "adamlab.torch vs torch.optim" in r.summary and "Adam " in r.summary


def test_quick_mlp_end_to_end_on_written_files(folder, tmp_path):
    r = REPRODUCTIONS["kingma-ba-mlp"](tmp_path, quick=True, data=folder, hidden=(64, 64))
    files_ok(r, tmp_path, "kingma-ba-mlp")
    n = r.numbers
    assert set(n["optimizers"]) == {"dropout", "plain"}
    for variant in ("dropout", "plain"):
        table = n["optimizers"][variant]
        assert set(table) == {"Adam", "AdaGrad", "RMSProp", "SGD-Nesterov", "AdaDelta"}
        assert set(n["check"][variant]) == {"Adam", "AdaGrad", "RMSProp", "SGD-Nesterov"}
        for row in table.values():
            assert len(row["grid_lr"]) == 3 and row["lr"] in row["grid_lr"]
            assert len(row["curves"]) == 2 and len(row["curve_epochs"]) == 6  # 3 steps/epoch
    assert "with dropout:" in r.summary and "without dropout" in r.summary


def test_cli_quick_reproduction_with_a_data_folder(folder, tmp_path, capsys):
    from adamlab.cli import main

    rc = main(["reproduce", "kingma-ba-logreg", "--quick", "--data", str(folder),
               "--out", str(tmp_path)])  # fmt: skip
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "kingma-ba-logreg: Kingma & Ba section 6.1" in out and "wrote" in out
    assert "adamlab: kingma-ba-logreg: grid plain Adam" in err  # progress on stderr
    assert (tmp_path / "repro-kingma-ba-logreg.png").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["reproduce", "kingma-ba-mlp", "--data", "{tmp}/nowhere"], "apt-get install dataset-fashion-mnist"),
        (["reproduce", "kingma-ba-logreg"], "apt-get install dataset-fashion-mnist"),  # default folder
        (["reproduce", "kingma-ba-logreg", "--data", "{bad}"], "not a complete IDX file"),
        (["reproduce", "seed", "--data", "{tmp}"], "--data is for kingma-ba-logreg, kingma-ba-mlp"),
    ],
)  # fmt: skip
def test_cli_bad_data_is_one_line_exit_2_nothing_written(argv, message, tmp_path, capsys,
                                                         monkeypatch):  # fmt: skip
    from adamlab.cli import main

    monkeypatch.setattr(idx_module, "FASHION_MNIST_DIR", str(tmp_path / "not-installed"))
    bad = write_folder(tmp_path / "bad", 20, 10)
    _replace(bad, "train-labels-idx1-ubyte", idx_bytes(np.zeros(20))[:-3])
    out = tmp_path / "out"
    argv = [a.format(tmp=tmp_path, bad=bad) for a in argv] + ["--out", str(out)]
    rc = main(argv)
    got = capsys.readouterr()
    assert rc == 2 and got.out == ""
    assert got.err.startswith("adamlab: error: ") and got.err.count("\n") == 1
    assert message in got.err
    if "apt-get" in message:
        assert "--data DIR" in got.err
    assert not out.exists()


def test_all_leaves_out_the_data_reproductions_unless_given_data(folder, tmp_path, capsys,
                                                                 monkeypatch):  # fmt: skip
    from adamlab.cli import main
    from adamlab.reproduce import Reproduction

    called = []

    def stub(name):
        def call(out, *, quick=False, **kw):
            called.append((name, kw.get("data")))
            return Reproduction(name, [], f"{name} ran", {})

        return call

    for name in REPRODUCTIONS:
        monkeypatch.setitem(REPRODUCTIONS, name, stub(name))
    assert main(["reproduce", "all", "--quick", "--out", str(tmp_path)]) == 0
    assert [n for n, _ in called] == [n for n in REPRODUCTIONS if n not in DATA_REPRODUCTIONS]
    called.clear()
    assert main(["reproduce", "all", "--quick", "--data", str(folder), "--out", str(tmp_path)]) == 0
    assert [n for n, _ in called] == list(REPRODUCTIONS)
    assert dict(called)["kingma-ba-mlp"] == str(folder)
    capsys.readouterr()
