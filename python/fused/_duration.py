"""Durations as the seeds write them: "30s", "10m", "12h", "90d", or a number of seconds."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def parse_duration(value: str | int | float | timedelta, *, name: str = "cache_max_age") -> float:
    """Return ``value`` in seconds.

    Raises
    ------
    ValueError
        When ``value`` is negative or not of the form ``<number><s|m|h|d>``.
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ValueError(f"Invalid {name} {value!r}: use a number of seconds or e.g. '30s', '12h', '90d'")
    elif isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (m := _PATTERN.match(value)):
        seconds = float(m.group(1)) * _UNITS[m.group(2) or "s"]
    else:
        raise ValueError(f"Invalid {name} {value!r}: use a number of seconds or e.g. '30s', '12h', '90d'")
    if seconds != seconds:  # NaN: would otherwise compare as neither expired nor fresh
        raise ValueError(f"Invalid {name} {value!r}: use a number of seconds or e.g. '30s', '12h', '90d'")
    if seconds < 0:
        raise ValueError(f"Invalid {name} {value!r}: must not be negative")
    return seconds
