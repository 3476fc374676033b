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

_local = threading.local()
_lock = threading.Lock()
_active = 0  # captures open in all threads; the router is removed when it drops to 0


class _Router:
    def __init__(self, name: str, real: Any):
        self._name = name
        self._real = real

    def write(self, text: str) -> int:
        for parts in getattr(_local, self._name, ()):
            parts.append(text)
        return self._real.write(text)

    def flush(self) -> None:
        self._real.flush()

    def __getattr__(self, attr: str) -> Any:  # encoding, fileno, buffer, isatty, ...
        return getattr(self._real, attr)


class Captured:
    """Text written to stdout and stderr while the capture was open."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.err: list[str] = []

    @property
    def stdout(self) -> str:
        return "".join(self.out)

    @property
    def stderr(self) -> str:
        return "".join(self.err)


class capture:  # noqa: N801 - used as `with capture() as captured:`, like a function
    """Capture this thread's writes to stdout and stderr; they are still shown.

    A class rather than a generator-based context manager: it wraps every UDF call, and a
    worker makes thousands of calls a second.
    """

    __slots__ = ("captured", "_out_stack", "_err_stack")

    def __enter__(self) -> Captured:
        global _active
        captured = self.captured = Captured()
        with _lock:
            if _active == 0 or not isinstance(sys.stdout, _Router) or not isinstance(sys.stderr, _Router):
                if not isinstance(sys.stdout, _Router):
                    sys.stdout = _Router("out", sys.stdout)
                if not isinstance(sys.stderr, _Router):
                    sys.stderr = _Router("err", sys.stderr)
            _active += 1
        self._out_stack = _local.__dict__.setdefault("out", [])
        self._err_stack = _local.__dict__.setdefault("err", [])
        self._out_stack.append(captured.out)
        self._err_stack.append(captured.err)
        return captured

    def __exit__(self, *exc: Any) -> None:
        global _active
        self._out_stack.pop()
        self._err_stack.pop()
        with _lock:
            _active -= 1
            if _active == 0:
                if isinstance(sys.stdout, _Router):
                    sys.stdout = sys.stdout._real
                if isinstance(sys.stderr, _Router):
                    sys.stderr = sys.stderr._real
