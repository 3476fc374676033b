"""Shared fixtures: every test gets its own data home, cache and shared disk."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import fused

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def fused_home(tmp_path, monkeypatch):
    """Point TERRAFUSE_HOME, the cache and the shared disk at per-test directories."""
    home = tmp_path / "home"
    shared = tmp_path / "shared"
    monkeypatch.setenv("TERRAFUSE_HOME", str(home))
    monkeypatch.setenv("TERRAFUSE_SHARED_DIR", str(shared))
    # The secrets key lives under the config home: never the real ~/.config in tests.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("TERRAFUSE_SECRETS_KEY", raising=False)
    monkeypatch.delenv("TERRAFUSE_FD_ROOT", raising=False)
    monkeypatch.delenv("TERRAFUSE_GITHUB_MIRROR", raising=False)
    saved = {name: getattr(fused.options, name) for name in dir(fused.options) if name not in ("save", "reset")}
    fused.options.cache_directory = str(home / "cache")
    fused.options.temp_directory = str(shared)
    fused.options.base_url = None
    fused.options.github_mirror = None
    yield home
    for name, value in saved.items():
        setattr(fused.options, name, value)


@pytest.fixture
def run_python(fused_home):
    """Run Python code in a fresh process that sees this test's data home."""

    def run(code: str, *, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                timeout=timeout, env=dict(os.environ), cwd=REPO)
        if check and result.returncode != 0:
            raise AssertionError(f"subprocess failed:\n{result.stdout}\n{result.stderr}")
        return result

    return run
