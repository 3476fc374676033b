"""Frames of the worker protocol (docs/design/server.md, "Worker protocol").

A frame is ``b"TFW1"``, a u32 little-endian header length, the header (a UTF-8 JSON object),
a u64 little-endian payload length, then the payload. Both directions use the same framing.
"""

from __future__ import annotations

import json
import os
import socket
import struct
from typing import Any, BinaryIO

import msgspec

MAGIC = b"TFW1"
MAX_HEADER_BYTES = 16 << 20
# The server passes its own limit; replies above it are answered with an error frame instead.
MAX_PAYLOAD_BYTES = int(os.environ.get("TERRAFUSE_WORKER_MAX_PAYLOAD") or 1 << 30)

_PREFIX = struct.Struct("<4sI")
_LENGTH = struct.Struct("<Q")
_scan = json.JSONDecoder().scan_once  # the C scanner without decode()'s two regex passes
# msgspec reads and writes frame headers in about half the time of the json module: on a
# trivial UDF call that is a tenth of the worker's time.
_fast_decode = msgspec.json.Decoder().decode
_fast_encode = msgspec.json.Encoder().encode


def _decode(raw: Any) -> Any:
    """Parse one UTF-8 JSON document (bytes-like) with nothing but whitespace around it."""
    try:
        return _fast_decode(raw)
    except ValueError:
        pass
    # What msgspec refuses may still be JSON (escaped lone surrogates): the json module decides.
    text = str(raw, "utf-8")
    try:
        value, end = _scan(text, 0)
    except StopIteration as e:
        raise ValueError(f"Expecting value: char {e.value}") from None
    if end != len(text.rstrip()):
        raise ValueError(f"Extra data: char {end}")
    return value


def json_dumps(default: Any = None) -> Any:
    """Return a function that writes compact JSON (UTF-8 text as is, NaN and infinities
    refused) with one C encoder made once: ``json.JSONEncoder.encode`` builds a new encoder,
    markers and closures on every call, which cost a trivial worker call a tenth of its time.
    ``default`` converts objects JSON has no type for, as in ``json.dumps``.
    """
    markers: dict = {}  # circular-reference check; emptied again if an encode fails midway
    encoder = json.encoder.c_make_encoder
    if encoder is None:  # a Python without the _json accelerator
        return json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False,
                                default=default).encode
    encode = encoder(markers, default, json.encoder.encode_basestring, None, ":", ",", False, False, False)

    def dumps(value: Any) -> str:
        try:
            return "".join(encode(value, 0))
        except BaseException:
            markers.clear()
            raise

    return dumps


_encode = json_dumps()


class ProtocolError(Exception):
    """The peer sent bytes that are not a valid frame; the stream cannot be trusted any more."""


def read_frame(stream: BinaryIO, *, max_payload: int = MAX_PAYLOAD_BYTES) -> tuple[dict, bytes] | None:
    """Read one frame from a buffered binary stream.

    Returns ``None`` at a clean end of stream (EOF between frames).

    Raises
    ------
    ProtocolError
        On a bad magic, a length over the limits, invalid JSON or a stream that ends inside a frame.
    """
    prefix = stream.read(_PREFIX.size)
    if len(prefix) != _PREFIX.size:
        if not prefix:
            return None
        raise ProtocolError(f"stream ended inside a frame prefix ({len(prefix)} of {_PREFIX.size} bytes)")
    magic, header_length = _PREFIX.unpack(prefix)
    if magic != MAGIC:
        raise ProtocolError(f"bad frame magic {magic!r}: expected {MAGIC!r}")
    if header_length > MAX_HEADER_BYTES:
        raise ProtocolError(f"frame header of {header_length} bytes is over the limit of {MAX_HEADER_BYTES}")
    rest = stream.read(header_length + _LENGTH.size)  # the header and the payload length: one read
    if len(rest) != header_length + _LENGTH.size:
        what, got, n = (("header", len(rest), header_length) if len(rest) < header_length else
                        ("payload length", len(rest) - header_length, _LENGTH.size))
        raise ProtocolError(f"stream ended inside a frame {what} ({got} of {n} bytes)")
    payload_length = _LENGTH.unpack_from(rest, header_length)[0]
    if payload_length > max_payload:
        raise ProtocolError(f"frame payload of {payload_length} bytes is over the limit of {max_payload}")
    payload = b""
    if payload_length:
        payload = stream.read(payload_length)
        if len(payload) != payload_length:
            raise ProtocolError(f"stream ended inside a frame payload ({len(payload)} of {payload_length} bytes)")
    try:
        header = _decode(memoryview(rest)[:header_length])
    except (UnicodeDecodeError, ValueError) as e:
        raise ProtocolError(f"frame header is not valid UTF-8 JSON: {e}") from None
    if type(header) is not dict:
        raise ProtocolError(f"frame header is a JSON {type(header).__name__}, expected an object")
    return header, payload


def encode_header(header: dict) -> bytes:
    """Return the UTF-8 JSON of ``header``; text that cannot be encoded is replaced, never fatal."""
    try:
        return _fast_encode(header)
    except UnicodeEncodeError:  # lone surrogates in captured output
        return _encode(header).encode("utf-8", "replace")


def write_frame(sock: socket.socket, header: dict, payload: Any = b"") -> None:
    """Send one frame; ``payload`` is any C-contiguous bytes-like object (sent without a copy)."""
    send_all(sock, frame_parts(encode_header(header), payload))


def frame_parts(raw_header: bytes, payload: Any = b"") -> list:
    """The buffers of one frame whose header is already encoded, for ``send_all`` (the payload
    is not copied)."""
    if type(payload) is not bytes:
        payload = memoryview(payload).cast("B")
    head = _PREFIX.pack(MAGIC, len(raw_header)) + raw_header + _LENGTH.pack(len(payload))
    return [head, payload] if len(payload) else [head]


def send_all(sock: socket.socket, parts: list) -> None:
    """``sendmsg`` the buffers (none empty) in order, continuing after partial writes."""
    # sendmsg takes at most IOV_MAX (1024) buffers per call: a batch passes at most 16.
    sent = sock.sendmsg(parts)
    if sent == sum(map(len, parts)):
        return
    views = [memoryview(p) for p in parts]
    while True:
        while sent:
            if sent >= len(views[0]):
                sent -= len(views[0])
                views.pop(0)
            else:
                views[0] = views[0][sent:]
                sent = 0
        if not views:
            return
        sent = sock.sendmsg(views)
