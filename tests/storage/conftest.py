"""The storage tests start their own servers: reuse the HTTP tests' binary and log fixtures."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "_http_conftest", Path(__file__).parents[1] / "http" / "conftest.py"
)
_http = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_http)

terrafused_bin = _http.terrafused_bin
assert_log_clean = _http.assert_log_clean
