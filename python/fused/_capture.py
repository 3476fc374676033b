"""Capture what a UDF prints, per thread, while still showing it.

``sys.stdout``/``sys.stderr`` are process-wide, but UDFs run concurrently in threads (the
catalog's ``run_pool`` calls ``fused.run`` from a thread pool). A :class:`_Router` stands in
for the stream while any capture is active: each write goes to the real stream and to every
capture open in the writing thread (nested runs see their inner runs' output too).
"""

from __future__ import annotations

import sys
import threading
from typing import Any

_local = threading.local()  # .open: this thread's open captures, innermost last
_lock = threading.Lock()
_active = 0  # captures open in all threads (+1 once pinned); the routers go when it drops to 0
_pinned = False  # the routers stay for good: a capture only checks they are still in place


class _Router:
    def __init__(self, name: str, real: Any):
        self._name = name
        self._real = real

    def write(self, text: str) -> int:
        for captured in getattr(_local, "open", ()):
            getattr(captured, self._name).append(text)
        return self._real.write(text)

    def flush(self) -> None:
        self._real.flush()

    def __getattr__(self, attr: str) -> Any:  # encoding, fileno, buffer, isatty, ...
        return getattr(self._real, attr)


def _install() -> None:
    """Put routers in front of ``sys.stdout``/``sys.stderr`` unless they are there (under _lock)."""
    if type(sys.stdout) is not _Router:
        sys.stdout = _Router("out", sys.stdout)
    if type(sys.stderr) is not _Router:
        sys.stderr = _Router("err", sys.stderr)


def pin() -> None:
    """Keep the routers installed for good: a worker captures every call, and putting them in
    place and back on each one cost a tenth of a trivial call."""
    global _active, _pinned
    with _lock:
        _install()
        _active += 1
        _pinned = True


class capture:  # noqa: N801 - used as `with capture() as captured:`, like a function
    """Capture this thread's writes to stdout and stderr; they are still shown.

    ``with capture() as captured:`` gives the capture itself: ``captured.stdout`` and
    ``captured.stderr`` are the text written while it was open. A class rather than a
    generator-based context manager: it wraps every UDF call, and a worker makes thousands of
    calls a second.
    """

    __slots__ = ("out", "err", "_open", "_counted")

    def __enter__(self) -> "capture":
        global _active
        self.out: list[str] = []
        self.err: list[str] = []
        # Pinned routers still in place (code may replace sys.stdout): nothing to count.
        self._counted = not (_pinned and type(sys.stdout) is _Router and type(sys.stderr) is _Router)
        if self._counted:
            with _lock:
                _install()
                _active += 1
        try:
            stack = _local.open
        except AttributeError:
            stack = _local.open = []
        stack.append(self)
        self._open = stack
        return self

    def __exit__(self, *exc: Any) -> None:
        global _active
        self._open.pop()
        if not self._counted:
            return
        with _lock:
            _active -= 1
            if _active == 0:
                if type(sys.stdout) is _Router:
                    sys.stdout = sys.stdout._real
                if type(sys.stderr) is _Router:
                    sys.stderr = sys.stderr._real

    @property
    def stdout(self) -> str:
        return "".join(self.out)

    @property
    def stderr(self) -> str:
        return "".join(self.err)
