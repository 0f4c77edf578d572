"""MNIST's IDX format and the fashion-mnist-* problems, on small files the tests write.

The files are written here byte by byte from LeCun's description of the format (not with
adamlab's reader), so the reader is checked against the format, not against itself.
"""

from __future__ import annotations

import gzip
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from adamlab.problems import PROBLEMS, get_problem, parameters
from adamlab.problems import idx as idx_module
from adamlab.problems.idx import FASHION_MNIST_DIR, load_folder, read_idx
from adamlab.problems.ml import FashionMNISTLogReg, FashionMNISTMLP, ImageClassification

CODES = {np.dtype("u1"): 0x08, np.dtype("i1"): 0x09, np.dtype(">i2"): 0x0B,
         np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}  # fmt: skip


def idx_bytes(a: np.ndarray, dtype: str = "u1") -> bytes:
    """The IDX file of ``a``: 0x00 0x00 TYPE NDIM, the sizes as big-endian uint32, the data."""
    dt = np.dtype(dtype)
    head = bytes([0, 0, CODES[dt], a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape)
    return head + np.asarray(a).astype(dt).tobytes()


def write(path: Path, content: bytes, gz: bool) -> Path:
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(content))
    else:
        path.write_bytes(content)
    return path


def images_and_labels(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Learnable images: class c lights a 4-pixel-wide band at column 2c, plus noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 10
    rng.shuffle(y)
    X = rng.integers(0, 60, size=(n, 28, 28))
    for i, c in enumerate(y):
        X[i, :, 2 * c + 2 : 2 * c + 6] += 180
    return X.astype(np.uint8), y.astype(np.uint8)


def write_folder(folder: Path, n_train: int = 60, n_test: int = 30, gz=(True, False, True, False),
                 spelling: str = "-") -> Path:  # fmt: skip
    """The four MNIST-format files (some gzipped, some raw) of a small learnable set."""
    folder.mkdir(parents=True, exist_ok=True)
    Xtr, ytr = images_and_labels(n_train, 1)
    Xte, yte = images_and_labels(n_test, 2)
    stems = ["train-images", "train-labels", "t10k-images", "t10k-labels"]
    kinds = ["idx3-ubyte", "idx1-ubyte", "idx3-ubyte", "idx1-ubyte"]
    for stem, kind, a, z in zip(stems, kinds, (Xtr, ytr, Xte, yte), gz, strict=True):
        write(folder / f"{stem}{spelling}{kind}", idx_bytes(a), z)
    return folder


# -- the reader ---------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
def test_reads_images_and_labels_raw_and_gzipped(tmp_path, gz):
    X, y = images_and_labels(7, 0)
    pi = write(tmp_path / "imgs-idx3-ubyte", idx_bytes(X), gz)
    pl = write(tmp_path / "lbls-idx1-ubyte", idx_bytes(y), gz)
    a, b = read_idx(pi), read_idx(pl)
    assert a.dtype == np.uint8 and a.shape == (7, 28, 28)
    np.testing.assert_array_equal(a, X)
    assert b.dtype == np.uint8 and b.shape == (7,)
    np.testing.assert_array_equal(b, y)


@pytest.mark.parametrize("dtype", ["i1", ">i2", ">i4", ">f4", ">f8"])
def test_every_idx_type_comes_back_in_native_byte_order(tmp_path, dtype):
    a = (np.arange(24).reshape(2, 3, 4) - 11) * (1.5 if "f" in dtype else 1)
    got = read_idx(write(tmp_path / "a.idx", idx_bytes(a, dtype), gz=False))
    assert got.dtype == np.dtype(dtype).newbyteorder("=") and got.dtype.isnative
    np.testing.assert_array_equal(got, a)


def test_the_gzip_check_is_by_content_not_by_name(tmp_path):
    X, _ = images_and_labels(3, 0)
    p = tmp_path / "no-suffix"
    p.write_bytes(gzip.compress(idx_bytes(X)))
    np.testing.assert_array_equal(read_idx(p), X)


GOOD = idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4))
BAD = {
    "empty": (b"", "shorter than the 4-byte magic number"),
    "two bytes": (b"\x00\x00", "shorter than the 4-byte magic number"),
    "magic of a PNG": (b"\x89PNG\r\n\x1a\n" + bytes(20), "magic number 0x89504e47"),
    "unknown type": (b"\x00\x00\x07\x01" + GOOD[4:], "magic number 0x00000701"),
    "no dimensions": (b"\x00\x00\x08\x00" + GOOD[4:], "magic number 0x00000800"),
    "header cut short": (GOOD[:9], "the header is cut short"),
    "data cut short": (GOOD[:-1], "the header promises 12 bytes of data for shape (3, 4), the file holds 11"),
    "bytes after the data": (GOOD + b"\x00", "bytes after the data"),
}  # fmt: skip


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("case", BAD)
def test_a_bad_file_is_one_clear_value_error(tmp_path, case, gz):
    content, message = BAD[case]
    p = write(tmp_path / "bad-idx", content, gz)
    with pytest.raises(ValueError, match=re.escape(message)) as e:
        read_idx(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "content",
    [gzip.compress(GOOD)[:-6], gzip.compress(GOOD)[:12] + b"garbage garbage garbage"],
    ids=["truncated stream", "corrupt stream"],
)
def test_corrupt_gzip_is_a_value_error_too(tmp_path, content):
    p = tmp_path / "corrupt.gz"
    p.write_bytes(content)
    with pytest.raises(ValueError, match=r"corrupt gzip data|not a complete IDX file"):
        read_idx(p)


# -- MNIST-format folders -----------------------------------------------------------------------


def test_a_folder_loads_flattened_read_only_and_cached(tmp_path):
    folder = write_folder(tmp_path / "d", 50, 20)
    s = load_folder(folder)
    assert s.X_train.shape == (50, 784) and s.X_test.shape == (20, 784)
    assert s.X_train.dtype == np.uint8 and s.y_train.dtype == np.int64
    X, y = images_and_labels(50, 1)
    np.testing.assert_array_equal(s.X_train, X.reshape(50, 784))
    np.testing.assert_array_equal(s.y_train, y)
    assert not s.X_train.flags.writeable and not s.y_test.flags.writeable
    assert load_folder(str(folder)) is s  # cached by path, size and time
    other = write_folder(tmp_path / "k", 40, 10, gz=(False,) * 4, spelling=".")  # Kaggle's names
    assert load_folder(other).X_train.shape == (40, 784)


def test_missing_data_names_the_package_and_the_option(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError) as e:
        load_folder(tmp_path / "nowhere")
    text = str(e.value)
    assert "nowhere does not exist" in text
    assert "apt-get install dataset-fashion-mnist" in text and "--data DIR" in text
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte\[\.gz\] is missing"):
        load_folder(tmp_path / "empty")
    # the default folder is Debian's
    assert FASHION_MNIST_DIR == "/usr/share/datasets/fashion-mnist"
    monkeypatch.setattr(idx_module, "FASHION_MNIST_DIR", str(tmp_path / "no-package"))
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_folder(None)


def _replace(folder: Path, name: str, content: bytes) -> None:
    for old in folder.glob(name + "*"):
        old.unlink()
    (folder / name).write_bytes(content)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("train-images-idx3-ubyte", idx_bytes(np.zeros((5, 8, 8))), r"expected 28 x 28 images .* shape \(5, 8, 8\)"),
        ("train-images-idx3-ubyte", idx_bytes(np.zeros((60, 28, 28)), ">f4"), "expected 28 x 28 images of unsigned bytes"),
        ("train-labels-idx1-ubyte", idx_bytes(np.zeros(59)), "59 labels for the 60 images"),
        ("t10k-labels-idx1-ubyte", idx_bytes(np.full(30, 10)), "label 10 out of range"),
        ("t10k-labels-idx1-ubyte", idx_bytes(np.zeros((30, 2))), "one unsigned byte per image"),
    ],
)  # fmt: skip
def test_a_folder_of_the_wrong_shape_is_a_value_error(tmp_path, name, content, message):
    folder = write_folder(tmp_path / "d")
    _replace(folder, name, content)
    with pytest.raises(ValueError, match=message):
        load_folder(folder)


# -- the problems -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_folder(tmp_path_factory.mktemp("fmnist"), 60, 30)


@pytest.fixture(scope="module")
def tasks(folder):
    return [FashionMNISTLogReg(data_dir=str(folder)),
            FashionMNISTMLP(data_dir=str(folder), hidden=6, l2=0.01)]  # fmt: skip


def test_registered_by_name_with_a_data_folder_but_not_in_the_default_listing(folder):
    p = get_problem("fashion-mnist-logreg", data_dir=str(folder))
    assert p.dim == 7850 and p.batch_size == 128 and p.l2 == 1e-4 and p.stochastic
    m = get_problem("fashion-mnist-mlp", data_dir=str(folder), hidden=8, layers=3)
    assert m.dim == 784 * 8 + 8 + 2 * (8 * 8 + 8) + 8 * 10 + 10
    assert [k for k, _, _ in m.layout] == ["W1", "b1", "W2", "b2", "W3", "b3", "W4", "b4"]
    assert "data_dir" in parameters("fashion-mnist-mlp")
    assert "test_fraction" not in parameters("fashion-mnist-logreg")  # the set's own split
    assert "fashion-mnist-logreg" not in PROBLEMS  # every default there is built and evaluated
    with pytest.raises(ValueError, match="Invalid layers"):
        get_problem("fashion-mnist-mlp", layers=0)


def test_constructing_reads_nothing_using_reads_the_folder(tmp_path):
    p = FashionMNISTLogReg(data_dir=str(tmp_path / "missing"))  # no I/O yet
    assert p.dim == 7850 and p.x0.shape == (7850,) and not np.any(p.x0)
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        p.loss(p.x0)


@pytest.mark.parametrize("which", [0, 1], ids=["logreg", "mlp"])
def test_gradient_matches_central_differences(tasks, which):
    task = tasks[which]
    rng = np.random.default_rng(3)
    x = task.x0 + 0.05 * rng.standard_normal(task.dim)
    g = task.grad(x)
    assert g.shape == (task.dim,)
    # the biases and some weights of every layer
    picks = [
        sl.start + int(rng.integers(sl.stop - sl.start))
        for _, _, sl in task.layout
        for _ in range(3)
    ]
    for i in picks:
        e = np.zeros(task.dim)
        e[i] = 1e-5
        fd = (task.loss(x + e) - task.loss(x - e)) / 2e-5
        assert g[i] == pytest.approx(fd, rel=1e-5, abs=1e-8), i


@pytest.mark.parametrize("which", [0, 1], ids=["logreg", "mlp"])
def test_blocks_and_batches_give_the_same_numbers(tasks, which, monkeypatch):
    task = tasks[which]
    rng = np.random.default_rng(4)
    xb = task.x0 + 0.05 * rng.standard_normal((2, task.dim))
    loss, grad = task.loss_and_grad(xb)
    for k in range(2):  # a point alone: the bits of its row in a batch
        l1, g1 = task.loss_and_grad(xb[k])
        assert l1 == loss[k] and np.array_equal(g1, grad[k])
    monkeypatch.setattr(ImageClassification, "chunk", 7)  # 60 examples in 9 blocks
    l7, g7 = task.loss_and_grad(xb)
    np.testing.assert_allclose(l7, loss, rtol=1e-13)
    np.testing.assert_allclose(g7, grad, rtol=1e-11, atol=1e-15)
    acc = task.accuracy(xb, "train")
    monkeypatch.setattr(ImageClassification, "chunk", 4096)
    np.testing.assert_array_equal(acc, task.accuracy(xb, "train"))


def test_minibatches_are_paired_across_optimizers_and_seeded(folder):
    task = FashionMNISTLogReg(data_dir=str(folder), batch_size=16)
    x = np.zeros(task.dim)
    assert np.array_equal(task.batch_indices(5, 3), task.batch_indices(5, 3))
    assert not np.array_equal(task.batch_indices(5, 3), task.batch_indices(6, 3))
    assert not np.array_equal(task.batch_indices(5, 3), task.batch_indices(5, 4))
    o1, o2 = task.oracle(5), task.oracle(5)  # two optimizers, the same seed
    np.testing.assert_array_equal(o1(x, 3)[1], o2(x, 3)[1])
    idx = task.batch_indices(5, 3)
    assert len(set(idx.tolist())) == 16
    loss, grad = task._objective(x, task.data.X_train[idx], task.data.y_train[idx], True)
    assert o1(x, 3)[0] == loss and np.array_equal(o1(x, 3)[1], grad)
    # Adam and SGD with the same seed: every step's batch the same, whatever the iterate
    import adamlab

    seen = {}
    for opt in (adamlab.Adam(lr=0.01), adamlab.SGD(lr=0.1)):
        oracle, xs, state, batches = task.oracle(5), x.copy(), opt.init(x), []
        for t in range(1, 6):
            batches.append(task.batch_indices(5, t))
            _, g = oracle(xs, t)
            xs, state = opt.step(xs, g, state)
        seen[type(opt).__name__] = (batches, task.loss(xs))
    assert all(np.array_equal(a, b) for a, b in zip(seen["Adam"][0], seen["SGD"][0], strict=True))
    assert seen["Adam"][1] < task.loss(x) and seen["SGD"][1] < task.loss(x)


def test_training_learns_the_written_set(tasks):
    import adamlab

    task = tasks[0]
    oracle, x = task.oracle(0), task.x0
    opt = adamlab.Adam(lr=0.01)
    state = opt.init(x)
    for t in range(1, 41):
        x, state = opt.step(x, oracle(x, t)[1], state)
    assert task.loss(x) < 0.5 * task.loss(task.x0)
    ev = task.evaluate(x)
    assert set(ev) == {"test_loss", "test_accuracy", "train_accuracy"}
    assert ev["test_accuracy"] > 0.8 and ev["train_accuracy"] > 0.8


# -- the command line ---------------------------------------------------------------------------


def cli(argv, capsys):
    from adamlab.cli import main

    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_compare_runs_on_a_data_folder(folder, tmp_path, capsys):
    js = tmp_path / "r.json"
    rc, out, err = cli(["compare", "--problem", "fashion-mnist-logreg", "--data", str(folder),
                        "--opt", "adam:lr=0.01", "--steps", "20", "--no-figure",
                        "--json", str(js)], capsys)  # fmt: skip
    assert rc == 0, err
    assert "test acc" in out and "Adam(lr=0.01" in out and js.exists()


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "apt-get install dataset-fashion-mnist"),
        ("corrupt", "not a complete IDX file"),
        ("wrong-shape", "expected 28 x 28 images"),
        ("not-a-data-problem", "--data is for the problems that read a data folder"),
    ],
)
def test_compare_bad_data_is_one_line_exit_2_nothing_written(
    folder, tmp_path, capsys, setup, message
):
    data, problem = tmp_path / "d", "fashion-mnist-mlp"
    if setup == "missing":
        data = tmp_path / "nowhere"
    elif setup == "not-a-data-problem":
        problem = "rosenbrock"
    else:
        write_folder(data)
        if setup == "corrupt":
            _replace(data, "t10k-images-idx3-ubyte", idx_bytes(np.zeros((30, 28, 28)))[:-100])
        else:
            _replace(data, "train-images-idx3-ubyte", idx_bytes(np.zeros((60, 8, 8))))
    fig, js = tmp_path / "f.png", tmp_path / "r.json"
    rc, out, err = cli(["compare", "--problem", problem, "--data", str(data), "--steps", "3",
                        "--out", str(fig), "--json", str(js)], capsys)  # fmt: skip
    assert rc == 2 and out == ""
    assert err.startswith("adamlab: error: ") and err.count("\n") == 1 and message in err
    if setup == "missing":
        assert "--data DIR" in err
    assert not fig.exists() and not js.exists()


def test_compare_without_data_reads_the_debian_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(idx_module, "FASHION_MNIST_DIR", str(tmp_path / "not-installed"))
    rc, _, err = cli(["compare", "--problem", "fashion-mnist-logreg", "--no-figure"], capsys)
    assert rc == 2 and "not-installed does not exist" in err
    assert "apt-get install dataset-fashion-mnist" in err and "--data DIR" in err


@pytest.mark.skipif(
    not Path(FASHION_MNIST_DIR).is_dir(), reason="dataset-fashion-mnist not installed"
)
def test_the_real_fashion_mnist_when_installed():
    s = load_folder()
    assert s.X_train.shape == (60000, 784) and s.X_test.shape == (10000, 784)
    assert np.bincount(s.y_train).tolist() == [6000] * 10
    assert np.bincount(s.y_test).tolist() == [1000] * 10
