"""``fused.secrets``: named secrets for UDFs, encrypted at rest.

The store is ``<data home>/secrets.enc``: one Fernet token (AES-128-CBC + HMAC-SHA256, from
the ``cryptography`` package) holding every name and value, written by ``terrafuse secrets
set``. The key is not stored beside it: it is ``$TERRAFUSE_SECRETS_KEY`` when set, else the
file ``$XDG_CONFIG_HOME/terrafuse/secrets.key`` (default ``~/.config/terrafuse``, mode 0600),
created on the first ``set``. Environment variables ``FUSED_SECRET_<NAME>`` override the
store (for CI and containers). Values never appear in reprs or error messages.

A plaintext ``secrets.json`` from older versions is still read, and is replaced by the
encrypted store on the next ``set`` or ``delete``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from fused._options import data_home

_ENV_PREFIX = "FUSED_SECRET_"
_KEY_ENV = "TERRAFUSE_SECRETS_KEY"


def secrets_path() -> Path:
    return data_home() / "secrets.enc"


def _legacy_path() -> Path:
    return data_home() / "secrets.json"


def key_path() -> Path:
    """The key file used when ``$TERRAFUSE_SECRETS_KEY`` is not set."""
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "terrafuse" / "secrets.key"


def _fernet(create: bool):
    try:
        from cryptography import fernet
    except ImportError:
        raise ImportError(
            "Encrypted secrets need the 'cryptography' package: pip install cryptography"
        ) from None
    key = os.environ.get(_KEY_ENV, "").strip()
    if not key:
        path = key_path()
        try:
            key = path.read_text().strip()
        except FileNotFoundError:
            if not create:
                return None
            key = fernet.Fernet.generate_key().decode()
            _write_private(path, key)
            key = path.read_text().strip()  # another process may have won the race
    try:
        return fernet.Fernet(key.encode())
    except ValueError:
        where = _KEY_ENV if os.environ.get(_KEY_ENV) else f"'{key_path()}'"
        raise ValueError(
            f"The secrets key in {where} is not a valid Fernet key (32 url-safe base64 bytes)"
        ) from None


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` atomically, readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _read_store() -> dict[str, str]:
    values: dict[str, str] = {}
    try:
        values.update({str(k): str(v) for k, v in json.loads(_legacy_path().read_text()).items()})
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as e:
        raise ValueError(
            f"Cannot read the secret store '{_legacy_path()}': {type(e).__name__}"
        ) from None
    try:
        token = secrets_path().read_bytes()
    except FileNotFoundError:
        return values
    fernet = _fernet(create=False)
    if fernet is None:
        raise ValueError(
            f"Cannot read the secret store '{secrets_path()}': its key is missing "
            f"(set {_KEY_ENV} or restore '{key_path()}')"
        )
    from cryptography.fernet import InvalidToken

    try:
        values.update(json.loads(fernet.decrypt(token)))
    except InvalidToken:
        # Never echo the token or any value: only say which key did not fit.
        raise ValueError(
            f"Cannot read the secret store '{secrets_path()}': it was encrypted with another key"
        ) from None
    return values


def write_store(values: dict[str, str]) -> None:
    """Replace the secret store atomically (encrypted, owner-only), dropping a plaintext one."""
    fernet = _fernet(create=True)
    token = fernet.encrypt(json.dumps(values, sort_keys=True).encode()).decode()
    _write_private(secrets_path(), token)
    _legacy_path().unlink(missing_ok=True)


class Secrets(Mapping):
    """Read-only mapping of secret names to values; also readable as attributes."""

    def _all(self) -> dict[str, str]:
        values = _read_store()
        values.update(
            {k[len(_ENV_PREFIX) :]: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIX)}
        )
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

    def __reduce__(self):  # pickles (e.g. into a cache) by reference, never with values
        return (_secrets_singleton, ())


def _secrets_singleton() -> Secrets:
    return secrets


secrets = Secrets()
