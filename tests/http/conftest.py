"""Fixtures for the HTTP tests: the real terrafused binary on a free port (STYLE.md §15)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import fused
from fused._server import ServerProcess, find_terrafused, start_server

# Log lines at these levels fail the session unless a test expected them.
_BAD_LEVEL = re.compile(r"\blevel=(error|warn)\b")


def _on_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def terrafused_bin():
    """The terrafused binary; a missing one fails the run on CI and skips it elsewhere."""
    try:
        return find_terrafused()
    except FileNotFoundError as e:
        if _on_ci():
            pytest.fail(f"terrafused is required when CI=true: {e}")
        pytest.skip(str(e))


def _assert_log_clean(server: ServerProcess, allowed: tuple[str, ...] = ()) -> None:
    """Fail on ERROR or WARN log lines other than those matching an `allowed` regex."""
    unexpected = [
        line
        for line in server.log()
        if _BAD_LEVEL.search(line) and not any(re.search(a, line) for a in allowed)
    ]
    assert not unexpected, "unexpected log lines:\n" + "\n".join(unexpected)


@pytest.fixture(scope="session")
def assert_log_clean():
    """The log check, for tests that start their own server."""
    return _assert_log_clean


@pytest.fixture(scope="session")
def server(terrafused_bin, tmp_path_factory):
    """One terrafused for the session, with the debug routes; its log must stay clean.

    Two I/O threads (more than the default on 2 cores), so that every HTTP test also runs
    connections' strands concurrently: a blocking call on an I/O thread once stalled
    keep-alive connections only then, under load."""
    home = tmp_path_factory.mktemp("terrafused-home")
    process = start_server(binary=terrafused_bin, port=0, home=home, threads=4, debug_routes=True,
                           extra_args=["--io-threads", "2"])
    yield process
    code = process.stop()
    assert code == 0, f"terrafused exited with {code}:\n{process.log_text()}"
    _assert_log_clean(process)


@pytest.fixture
def remote(server, monkeypatch):
    """Point the SDK at the session's server with its local API token."""
    monkeypatch.setenv("TERRAFUSE_TOKEN", (Path(server.home) / "credentials").read_text().strip())
    fused.options.base_url = server.base_url
    return server
