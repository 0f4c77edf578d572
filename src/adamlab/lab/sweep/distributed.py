"""Distributed engines: a sweep's blocks on a Dask or a Ray cluster, the same table.

``engine="dask"`` and ``engine="ray"`` ship **blocks of the vectorised plan** (many
configurations of one group, one problem, one seed per task), never one task per
configuration: a worker runs a block exactly as ``engine="vectorized"`` runs it in this process
(:func:`run_block`: :func:`~adamlab.lab.sweep.engines.run_configs` on the block's
configurations), so the table is the same bit for bit whatever the engine, the block size or the
number of workers. A task carries only what its block needs: the optimizer class, the block's
configurations, the problem and the run settings (never the whole plan).

Where the cluster is (``address``):

* ``None``: a local cluster on this machine, ``workers`` processes of one thread each, started
  when the first block is due and closed when the sweep ends (the same command works on a
  laptop and a cluster);
* Dask: ``"tcp://host:8786"`` (a running ``dask scheduler``), a ``distributed.Client``, or a
  cluster object (``dask_jobqueue.SLURMCluster``, ``LocalCluster``, …);
* Ray: ``"auto"`` (the cluster this machine belongs to), ``"ray://host:10001"`` (Ray Client) or
  ``"host:6379"``; a Ray already initialised in this process is used as it is.

An address is checked when the engine is picked, before anything is written: a host that does
not answer fails in seconds with one line naming it. A block that fails (a schedule that
raises, a worker that died more often than the scheduler retries) becomes a
:class:`BlockFailure` with the reason in one line, never a remote traceback; the sweep goes on
with the other blocks and then raises :class:`BlocksFailedError`. A worker killed mid-block costs
that block only: the scheduler (Dask's, Ray's) runs it again elsewhere, and records are written
by this process as blocks arrive, keyed by content, so nothing is lost or written twice.

dask.distributed and Ray are optional (``pip install 'adamlab[dask]'`` / ``'adamlab[ray]'``)
and imported only here, only when used.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import math
import os
import socket
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

from ... import __version__
from ...optim import Optimizer
from ...problems import Problem
from .engines import Engine, run_configs
from .plan import Block, Plan, problem_id

__all__ = [
    "NO_DASK",
    "NO_RAY",
    "BlockFailure",
    "BlockTask",
    "BlocksFailedError",
    "Dask",
    "Ray",
    "describe_block",
    "local_dask_cluster",
    "run_block",
]  # fmt: skip

NO_DASK = "engine='dask' needs dask.distributed: pip install 'adamlab[dask]'"
NO_RAY = "engine='ray' needs Ray: pip install 'adamlab[ray]'"
#: seconds to wait for a cluster's address to answer before saying it does not
CONNECT_TIMEOUT = 5.0
#: blocks per worker slot when the engine cuts them itself: enough that a slow block or a
#: restarted worker does not leave the others idle at the end, few enough to stay vectorised
BLOCKS_PER_SLOT = 4
#: but no smaller than this many parameters (configurations × dim): a vectorised step costs
#: about half a millisecond however few rows it has, so smaller blocks of a cheap problem
#: cost more in total than they gain in parallel (Rosenbrock: 8,192 configurations; the
#: digits MLP: 7)
MIN_BLOCK_PARAMS = 16_384


@dataclasses.dataclass(frozen=True)
class BlockFailure:
    """What an engine yields instead of a block's records when the block failed: the reason,
    in one line (the library's message where it raised one)."""

    reason: str


class BlocksFailedError(RuntimeError):
    """Some blocks failed; the others' records were kept (and saved where ``out`` was given),
    so a rerun computes only what is missing. ``failures``: one line per failed block."""

    def __init__(self, message: str, failures: Sequence[str]) -> None:
        super().__init__(message)
        self.failures = list(failures)


@dataclasses.dataclass(frozen=True)
class BlockTask:
    """What a worker needs to run one block, and nothing more (no plan, no other block's
    configurations): small and picklable. One object, so that no scheduler mistakes a tuple
    of the configurations (a schedule first) for a task of its own graph."""

    cls: type[Optimizer]
    configs: list[dict[str, Any]]
    problem: Problem
    args: dict[str, Any]
    version: str = __version__  #: the sweep's adamlab (part of every record's key)

    @classmethod
    def of(cls, plan: Plan, block: Block) -> BlockTask:
        args = {
            "steps": plan.steps, "seed": block.seed, "target": plan.target, "start": plan.start,
            "eval_every": plan.eval_every, "curve": plan.curve,
        }  # fmt: skip
        return cls(plan.cls, [plan.configs[c] for c in block.cids], block.problem, args)


def run_block(task: BlockTask) -> tuple[bool, Any]:
    """What a worker runs: ``(True, records)``, or ``(False, reason)`` if the block raised.

    The configurations run together, one vectorised pass, as ``engine="vectorized"`` runs them;
    an exception becomes its message here, in the worker, so that what comes back is one line
    and not a remote traceback (and the cluster does not retry a block that can only fail
    again)."""
    if task.version != __version__:  # its records would be filed under the wrong code
        return False, (
            f"the worker runs adamlab {__version__}, this sweep adamlab {task.version}: "
            "install the same version on the cluster"
        )
    try:
        return True, run_configs(task.cls, task.configs, task.problem, **task.args)
    except Exception as e:  # every failure of a block is reported, not raised
        return False, reason(e)


def reason(e: BaseException, limit: int = 400) -> str:
    """One line for an exception: the library's own message for a ValueError or TypeError
    (they name the value and the valid range), else the exception's type and first line."""
    lines = str(e).strip().splitlines()
    text = lines[0].strip() if lines else ""
    if not (isinstance(e, (ValueError, TypeError)) and text):
        text = f"{type(e).__name__}: {text}" if text else type(e).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_block(block: Block) -> str:
    """``"mlp-digits, seed 0, configurations 0-7"``: which runs a block holds."""
    ids = block.cids
    if len(ids) == 1:
        which = f"configuration {ids[0]}"
    elif ids == tuple(range(ids[0], ids[-1] + 1)):
        which = f"configurations {ids[0]}-{ids[-1]}"
    else:
        shown = ", ".join(map(str, ids[:6])) + (", …" if len(ids) > 6 else "")
        which = f"{len(ids)} configurations ({shown})"
    return f"{problem_id(block.problem)}, seed {block.seed}, {which}"


def balance(blocks: Sequence[Block], slots: int) -> list[Block]:
    """Cut blocks (each at most the vectorised budget) into nearly equal pieces: about
    :data:`BLOCKS_PER_SLOT` per worker slot over the whole sweep, each of at least
    :data:`MIN_BLOCK_PARAMS` parameters; the largest blocks that keep every worker busy."""
    runs = sum(len(b.cids) for b in blocks)
    share = math.ceil(runs / (BLOCKS_PER_SLOT * max(1, slots)))
    out = []
    for b in blocks:
        size = max(1, share, math.ceil(MIN_BLOCK_PARAMS / max(1, b.problem.dim)))
        pieces = math.ceil(len(b.cids) / size)
        base, extra = divmod(len(b.cids), pieces)
        start = 0
        for j in range(pieces):
            stop = start + base + (j < extra)
            out.append(dataclasses.replace(b, cids=b.cids[start:stop]))
            start = stop
    return out


def local_dask_cluster(workers: int) -> Any:
    """A local Dask cluster: ``workers`` processes of one thread each, no dashboard port to
    collide on, and without the ``MALLOC_TRIM_THRESHOLD_`` that Dask's nanny otherwise puts
    into its workers' environment (with it glibc returns every large temporary to the OS and
    faults it back in: a vectorised block of the digits MLP runs about 2.8 times slower)."""
    import dask
    from dask.distributed import LocalCluster

    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        return LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
            silence_logs=logging.ERROR,
        )  # fmt: skip


# -- addresses -------------------------------------------------------------------------------


def _host_port(address: str, default_port: int, what: str) -> tuple[str, int]:
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        port = parts.port or default_port
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise ValueError(f"{what} address {address!r} is not [scheme://]host[:port]")
    return parts.hostname, port


def probe(address: str, default_port: int, what: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Fail in seconds, with one line naming the address, if nothing answers there."""
    host, port = _host_port(address, default_port, what)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        why = (
            f"no answer within {timeout:g} s"
            if isinstance(e, TimeoutError)
            else (e.strerror or str(e) or type(e).__name__)
        )
        raise ConnectionError(
            f"cannot reach the {what} at {address!r} ({host}:{port}): {why}; is it running there?"
        ) from None


DASK_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx", "inproc")
#: what Dask's nanny writes into the environment of the process that starts it
NANNY_ENVIRON = (
    "MALLOC_TRIM_THRESHOLD_",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
)


def check_workers(workers: Any) -> int:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a whole number >= 1, got {workers!r}")
    return workers


# -- Dask --------------------------------------------------------------------------------------


@dataclasses.dataclass
class Dask(Engine):
    """Blocks as tasks on a Dask cluster (``address``; None: a local one of ``workers``
    processes). ``size``: configurations per block (None: :func:`balance` decides)."""

    name = "dask"
    address: Any = None
    workers: int = 2
    size: int | None = None

    def __post_init__(self) -> None:
        if importlib.util.find_spec("distributed") is None:
            raise ImportError(NO_DASK)
        check_workers(self.workers)
        self._client: Any = None
        self._own: list[Any] = []
        a = self.address
        if isinstance(a, str):
            scheme = urlsplit(a).scheme if "://" in a else "tcp"
            if scheme not in DASK_SCHEMES:
                raise ValueError(
                    f"Dask scheduler address {a!r}: unknown scheme {scheme!r}; "
                    f"use {', '.join(s + '://' for s in DASK_SCHEMES)} (e.g. tcp://host:8786)"
                )
            if scheme != "inproc":
                probe(a, 8786, "Dask scheduler")
        elif a is not None and not hasattr(a, "submit") and not hasattr(a, "scheduler_address"):
            raise TypeError(
                f"address for engine='dask' must be None, 'tcp://host:port', a "
                f"distributed.Client or a Dask cluster object, got {a!r}"
            )

    def block_size(self, plan: Plan, problem: Problem) -> int | None:
        return self.size

    def open(self) -> Any:
        """The client, connecting (or starting the local cluster) the first time."""
        if self._client is not None:
            return self._client
        from dask.distributed import Client

        a = self.address
        if a is None:
            # the nanny sets OMP_NUM_THREADS & co. in this process's environment too, for the
            # workers it spawns: put them back when the cluster closes
            self._environ = {k: os.environ.get(k) for k in NANNY_ENVIRON}
            cluster = local_dask_cluster(self.workers)
            self._own = [cluster]
            self._client = Client(cluster)
        elif hasattr(a, "submit"):  # a Client: the caller's to close
            self._client = a
        else:
            try:
                self._client = Client(a, timeout=f"{2 * CONNECT_TIMEOUT:g}s")
            except Exception as e:  # a refusal, a timeout, or something else answering there
                raise ConnectionError(
                    f"cannot connect to the Dask scheduler at {str(a)!r} ({reason(e)}); "
                    "is a Dask scheduler listening there?"
                ) from None
        if self._client is not a:
            self._own.insert(0, self._client)
        return self._client

    def start(self) -> None:
        if self.address is not None:  # a local cluster starts only when a block is due
            self.open()

    def slots(self) -> int:
        """Worker threads the cluster has now (at least 1; ``workers`` if none joined yet)."""
        return sum(self.open().nthreads().values()) or self.workers

    def split(self, plan: Plan, blocks: list[Block]) -> list[Block]:
        return blocks if self.size else balance(blocks, self.slots())

    def map(self, plan: Plan, blocks: Iterable[Block]) -> Iterator[tuple[Block, Any]]:
        from dask.distributed import as_completed

        client = self.open()
        futures = {}
        for b in blocks:
            key = f"adamlab_block-{uuid.uuid4().hex}"
            futures[client.submit(run_block, BlockTask.of(plan, b), key=key, pure=False)] = b
        try:
            for fut in as_completed(list(futures)):
                b = futures.pop(fut)
                try:
                    ok, out = fut.result()
                except Exception as e:  # e.g. KilledWorker after the scheduler's retries
                    ok, out = False, reason(e)
                fut.release()
                yield b, (out if ok else BlockFailure(out))
        finally:
            if futures:  # an interrupted sweep leaves nothing running on a shared cluster
                client.cancel(list(futures))

    def close(self) -> None:
        for obj in self._own:
            obj.close()
        self._own, self._client = [], None
        for k, v in self.__dict__.pop("_environ", {}).items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# -- Ray ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class Ray(Engine):
    """Blocks as Ray tasks (``address``: None starts a local Ray of ``workers`` CPUs; "auto",
    "ray://host:10001" or "host:6379" joins one). ``size`` as for :class:`Dask`."""

    name = "ray"
    address: str | None = None
    workers: int = 2
    size: int | None = None

    def __post_init__(self) -> None:
        if importlib.util.find_spec("ray") is None:
            raise ImportError(NO_RAY)
        check_workers(self.workers)
        self._own = False
        self._remote: Any = None
        a = self.address
        if a is not None and not isinstance(a, str):
            raise TypeError(
                f"address for engine='ray' must be None, 'auto', 'ray://host:port' or "
                f"'host:port', got {a!r}"
            )
        if a is not None and a != "auto":
            if a.startswith("ray://"):
                probe(a, 10001, "Ray cluster")
            elif "://" in a:
                raise ValueError(
                    f"Ray address {a!r}: use 'auto', 'ray://host:10001' (Ray Client) or "
                    "'host:6379' (the head node)"
                )
            else:
                probe(a, 6379, "Ray cluster")

    def block_size(self, plan: Plan, problem: Problem) -> int | None:
        return self.size

    def open(self) -> Any:
        import ray

        if self._remote is None:
            if not ray.is_initialized():
                kw: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
                try:
                    if self.address is None:
                        ray.init(num_cpus=self.workers, include_dashboard=False, **kw)
                    else:
                        ray.init(address=self.address, **kw)
                except (ConnectionError, TimeoutError, RuntimeError) as e:
                    where = (
                        "start a local Ray" if self.address is None
                        else f"connect to the Ray cluster at {self.address!r}"
                    )  # fmt: skip
                    raise ConnectionError(f"cannot {where} ({reason(e)})") from None
                self._own = True
            self._remote = ray.remote(run_block).options(max_retries=3)
        return ray

    def start(self) -> None:
        if self.address is not None:
            self.open()

    def slots(self) -> int:
        return int(self.open().cluster_resources().get("CPU", 0)) or self.workers

    def split(self, plan: Plan, blocks: list[Block]) -> list[Block]:
        return blocks if self.size else balance(blocks, self.slots())

    def map(self, plan: Plan, blocks: Iterable[Block]) -> Iterator[tuple[Block, Any]]:
        ray = self.open()
        refs = {self._remote.remote(BlockTask.of(plan, b)): b for b in blocks}
        try:
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1)
                for ref in ready:
                    b = refs.pop(ref)
                    try:
                        ok, out = ray.get(ref)
                    except Exception as e:  # e.g. a worker lost more often than retried
                        ok, out = False, reason(e)
                    yield b, (out if ok else BlockFailure(out))
        finally:
            for ref in refs:
                ray.cancel(ref)

    def close(self) -> None:
        if self._own:
            import ray

            ray.shutdown()
        self._own, self._remote = False, None
