"""Compute in worker processes, so that a request can be stopped at its time limit.

A Python thread cannot be stopped from outside, so every run goes to one of a few worker
processes (``spawn``: the same on Linux, macOS and Windows). Each worker imports adamlab,
matplotlib and SymPy once, then answers jobs from its pipe with :func:`catalog.handle`. A job
that runs past ``limits.seconds`` gets its worker killed and replaced, and the request gets
a 422 saying so; the server itself never computes, so it stays responsive while workers run.

The pool hands out idle workers in arrival order; with ``limits.waiting`` requests already
queued, a new one is refused at once with 429 rather than left to wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .errors import ApiError
from .request import Limits

log = logging.getLogger("adamlab.serve")

_CTX = multiprocessing.get_context("spawn")

#: how long a fresh worker may take to import everything and say it is ready
STARTUP_SECONDS = 120.0

#: extra address space a worker may map beyond what it holds after warming up (Linux)
MEMORY_BYTES = 2 * 1024**3


def _address_space() -> int | None:
    """This process's virtual memory size in bytes (Linux), else None."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def _limit_memory(extra: int) -> None:
    """Cap the address space at what the worker holds now plus ``extra`` (where the OS lets
    us: Linux), so that a problem that asks for absurd arrays fails with MemoryError."""
    now = _address_space()
    if now is None:
        return
    try:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = now + extra
        if hard != resource.RLIM_INFINITY:
            cap = min(cap, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    except (ImportError, ValueError, OSError):  # pragma: no cover - other platforms
        pass


def worker_main(conn: Any, memory: int) -> None:
    """A worker's life: warm up, say ready, then answer jobs until the pipe closes."""
    from . import catalog

    catalog.warm_up()
    _limit_memory(memory)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply = catalog.handle(job)
        except Exception as e:  # a bug, not a bad request: report it, keep serving
            import traceback

            reply = ("crash", f"{type(e).__name__}: {e}", traceback.format_exc())
        conn.send(reply)


class Worker:
    """One worker process and the parent's end of its pipe (used by one thread at a time)."""

    def __init__(self, memory: int = MEMORY_BYTES) -> None:
        self.conn, child = _CTX.Pipe()
        self.process = _CTX.Process(
            target=worker_main, args=(child, memory), name="adamlab-serve-worker", daemon=True
        )
        self.process.start()
        child.close()
        self.ready = False

    def call(self, job: dict[str, Any], seconds: float) -> tuple[Any, ...]:
        """Send ``job``, wait at most ``seconds`` for its reply (after the worker is ready)."""
        if not self.ready:
            if not self.conn.poll(STARTUP_SECONDS):
                raise OSError(f"the worker did not start within {STARTUP_SECONDS:g} s")
            self.conn.recv()
            self.ready = True
        self.conn.send(job)
        if not self.conn.poll(seconds):
            raise TimeoutError
        return self.conn.recv()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.process.kill()
            self.process.join(5)
        with contextlib.suppress(Exception):
            self.conn.close()


class Pool:
    """``size`` workers; :meth:`submit` runs a job on the next idle one."""

    def __init__(self, size: int, limits: Limits, memory: int = MEMORY_BYTES) -> None:
        self.size, self.limits, self.memory = size, limits, memory
        self._threads = ThreadPoolExecutor(max_workers=size, thread_name_prefix="adamlab-serve")
        self._idle: asyncio.Queue[Worker] | None = None
        self._waiting = 0
        self._all: set[Worker] = set()
        self._lock = threading.Lock()

    async def start(self) -> None:
        self._idle = asyncio.Queue()
        for _ in range(self.size):
            self._idle.put_nowait(self._spawn())

    def _spawn(self) -> Worker:
        w = Worker(self.memory)
        with self._lock:
            self._all.add(w)
        return w

    def _retire(self, w: Worker) -> None:
        w.stop()
        with self._lock:
            self._all.discard(w)

    async def close(self) -> None:
        with self._lock:
            workers = list(self._all)
        for w in workers:
            w.stop()
        self._threads.shutdown(wait=False, cancel_futures=True)

    def _call(self, worker: Worker, job: dict[str, Any]) -> tuple[tuple[Any, ...], Worker]:
        """In a thread: run ``job``; on a timeout or a dead worker, replace the worker."""
        try:
            return worker.call(job, self.limits.seconds), worker
        except TimeoutError:
            self._retire(worker)
            return ("timeout",), self._spawn()
        except (EOFError, OSError) as e:  # it died (or never started): a bug, not the request
            self._retire(worker)
            return (
                "crash",
                f"the worker process ended ({type(e).__name__}: {e})",
                "",
            ), self._spawn()

    async def submit(self, job: dict[str, Any]) -> tuple[bytes, float]:
        """Run ``job`` (see :func:`catalog.handle`); return ``(bytes, compute seconds)`` or
        raise :class:`ApiError` (the library's refusal, a limit, or a busy server)."""
        assert self._idle is not None, "Pool.start() first"
        if self._waiting >= self.limits.waiting and self._idle.empty():
            raise ApiError(
                429, f"the playground is busy ({self._waiting} requests waiting); try again"
            )
        self._waiting += 1
        try:
            worker = await self._idle.get()
        finally:
            self._waiting -= 1
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._threads, self._call, worker, job)
        # the worker goes back to the pool when its job is done, even if the client left
        future.add_done_callback(lambda f: self._idle.put_nowait(f.result()[1]))  # type: ignore[union-attr]
        reply, _ = await asyncio.shield(future)
        kind = reply[0]
        if kind == "ok":
            return reply[1], reply[2]
        if kind == "error":
            _, status, message, field, key = reply
            raise ApiError(status, message, field, key)
        if kind == "timeout":
            raise ApiError(
                422,
                f"the run took longer than the playground's limit of {self.limits.seconds:g} s "
                "per request and was stopped; use fewer steps or optimizers",
            )
        log.error("a job failed: %s\n%s", reply[1], reply[2])
        raise RuntimeError(reply[1])
