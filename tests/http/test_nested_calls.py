"""UDFs that call the server from inside a worker (fused.run / fused.submit, engine="remote")
never deadlock the pool: a nested call gets a temporary worker when every worker is busy."""

from __future__ import annotations

import time
from pathlib import Path

import fused
from fused._server import start_server

OUTER = '''
@fused.udf
def udf(base_url: str = "", n: int = 2):
    import fused

    fused.options.base_url = base_url

    @fused.udf
    def inner(v: int = 0):
        return v * 10

    one = fused.run(inner, engine="remote", v=1)
    many = fused.submit(inner, list(range(n)), engine="remote", collect=False, max_workers=n)
    return one + sum(many.results())
'''


def test_nested_remote_calls_on_a_one_worker_server(terrafused_bin, tmp_path, monkeypatch):
    server = start_server(binary=terrafused_bin, port=0, home=tmp_path / "home", workers=1)
    try:
        monkeypatch.setenv("TERRAFUSE_TOKEN", (Path(server.home) / "credentials").read_text().strip())
        fused.options.base_url = server.base_url
        outer = fused.load(OUTER)
        start = time.monotonic()
        # the only worker runs `outer`, which waits on 1 + 3 nested calls
        assert fused.run(outer, engine="remote", base_url=server.base_url, n=3, cache=False) == 10 + 30
        assert time.monotonic() - start < 60  # not the queue timeout
        assert any("event=extra_worker_started" in line for line in server.log())
    finally:
        fused.options.base_url = None
        assert server.stop() == 0
