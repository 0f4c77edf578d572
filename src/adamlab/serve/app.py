"""The playground's ASGI app (Starlette): the page, its static files, and the JSON API.

======================  ======================================================================
``GET /``               the page (``static/index.html``); its configuration lives in the URL
``GET /static/...``     its scripts, style sheet and the vendored chart library (no CDN)
``GET /api``            this table as JSON: endpoints, limits, version, the seed demo's request
``GET /api/problems``   every problem: name, dimension, start, box, x*, f*, parameters
``GET /api/optimizers`` every optimizer: hyperparameters, kinds, defaults, ranges, help; schedules
``POST /api/compare``   a comparison in the CLI's vocabulary → the ``adamlab compare --json`` file
``POST /api/export``    the same, as a download: ``?format=json|csv|png|svg[&diagnostics=1]``
======================  ======================================================================

Every error is JSON, ``{"error": message, "field": name}``: 400 for input the library refuses
(in its words) or that is malformed, 404/405 for unknown paths and methods, 413/415 for a body
too large or not JSON, 422 for a request over one of the limits, 429 when too many are queued.
The app computes nothing: runs happen in worker processes (:mod:`.workers`) through the
adapter :mod:`.catalog`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import catalog
from .errors import ApiError
from .request import SEED_OPTS, Limits, parse_compare
from .workers import Pool

log = logging.getLogger("adamlab.serve")

STATIC = Path(__file__).resolve().parent / "static"

#: only this server's own origin, for everything (the page needs nothing else)
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]

#: the host names a loopback-bound server answers to (a guard against DNS rebinding)
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]", "::1")


def _error(status: int, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "field": field}, status_code=status)


class Guard:
    """ASGI middleware: refuse requests for other host names (when ``hosts`` is given), and
    add the security headers to every response, errors and static files included."""

    def __init__(self, app: ASGIApp, hosts: tuple[str, ...] | None) -> None:
        self.app, self.hosts = app, hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], *SECURITY_HEADERS]
            await send(message)

        if self.hosts is not None:
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1").lower()
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name not in self.hosts:
                response = _error(
                    400, f"this server answers requests for {', '.join(self.hosts[:2])} only, "
                    f"not {host or '(no host)'!r}",
                )  # fmt: skip
                await response(scope, receive, send_with_headers)
                return
        await self.app(scope, receive, send_with_headers)


async def _json_body(request: Request, limits: Limits) -> Any:
    """The request's JSON, within the size limit; ApiError for anything else."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise ApiError(415, "send the request body as JSON (Content-Type: application/json)")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.body_bytes:
        raise ApiError(413, f"the body is {declared} bytes; the limit is {limits.body_bytes}")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limits.body_bytes:
            raise ApiError(413, f"the body is over the limit of {limits.body_bytes} bytes")
    if not raw.strip():
        return {}

    def refuse(token: str) -> Any:  # NaN, Infinity: Python reads them, JSON has no such thing
        raise ApiError(400, f"the body is not strict JSON: {token} is not a JSON number")

    try:
        return json.loads(bytes(raw), parse_constant=refuse)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise ApiError(400, f"the body is not valid JSON: {e}") from None


def create_app(
    *,
    limits: Limits | None = None,
    workers: int | None = None,
    hosts: tuple[str, ...] | None = LOOPBACK_NAMES,
) -> ASGIApp:
    """The playground app (a Starlette app inside the :class:`Guard` middleware).

    Args:
        limits: what one request may ask for (:class:`~adamlab.serve.request.Limits`).
        workers: worker processes that run the comparisons (default: the CPU count, 1 … 4).
        hosts: the ``Host`` names answered (default: loopback names only); None for any.
    """
    limits = limits or Limits()
    size = workers if workers is not None else max(1, min(4, os.cpu_count() or 1))
    pool = Pool(size, limits)
    listings: dict[str, Any] = {}

    def list_everything() -> None:  # once, at start-up: the registry builds every problem
        listings["problems"] = {
            "problems": catalog.problems(limits),
            "expression": catalog.expression_syntax(),
        }
        listings["optimizers"] = {
            "optimizers": catalog.optimizers(),
            "schedules": catalog.schedule_list(),
        }

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await pool.start()
        try:
            await asyncio.to_thread(list_everything)
            yield
        finally:
            await pool.close()

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache"})

    async def api_index(request: Request) -> Response:
        return JSONResponse(
            {
                "adamlab": catalog.version(),
                "endpoints": {
                    "GET /api/problems": "every problem, its parameters and defaults",
                    "GET /api/optimizers": "every optimizer, its hyperparameters, kinds, "
                    "defaults and valid ranges; the schedules",
                    "POST /api/compare": "run a comparison: JSON with problem or function, "
                    "start, opt, steps, seed, repeats; returns the adamlab compare --json file",
                    "POST /api/export?format=json|csv|png|svg&diagnostics=0|1": "the same run "
                    "as a file to download",
                },
                "seed_demo": {"problem": "quadratic", "opt": list(SEED_OPTS), "steps": 50},
                "limits": limits.as_dict(),
            }
        )

    async def api_problems(request: Request) -> Response:
        return JSONResponse(listings["problems"])

    async def api_optimizers(request: Request) -> Response:
        return JSONResponse(listings["optimizers"])

    async def run_job(request: Request, job: dict[str, Any]) -> tuple[bytes, str]:
        t0 = time.perf_counter()
        req = parse_compare(await _json_body(request, limits), limits)
        job.update(request=req, limits=limits)
        data, seconds = await pool.submit(job)
        total = time.perf_counter() - t0
        return data, f"compute;dur={seconds * 1e3:.1f}, total;dur={total * 1e3:.1f}"

    async def api_compare(request: Request) -> Response:
        data, timing = await run_job(request, {"kind": "compare"})
        return Response(
            data,
            media_type="application/json",
            headers={"server-timing": timing, "cache-control": "no-store"},
        )

    async def api_export(request: Request) -> Response:
        fmt = request.query_params.get("format", "json")
        if fmt not in catalog.EXPORT_FORMATS:
            raise ApiError(
                400, f"unknown format {fmt!r}; choose one of {', '.join(catalog.EXPORT_FORMATS)}",
                "format",
            )  # fmt: skip
        diag = request.query_params.get("diagnostics", "0").lower()
        if diag not in ("0", "1", "false", "true"):
            raise ApiError(400, f"diagnostics must be 0 or 1, got {diag!r}", "diagnostics")
        job = {"kind": "export", "format": fmt, "diagnostics": diag in ("1", "true")}
        data, timing = await run_job(request, job)
        return Response(
            data,
            media_type=catalog.EXPORT_FORMATS[fmt],
            headers={
                "server-timing": timing,
                "cache-control": "no-store",
                "content-disposition": f'attachment; filename="adamlab-compare.{fmt}"',
            },
        )

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return JSONResponse(exc.body(), status_code=exc.status)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = {404: f"not found: {request.url.path}", 405: f"{request.method} is not "
                   f"allowed on {request.url.path}"}.get(exc.status_code, str(exc.detail))  # fmt: skip
        return _error(exc.status_code, message)

    async def on_crash(request: Request, exc: Exception) -> Response:
        log.error("internal error on %s %s: %r", request.method, request.url.path, exc)
        return _error(500, "internal error (the server's log has the details)")

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/api", api_index),
            Route("/api/problems", api_problems),
            Route("/api/optimizers", api_optimizers),
            Route("/api/compare", api_compare, methods=["POST"]),
            Route("/api/export", api_export, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC, follow_symlink=False), name="static"),
        ],
        exception_handlers={
            ApiError: on_api_error,
            HTTPException: on_http_error,
            Exception: on_crash,
        },
        lifespan=lifespan,
    )
    return Guard(app, hosts)
