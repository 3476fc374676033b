"""fused.submit(engine="remote"): every call runs on the server's worker pool."""

from __future__ import annotations


import pytest

import fused
from fused import InvalidArgumentError, UdfError


@fused.udf
def remote_square(x: int = 0):
    import os

    print("pid", os.getpid())
    if x < 0:
        raise ValueError("negative")
    return x * x


def test_remote_submit_runs_on_the_servers_workers(remote):
    pool = fused.submit(remote_square, [1, 2, -1, 3], engine="remote", collect=False, max_retry=0)
    pool.wait(timeout=120)
    assert pool.status()["success"] == 3
    assert isinstance(pool.errors()[-1], UdfError)
    with pytest.warns(UserWarning, match="1 of 4 calls failed"):
        df = pool.df()
    assert list(df.index) == [1, 2, 3] and list(df["result"]) == [1, 4, 9]
    assert pool.logs_df().loc[2, "stdout"].startswith("pid ")


def test_remote_submit_is_the_default_with_a_server(remote):
    assert list(fused.submit(remote_square, [4])["result"]) == [16]


def test_remote_submit_checks_names_before_any_call(remote):
    with pytest.raises(InvalidArgumentError, match="unknown parameter 'y'"):
        fused.submit(remote_square, [dict(y=1)], engine="remote")
