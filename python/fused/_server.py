"""Find and run ``terrafused``, the C++ HTTP server behind ``terrafuse serve``.

The binary is looked up in this order (the first hit wins):

1. ``TERRAFUSE_SERVER_BIN``, an explicit path; it is an error if that is not an
   executable file.
2. ``fused/bin/terrafused`` inside the installed package: where wheels put it, and where
   ``pip install -e .`` copies it into site-packages.
3. ``<checkout>/build/*/engine/apps/terrafused`` when ``fused`` is imported from a source
   checkout: the editable build directory (``build/cp311-cp311-linux_x86_64``) or a
   developer build directory (``build/dev``); the most recently built one wins.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

_ENV_BIN = "TERRAFUSE_SERVER_BIN"
_BINARY = "terrafused"
_STARTUP_LINE = re.compile(
    r"terrafused listening on (?P<url>http://(?P<host>\[[^\]]+\]|[^:/]+):(?P<port>\d+))"
)
# python/fused/_server.py -> the checkout's root, when running from one.
_CHECKOUT = Path(__file__).resolve().parents[2]


def find_terrafused() -> Path:
    """Return the path of the ``terrafused`` binary.

    Returns
    -------
    pathlib.Path
        The first of ``$TERRAFUSE_SERVER_BIN``, ``fused/bin/terrafused`` in the installed
        package, and ``build/*/engine/apps/terrafused`` in a source checkout.

    Raises
    ------
    FileNotFoundError
        When ``TERRAFUSE_SERVER_BIN`` names no executable file, or nothing was found; the
        message lists the places searched.
    """
    explicit = os.environ.get(_ENV_BIN)
    if explicit:
        path = Path(explicit).expanduser()
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise FileNotFoundError(f"{_ENV_BIN}={explicit!r} is not an executable file")

    import fused

    searched = []
    for package_dir in fused.__path__:
        candidate = Path(package_dir) / "bin" / _BINARY
        searched.append(str(candidate))
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate

    if (_CHECKOUT / "engine" / "apps").is_dir():
        pattern = _CHECKOUT / "build" / "*" / "engine" / "apps" / _BINARY
        searched.append(str(pattern))
        builds = [
            p
            for p in (_CHECKOUT / "build").glob(f"*/engine/apps/{_BINARY}")
            if os.access(p, os.X_OK)
        ]
        if builds:
            return max(builds, key=lambda p: p.stat().st_mtime)

    raise FileNotFoundError(
        f"cannot find the {_BINARY} binary; searched {', '.join(searched)}. Build it with "
        f"`make setup` (or `pip install -e .`), or set {_ENV_BIN} to its path"
    )


def find_web_root() -> Path | None:
    """Return the built workbench (``fused/web`` with an ``index.html``), or None.

    ``npm run build`` in ``web/`` (``scripts/setup.sh`` runs it) writes it into the
    package, so wheels ship it; terrafused serves it at ``/workbench``.
    """
    import fused

    for package_dir in fused.__path__:
        candidate = Path(package_dir) / "web"
        if (candidate / "index.html").is_file():
            return candidate
    return None


def _command(
    binary: str | os.PathLike | None,
    host: str | None,
    port: int | str | None,
    home: str | os.PathLike | None,
    workers: int | str | None,
    threads: int | str | None,
    log_level: str | None,
    debug_routes: bool,
) -> list[str]:
    # Values go through as given: terrafused validates them and names the bad one. The
    # workers run this interpreter, so they import the same `fused` as the caller.
    command = [str(binary or find_terrafused()), "--python", sys.executable]
    web_root = find_web_root()
    if web_root is not None:
        command += ["--web-root", str(web_root)]
    for flag, value in (
        ("--host", host),
        ("--port", port),
        ("--home", home),
        ("--workers", workers),
        ("--threads", threads),
        ("--log-level", log_level),
    ):
        if value is not None:
            command += [flag, str(value)]
    if debug_routes:
        command.append("--debug-routes")
    return command


def serve(
    *,
    host: str | None = None,
    port: int | str | None = None,
    home: str | os.PathLike | None = None,
    workers: int | str | None = None,
    threads: int | str | None = None,
    log_level: str | None = None,
    binary: str | os.PathLike | None = None,
) -> NoReturn:
    """Replace the current process with ``terrafused`` (what ``terrafuse serve`` does).

    Signals (Ctrl-C, ``SIGTERM``) then reach the server itself, which finishes in-flight
    requests before exiting, and the exit code is the server's. Arguments left as ``None``
    take the server's defaults: 127.0.0.1, port 8000, ``$TERRAFUSE_HOME`` or
    ``~/.terrafuse``, one worker per core.

    Raises
    ------
    FileNotFoundError
        When the binary cannot be found (see :func:`find_terrafused`).
    """
    command = _command(binary, host, port, home, workers, threads, log_level, False)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)


class ServerProcess:
    """A ``terrafused`` running in the background, started by :func:`start_server`.

    Attributes
    ----------
    process : subprocess.Popen
    host, port : the address it listens on (the real port when 0 was asked)
    url : ``http://HOST:PORT``
    base_url : ``http://HOST:PORT/server/v1``, the value for ``fused.options.base_url``
    """

    def __init__(self, command: list[str], env: dict[str, str] | None, startup_timeout: float):
        self.command = command
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._listening = threading.Event()
        self.host = ""
        self.port = 0
        self.url = ""
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
            errors="replace",
        )
        # The log must be drained continuously, or the server blocks once the pipe fills.
        self._reader = threading.Thread(target=self._read_log, name="terrafused-log", daemon=True)
        self._reader.start()
        deadline = time.monotonic() + startup_timeout
        while not self._listening.wait(0.05):
            if self.process.poll() is not None:
                self._reader.join(timeout=2)
                raise RuntimeError(
                    f"terrafused exited with code {self.process.returncode} before listening:\n"
                    f"{self.log_text()}"
                )
            if time.monotonic() > deadline:
                self.process.kill()
                self.process.wait()
                raise TimeoutError(
                    f"terrafused did not start listening within {startup_timeout} s:\n"
                    f"{self.log_text()}"
                )

    @property
    def base_url(self) -> str:
        return self.url + "/server/v1"

    def _read_log(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            line = line.rstrip("\n")
            with self._lock:
                self._lines.append(line)
            match = _STARTUP_LINE.search(line)
            if match and not self._listening.is_set():
                self.host = match["host"].strip("[]")
                self.port = int(match["port"])
                self.url = match["url"]
                self._listening.set()

    def log(self) -> list[str]:
        """Return the server's stderr lines so far (the startup line and logfmt events)."""
        with self._lock:
            return list(self._lines)

    def log_text(self) -> str:
        return "\n".join(self.log())

    def stop(self, timeout: float = 20) -> int:
        """Send ``SIGTERM``, wait for the graceful shutdown and return the exit code.

        The server is killed if it is still running after ``timeout`` seconds.
        """
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=5)
        return self.process.returncode

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_server(
    *,
    host: str | None = None,
    port: int | str = 0,
    home: str | os.PathLike | None = None,
    workers: int | str | None = None,
    threads: int | str | None = None,
    log_level: str | None = None,
    debug_routes: bool = False,
    binary: str | os.PathLike | None = None,
    env: dict[str, str] | None = None,
    startup_timeout: float = 30,
    extra_args: Sequence[str] = (),
) -> ServerProcess:
    """Start ``terrafused`` in the background and wait until it listens.

    Parameters
    ----------
    port : int, default 0
        0 picks a free port; read it from the returned object.
    debug_routes : bool, default False
        Also serve the ``/server/v1/_debug/...`` routes (tests only).
    env : dict, optional
        The server's environment (default: this process's).
    startup_timeout : float, default 30
        Seconds to wait for the ``terrafused listening on ...`` line.
    extra_args : sequence of str
        More flags for terrafused (``--udf-timeout``, ``--worker-max-calls``, ...).

    Other parameters are as for :func:`serve`.

    Returns
    -------
    ServerProcess
        Use as a context manager, or call ``stop()``.

    Raises
    ------
    RuntimeError
        When the server exits before listening (bad argument, port in use); the message
        holds its output.
    TimeoutError
        When it does not listen within ``startup_timeout`` seconds.
    """
    command = _command(binary, host, port, home, workers, threads, log_level, debug_routes) + list(extra_args)
    process = ServerProcess(command, env, startup_timeout)
    # Where the server keeps its state; its `credentials` file holds the local API token.
    process.home = Path(home) if home is not None else Path(
        os.environ.get("TERRAFUSE_HOME") or Path.home() / ".terrafuse")
    return process
