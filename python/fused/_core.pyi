"""terrafuse engine (C++), private: use the public fused API"""

from collections.abc import Sequence

from fused._core import encode as encode, tiles as tiles


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
