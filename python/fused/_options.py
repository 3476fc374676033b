"""``fused.options``: the SDK's settings, validated on assignment and saved to the data home."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any, Callable


def data_home() -> Path:
    """Return the terrafuse data home: ``$TERRAFUSE_HOME``, else ``~/.terrafuse``."""
    return Path(os.environ.get("TERRAFUSE_HOME") or Path.home() / ".terrafuse")


def _optional_str(name: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"fused.options.{name} must be a string or None, got {type(value).__name__}")
    return value


def _str(name: str, value: Any) -> str:
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"fused.options.{name} must be a path string, got {type(value).__name__}")
    return os.fspath(value)


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"fused.options.{name} must be True or False, got {value!r}")
    return value


def _positive_int(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"fused.options.{name} must be a positive integer, got {value!r}")
    return value


def _engine(name: str, value: Any) -> str | None:
    if value not in (None, "local", "remote"):
        raise ValueError(f"fused.options.{name} must be 'local', 'remote' or None, got {value!r}")
    return value


# name -> (default factory, validator, description)
_OPTIONS: dict[str, tuple[Callable[[], Any], Callable[[str, Any], Any], str]] = {
    "base_url": (lambda: os.environ.get("TERRAFUSE_BASE_URL"), _optional_str,
                 "URL of a terrafuse server, e.g. http://127.0.0.1:8080/server/v1"),
    "cache_directory": (lambda: str(data_home() / "cache"), _str,
                        "Where @fused.cache and fused.run results are stored"),
    "data_directory": (lambda: str(data_home() / "data"), _str,
                       "Where terrafuse keeps its own data (saved UDFs, state)"),
    "cache_max_bytes": (lambda: 10 * 2**30, _positive_int,
                        "Size bound of each cache folder; least recently used entries are evicted"),
    "temp_directory": (lambda: os.environ.get("TERRAFUSE_SHARED_DIR", "/tmp/fused"), _str,
                       "The shared disk of local runs: fused.file_path, fused.download, /mount"),
    "local_engine_cache": (lambda: True, _bool, "Cache results of fused.run(engine='local')"),
    "default_udf_run_engine": (lambda: None, _engine,
                               "Engine of fused.run when none is given (None: remote if "
                               "base_url is set, else local)"),
    "github_mirror": (lambda: os.environ.get("TERRAFUSE_GITHUB_MIRROR"), _optional_str,
                      "Directory of bare git mirrors <owner>/<repo>.git for GitHub URLs"),
    "verbose_cached_functions": (lambda: False, _bool, "Print cache hits and misses"),
    "dask_scheduler": (lambda: os.environ.get("TERRAFUSE_DASK_SCHEDULER") or None, _optional_str,
                       "Address of a Dask scheduler (tcp://host:8786): fused.submit(engine='local') "
                       "and job tasks then run on that Dask cluster"),
}


class Options:
    """Settings of the SDK. Only known names can be set; each is validated on assignment.

    Values persist with :meth:`save` to ``<data home>/options.json`` and are read back when
    ``fused`` is imported.
    """

    def __init__(self) -> None:
        object.__setattr__(self, "_values", {name: spec[0]() for name, spec in _OPTIONS.items()})
        self._load_saved()

    def __getattr__(self, name: str) -> Any:
        values = object.__getattribute__(self, "_values")
        if name in values:
            return values[name]
        raise AttributeError(f"fused.options has no option {name!r}; known: {', '.join(_OPTIONS)}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in _OPTIONS:
            raise AttributeError(f"fused.options has no option {name!r}; known: {', '.join(_OPTIONS)}")
        self._values[name] = _OPTIONS[name][1](name, value)

    def __dir__(self) -> list[str]:
        return sorted(_OPTIONS) + ["save", "reset"]

    def __repr__(self) -> str:
        lines = [f"  {name} = {self._values[name]!r}" for name in _OPTIONS]
        return "fused.options:\n" + "\n".join(lines)

    @property
    def path(self) -> Path:
        """The file :meth:`save` writes."""
        return data_home() / "options.json"

    def save(self) -> None:
        """Persist every option that differs from its default, atomically."""
        changed = {k: v for k, v in self._values.items() if v != _OPTIONS[k][0]()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(changed, indent=2, sort_keys=True))
        os.replace(tmp, self.path)

    def reset(self) -> None:
        """Restore every option to its default (the saved file is left alone)."""
        self._values.update({name: spec[0]() for name, spec in _OPTIONS.items()})

    def _load_saved(self) -> None:
        try:
            saved = json.loads(self.path.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as e:
            warnings.warn(f"Ignoring saved options '{self.path}': cannot read it ({e})", stacklevel=3)
            return
        if not isinstance(saved, dict):
            warnings.warn(f"Ignoring saved options '{self.path}': expected a JSON object", stacklevel=3)
            return
        for name, value in saved.items():
            try:
                setattr(self, name, value)
            except (AttributeError, TypeError, ValueError) as e:
                warnings.warn(f"Ignoring saved option {name!r} in '{self.path}': {e}", stacklevel=3)


options = Options()
