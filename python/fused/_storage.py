"""Files: ``fused.api.list/get/download/upload/delete/sign_url`` over the file-system layer.

``fd://`` paths go through the server's files API when ``fused.options.base_url`` is set,
and straight to the store otherwise (``<data home>/fd``, or ``TERRAFUSE_FD_ROOT``, which may
be ``s3://bucket/prefix``). ``s3://`` and local paths are always handled on this machine.
"""

from __future__ import annotations

import datetime as _dt
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Union

from fused._errors import FusedError, InvalidArgumentError
from fused._options import data_home, options

_atexit_registered = False


@dataclass(frozen=True)
class FileDetails:
    """One entry of ``fused.api.list(path, details=True)``."""

    url: str
    size: int
    last_modified: _dt.datetime | None
    is_directory: bool

    @property
    def name(self) -> str:
        return self.url.rstrip("/").rpartition("/")[2]


def _config():
    """The storage settings: environment and data home, S3 keys from fused.secrets if not set."""
    global _atexit_registered
    from fused import _core

    config = _core.StorageConfig.from_environment(str(data_home()))
    config.shared_dir = str(options.temp_directory)  # /mount is where fused.file_path writes
    if not config.s3_access_key:
        from fused._secrets import secrets

        try:
            names = set(secrets)
        except (ValueError, ImportError):  # an unreadable store holds no usable keys here
            names = set()
        if "AWS_ACCESS_KEY_ID" in names and "AWS_SECRET_ACCESS_KEY" in names:
            config.s3_access_key = secrets["AWS_ACCESS_KEY_ID"]
            config.s3_secret_key = secrets["AWS_SECRET_ACCESS_KEY"]
    if not _atexit_registered:
        import atexit

        atexit.register(_core.finalize_storage)  # the AWS SDK (if used) must shut down before exit
        _atexit_registered = True
    return config


def _check_path(path: Any, name: str = "path") -> str:
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str) or not path:
        raise InvalidArgumentError(
            f"{name} must be a non-empty string such as 'fd://folder/file.csv', got {path!r}"
        )
    if path.startswith(("s3://", "file://", "fd://")) or "://" not in path:
        return path
    if path.startswith(("http://", "https://")):
        return path
    raise InvalidArgumentError(
        f"Unsupported {name} {path!r}: use fd://, s3://, file:// or a local path"
    )


def _via_server(path: str) -> bool:
    return path.startswith("fd://") and bool(options.base_url)


def _details(entry_url: str, size: int, modified_ms: int, is_dir: bool) -> FileDetails:
    modified = (
        _dt.datetime.fromtimestamp(modified_ms / 1000, tz=_dt.timezone.utc) if modified_ms else None
    )
    return FileDetails(url=entry_url, size=size, last_modified=modified, is_directory=is_dir)


def list(path: str, *, details: bool = False) -> list[Any]:  # noqa: A001 - Fused's name
    """List the files in a directory.

    Parameters
    ----------
    path : str
        A directory URL such as ``fd://bucket-name/``.
    details : bool, default False
        Return :class:`FileDetails` (url, size, last_modified, is_directory) instead of URLs.

    Returns
    -------
    list
        URLs, or FileDetails, sorted by name.
    """
    path = _check_path(path)
    if _via_server(path):
        from fused._remote import request

        files = request("GET", "/files/list", params={"path": path}).json()["files"]
        entries = [
            _details(f["url"], f["size"], f["last_modified_ms"], f["is_directory"]) for f in files
        ]
    else:
        from fused import _core

        entries = [
            _details(e.uri, e.size, e.modified_ms, e.is_dir)
            for e in _core.storage_list(path, _config())
        ]
    return entries if details else [e.url for e in entries]


def get(path: str) -> bytes:
    """Return the contents of a file as bytes.

    Parameters
    ----------
    path : str
        A file URL such as ``fd://bucket-name/file.parquet`` (or ``s3://``, ``https://``, a path).
    """
    path = _check_path(path)
    if _via_server(path):
        from fused._remote import request

        return request("GET", "/files/download", params={"path": path}).content
    from fused import _core

    return _core.storage_read(path, _config())


def download(path: str, local_path: Union[str, Path]) -> None:
    """Download a file (or a directory, as a zip) to ``local_path``, atomically.

    Parameters
    ----------
    path : str
        URL of a file such as ``fd://bucket-name/file.parquet``.
    local_path : str or Path
        Where to write it.
    """
    path = _check_path(path)
    local_path = _check_path(local_path, "local_path")
    target = Path(local_path)
    if _via_server(path):
        _stream_to(path, target)
        return
    from fused import _core

    entry = _core.storage_stat(path, _config())
    if entry.is_dir:
        _atomic_local(target, lambda tmp: _core.storage_zip(path, tmp, _config()))
    else:
        _core.storage_copy(path, str(target.absolute()), _config())


def _atomic_local(target: Path, write) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise


def _stream_to(path: str, target: Path) -> None:
    def write(tmp: str) -> None:
        from fused._remote import request_stream

        with (
            request_stream("GET", "/files/download", params={"path": path}) as response,
            # "r+b", not "wb": truncating the existing (empty) temp file makes ext4 flush the
            # whole file to disk when it is closed (auto_da_alloc), ~0.35 s per GB.
            open(tmp, "r+b") as out,
        ):
            # http.client's response reads straight into one reused buffer (iter_content
            # allocates and copies each piece again: half the speed).
            raw = getattr(response.raw, "_fp", None)
            if raw is None or not hasattr(raw, "readinto") or response.headers.get("Content-Encoding"):
                for chunk in response.iter_content(chunk_size=1 << 20):
                    out.write(chunk)
                return
            if not _splice_body(raw, out):
                buffer = bytearray(1 << 20)
                view = memoryview(buffer)
                while n := raw.readinto(buffer):
                    out.write(view[:n])
            if raw.length:  # http.client does not raise when the body stops short
                raise FusedError(f"Download of {path!r} was cut short: {raw.length} bytes missing")

    _atomic_local(target, write)


def _splice_body(raw: Any, out: BinaryIO) -> bool:
    """Moves the rest of a plain-HTTP body of known length from the socket into ``out`` in
    the kernel (splice(2) socket -> pipe -> file: one copy, as ``cp`` makes), keeping
    ``raw.length`` (http.client's count of bytes to come) exact. False where it cannot
    (no splice, TLS, chunked): the caller then copies through a buffer."""
    import fcntl
    import select
    import socket
    import ssl

    sock = getattr(getattr(raw.fp, "raw", None), "_sock", None)  # socket.SocketIO's socket
    if (not hasattr(os, "splice") or raw.length is None or raw.chunked
            or not isinstance(sock, socket.socket) or isinstance(sock, ssl.SSLSocket)):
        return False
    # http.client may have read the start of the body with the head: those bytes first.
    ahead = raw.fp.peek()[: raw.length] if raw.length else b""
    if ahead:
        out.write(raw.fp.read(len(ahead)))
        raw.length -= len(ahead)
    out.flush()
    timeout = sock.gettimeout()  # with a timeout the socket is non-blocking underneath
    pipe_r, pipe_w = os.pipe()
    try:
        try:
            piece = fcntl.fcntl(pipe_w, 1031, 1 << 20)  # F_SETPIPE_SZ: 1 MiB per splice
        except OSError:
            piece = 1 << 16  # the default pipe size
        while raw.length:
            try:
                moved = os.splice(sock.fileno(), pipe_w, min(raw.length, piece))
            except BlockingIOError:
                if not select.select([sock], [], [], timeout)[0]:
                    raise TimeoutError("the server stopped sending the download") from None
                continue
            if moved == 0:
                break  # the server hung up: the caller reports the missing bytes
            raw.length -= moved
            while moved:
                moved -= os.splice(pipe_r, out.fileno(), moved)
    finally:
        os.close(pipe_r)
        os.close(pipe_w)
    return True


def upload(
    local_path: Union[str, Path, bytes, BinaryIO], remote_path: str, timeout: float | None = None
) -> None:
    """Upload a local file, bytes or a binary file object to ``remote_path``.

    The file appears at ``remote_path`` only once it is complete.

    Parameters
    ----------
    local_path : str, Path, bytes or BinaryIO
        A path to a local file, or the contents. Strings are paths: encode text first.
    remote_path : str
        Where to put it, like ``fd://folder/file.csv``.
    timeout : float, optional
        Seconds to wait for the server (remote uploads only).
    """
    remote_path = _check_path(remote_path, "remote_path")
    if remote_path.startswith(("http://", "https://")):
        raise InvalidArgumentError(f"Cannot upload to {remote_path!r}: http(s) URLs are read-only")
    source: Any = local_path
    if isinstance(source, (str, os.PathLike)):
        source = Path(source)
        if not source.is_file():
            from fused._errors import NotFoundError

            raise NotFoundError(f"Cannot upload {str(local_path)!r}: no such file")
    elif not isinstance(source, (bytes, bytearray, memoryview)) and not hasattr(source, "read"):
        raise InvalidArgumentError(
            "local_path must be a path, bytes or a binary file object, "
            f"got {type(local_path).__name__}"
        )
    if _via_server(remote_path):
        from fused._remote import request

        if isinstance(source, Path):
            with open(source, "rb") as body:
                request(
                    "PUT",
                    "/files/upload",
                    params={"path": remote_path},
                    data=body,
                    timeout=timeout or 3600,
                )
        else:
            body = bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
            request(
                "PUT",
                "/files/upload",
                params={"path": remote_path},
                data=body,
                timeout=timeout or 3600,
            )
        return
    from fused import _core

    if isinstance(source, Path):
        _core.storage_copy(str(source.absolute()), remote_path, _config())
    elif isinstance(source, (bytes, bytearray, memoryview)):
        _core.storage_write(remote_path, bytes(source), _config())
    else:
        with tempfile.NamedTemporaryFile(dir=tempfile.gettempdir()) as tmp:
            while chunk := source.read(1 << 20):
                tmp.write(chunk)
            tmp.flush()
            _core.storage_copy(tmp.name, remote_path, _config())


def delete(path: str, max_deletion_depth: Union[int, str] = 2) -> bool:
    """Delete a file, or a directory with everything under it.

    Parameters
    ----------
    path : str
        What to delete, like ``fd://my-old-table/``.
    max_deletion_depth : int or "unlimited", default 2
        Refuse directories nested deeper than this (a folder of files is 1 deep).

    Returns
    -------
    bool
        True once deleted.
    """
    path = _check_path(path)
    if max_deletion_depth == "unlimited":
        depth = -1
    elif (
        isinstance(max_deletion_depth, int)
        and not isinstance(max_deletion_depth, bool)
        and max_deletion_depth >= 0
    ):
        depth = max_deletion_depth
    else:
        raise InvalidArgumentError(
            f"max_deletion_depth must be an integer >= 0 or 'unlimited', got {max_deletion_depth!r}"
        )
    if _via_server(path):
        from fused._remote import request

        request(
            "DELETE",
            "/files",
            params={"path": path, "max_deletion_depth": "unlimited" if depth < 0 else depth},
        )
        return True
    from fused import _core

    _core.storage_delete(path, _config(), depth)
    return True


def _require_server(path: str, what: str) -> None:
    if not path.startswith("fd://"):
        raise InvalidArgumentError(f"{what} signs fd:// paths, got {path!r}")
    if not options.base_url:
        raise InvalidArgumentError(
            f"{what} needs a terrafuse server to serve the URL: set fused.options.base_url "
            "(start one with `terrafuse serve`)"
        )


def sign_url(path: str, *, expires_in: int = 3600) -> str:
    """Return a time-limited HTTP URL that anyone can GET, for one file.

    Parameters
    ----------
    path : str
        A file URL such as ``fd://bucket-name/file.parquet`` (it need not exist yet).
    expires_in : int, default 3600
        Lifetime in seconds (at most 7 days).
    """
    path = _check_path(path)
    _require_server(path, "sign_url")
    from fused._remote import request

    return request("POST", "/files/sign", params={"path": path, "expires_in": expires_in}).json()[
        "url"
    ]


def sign_url_prefix(path: str, *, expires_in: int = 3600) -> dict[str, str]:
    """Return signed URLs for every file under a prefix, keyed by their fd:// URL."""
    path = _check_path(path)
    _require_server(path, "sign_url_prefix")
    from fused._remote import request

    return request(
        "POST", "/files/sign_prefix", params={"path": path, "expires_in": expires_in}
    ).json()["urls"]
