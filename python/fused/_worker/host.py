"""The worker's run loop: read a ``run`` frame, run the UDF as the local engine does, reply.

UDFs run exactly as under ``fused.run(..., engine="local")`` (binding, coercion of the
query-string values, reserved ``bounds``/tile parameters, capture, output validation), minus
the result cache, which is the server's. What a UDF prints is captured into the reply and
never reaches the worker's real stdout or stderr (the server's log).
"""

from __future__ import annotations

import faulthandler
import io
import os
import pickle
import socket
import sys
import traceback
from collections import OrderedDict
from time import perf_counter
from typing import Any

import fused
import fused._worker
from fused._capture import capture
from fused._capture import pin as pin_capture
from fused._errors import FusedError, NotFoundError, UdfError
from fused._run import _bind, _plan, _run_calls, _run_one, _udf_error
from fused._udf import Header, Udf
from fused._worker.protocol import (MAX_PAYLOAD_BYTES, ProtocolError, encode_header, frame_parts, read_frame, send_all,
                                    write_frame)

# Server workers import the scientific stack here, once, before the ready frame: they start
# warm. The workers of fused.submit's local engine (TERRAFUSE_WORKER_LIGHT=1) only answer
# pickles: they start in a fraction of the time and import what their UDFs import.
LIGHT = os.environ.get("TERRAFUSE_WORKER_LIGHT") == "1"
if not LIGHT:
    import geopandas as gpd
    import numpy as np  # noqa: F401
    import pandas as pd
    import pyarrow as pa  # noqa: F401
    import pyarrow.ipc  # noqa: F401
    import shapely

    from fused._worker.to_wire import to_wire  # imported before the ready frame
else:
    def to_wire(value: Any, udf_name: str) -> tuple[dict, Any]:
        """Light workers import the converter on first use, then call it directly (an import
        statement per call cost more than the call of a trivial UDF)."""
        global to_wire
        from fused._worker.to_wire import to_wire

        return to_wire(value, udf_name)

# UDF versions whose code stays loaded (the server assumes 64; tests lower it to see a version
# dropped and sent again).
UDF_CACHE_SIZE = int(os.environ.get("TERRAFUSE_WORKER_UDF_CACHE") or 64)
# Captured output above this many characters keeps its end (the reply header has a size limit).
MAX_CAPTURED_CHARS = 1 << 20
_READ_BUFFER = 1 << 16
# Replies to a batch ("more": the server sent further frames behind this one) are held and
# sent in one write, unless the call took long enough that its caller should not wait.
_HOLD_SECONDS = 0.002
_HOLD_BYTES = 1 << 20
_ERROR_KINDS = {NotFoundError: "not_found"}


class _Discard:
    """The worker's ``sys.stdout``/``sys.stderr``: UDF output outside a capture goes nowhere."""

    encoding = "utf-8"
    errors = "replace"

    def write(self, text: str) -> int:
        return len(text)

    def writelines(self, lines: Any) -> None:
        pass

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        raise io.UnsupportedOperation("the worker's stdout is captured: it has no file descriptor")


class _Failure(Exception):
    """A run that ends in an error reply."""

    def __init__(self, kind: str, message: str, *, type_name: str = "", tb: str = "", stdout: str = "",
                 stderr: str = "", recycle: bool = False):
        super().__init__(message)
        self.kind, self.message, self.type_name, self.tb = kind, message, type_name, tb
        self.stdout, self.stderr, self.recycle = stdout, stderr, recycle


class Host:
    """Serves ``run`` frames on one connected socket until ``exit`` or end of stream."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.stream = sock.makefile("rb", buffering=_READ_BUFFER)
        self.udfs: OrderedDict[tuple, tuple[Udf, Any]] = OrderedDict()
        self.loads = 0  # UDF code executions (cache misses), for tests and diagnostics

    def serve(self) -> int:
        """Send ``ready``, then answer frames; returns the process exit code."""
        write_frame(self.sock, {"op": "ready", "pid": os.getpid(), "version": fused.__version__,
                                "python": sys.version.split()[0]})
        pin_capture()  # every call captures: the routers stay in place between calls
        held: list = []  # reply buffers of a batch, sent after its last call
        held_bytes = 0
        while True:
            try:
                frame = read_frame(self.stream)
            except ProtocolError as e:
                _log(f"worker protocol error, exiting: {e}")
                return 2
            except (ConnectionError, OSError):
                return 0
            if frame is None:
                return 0
            header, payload = frame
            op = header.get("op")
            if op == "run":
                raw, payload, seconds = self.run(header, payload)
            elif op == "exit":
                return 0
            else:
                raw, payload, seconds = _error_header(header.get("id"), _Failure(
                    "invalid_argument", f"Unknown worker operation {op!r}: expected 'run' or 'exit'"), 0.0), b"", 0.0
            held += frame_parts(raw, payload)
            held_bytes += len(payload)
            if seconds < _HOLD_SECONDS and held_bytes < _HOLD_BYTES and header.get("more"):
                continue
            try:
                send_all(self.sock, held)
            except (BrokenPipeError, ConnectionResetError):
                return 0
            held, held_bytes = [], 0

    # -- one run -----------------------------------------------------------------------
    def run(self, header: dict, payload: bytes = b"") -> tuple[bytes, Any, float]:
        """Return the reply header (encoded), payload and seconds of one ``run`` frame; never raises."""
        start = perf_counter()
        request_id = header.get("id")
        try:
            if header.get("pickle"):
                fields, payload, stdout, stderr = self._run_pickled(header, payload)
            else:
                fields, payload, stdout, stderr = self._run(header)
        except _Failure as failure:
            seconds = perf_counter() - start
            return _error_header(request_id, failure, seconds), b"", seconds
        except BaseException as e:  # noqa: BLE001 - a bug of the worker: report it, keep serving
            seconds = perf_counter() - start
            return _error_header(request_id, _Failure(
                "internal", f"The worker failed: {type(e).__name__}: {e}", type_name=type(e).__name__,
                tb=traceback.format_exc()), seconds), b"", seconds
        seconds = perf_counter() - start
        if len(stdout) > MAX_CAPTURED_CHARS or len(stderr) > MAX_CAPTURED_CHARS:
            stdout, stderr = _clip(stdout), _clip(stderr)
        return encode_header({"id": request_id, "ok": True, **fields, "stdout": stdout, "stderr": stderr,
                              "seconds": seconds}), payload, seconds

    def _run(self, header: dict) -> tuple[dict, Any, str, str]:
        udf, plan, stdout, stderr = self._load(header.get("udf"))
        supplied = header.get("params") or {}
        if not isinstance(supplied, dict):
            raise _Failure("invalid_argument", f"'params' must be a JSON object, got {type(supplied).__name__}")
        supplied = dict(supplied)
        tile = header.get("tile")
        bounds = header.get("bounds")
        if bounds is not None:
            supplied["bounds"] = bounds
        x = y = z = None
        if tile is not None:
            if not isinstance(tile, list) or len(tile) != 3:
                raise _Failure("invalid_argument", f"'tile' must be [x, y, z], got {tile!r}")
            x, y, z = tile
        try:
            calls = _bind(udf, plan, supplied, x, y, z)
        except FusedError as e:  # unknown parameter, bad value
            raise _Failure(_kind(e), str(e), type_name=type(e).__name__, stdout=stdout,
                           stderr=stderr) from None
        result = _call(udf, plan, calls, stdout, stderr)
        stdout += result.stdout
        stderr += result.stderr
        try:
            fields, payload = to_wire(result.data, udf.name)
        except FusedError as e:
            raise _Failure(_kind(e), str(e), type_name=type(e).__name__, stdout=stdout, stderr=stderr) from None
        except (OverflowError, ValueError, TypeError, NotImplementedError) as e:
            # Data the wire formats cannot hold (an int beyond 64 bits, mixed-type columns): the
            # UDF's output is at fault, not the worker.
            raise _Failure("invalid_argument", f"UDF '{udf.name}' returned a value that cannot be "
                           f"sent back: {type(e).__name__}: {e}", type_name=type(e).__name__,
                           stdout=stdout, stderr=stderr) from None
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise _Failure("invalid_argument", f"UDF '{udf.name}' returned {len(payload)} bytes of "
                           f"{fields['kind']}: more than the server's reply limit of {MAX_PAYLOAD_BYTES} bytes",
                           stdout=stdout, stderr=stderr)
        return fields, payload, stdout, stderr

    def _run_pickled(self, header: dict, payload: bytes) -> tuple[dict, Any, str, str]:
        """fused.submit's local engine: the payload is the pickled list of bound calls (keyword
        arguments); the reply is the pickled ``(value, stdout, stderr)``, the format of the local
        result cache, so the parent stores it as it is."""
        udf, plan, stdout, stderr = self._load(header.get("udf"))
        try:
            calls = pickle.loads(payload)
        except Exception as e:  # noqa: BLE001 - e.g. a class the worker cannot import
            raise _Failure("invalid_argument", f"The arguments of UDF '{udf.name}' cannot be unpickled "
                           f"in the worker: {type(e).__name__}: {e}", type_name=type(e).__name__) from None
        if isinstance(calls, dict) and isinstance(calls.get("batch"), list):
            return {"kind": "pickle"}, pickle.dumps([_outcome(udf, plan, c) for c in calls["batch"]],
                                                    protocol=5), "", ""
        if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls):
            raise _Failure("invalid_argument", "A pickled run needs a list of keyword-argument dicts")
        result = _call(udf, plan, calls, stdout, stderr)
        stdout += result.stdout
        stderr += result.stderr
        try:
            data = pickle.dumps((result.data, stdout, stderr), protocol=5)
        except Exception as e:  # noqa: BLE001 - locks, generators, open files...
            raise _Failure("invalid_argument", f"UDF '{udf.name}' returned a {type(result.data).__name__} "
                           f"that cannot be pickled: {type(e).__name__}: {e}", type_name=type(e).__name__,
                           stdout=stdout, stderr=stderr) from None
        # Captured output travels inside the pickle only.
        return {"kind": "pickle"}, data, "", ""

    def _load(self, spec: Any) -> tuple[Udf, Any, str, str]:
        """The UDF of a run frame, its code executed once per hash (LRU of UDF_CACHE_SIZE).

        A frame may name a version it sent before by ``hash`` alone (no ``code``): the server
        then skips sending and this worker skips parsing the code; a version no longer cached
        is answered with the error kind ``code_needed``, and the server sends it again whole.
        """
        if not isinstance(spec, dict):
            raise _Failure("invalid_argument", "A run frame needs 'udf' with 'code' (a string)")
        name = spec.get("name") or "udf"
        entrypoint = spec.get("entrypoint") or "udf"
        if "code" not in spec and spec.get("hash"):
            cached = self.udfs.get((spec["hash"], name, entrypoint))
            if cached is None:
                raise _Failure("code_needed", f"This worker has no code for version {spec['hash']} of "
                               f"UDF '{name}': send it with its code")
            self.udfs.move_to_end((spec["hash"], name, entrypoint))
            return cached[0], cached[1], "", ""
        if not isinstance(spec.get("code"), str):
            raise _Failure("invalid_argument", "A run frame needs 'udf' with 'code' (a string)")
        udf = None
        key_hash = spec.get("hash")
        if not key_hash:
            udf = _make_udf(spec, name, entrypoint)
            key_hash = udf.hash
        key = (key_hash, name, entrypoint)
        cached = self.udfs.get(key)
        if cached is not None:
            self.udfs.move_to_end(key)
            return cached[0], cached[1], "", ""
        if udf is None:
            udf = _make_udf(spec, name, entrypoint)
        with capture() as captured:  # what module-level code prints belongs to this reply
            try:
                plan = _plan(udf)
            except FusedError as e:
                error: BaseException | None = e
            except BaseException as e:  # noqa: BLE001 - user code: SyntaxError, SystemExit, ...
                error = e
            else:
                error = None
        if isinstance(error, FusedError):
            raise _Failure(_kind(error), str(error), type_name=type(error).__name__,
                           stdout=captured.stdout, stderr=captured.stderr)
        if error is not None:
            failure = _udf_error(udf, error, captured.stdout, captured.stderr)
            raise _Failure("udf_failed", str(failure).split("\n\n", 1)[0], type_name=type(error).__name__,
                           tb=failure.traceback, stdout=captured.stdout, stderr=captured.stderr,
                           recycle=isinstance(error, MemoryError))
        self.loads += 1
        self.udfs[key] = (udf, plan)
        if len(self.udfs) > UDF_CACHE_SIZE:
            self.udfs.popitem(last=False)
        return udf, plan, captured.stdout, captured.stderr


def _outcome(udf: Udf, plan: Any, calls: Any) -> tuple:
    """One call of a batch: ``("ok", pickle of (value, stdout, stderr))`` or ``("error", kind,
    message, traceback, stdout, stderr)``; never raises."""
    try:
        if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls):
            raise _Failure("invalid_argument", "A pickled run needs a list of keyword-argument dicts")
        result = _call(udf, plan, calls, "", "")
        try:
            return ("ok", pickle.dumps((result.data, result.stdout, result.stderr), protocol=5))
        except Exception as e:  # noqa: BLE001 - locks, generators, open files...
            raise _Failure("invalid_argument", f"UDF '{udf.name}' returned a {type(result.data).__name__} "
                           f"that cannot be pickled: {type(e).__name__}: {e}", stdout=result.stdout,
                           stderr=result.stderr) from None
    except _Failure as f:
        return ("error", f.kind, f.message, f.tb, _clip(f.stdout), _clip(f.stderr))
    except BaseException as e:  # noqa: BLE001 - a bug of the worker: that call fails, not the batch
        return ("error", "internal", f"The worker failed: {type(e).__name__}: {e}", traceback.format_exc(), "", "")


def _call(udf: Udf, plan: Any, calls: list, stdout: str, stderr: str) -> Any:
    """Run the bound calls; a UDF that raises (or an output that is invalid) is a _Failure."""
    try:
        return _run_one(udf, plan, calls[0], 0.0) if len(calls) == 1 else _run_calls(udf, plan, calls, 0.0)
    except UdfError as e:
        cause = e.__cause__ if e.__cause__ is not None else e
        raise _Failure("udf_failed", str(e).split("\n\n", 1)[0], type_name=type(cause).__name__,
                       tb=e.traceback, stdout=stdout + e.stdout, stderr=stderr + e.stderr,
                       recycle=isinstance(cause, MemoryError)) from None
    except FusedError as e:  # invalid output
        raise _Failure(_kind(e), str(e), type_name=type(e).__name__, stdout=stdout,
                       stderr=stderr) from None
    except BaseException as e:  # noqa: BLE001 - SystemExit, KeyboardInterrupt from the UDF
        error = _udf_error(udf, e, "", "")
        raise _Failure("udf_failed", str(error).split("\n\n", 1)[0], type_name=type(e).__name__,
                       tb=error.traceback, stdout=stdout, stderr=stderr) from None


def _make_udf(spec: dict, name: str, entrypoint: str) -> Udf:
    headers = spec.get("headers") or []
    if not isinstance(headers, list) or not all(
            isinstance(h, dict) and isinstance(h.get("module_name"), str) for h in headers):
        raise _Failure("invalid_argument", "'udf.headers' must be a list of {module_name, source_code}")
    return Udf(name=name, code=spec["code"], entrypoint=entrypoint,
               headers=[Header(h["module_name"], h.get("source_code") or "") for h in headers])


def _kind(error: FusedError) -> str:
    for cls, kind in _ERROR_KINDS.items():
        if isinstance(error, cls):
            return kind
    return "invalid_argument"


def _error_header(request_id: Any, failure: _Failure, seconds: float) -> bytes:
    reply = {
        "id": request_id,
        "ok": False,
        "error": {"kind": failure.kind, "type": failure.type_name, "message": failure.message,
                  "traceback": failure.tb},
        "stdout": _clip(failure.stdout),
        "stderr": _clip(failure.stderr),
        "seconds": seconds,
    }
    if failure.recycle:
        reply["recycle"] = True
    return encode_header(reply)


def _clip(text: str) -> str:
    if len(text) <= MAX_CAPTURED_CHARS:
        return text
    dropped = len(text) - MAX_CAPTURED_CHARS
    return f"[... {dropped} characters dropped ...]\n" + text[-MAX_CAPTURED_CHARS:]


def _log(message: str) -> None:
    sys.__stderr__.write(f"{message}\n")
    sys.__stderr__.flush()


def _warm_up() -> None:
    """Pay the one-time costs (CRS database, Arrow IPC, geometry encoding) before ``ready``."""
    from fused._worker.to_wire import to_wire

    try:
        frame = gpd.GeoDataFrame({"a": [1]}, geometry=[shapely.Point(0, 0)], crs=4326)
        to_wire(frame, "warm-up")
        to_wire(pd.DataFrame({"a": [1]}), "warm-up")
    except Exception as e:  # noqa: BLE001 - a slower first call, not a failure
        _log(f"worker warm-up failed (first calls will be slower): {type(e).__name__}: {e}")


def serve(fd: int) -> int:
    """Run the worker on the connected socket ``fd``; returns the exit code."""
    faulthandler.enable(file=sys.__stderr__)  # a crash leaves its Python stack in the stderr tail
    fused._worker.IN_WORKER = True  # nested fused.submit runs in threads here (fused._submit)
    sys.stdout = _Discard()
    sys.stderr = _Discard()
    os.set_inheritable(fd, False)  # processes a UDF starts must not hold the connection open
    sock = socket.socket(fileno=fd)
    if not LIGHT:
        _warm_up()
    return Host(sock).serve()
