"""fused.submit / JobPool / udf.map with the local engine: real worker processes of the C++ pool."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pandas as pd
import pytest

import fused
from fused import InvalidArgumentError, UdfError
from fused._submit import _SimpleBar


@fused.udf
def double(a: int = 1, b: int = 0):
    print("a is", a)
    if a == 3:
        raise ValueError("three is not allowed")
    return a * 2 + b


@fused.udf
def frame(val: int = 0):
    import pandas as pd

    return pd.DataFrame({"val": [val] * (val % 2 + 1)})


def test_values_bind_to_the_first_parameter_and_keep_input_order():
    df = fused.submit(double, [5, 1, 4], engine="local", cache=False)
    assert list(df.index) == [5, 1, 4]
    assert df.index.name == "a"
    assert list(df["result"]) == [10, 2, 8]


def test_list_of_dicts_and_dataframe_give_a_multiindex():
    inputs = [dict(a=i, b=10 * i) for i in range(3)]
    by_dicts = fused.submit(double, inputs, engine="local", cache=False)
    by_frame = fused.submit(double, pd.DataFrame(inputs), engine="local", cache=False)
    expected = [i * 2 + 10 * i for i in range(3)]
    for df in (by_dicts, by_frame):
        assert list(df.index.names) == ["a", "b"]
        assert list(df.index) == [(i, 10 * i) for i in range(3)]
        assert list(df["result"]) == expected


def test_kwargs_are_given_to_every_call():
    df = fused.submit(double, [1, 2], engine="local", cache=False, b=100)
    assert list(df["result"]) == [102, 104]


def test_dataframe_results_are_concatenated_and_indexed_by_their_inputs():
    df = fused.submit(frame, range(4), engine="local", cache=False)
    # odd values return two rows
    assert list(df["val"]) == [0, 1, 1, 2, 3, 3]
    assert list(df.index) == [0, 1, 1, 2, 3, 3]


def test_unknown_parameter_fails_before_any_call_runs(tmp_path):
    marker = tmp_path / "ran"

    @fused.udf
    def touch(a: int = 0, path: str = ""):
        open(path, "a").write("x")
        return a

    with pytest.raises(InvalidArgumentError, match=r"arg_list\[1\] names unknown parameter 'c' for UDF 'touch'"):
        fused.submit(touch, [dict(a=1, path=str(marker)), dict(c=2, path=str(marker))], engine="local")
    with pytest.raises(InvalidArgumentError, match=r"arg_list\[0\].*'a'"):
        fused.submit(touch, [dict(a="not a number", path=str(marker))], engine="local")
    time.sleep(0.2)
    assert not marker.exists()


@pytest.mark.parametrize("bad, message", [
    ("abc", "arg_list must be a list of values, a list of dicts or a DataFrame, got a str"),
    ({"a": 1}, "got a dict"),
    ([{"a": 1}, 2], "arg_list mixes dicts and plain values"),
])
def test_bad_arg_list_is_a_clear_error(bad, message):
    with pytest.raises(InvalidArgumentError, match=message):
        fused.submit(double, bad, engine="local")


@pytest.mark.parametrize("kwargs, message", [
    (dict(max_workers=0), "Invalid max_workers 0"),
    (dict(max_retry=-1), "Invalid max_retry -1"),
    (dict(engine="gpu"), "Invalid engine 'gpu'"),
])
def test_bad_options_are_clear_errors(kwargs, message):
    with pytest.raises(InvalidArgumentError, match=message):
        fused.submit(double, [1], **kwargs)


def test_a_failing_call_does_not_fail_the_pool():
    pool = fused.submit(double, range(6), engine="local", cache=False, collect=False, max_retry=1)
    pool.wait(timeout=60)
    assert repr(pool) == "<JobPool with 6 jobs [status: 6/6 done]>"
    status = pool.status()
    assert status["success"] == 5 and status["error"] == 1
    errors = pool.errors()
    assert list(errors) == [3]
    assert isinstance(errors[3], UdfError)
    assert "three is not allowed" in str(errors[3])
    assert "ValueError" in errors[3].traceback
    with pytest.warns(UserWarning, match="1 of 6 calls failed"):
        df = pool.df()
    assert list(df.index) == [0, 1, 2, 4, 5]
    with pytest.raises(UdfError, match="three is not allowed"):
        pool.results()
    results = pool.results(return_exceptions=True)
    assert results[:3] == [0, 2, 4] and isinstance(results[3], UdfError)
    logs = pool.logs_df()
    assert logs.loc[2, "stdout"] == "a is 2\n"
    assert logs.loc[3, "status"] == "error" and logs.loc[3, "attempts"] == 2
    assert "a is 3" in logs.loc[3, "stdout"]


def test_failed_calls_are_retried_with_backoff(tmp_path):
    @fused.udf
    def flaky(i: int = 0, folder: str = ""):
        import os

        path = os.path.join(folder, f"attempts-{i}")
        n = len(open(path).read()) if os.path.exists(path) else 0
        open(path, "a").write("x")
        if n < 2:
            raise RuntimeError(f"attempt {n} fails")
        return n

    pool = flaky.map([dict(i=i, folder=str(tmp_path)) for i in range(3)], engine="local", cache=False)
    assert [r for r in pool.results()] == [2, 2, 2]
    assert list(pool.logs_df()["attempts"]) == [3, 3, 3]
    too_few = flaky.map([dict(i=9, folder=str(tmp_path))], engine="local", cache=False, max_retry=1)
    assert isinstance(too_few.results(return_exceptions=True)[0], UdfError)


def test_cached_calls_are_not_run_again(tmp_path):
    log = tmp_path / "runs.txt"

    @fused.udf
    def counted(a: int = 0, log: str = ""):
        open(log, "a").write(f"{a}\n")
        return a + 1

    inputs = [dict(a=i, log=str(log)) for i in range(5)]
    first = fused.submit(counted, inputs, engine="local", collect=False)
    assert first.results() == [1, 2, 3, 4, 5]
    assert sorted(log.read_text().split()) == ["0", "1", "2", "3", "4"]
    again = fused.submit(counted, inputs + [dict(a=5, log=str(log))], engine="local", collect=False)
    assert again.results() == [1, 2, 3, 4, 5, 6]
    assert sorted(log.read_text().split()) == ["0", "1", "2", "3", "4", "5"]
    assert list(again.logs_df()["cached"]) == [True] * 5 + [False]
    # the cache is the one of fused.run(engine="local")
    assert fused.run(counted, engine="local", a=4, log=str(log)) == 5
    assert log.read_text().count("\n") == 6
    fused.submit(counted, inputs, engine="local", cache_max_age="0s")
    assert log.read_text().count("\n") == 11


def test_udf_map_and_iteration_as_results_arrive():
    @fused.udf
    def sleepy(s: float = 0):
        import time

        time.sleep(s)
        return s

    pool = sleepy.map([0.8, 0.0, 0.4], engine="local", cache=False, max_workers=3)
    assert isinstance(pool, fused.JobPool)
    order = [arg for arg, _ in pool]
    assert order == [0.0, 0.4, 0.8]
    assert list(pool.collect()["result"]) == [0.8, 0.0, 0.4]


def test_wait_on_results_is_a_deprecated_alias_of_collect():
    with pytest.warns(DeprecationWarning, match="use collect"):
        pool = fused.submit(double, [1], engine="local", wait_on_results=False)
    assert isinstance(pool, fused.JobPool)
    assert pool.results() == [2]


def test_debug_mode_runs_only_the_first_input():
    assert fused.submit(double, [7, 8, 9], engine="local", debug_mode=True) == 14


def test_a_worker_killed_mid_task_is_retried_on_another_worker(tmp_path):
    @fused.udf
    def victim(i: int = 0, folder: str = ""):
        import os
        import time

        marker = os.path.join(folder, "started")
        if not os.path.exists(marker):
            open(marker + ".tmp", "w").write(str(os.getpid()))
            os.rename(marker + ".tmp", marker)
            time.sleep(60)
        return os.getpid()

    pool = victim.map([dict(i=0, folder=str(tmp_path))], engine="local", cache=False)
    marker = tmp_path / "started"
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    killed = int(marker.read_text())
    os.kill(killed, signal.SIGKILL)
    [pid] = pool.results()
    assert pid != killed
    assert pool.logs_df()["attempts"].iloc[0] == 2


def test_cancel_stops_queued_calls_at_once_and_running_ones_within_a_second(tmp_path):
    @fused.udf
    def slow(i: int = 0, folder: str = ""):
        import os
        import time

        path = os.path.join(folder, f"pid-{i}")
        open(path + ".tmp", "w").write(str(os.getpid()))
        os.rename(path + ".tmp", path)
        time.sleep(60)
        return i

    pool = slow.map([dict(i=i, folder=str(tmp_path)) for i in range(10)], engine="local", cache=False,
                    max_workers=2)
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("pid-?"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = [int(p.read_text()) for p in tmp_path.glob("pid-?")]
    start = time.monotonic()
    pool.cancel()
    assert time.monotonic() - start < 1.5
    assert pool.done()
    assert pool.status()["cancelled"] == 10
    time.sleep(0.5)
    for pid in pids:  # the workers running the calls were stopped
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert len(list(tmp_path.glob("pid-?"))) == 2  # queued calls never started


def test_nested_submit_and_run_inside_a_udf_do_not_deadlock():
    @fused.udf
    def outer(n: int = 3):
        import fused

        @fused.udf
        def inner(x: int = 0):
            return x * 10

        pool = fused.submit(inner, range(n), engine="local", collect=False, max_workers=2)
        return sum(pool.results()) + fused.run(inner, engine="local", x=1)

    # as many outer calls as workers: inner calls must not wait for a free worker
    df = fused.submit(outer, [2, 3, 4], engine="local", cache=False, max_workers=3)
    assert list(df["result"]) == [10 + 10, 30 + 10, 60 + 10]


def test_progress_bar_on_request(capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tqdm(name, *args, **kwargs):
        if name.startswith("tqdm"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    pool = fused.submit(double, [1, 2], engine="local", cache=False, collect=False)
    pool.wait(progress=True)
    err = capsys.readouterr().err
    assert "fused.submit [" in err and "2/2" in err


def test_simple_bar_draws_progress(capsys):
    bar = _SimpleBar(4)
    bar.update(2)
    bar.close()
    assert "[###############...............] 2/4" in capsys.readouterr().err


def test_empty_arg_list_gives_an_empty_result():
    pool = fused.submit(double, [], engine="local", collect=False)
    assert repr(pool) == "<JobPool with 0 jobs [status: 0/0 done]>"
    assert len(pool.collect()) == 0


def test_jobpool_cannot_be_built_directly():
    with pytest.raises(TypeError, match="made by fused.submit"):
        fused.JobPool()


def test_unpicklable_result_is_a_clear_error():
    @fused.udf
    def gen(a: int = 0):
        import threading

        return {"lock": threading.Lock()}

    pool = gen.map([1], engine="local", cache=False)
    [error] = pool.results(return_exceptions=True)
    assert "cannot be pickled" in str(error) or "not a valid UDF output" in str(error)
    assert pool.logs_df()["attempts"].iloc[0] == 1  # not worth retrying


def test_workers_of_the_local_engine_are_reused():
    from fused import _submit

    first = fused.submit(double, [1], engine="local", cache=False, collect=False)
    first.wait()
    pool = _submit._POOL
    fused.submit(double, [2], engine="local", cache=False)
    assert _submit._POOL is pool


def test_file_results_in_workers_land_on_disk(tmp_path: Path):
    @fused.udf
    def write(i: int = 0, folder: str = ""):
        import os

        path = os.path.join(folder, f"{i}.txt")
        open(path, "w").write(str(i))
        return path

    df = fused.submit(write, [dict(i=i, folder=str(tmp_path)) for i in range(3)], engine="local", cache=False)
    assert sorted(Path(p).read_text() for p in df["result"]) == ["0", "1", "2"]


def test_exit_with_calls_running_cancels_them_cleanly(run_python):
    code = """
import fused

@fused.udf
def slow(i: int = 0):
    import time
    time.sleep(60)

pool = slow.map(range(4), engine="local", cache=False, max_workers=2)
import time
deadline = time.monotonic() + 60
while pool.status()["running"] == 0 and time.monotonic() < deadline:
    time.sleep(0.05)
time.sleep(0.5)
print("exiting")
"""
    start = time.monotonic()
    result = run_python(code, timeout=60)
    assert "exiting" in result.stdout
    assert time.monotonic() - start < 30
    assert "terminate called" not in result.stderr


def test_cancel_of_remote_and_thread_calls_reports_them_cancelled_at_once():
    pool = fused.submit(double, [1], engine="local", cache=False, collect=False)
    pool.wait()
    pool.cancel()  # nothing left to stop: finished calls keep their results
    assert pool.results() == [2]


def test_many_short_calls_travel_in_batches_with_per_call_errors_retries_and_cache(tmp_path):
    log = tmp_path / "runs"

    @fused.udf
    def short(a: int = 0, log: str = ""):
        open(log, "a").write(".")
        print("call", a)
        if a % 50 == 7:
            raise ValueError(f"bad {a}")
        return a

    from fused import _submit

    calls = []
    real = _submit._LocalPool.call_batch

    def spy(self, tasks, jobs):
        calls.append(len(tasks))
        return real(self, tasks, jobs)

    _submit._LocalPool.call_batch = spy
    try:
        inputs = [dict(a=i, log=str(log)) for i in range(300)]
        pool = fused.submit(short, inputs, engine="local", collect=False, max_workers=2, max_retry=1)
        results = pool.results(return_exceptions=True)
    finally:
        _submit._LocalPool.call_batch = real
    assert calls and max(calls) > 1  # batches were used
    failed = [i for i in range(300) if i % 50 == 7]
    assert [r for i, r in enumerate(results) if i not in failed] == [i for i in range(300) if i not in failed]
    assert sorted(k[0] for k in pool.errors()) == failed
    logs = pool.logs_df()
    assert all(logs.iloc[i]["attempts"] == 2 for i in failed)
    assert logs.iloc[8]["stdout"] == "call 8\n" and logs.iloc[8]["attempts"] == 1
    assert len(log.read_text()) == 300 + len(failed)  # each failed call ran twice
    again = fused.submit(short, inputs, engine="local", collect=False, max_workers=2, max_retry=0)
    again.wait()
    assert len(log.read_text()) == 300 + 2 * len(failed)  # only the failed calls ran again
    assert int(again.logs_df()["cached"].sum()) == 300 - len(failed)
