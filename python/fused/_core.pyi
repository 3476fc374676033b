"""terrafuse engine (C++), private: use the public fused API"""

from collections.abc import Sequence

from fused._core import (
    encode as encode,
    ingest as ingest,
    tiles as tiles
)


class Hasher:
    """Streaming XXH3-128 content hash."""

    def __init__(self) -> None: ...

    def update(self, data: bytes) -> None:
        """Add bytes to the digest."""

    def update_buffer(self, buffer: object) -> None:
        """Add the bytes of a C-contiguous buffer to the digest."""

    def hexdigest(self) -> str: ...

def hash_hex(data: bytes) -> str: ...

class KeyLock:
    """A held cross-process lock on one cache key."""

    def release(self) -> None: ...

    def __enter__(self) -> KeyLock: ...

    def __exit__(self, *args) -> None: ...

class DiskStore:
    """Content-addressed byte store on local disk."""

    @staticmethod
    def open(root: str, max_bytes: int) -> DiskStore: ...

    def get(self, key: str, max_age_seconds: float = -1.0) -> object:
        """
        Return the payload as a read-only memoryview (no copy), or None on a miss.
        """

    def put(self, key: str, payload: bytes) -> None: ...

    def remove(self, key: str) -> None: ...

    def lock(self, key: str, timeout_seconds: float) -> KeyLock: ...

    def entry_path(self, key: str) -> str: ...

    def clear(self) -> None: ...

    def used_bytes(self) -> int: ...

    @property
    def root(self) -> str: ...

    def stats(self) -> dict: ...

def validate_cache_key(key: str) -> None: ...

class StorageConfig:
    """Where fd:// lives and how S3 is reached."""

    @staticmethod
    def from_environment(home: str) -> StorageConfig: ...

    @property
    def home(self) -> str: ...

    @home.setter
    def home(self, arg: str, /) -> None: ...

    @property
    def fd_root(self) -> str: ...

    @fd_root.setter
    def fd_root(self, arg: str, /) -> None: ...

    @property
    def shared_dir(self) -> str: ...

    @shared_dir.setter
    def shared_dir(self, arg: str, /) -> None: ...

    @property
    def s3_endpoint(self) -> str: ...

    @s3_endpoint.setter
    def s3_endpoint(self, arg: str, /) -> None: ...

    @property
    def s3_region(self) -> str: ...

    @s3_region.setter
    def s3_region(self, arg: str, /) -> None: ...

    @property
    def s3_access_key(self) -> str: ...

    @s3_access_key.setter
    def s3_access_key(self, arg: str, /) -> None: ...

    @property
    def s3_secret_key(self) -> str: ...

    @s3_secret_key.setter
    def s3_secret_key(self, arg: str, /) -> None: ...

    @property
    def s3_session_token(self) -> str: ...

    @s3_session_token.setter
    def s3_session_token(self, arg: str, /) -> None: ...

class FileEntry:
    """One file or directory of a listing."""

    @property
    def uri(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def size(self) -> int: ...

    @property
    def modified_ms(self) -> int: ...

    @property
    def is_dir(self) -> bool: ...

def storage_local_path(uri: str, config: StorageConfig) -> str | None:
    """
    Return the local path behind `uri`, or None when it is not on this machine.
    """

def storage_stat(uri: str, config: StorageConfig) -> FileEntry: ...

def storage_list(uri: str, config: StorageConfig, recursive: bool = False) -> list[FileEntry]: ...

def storage_delete(uri: str, config: StorageConfig, max_depth: int) -> None:
    """Delete a file or a tree at most max_depth deep (-1: any)."""

def storage_copy(source: str, target: str, config: StorageConfig) -> int:
    """Copy a file (streamed; the target appears atomically)."""

def storage_read(uri: str, config: StorageConfig, offset: int = 0, length: int = -1) -> bytes:
    """Return a file's bytes (`length` bytes from `offset`; -1: to the end)."""

def storage_write(uri: str, data: bytes, config: StorageConfig) -> None:
    """Write bytes to a file atomically."""

def storage_zip(uri: str, local_path: str, config: StorageConfig) -> None:
    """Write a ZIP of a directory to a local file."""

def finalize_storage() -> None:
    """Shut down the S3 client (at interpreter exit)."""

class CancelFlag:
    """Set it to stop the call it was passed to."""

    def __init__(self) -> None: ...

    def set(self) -> None: ...

    def is_set(self) -> bool: ...

class WorkerPool:
    """Warm `python -m fused._worker` processes."""

    @staticmethod
    def start(python: str, args: Sequence[str], num_workers: int, env: Sequence[tuple[str, str]], call_timeout_seconds: float, startup_timeout_seconds: float, log_warnings: bool) -> WorkerPool:
        """Start the workers and wait until all are ready."""

    def run(self, id: str, udf_name: str, code: str, entrypoint: str, udf_hash: str, headers: Sequence[tuple[str, str]], payload: bytes, timeout_seconds: float = 0.0, cancel: CancelFlag | None = None) -> tuple[bool, str, bytes, int]:
        """
        Run pickled calls on a free worker: (ok, reply header JSON, payload, worker pid).
        """

    def grow(self, num_workers: int) -> None:
        """
        Raise the number of workers (started in the background); never lowers it.
        """

    def size(self) -> int: ...

    def shutdown(self, grace_seconds: float = 10.0) -> None: ...

    def worker_pids(self) -> list[int]: ...

    def stats(self) -> dict: ...
