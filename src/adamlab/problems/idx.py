"""MNIST's IDX file format, and folders of MNIST-format image sets (MNIST, Fashion-MNIST).

An IDX file is a header and the raw numbers (LeCun's description of MNIST):

* the magic number, four bytes: ``0x00 0x00 TYPE NDIM``, TYPE one of ``0x08`` unsigned byte,
  ``0x09`` signed byte, ``0x0B`` short (2 bytes), ``0x0C`` int (4), ``0x0D`` float (4),
  ``0x0E`` double (8), NDIM the number of dimensions;
* NDIM sizes, each a big-endian unsigned 32-bit integer;
* the data, big-endian, in C order (the last index varies fastest): exactly the product of
  the sizes times the type's width, nothing after it.

:func:`read_idx` reads one such file, gzip-compressed (``.gz``, recognised by its content) or
raw, into a NumPy array in the machine's byte order; anything else — a bad magic number, a
header or data cut short, bytes after the data, a corrupt gzip stream — is one ``ValueError``
naming the file and what is wrong.

:func:`load_folder` reads the four files of an MNIST-format data set from one folder
(``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte``, each raw or ``.gz``; the ``train-images.idx3-ubyte`` spelling of
some copies is accepted too) and checks what an image classifier needs: 28 × 28 unsigned-byte
images, one label in 0…9 per image. Debian's ``dataset-fashion-mnist`` package installs
Fashion-MNIST (60,000 + 10,000 images) in :data:`FASHION_MNIST_DIR`, the default folder.
"""

from __future__ import annotations

import functools
import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import IO, NamedTuple

import numpy as np

#: where ``apt-get install dataset-fashion-mnist`` puts the four files
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
#: what to do when the data are missing (the end of every missing-data message)
HOW_TO_GET = (
    "install Fashion-MNIST with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or "
    "give a folder of MNIST-format files with --data DIR (data_dir=DIR in Python)"
)

#: IDX type code -> (NumPy big-endian dtype, name)
TYPES = {
    0x08: (np.dtype(">u1"), "unsigned byte"),
    0x09: (np.dtype(">i1"), "signed byte"),
    0x0B: (np.dtype(">i2"), "short"),
    0x0C: (np.dtype(">i4"), "int"),
    0x0D: (np.dtype(">f4"), "float"),
    0x0E: (np.dtype(">f8"), "double"),
}
_GZIP_MAGIC = b"\x1f\x8b"
#: the image side and the number of classes of an MNIST-format set
SIDE, CLASSES = 28, 10
#: (part, kind) -> the file name stems that are accepted, in order of preference
STEMS = {
    ("train", "images"): ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    ("train", "labels"): ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    ("test", "images"): ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    ("test", "labels"): ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


def _read_exactly(f: IO[bytes], n: int, path: Path, what: str) -> bytes:
    data = f.read(n)
    if len(data) < n:
        raise ValueError(f"{path}: not a complete IDX file: {what} cut short")
    return data


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The array stored in the IDX file ``path`` (gzip or raw), in native byte order.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for anything that is
    not a complete, valid IDX file (the message names the file and the fault).
    """
    path = Path(path)
    with open(path, "rb") as raw:
        gz = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        f: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw
        try:
            return _parse(f, path)
        except (EOFError, zlib.error, gzip.BadGzipFile) as e:
            raise ValueError(f"{path}: corrupt gzip data ({e or type(e).__name__})") from None


def _parse(f: IO[bytes], path: Path) -> np.ndarray:
    magic = f.read(4)
    if len(magic) < 4:
        raise ValueError(
            f"{path}: not an IDX file: {len(magic)} byte(s), shorter than the 4-byte magic number"
        )
    if magic[:2] != b"\x00\x00" or magic[2] not in TYPES or magic[3] == 0:
        raise ValueError(
            f"{path}: not an IDX file: magic number 0x{magic.hex()} (expected 0x0000TTNN with "
            f"type TT one of {', '.join(f'{t:02x}' for t in TYPES)} and NN >= 1 dimensions)"
        )
    dtype, _ = TYPES[magic[2]]
    ndim = magic[3]
    shape = struct.unpack(f">{ndim}I", _read_exactly(f, 4 * ndim, path, "the header is"))
    size = math.prod(shape) * dtype.itemsize
    data = f.read(size)
    if len(data) < size:
        raise ValueError(
            f"{path}: not a complete IDX file: the header promises {size} bytes of data for "
            f"shape {tuple(shape)}, the file holds {len(data)}"
        )
    if f.read(1):
        raise ValueError(f"{path}: bytes after the data that the header {tuple(shape)} describes")
    a = np.frombuffer(data, dtype=dtype).reshape(shape)
    return a.astype(dtype.newbyteorder("="))


def find_file(folder: str | os.PathLike, part: str, kind: str) -> Path:
    """The file of ``part`` ("train"/"test") and ``kind`` ("images"/"labels") in ``folder``:
    the raw file if present, else its ``.gz``; ``FileNotFoundError`` saying what to provide."""
    folder = Path(folder)
    for stem in STEMS[(part, kind)]:
        for name in (stem, f"{stem}.gz"):
            if (folder / name).is_file():
                return folder / name
    raise FileNotFoundError(
        f"no MNIST-format data in {folder}: {STEMS[(part, kind)][0]}[.gz] is missing; {HOW_TO_GET}"
    )


class ImageSet(NamedTuple):
    """An MNIST-format data set: images flattened to rows of 784 unsigned bytes (read-only)."""

    X_train: np.ndarray  #: (n_train, 784) uint8
    y_train: np.ndarray  #: (n_train,) int64, in 0…9
    X_test: np.ndarray  #: (n_test, 784) uint8
    y_test: np.ndarray  #: (n_test,) int64


def resolve_folder(data_dir: str | os.PathLike | None) -> Path:
    """``data_dir`` as an absolute path (None: :data:`FASHION_MNIST_DIR`); it must exist."""
    folder = Path(FASHION_MNIST_DIR if data_dir is None else data_dir).expanduser()
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise FileNotFoundError(f"no MNIST-format data: {folder} {what}; {HOW_TO_GET}")
    return folder.resolve()


def load_folder(data_dir: str | os.PathLike | None = None) -> ImageSet:
    """The four files of the MNIST-format set in ``data_dir`` (None: Fashion-MNIST's Debian
    folder), checked and cached by the folder's path and the files' sizes and times."""
    folder = resolve_folder(data_dir)
    files = [find_file(folder, part, kind) for part, kind in STEMS]
    stamp = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    return _load(stamp)


@functools.lru_cache(maxsize=4)
def _load(stamp: tuple[tuple[str, int, int], ...]) -> ImageSet:
    paths = [Path(s[0]) for s in stamp]
    parts = []
    for images_path, labels_path in (paths[0:2], paths[2:4]):
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (SIDE, SIDE):
            raise ValueError(
                f"{images_path}: expected {SIDE} x {SIDE} images of unsigned bytes "
                f"(MNIST format, idx3-ubyte), got {images.dtype} of shape {images.shape}"
            )
        if labels.dtype != np.uint8 or labels.ndim != 1:
            raise ValueError(
                f"{labels_path}: expected one unsigned byte per image (idx1-ubyte), got "
                f"{labels.dtype} of shape {labels.shape}"
            )
        if len(labels) != len(images) or len(images) == 0:
            raise ValueError(
                f"{labels_path}: {len(labels)} labels for the {len(images)} images of "
                f"{images_path.name} (expected as many, at least one)"
            )
        if labels.max() >= CLASSES:
            raise ValueError(
                f"{labels_path}: label {int(labels.max())} out of range (classes 0 to {CLASSES - 1})"
            )
        X = np.ascontiguousarray(images.reshape(len(images), SIDE * SIDE))
        y = labels.astype(np.int64)
        parts += [X, y]
    for a in parts:
        a.flags.writeable = False
    return ImageSet(*parts)
