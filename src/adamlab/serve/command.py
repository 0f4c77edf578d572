"""``adamlab serve``: start the playground on this machine.

    adamlab serve [--host 127.0.0.1] [--port 8765] [--open]

The CLI wires it with :func:`add_arguments` (the options) and :func:`run` (the command);
``python -m adamlab.serve`` runs the same through :func:`main`.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import socket
import sys
import threading
import time
from collections.abc import Iterator, Sequence

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must lie in [0, 65535], got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``adamlab serve``: ``--host``, ``--port``, ``--open``."""
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default {DEFAULT_HOST}: this machine only; anything "
        "else makes the playground reachable from the network, with a warning)",
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help=f"port to listen on (default {DEFAULT_PORT}; 0 picks a free one)",
    )
    parser.add_argument(
        "--open", action="store_true", help="open the page in the default web browser"
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _url(host: str, port: int) -> str:
    name = host.strip("[]")
    if name in ("0.0.0.0", "::"):
        name = "127.0.0.1"
    if ":" in name:
        name = f"[{name}]"
    return f"http://{name}:{port}/"


def run(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    open_browser: bool = False,
    *,
    workers: int | None = None,
) -> int:
    """Serve the playground until interrupted; the exit status (0, or 2 on bad input).

    Listens on ``host:port`` (``port=0``: a free port), prints the page's address, and with
    ``open_browser`` opens it. On a host other than loopback it prints a warning: the
    playground has no authentication, and anyone who can reach it can use its CPU.
    """
    try:
        import uvicorn

        from .app import LOOPBACK_NAMES, create_app
    except ImportError as e:
        print(
            f"adamlab: error: the playground needs {e.name or 'its web packages'}: "
            "pip install 'adamlab[serve]'",
            file=sys.stderr,
        )
        return 2
    loopback = is_loopback(host)
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    try:
        sock = socket.create_server((host.strip("[]"), port), family=family)
    except (OSError, OverflowError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        print(f"adamlab: error: cannot listen on {host}:{port}: {reason}", file=sys.stderr)
        return 2
    actual = sock.getsockname()[1]
    url = _url(host, actual)
    if not loopback:
        print(
            f"adamlab: warning: listening on {host}, reachable from other machines; the "
            "playground has no authentication and runs what any visitor asks (within its "
            "limits)",
            file=sys.stderr,
        )
    print(f"adamlab playground: {url}  (Ctrl+C to stop)", flush=True)
    if open_browser:
        import webbrowser

        threading.Timer(0.5, webbrowser.open, args=(url,)).start()
    app = create_app(workers=workers, hosts=LOOPBACK_NAMES if loopback else None)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # pragma: no cover - uvicorn handles SIGINT itself
        pass
    finally:
        sock.close()
    return 0


@contextlib.contextmanager
def running(*args: str, timeout: float = 60.0) -> Iterator[str]:
    """Run ``python -m adamlab.serve --port 0 ARGS`` in a child process; yield the page's
    address once the server answers, stop it afterwards (what the browser tests, the
    benchmark and the screenshot script use: the real command, on a free port)."""
    import subprocess
    import tempfile
    import urllib.request

    with tempfile.TemporaryFile(mode="w+") as log:  # the server's stderr, for a failure
        proc = subprocess.Popen(
            [sys.executable, "-m", "adamlab.serve", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )

        def failed(why: str) -> RuntimeError:
            proc.kill()
            proc.wait()
            log.seek(0)
            return RuntimeError(f"adamlab serve {why}: {log.read()[-2000:]}")

        try:
            line = proc.stdout.readline() if proc.stdout else ""
            if not line.startswith("adamlab playground: "):
                raise failed(f"did not start ({line.strip()!r})")
            url = line.split()[2]
            deadline = time.monotonic() + timeout
            while True:
                try:
                    with urllib.request.urlopen(url + "api", timeout=5) as r:
                        if r.status == 200:
                            break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise failed("does not answer") from None
                    time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m adamlab.serve [--host H] [--port P] [--open]``."""
    parser = argparse.ArgumentParser(
        prog="adamlab serve",
        description="Start the adamlab playground: a local web page whose numbers are "
        "adamlab's own.",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run(args.host, args.port, args.open)
