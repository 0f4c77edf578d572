"""The fused Adam/AdamW step in C++, on PyTorch's own intra-op thread pool.

The same element rule as :mod:`adamlab.kernels.numba_adam` (``cpp/adam_step.cpp``: the
reference's operations, order and precision; float16/bfloat16 converted bit by bit), run
with ``at::parallel_for``. With PyTorch's OpenMP backend that is PyTorch's own OpenMP runtime
and thread team: the step and PyTorch's forward and backward passes share one pool, so
neither pool's spinning workers take the cores from the other, and ``torch.set_num_threads``
applies to the step as to any PyTorch op.

The library is built once, on first use (not at import): by the C++ compiler (``$CXX``, else
``c++``) directly, without ninja, with ``-ffp-contract=off`` (no fused multiply-add) and no
``-ffast-math``, so that every operation is IEEE's correctly rounded one; the loops are
compiled for AVX2 and for the baseline, and the CPU picks. The result is cached under
``$TORCH_EXTENSIONS_DIR`` (default ``~/.cache/torch_extensions``) in a folder named by a hash
of the source, the flags and the PyTorch build, so every later process loads it in
milliseconds. The library has a plain C interface (addresses, sizes, scalars, flags) and is
called through :mod:`ctypes`, which releases the GIL during the call.

:func:`load` returns None (and :func:`unavailable_reason` says why) where the library cannot
be built or loaded: no compiler, a compiler error, a PyTorch whose OpenMP runtime cannot be
shared. :mod:`adamlab.torch.fast` then falls back to the numba kernel, which gives the same
bits.

Besides float32 state (``adamlab.torch.Adam``), the library steps low-precision state
(``adamlab.torch.AdamBF16``, ``Adam8bit``): bfloat16 moments, and 8-bit block-wise ones
(:func:`lowmem_step`), as :mod:`adamlab.kernels.numba_lowmem` does, bit for bit.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .._files import write_atomic
from .adam_host import adam_flags, adam_scalars, array_launch

log = logging.getLogger(__name__)

#: the name :func:`adamlab.torch.fast.cpu_kernel` reports for this kernel
NAME = "cpp"

SOURCE = Path(__file__).with_name("cpp") / "adam_step.cpp"
LIB_NAME = "adam_step.so"

#: the flags that keep the kernel exact (plus optimisation; never -ffast-math)
EXACT_FLAGS = ("-O3", "-std=c++17", "-ffp-contract=off", "-fno-math-errno")

#: steps with fewer elements than this run on the calling thread alone
SERIAL_BELOW = 1 << 15

#: storage kind → (code in adam_step.cpp, storage dtype, compute dtype)
KINDS: dict[str, tuple[int, type, type]] = {
    "float32": (0, np.float32, np.float32),
    "float64": (1, np.float64, np.float64),
    "bfloat16": (2, np.uint16, np.float32),
    "float16": (3, np.uint16, np.float32),
}

_lock = threading.Lock()
_state: dict[str, Any] = {"lib": None, "reason": None, "tried": False}


# -- building ---------------------------------------------------------------------------------------


def compiler() -> str | None:
    """The C++ compiler the build uses (``$CXX``, else ``c++``), or None if absent."""
    return shutil.which(os.environ.get("CXX") or "c++")


def possible() -> bool:
    """Cheap guess whether :func:`load` can succeed: loaded already, or not tried and a
    compiler and PyTorch are present (the build itself is attempted only by :func:`load`).
    A missing compiler (or platform, or PyTorch) is remembered: it is looked for once."""
    if _state["tried"]:
        return _state["lib"] is not None
    reason = None
    if not sys.platform.startswith("linux"):
        reason = f"the C++ kernel is built on Linux only, not on {sys.platform}"
    elif not _has_torch():
        reason = "PyTorch is not installed"
    elif compiler() is None:
        reason = f"no C++ compiler found (looked for {os.environ.get('CXX') or 'c++'})"
    if reason is not None:
        with _lock:
            _state.update(tried=True, reason=reason)
        return False
    return True


@functools.cache
def _has_torch() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


@functools.cache
def _torch_layout() -> dict[str, Any]:
    """What the build needs from the installed PyTorch: headers, libraries, ABI, and the
    OpenMP runtime its libraries use (the one the kernel must share)."""
    import torch

    root = Path(torch.__file__).resolve().parent
    lib = root / "lib"
    openmp = "OpenMP" in torch.__config__.parallel_info().split("ATen parallel backend:")[-1]
    omp_lib = _openmp_runtime(lib / "libtorch_cpu.so") if openmp else None
    return {
        "include": root / "include",
        "lib": lib,
        "abi": int(torch._C._GLIBCXX_USE_CXX11_ABI),
        "openmp": openmp,
        "omp_lib": omp_lib,
        "version": torch.__version__,
    }


class _DlInfo(ctypes.Structure):
    _fields_ = [
        ("dli_fname", ctypes.c_char_p),
        ("dli_fbase", ctypes.c_void_p),
        ("dli_sname", ctypes.c_char_p),
        ("dli_saddr", ctypes.c_void_p),
    ]


def _openmp_runtime(library: Path | str) -> str | None:
    """The file of the OpenMP runtime that ``library`` (a loaded shared library) resolves
    ``omp_get_max_threads`` to, or None."""
    try:
        fn = ctypes.CDLL(str(library)).omp_get_max_threads
    except (OSError, AttributeError):
        return None
    return _file_of(ctypes.cast(fn, ctypes.c_void_p).value)


def _file_of(address: int | None) -> str | None:
    """The shared library holding ``address`` (dladdr), or None."""
    if not address:
        return None
    dladdr = None
    for name in (None, "libdl.so.2"):
        try:
            dladdr = ctypes.CDLL(name).dladdr
            break
        except (OSError, AttributeError):
            continue
    if dladdr is None:
        return None
    dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
    info = _DlInfo()
    if not dladdr(address, ctypes.byref(info)) or not info.dli_fname:
        return None
    return os.path.realpath(info.dli_fname.decode())


def _command(layout: dict[str, Any], out: Path) -> list[str]:
    cmd = [compiler() or "c++", *EXACT_FLAGS, "-shared", "-fPIC"]
    cmd += [f"-D_GLIBCXX_USE_CXX11_ABI={layout['abi']}", f"-I{layout['include']}"]
    if layout["openmp"]:
        cmd.append("-fopenmp")
    cmd += [str(SOURCE), "-o", str(out)]
    if layout["omp_lib"]:  # link PyTorch's own OpenMP runtime (first), never a second one
        cmd += ["-Wl,--as-needed", layout["omp_lib"]]
    cmd += [f"-L{layout['lib']}", "-lc10", "-ltorch_cpu", f"-Wl,-rpath,{layout['lib']}"]
    if layout["omp_lib"] and Path(layout["omp_lib"]).parent != Path(layout["lib"]):
        cmd.append(f"-Wl,-rpath,{Path(layout['omp_lib']).parent}")
    return cmd


def cache_root() -> Path:
    """Where builds are kept: ``$TORCH_EXTENSIONS_DIR``, else ``torch_extensions`` in the
    user's cache folder (``$XDG_CACHE_HOME``, else ``~/.cache``), as PyTorch's own."""
    root = os.environ.get("TORCH_EXTENSIONS_DIR")
    if root:
        return Path(root)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "torch_extensions"


def library_path(layout: dict[str, Any] | None = None) -> Path:
    """The cached library's path for this source, flags and PyTorch (built or not)."""
    layout = layout or _torch_layout()
    key = hashlib.sha256()
    key.update(SOURCE.read_bytes())
    for part in (
        *_command(layout, Path("out")),
        layout["version"],
        sys.platform,
        platform.machine(),
    ):
        key.update(str(part).encode() + b"\0")
    return cache_root() / f"adamlab_adam_step_{key.hexdigest()[:16]}" / LIB_NAME


#: beside a build, the compiler's message where it failed (later processes do not retry)
FAILED_NAME = "build-failed.txt"


def build(*, force: bool = False) -> Path:
    """Build the library unless a cached build exists (or ``force``); return its path.

    Safe to run from several processes at once: each compiles to a file of its own and
    renames it into place. Raises RuntimeError with the compiler's message on failure; the
    message is kept beside the build (:data:`FAILED_NAME`), so that later processes with
    the same source, compiler command and PyTorch raise it at once instead of compiling
    again (``force``, or removing that file, tries again).
    """
    layout = _torch_layout()
    path = library_path(layout)
    if path.exists() and not force:
        return path
    failed = path.parent / FAILED_NAME
    if force:
        failed.unlink(missing_ok=True)
    elif failed.exists():
        raise RuntimeError(
            f"an earlier build failed (remove {failed} to try again): {failed.read_text()}"
        )
    if compiler() is None:
        raise RuntimeError(f"no C++ compiler found (looked for {os.environ.get('CXX') or 'c++'})")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".build-", suffix=".so", dir=path.parent)
    os.close(fd)
    cmd = _command(layout, Path(tmp))
    t0 = time.perf_counter()
    log.info("adamlab: building the fused CPU Adam kernel (once): %s", " ".join(cmd))
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            message = f"building {SOURCE.name} failed ({' '.join(cmd)}):\n{out.stderr[-3000:]}"
            write_atomic(failed, lambda f: f.write(message))
            raise RuntimeError(message)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    log.info("adamlab: built %s in %.1f s", path, time.perf_counter() - t0)
    return path


# -- loading ------------------------------------------------------------------------------------------


def load() -> ctypes.CDLL | None:
    """The loaded library (built first if needed), or None if it cannot be had; the first
    call decides for the process (thread-safe), later calls return at once."""
    if _state["tried"]:
        return _state["lib"]
    with _lock:
        if not _state["tried"]:
            try:
                _state["lib"] = _load()
            except Exception as exc:
                _state["reason"] = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "adamlab: the C++ Adam kernel is unavailable, so fused CPU steps run the "
                    "numba kernel where numba is installed, else the reference path (the same "
                    "results, slower): %s",
                    _state["reason"],
                )
            _state["tried"] = True
    return _state["lib"]


def unavailable_reason() -> str | None:
    """Why :func:`load` returned None (None if it has not been tried or succeeded)."""
    return _state["reason"]


def _load() -> ctypes.CDLL:
    if not sys.platform.startswith("linux"):
        raise RuntimeError(f"the C++ kernel is built on Linux only, not on {sys.platform}")
    layout = _torch_layout()
    if layout["openmp"] and layout["omp_lib"] is None:
        raise RuntimeError("cannot find the OpenMP runtime PyTorch uses")
    path = build()
    lib = ctypes.CDLL(str(path))
    if layout["openmp"]:
        lib.adamlab_openmp_probe.restype = ctypes.c_void_p
        ours = _file_of(lib.adamlab_openmp_probe())
        if ours != layout["omp_lib"]:
            raise RuntimeError(
                f"the kernel's OpenMP runtime ({ours}) is not PyTorch's ({layout['omp_lib']})"
            )
    lib.adamlab_adam_step.argtypes = [
        ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p,
        ctypes.c_void_p, ctypes.c_int64,
    ]  # fmt: skip
    lib.adamlab_adam_step.restype = ctypes.c_int
    lib.adamlab_lowmem_step.argtypes = [ctypes.c_int] + [ctypes.c_void_p] * 3 + [
        ctypes.c_int64] + [ctypes.c_void_p] * 5 + [ctypes.c_int64]  # fmt: skip
    lib.adamlab_lowmem_step.restype = ctypes.c_int
    lib.adamlab_lowmem8_step.argtypes = [ctypes.c_int] + [ctypes.c_void_p] * 2 + [
        ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64] + [ctypes.c_void_p] * 6 + [
        ctypes.c_int64]  # fmt: skip
    lib.adamlab_lowmem8_step.restype = ctypes.c_int
    lib.adamlab_codes8.argtypes = [ctypes.c_void_p, ctypes.c_int64] + [ctypes.c_void_p] * 2 + [
        ctypes.c_int]  # fmt: skip
    lib.adamlab_codes8.restype = None
    lib.adamlab_bump_steps.argtypes = [
        ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_void_p,
    ]  # fmt: skip
    lib.adamlab_bump_steps.restype = ctypes.c_int
    lib.adamlab_set_isa.argtypes = [ctypes.c_int]
    lib.adamlab_set_isa.restype = ctypes.c_int
    lib.adamlab_num_threads.restype = ctypes.c_int
    lib.adamlab_floor_step.argtypes = [
        ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
    ]  # fmt: skip
    lib.adamlab_floor_step.restype = None
    lib.adamlab_arith_floor.argtypes = [
        ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p,
        ctypes.c_int64,
    ]  # fmt: skip
    lib.adamlab_arith_floor.restype = None
    lib.adamlab_parallel_width.argtypes = [ctypes.c_int64, ctypes.c_int64]
    lib.adamlab_parallel_width.restype = ctypes.c_int64
    lib.adamlab_abi_version.restype = ctypes.c_int
    # the tensor checks read Python-held tensors: called with the GIL held (the same library)
    held = ctypes.PyDLL(str(path))
    held.adamlab_check_tensors.argtypes = [ctypes.c_void_p, ctypes.c_int64] + [ctypes.c_void_p] * 3
    held.adamlab_check_params.argtypes = [ctypes.c_void_p, ctypes.c_int64] + [ctypes.c_void_p] * 4
    held.adamlab_describe_tensors.argtypes = [ctypes.c_void_p, ctypes.c_int64] + [
        ctypes.c_void_p
    ] * 2
    lib.with_gil = held
    if lib.adamlab_abi_version() != 8:
        raise RuntimeError(f"{path} has another interface version")
    _check_pool(lib)
    return lib


def _check_pool(lib: ctypes.CDLL) -> None:
    """The kernel's parallel region must run on PyTorch's thread pool: after a PyTorch op
    has started that pool on this thread, a region of the kernel starts no thread."""
    import torch

    if torch.get_num_threads() < 2 or not os.path.isdir("/proc/self/task"):
        return
    torch.ones(1 << 18).add_(1)  # an elementwise op large enough to run in parallel
    before = len(os.listdir("/proc/self/task"))
    lib.adamlab_parallel_width(1 << 22, SERIAL_BELOW)
    if len(os.listdir("/proc/self/task")) > before:
        raise RuntimeError(
            "the kernel's parallel region started threads of its own: its OpenMP runtime "
            "is not PyTorch's"
        )


def _lib() -> ctypes.CDLL:
    lib = load()
    if lib is None:
        raise RuntimeError(f"the C++ Adam kernel is unavailable: {unavailable_reason()}")
    return lib


# -- the kernel's interface (as numba_adam's) ---------------------------------------------------------


def _kernel(ptrs, sizes, offsets, code, sc, fl) -> None:
    """One launch: ``ptrs`` int64 (5, n) C-contiguous, ``offsets`` int64 (n + 1) prefix sums
    of ``sizes``; ``sc`` the compute dtype's 12 scalars, ``fl`` int64 flags."""
    rc = _lib().adamlab_adam_step(
        code, ptrs.ctypes.data, offsets.ctypes.data, ptrs.shape[1], sc.ctypes.data,
        fl.ctypes.data, SERIAL_BELOW,
    )  # fmt: skip
    if rc != 0:
        raise RuntimeError("the C++ Adam kernel failed")


def launch_plan(kind: str, sizes: np.ndarray) -> tuple[Any, np.ndarray, int]:
    """What a launch over tensors of ``sizes`` needs besides the addresses and scalars:
    (kernel, offsets, kind code); call ``kernel(ptrs, sizes, offsets, code, sc, fl)``."""
    offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    return _kernel, offsets, KINDS[kind][0]


def launcher(kind: str, ptrs: np.ndarray, sizes: np.ndarray) -> Callable[[Any, Any], None]:
    """A launch kept between steps (:mod:`adamlab.torch.fast`'s plans): ``run(sc, fl)`` steps
    the tensors at ``ptrs`` (int64 (5, n), C-contiguous; its rows may be rewritten in place
    between calls, e.g. the gradients' addresses). The addresses of the tables are read once,
    so a call costs one foreign call (a step of many small tensors is host-bound)."""
    _, offsets, code = launch_plan(kind, sizes)
    fn = _lib().adamlab_adam_step
    a_ptrs, a_offsets, n = ptrs.ctypes.data, offsets.ctypes.data, ptrs.shape[1]

    def run(sc: np.ndarray, fl: np.ndarray, _keep=(ptrs, offsets)) -> None:
        if fn(code, a_ptrs, a_offsets, n, sc.ctypes.data, fl.ctypes.data, SERIAL_BELOW):
            raise RuntimeError("the C++ Adam kernel failed")

    return run


def adam_step_ptrs(
    kind: str, ptrs: np.ndarray, sizes: np.ndarray, sc: np.ndarray, fl: np.ndarray
) -> None:
    """Run the fused step over tensors given by address. ``ptrs``: int64 (5, n) for p, g, m,
    v, v_max (pass m's address for v_max without AMSGrad); ``sizes``: int64 (n,) elements;
    ``sc``: the 12 scalars in the kind's compute dtype; ``fl``: the 4 int64 flags."""
    kernel, offsets, code = launch_plan(kind, sizes)
    ptrs = np.ascontiguousarray(ptrs, dtype=np.int64)
    sc = np.ascontiguousarray(sc)
    fl = np.ascontiguousarray(fl, dtype=np.int64)
    if ptrs.shape != (5, len(sizes)) or sc.shape != (12,) or fl.shape != (4,):
        raise ValueError("fused step: ptrs (5, n), 12 scalars and 4 flags expected")
    if sc.dtype != KINDS[kind][2]:
        raise ValueError(f"fused step: {kind} takes {np.dtype(KINDS[kind][2])} scalars")
    kernel(ptrs, sizes, offsets, code, sc, fl)


def adam_step_arrays(
    p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, v_max: np.ndarray | None,
    *, kind: str | None = None, sc: np.ndarray, fl: np.ndarray,
) -> None:  # fmt: skip
    """The fused step on contiguous NumPy arrays, in place (``kind`` defaults to their dtype;
    pass "bfloat16"/"float16" for uint16 arrays holding those bits)."""
    kind, ptrs, sizes = array_launch(p, g, m, v, v_max, kind, KINDS)
    adam_step_ptrs(kind, ptrs, sizes, sc, fl)


#: parameter kinds of the low-precision-state step (its codes in adam_step.cpp)
LOWMEM_KINDS = {"float32": 0, "bfloat16": 2}
#: state modes the C++ low-precision step takes (numba_lowmem's MODE_FP32, MODE_BF16), and
#: the 8-bit one (MODE_8BIT), which its launches by chunks take
LOWMEM_MODES = (0, 1)
MODE_8BIT = 2


def lowmem_step(
    kind: str, ptrs: np.ndarray, sizes: np.ndarray, modes: np.ndarray, *, sc: np.ndarray,
    fl: np.ndarray, scales: np.ndarray | None = None, state_keys: np.ndarray | None = None,
    param_keys: np.ndarray | None = None, block_size: int | None = None,
) -> None:  # fmt: skip
    """The step with low-precision state (:func:`adamlab.kernels.numba_lowmem.lowmem_step`,
    the same bits) on PyTorch's thread pool. ``kind``: the parameters' storage ("float32" or
    "bfloat16"); ``ptrs``: int64 (6, n) addresses of p, g, m, v (rows 4 and 5 unused but for
    8-bit state); ``sc``: float32 scalars, ``fl``: flags (no AMSGrad); the options as
    numba_lowmem's, each None when off. With 8-bit state among the tensors (mode 2: rows
    2 and 3 the codes, rows 4 and 5 the absmax tables), ``block_size`` is needed and the
    launch goes by chunks (:func:`lowmem8_launcher`)."""
    n = len(sizes)
    arrays = {
        "ptrs": (ptrs, np.int64, (6, n)), "modes": (modes, np.int64, (n,)),
        "sc": (sc, np.float32, (12,)), "fl": (fl, np.int64, (4,)),
        "scales": (scales, np.float32, (2, n)), "state_keys": (state_keys, np.uint64, (2, n)),
        "param_keys": (param_keys, np.uint64, (1, n)),
    }  # fmt: skip
    for name, (a, dtype, shape) in arrays.items():
        if a is not None and (a.dtype != dtype or a.shape != shape or not a.flags.c_contiguous):
            raise ValueError(f"lowmem step: {name} must be a contiguous {np.dtype(dtype)} {shape}")
    eight_bit = bool((modes == MODE_8BIT).any())
    allowed = (*LOWMEM_MODES, MODE_8BIT) if block_size is not None else LOWMEM_MODES
    if kind not in LOWMEM_KINDS or not np.isin(modes, allowed).all() or fl[2] != 0:
        raise ValueError(
            f"lowmem step: the C++ kernel takes float32/bfloat16 parameters with float32, "
            f"bfloat16 or (given block_size) 8-bit state and no AMSGrad (got {kind!r}, modes "
            f"{sorted(set(modes.tolist()))})"
        )
    if eight_bit:
        go = lowmem8_launcher(kind, ptrs, sizes, modes, block_size)
    else:
        go = lowmem_launcher(kind, ptrs, sizes, modes)
    go(sc, fl, scales, state_keys, param_keys)


def lowmem8_launcher(
    kind: str, ptrs: np.ndarray, sizes: np.ndarray, modes: np.ndarray, block_size: int
) -> Callable[..., None]:
    """:func:`lowmem_launcher` for launches with 8-bit state (numba_lowmem's rule, the same
    bits, on PyTorch's pool): by chunks of whole blocks (:func:`lowmem_tables.chunk_table`,
    made once here), in parallel unless the launch is small."""
    from . import lowmem_tables

    block_size = int(block_size)
    if block_size < 1 or block_size & (block_size - 1):
        raise ValueError(
            f"8-bit step: block_size must be a positive power of two, got {block_size}"
        )
    code, n = LOWMEM_KINDS[kind], len(sizes)
    chunks = lowmem_tables.chunk_table(sizes, block_size)
    tab = lowmem_tables.cpp_tables(int(block_size))
    fn = _lib().adamlab_lowmem8_step
    head = (code, ptrs.ctypes.data, modes.ctypes.data, n, chunks.ctypes.data, len(chunks))

    def run(sc, fl, scales=None, state_keys=None, param_keys=None, _keep=(ptrs, modes, chunks)):
        rc = fn(*head, sc.ctypes.data, fl.ctypes.data, _addr(scales), _addr(state_keys),
                _addr(param_keys), tab.ctypes.data, SERIAL_BELOW)  # fmt: skip
        if rc != 0:
            raise RuntimeError("the C++ 8-bit Adam kernel failed")

    return run


def codes8(x: np.ndarray, signed: bool) -> np.ndarray:
    """For tests: the 8-bit kernel's code of each normalized value of ``x`` (float32, in
    [-1, 1]), by the path it takes (:func:`set_isa` applies)."""
    from . import lowmem_tables

    x = np.ascontiguousarray(x, dtype=np.float32)
    q = np.empty(x.shape, np.uint8)
    tab = lowmem_tables.cpp_tables(256)  # (the block size plays no part here)
    _lib().adamlab_codes8(x.ctypes.data, x.size, q.ctypes.data, tab.ctypes.data, 0 if signed else 1)
    return q


def _addr(a: np.ndarray | None) -> int | None:
    return None if a is None else a.ctypes.data


def lowmem_launcher(
    kind: str, ptrs: np.ndarray, sizes: np.ndarray, modes: np.ndarray
) -> Callable[..., None]:
    """:func:`lowmem_step` kept between steps (:mod:`adamlab.torch.fast`'s plans):
    ``run(sc, fl, scales=None, state_keys=None, param_keys=None)`` steps the tensors at
    ``ptrs`` (int64 (6, n), C-contiguous; rows may be rewritten in place between calls, e.g.
    the gradients'), one foreign call. The caller passes arrays of the shapes and dtypes
    :func:`lowmem_step` checks, and flags without AMSGrad (the kernel refuses AMSGrad and
    8-bit modes, and writes nothing then)."""
    code, n = LOWMEM_KINDS[kind], len(sizes)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    fn = _lib().adamlab_lowmem_step
    head = (code, ptrs.ctypes.data, offsets.ctypes.data, modes.ctypes.data, n)

    def run(sc, fl, scales=None, state_keys=None, param_keys=None, _keep=(ptrs, offsets, modes)):
        rc = fn(*head, sc.ctypes.data, fl.ctypes.data, _addr(scales), _addr(state_keys),
                _addr(param_keys), SERIAL_BELOW)  # fmt: skip
        if rc != 0:
            raise RuntimeError("the C++ low-precision Adam kernel failed")

    return run


class TensorCheck:
    """A plan's record of tensors (:mod:`adamlab.torch.fast`): their TensorImpl addresses
    (``Tensor._cdata``), scalar types, sizes and data addresses, and checks that run in the
    library, with the GIL held, over all of them at once (in Python each address takes
    several dependent calls, each a cache miss after the previous step's stream; the
    library prefetches them all first). The caller must know the tensors alive (the same
    objects: held, or checked by identity) before calling a check.

    ``check()``: every tensor is still a plain contiguous strided CPU tensor of the recorded
    type and size at the recorded address. ``check_params(out)``: the same, where the
    tensors are parameters, and each has a gradient that is a plain contiguous strided CPU
    tensor of the parameter's type and size; the gradients' addresses go to ``out`` (the
    address of an int64 array). Both return whether all passed."""

    def __init__(self, tensors: list) -> None:
        lib = _lib().with_gil
        self._check, self._check_params = lib.adamlab_check_tensors, lib.adamlab_check_params
        describe = lib.adamlab_describe_tensors
        self.n = n = len(tensors)
        self.impls = np.array([t._cdata for t in tensors], dtype=np.int64)
        self.types = np.empty(n, np.int64)
        self.numels = np.empty(n, np.int64)
        if describe(self.impls.ctypes.data, n, self.types.ctypes.data, self.numels.ctypes.data):
            raise RuntimeError("the C++ kernel could not read the tensors")
        self.ptrs = np.array([t.data_ptr() for t in tensors], dtype=np.int64)
        self._args = tuple(a.ctypes.data for a in (self.impls, self.types, self.numels, self.ptrs))

    def check(self) -> bool:
        a, types, numels, ptrs = self._args
        return self._check(a, self.n, types, numels, ptrs) == 1

    def check_params(self, out: int) -> bool:
        a, types, numels, ptrs = self._args
        return self._check_params(a, self.n, types, numels, ptrs, out) == 1


def bump_steps(addrs: list[int] | np.ndarray, dtype: Any) -> np.ndarray:
    """Add 1 to the 0-d step tensors at ``addrs`` (float32 or float64, given as a torch or
    NumPy dtype); return their old values (float64)."""
    return bumper(addrs, dtype)()[0]


def bumper(addrs: np.ndarray, dtype: Any) -> Callable[[], tuple[np.ndarray, bool]]:
    """:func:`bump_steps` kept between steps: ``bump()`` adds 1 to the step tensors at
    ``addrs`` and returns (their old values, whether those are all equal); the returned array
    is reused by the next call."""
    addrs = np.ascontiguousarray(addrs, dtype=np.int64)
    out = np.empty(len(addrs), np.float64)
    fn = _lib().adamlab_bump_steps
    args = (addrs.ctypes.data, len(addrs), 1 if "64" in str(dtype) else 0, out.ctypes.data)

    def bump(_keep=addrs) -> tuple[np.ndarray, bool]:
        return out, fn(*args) == 1

    return bump


def set_isa(choice: str) -> str:
    """Which compiled loops run: "auto" (by CPU, the default), "baseline" or "avx2" (for
    tests; "avx2" where the CPU lacks it gives the baseline). Returns the one in force."""
    code = {"auto": -1, "baseline": 0, "avx2": 1}[choice]
    return "avx2" if _lib().adamlab_set_isa(code) == 1 else "baseline"


def num_threads() -> int:
    """``at::get_num_threads()`` as the kernel sees it."""
    return int(_lib().adamlab_num_threads())


def floor_step(ptrs: np.ndarray, offsets: np.ndarray) -> None:
    """For benchmarks: a float32 pass that moves the bytes of a step (reads p, g, m, v;
    writes p, m, v) with no arithmetic to speak of, over the same blocks and threads. p keeps
    its values (it is rewritten as p − 0·g); m and v are scratch."""
    _lib().adamlab_floor_step(ptrs.ctypes.data, offsets.ctypes.data, ptrs.shape[1], SERIAL_BELOW)


def arith_floor(scratch: np.ndarray, total: int, scalars: np.ndarray) -> None:
    """For benchmarks: the arithmetic of a float32 step of ``total`` elements with Adam's
    defaults (the element rule of the low-precision kernels, which the 8-bit and bfloat16
    steps run), over the same blocks and threads as a step, with next to none of its memory
    traffic: each thread steps its own slot of ``scratch`` (float32, C-contiguous, writeable,
    shape (slots, 4, width): rows p, g, m, v; small enough for the L1 cache; a slot for
    every thread the launch runs on, :func:`parallel_width`) over and over. ``scalars``:
    float32, as :func:`adam_host.adam_scalars` gives them."""
    if not (
        isinstance(scratch, np.ndarray) and isinstance(scalars, np.ndarray)
        and scratch.dtype == np.float32 and scratch.ndim == 3 and scratch.shape[1] == 4
        and scratch.flags.c_contiguous and scratch.flags.writeable and scratch.flags.aligned
        and scratch.shape[2] >= 1 and scalars.dtype == np.float32 and scalars.shape == (12,)
        and int(total) >= 0
    ):  # fmt: skip
        raise ValueError(
            "arith_floor: writeable float32 scratch (slots, 4, width) and 12 float32 scalars "
            "expected"
        )
    slots, _, width = scratch.shape
    threads = parallel_width(total)
    if slots < threads:
        raise ValueError(f"arith_floor: {threads} threads would share {slots} scratch slots")
    sc = np.ascontiguousarray(scalars)
    _lib().adamlab_arith_floor(
        scratch.ctypes.data, width, slots, total, sc.ctypes.data, SERIAL_BELOW
    )


def parallel_width(n_elements: int) -> int:
    """How many threads of PyTorch's pool a step over ``n_elements`` runs on, now."""
    return int(_lib().adamlab_parallel_width(n_elements, SERIAL_BELOW))


def warm_up() -> None:
    """Build or load the library and run each storage kind once."""
    for kind, (_, storage, compute) in KINDS.items():
        sc = adam_scalars(
            c1=0.1, c2=0.001, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
            eps_root=0.0, dtype=compute,
        )  # fmt: skip
        fl = adam_flags(
            maximize=False, weight_decay=0.0, decoupled=False, amsgrad=False,
            amsgrad_variant="raw", eps_placement="after_correction",
        )  # fmt: skip
        adam_step_arrays(*[np.zeros(3, dtype=storage) for _ in range(5)], kind=kind, sc=sc, fl=fl)
