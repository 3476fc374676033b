"""terrafuse engine (C++), private: use the public fused API"""

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
