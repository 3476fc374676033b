"""``fused.secrets``: named secrets for UDFs, read from the local secret store.

The store is ``<data home>/secrets.json`` (mode 0600), written by ``terrafuse secrets set``.
Environment variables ``FUSED_SECRET_<NAME>`` override it (for CI and containers).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from fused._options import data_home

_ENV_PREFIX = "FUSED_SECRET_"


def secrets_path() -> Path:
    return data_home() / "secrets.json"


def _read_store() -> dict[str, str]:
    try:
        data = json.loads(secrets_path().read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise ValueError(f"Cannot read the secret store '{secrets_path()}': {e}") from None
    return {str(k): str(v) for k, v in data.items()}


def write_store(values: dict[str, str]) -> None:
    """Replace the secret store atomically, readable by the owner only."""
    path = secrets_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(values, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


class Secrets(Mapping):
    """Read-only mapping of secret names to values; also readable as attributes."""

    def _all(self) -> dict[str, str]:
        values = _read_store()
        values.update({k[len(_ENV_PREFIX):]: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIX)})
        return values

    def __getitem__(self, name: str) -> str:
        values = self._all()
        if name not in values:
            raise KeyError(
                f"Secret {name!r} is not set: add it with `terrafuse secrets set {name}` "
                f"or the environment variable {_ENV_PREFIX}{name}"
            )
        return values[name]

    def __getattr__(self, name: str) -> str:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError as e:
            raise AttributeError(e.args[0]) from None

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._all()))

    def __len__(self) -> int:
        return len(self._all())

    def __dir__(self) -> list[str]:
        return list(self)

    def __repr__(self) -> str:
        return f"<fused.secrets: {', '.join(self) or 'none set'}>"  # names only, never values


secrets = Secrets()
