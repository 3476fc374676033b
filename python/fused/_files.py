"""The shared disk of local runs: ``fused.file_path``, ``fused.download`` and ``/mount``."""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.parse
from pathlib import Path

from fused._options import options

# Paths the seeds use for the shared disk inside UDFs; locally they are the shared directory.
MOUNT_PREFIXES = ("/mount", "/mnt/cache")


def shared_dir() -> Path:
    """Return the local shared disk (``fused.options.temp_directory``, default /tmp/fused)."""
    return Path(options.temp_directory)


def map_mount_path(path: str) -> str:
    """Map ``/mount/...`` and ``/mnt/cache/...`` onto the local shared disk; other paths unchanged."""
    for prefix in MOUNT_PREFIXES:
        if path == prefix or path.startswith(prefix + "/"):
            return str(_contained(shared_dir(), path[len(prefix):]))
    return path


def _contained(root: Path, relative: str) -> Path:
    """Join ``relative`` under ``root``, refusing anything that escapes it."""
    parts = [p for p in Path(relative).parts if p not in ("/", "")]
    if any(p == ".." for p in parts):
        raise ValueError(f"Invalid path {relative!r}: '..' is not allowed")
    return root.joinpath(*parts)


def file_path(file_path: str, mkdir: bool = True) -> str:
    """Return a path on the shared disk for ``file_path``, creating its directory.

    Locally the shared disk is ``/tmp/fused`` (``fused.options.temp_directory``).

    Parameters
    ----------
    file_path : str
        A relative path, or one under ``/mount`` or ``/mnt/cache``.
    mkdir : bool, default True
        Create the parent directory (the directory itself when ``file_path`` ends in ``/``).

    Returns
    -------
    str
        The absolute local path.
    """
    if not isinstance(file_path, str) or not file_path:
        raise ValueError(f"file_path must be a non-empty string, got {file_path!r}")
    mapped = map_mount_path(file_path)
    path = Path(mapped) if mapped != file_path else _contained(shared_dir(), file_path)
    if mkdir:
        (path if file_path.endswith("/") else path.parent).mkdir(parents=True, exist_ok=True)
    return str(path)


_shared_path = file_path  # download() takes a parameter of the same name


def download(url: str, file_path: str) -> str:
    """Download ``url`` once to the shared disk and return the local path.

    Later calls, in this process or any other, return the existing file. Concurrent callers
    wait for the first download instead of starting their own, and a partial download is
    never visible under ``file_path``.

    Parameters
    ----------
    url : str
        ``http(s)://``, ``fd://``, ``s3://``, ``file://`` or a local path.
    file_path : str
        Where to put it on the shared disk (relative, or under ``/mount``).
    """
    target = Path(_shared_path(file_path))
    if target.exists():
        return str(target)
    from fused._cache import store_at
    from fused._hashing import hash_values

    locks = store_at(Path(options.cache_directory) / "downloads")
    with locks.lock(hash_values(str(target)), 3600):
        if target.exists():  # another process finished it while we waited
            return str(target)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        try:
            if urllib.parse.urlparse(url).scheme in ("fd", "s3"):
                os.close(fd)
                from fused._storage import download as download_file

                download_file(url, tmp)  # through the server or the store, like fused.api.download
            else:
                with os.fdopen(fd, "wb") as out:
                    _fetch(url, out)
            os.replace(tmp, target)
        except BaseException:
            os.unlink(tmp)
            raise
    return str(target)


def _fetch(url: str, out) -> None:
    scheme = urllib.parse.urlparse(url).scheme
    if scheme in ("http", "https"):
        import requests

        from fused._errors import EngineIOError, NotFoundError

        try:
            with requests.get(url, stream=True, timeout=60) as response:
                if response.status_code == 404:
                    raise NotFoundError(f"Cannot download {url!r}: HTTP 404 Not Found")
                response.raise_for_status()
                for chunk in response.iter_content(chunk_size=1 << 20):
                    out.write(chunk)
        except requests.RequestException as e:
            raise EngineIOError(f"Cannot download {url!r}: {e}") from None
        return
    if scheme == "file":
        url = urllib.parse.unquote(urllib.parse.urlparse(url).path)
    elif scheme:
        raise ValueError(f"Cannot download {url!r}: scheme {scheme!r} is not supported (use http(s), file or a path)")
    source = Path(map_mount_path(url))
    if not source.is_file():
        from fused._errors import NotFoundError

        raise NotFoundError(f"Cannot download {url!r}: no such file")
    with open(source, "rb") as src:
        shutil.copyfileobj(src, out, 1 << 20)
