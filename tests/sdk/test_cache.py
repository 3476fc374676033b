"""@fused.cache: keys, hits, expiry, options, on-disk integrity, eviction, cross-process locks.

Every test runs with its own cache directory and shared disk (``fused_home`` in conftest).
Cached functions are decorated inside the tests, after the fixture has pointed
``fused.options.cache_directory`` at the test's directory: a decorator resolves its folder
when it runs.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fused
from fused import _cache
from fused._hashing import hash_values

# --------------------------------------------------------------------------- helpers


def entries(folder: Path) -> list[Path]:
    """Cache entry files under ``folder`` (the lock files are not entries)."""
    return sorted(p for p in Path(folder).rglob("*.tfc") if p.is_file())


def cache_dir() -> Path:
    return Path(fused.options.cache_directory)


def unique(name: str = "c") -> str:
    """A cache folder name used by one test only (DiskStores are cached per directory)."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def import_file(path: Path):
    """Import ``path`` as a fresh module (inspect.getsource works on its functions)."""
    name = f"tmpmod_{path.stem}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def popen_python(script: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    """Start ``python script args`` in a process that sees this test's data home and disk."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    assert full_env["TERRAFUSE_HOME"] and full_env["TERRAFUSE_SHARED_DIR"]
    return subprocess.Popen([sys.executable, str(script), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=full_env)


def finish(proc: subprocess.Popen, timeout: float = 60) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"subprocess failed ({proc.returncode}):\n{out}\n{err}"
    return out


# --------------------------------------------------------------------------- hits and keys


def test_bare_decorator_caches_and_keeps_function_identity():
    calls = []

    @fused.cache
    def double(x):
        """Doubles."""
        calls.append(x)
        return x * 2

    assert double(3) == 6
    assert double(3) == 6
    assert calls == [3]
    assert double.__name__ == "double" and double.__doc__ == "Doubles."
    assert double.__wrapped__(5) == 10 and calls == [3, 5]  # the undecorated function
    assert len(entries(cache_dir() / "tmp")) == 1  # default folder: <cache_directory>/tmp


@pytest.mark.parametrize("kwargs", [{}, {"cache_max_age": "1h"}], ids=["empty-call", "with-args"])
def test_called_decorator_caches(kwargs):
    calls = []

    def triple(x):
        calls.append(x)
        return x * 3

    cached = fused.cache(**kwargs)(triple)
    assert [cached(2), cached(2), cached(2)] == [6, 6, 6]
    assert calls == [2]


def test_hit_returns_stored_value_without_recomputing():
    calls = []

    @fused.cache
    def now(tag):
        calls.append(tag)
        return {"tag": tag, "at": time.time_ns(), "n": len(calls)}

    first = now("a")
    again = now("a")
    assert again == first  # the stored value, not a recomputation (time_ns differs)
    assert calls == ["a"]


def test_different_arguments_recompute():
    calls = []

    @fused.cache
    def f(x, y=0):
        calls.append((x, y))
        return x + y

    assert f(1) == 1
    assert f(2) == 2
    assert f(1, y=5) == 6
    assert calls == [(1, 0), (2, 0), (1, 5)]
    assert f(1) == 1 and f(2) == 2 and f(1, y=5) == 6
    assert len(calls) == 3


def test_positional_keyword_and_default_spellings_share_a_key():
    calls = []

    @fused.cache
    def f(a, b=2, *, c=3):
        calls.append((a, b, c))
        return a * 100 + b * 10 + c

    assert f(1) == 123
    assert f(1, 2) == 123
    assert f(a=1, b=2) == 123
    assert f(b=2, a=1, c=3) == 123
    assert calls == [(1, 2, 3)]
    assert f(1, 3) == 133
    assert len(calls) == 2


def test_none_result_is_cached():
    calls = []

    @fused.cache
    def nothing(x):
        calls.append(x)

    assert nothing(1) is None
    assert nothing(1) is None
    assert calls == [1]


def test_exception_is_not_cached():
    calls = []

    @fused.cache
    def flaky(x):
        calls.append(x)
        if len(calls) == 1:
            raise RuntimeError("first call fails")
        return x

    with pytest.raises(RuntimeError, match="first call fails"):
        flaky(7)
    assert flaky(7) == 7
    assert flaky(7) == 7
    assert calls == [7, 7]


def test_unpicklable_result_is_returned_with_a_warning_and_not_cached():
    calls = []

    @fused.cache
    def make_lock(x):
        calls.append(x)
        return threading.Lock()

    with pytest.warns(UserWarning, match="make_lock.*cannot be pickled"):
        assert make_lock(1) is not None
    with pytest.warns(UserWarning, match="cannot be pickled"):
        make_lock(1)
    assert calls == [1, 1]
    assert entries(cache_dir() / "tmp") == []


def test_dataframes_round_trip_through_the_cache():
    import geopandas as gpd
    import shapely

    calls = []

    @fused.cache
    def load(n):
        calls.append(n)
        return gpd.GeoDataFrame({"id": range(n), "name": [f"r{i}" for i in range(n)]},
                                geometry=[shapely.Point(i, -i) for i in range(n)], crs="EPSG:3857")

    first = load(4)
    second = load(4)
    assert calls == [4]
    assert second is not first
    assert isinstance(second, gpd.GeoDataFrame)
    assert second.crs == "EPSG:3857"
    pd.testing.assert_frame_equal(pd.DataFrame(second), pd.DataFrame(first))


def test_different_functions_with_the_same_arguments_do_not_share_entries():
    @fused.cache
    def one(x):
        return "one"

    @fused.cache
    def two(x):
        return "two"

    assert one(1) == "one"
    assert two(1) == "two"
    assert one(1) == "one"
    assert len(entries(cache_dir() / "tmp")) == 2


# --------------------------------------------------------------------------- source changes

SOURCE = """\
import fused

CALLS = []


@fused.cache
def compute(x):
    CALLS.append(x)
    return x + 1{suffix}
"""


def test_key_follows_the_function_source(tmp_path):
    same_a = tmp_path / "same_a.py"
    same_b = tmp_path / "same_b.py"
    spaced = tmp_path / "spaced.py"
    blank_line = tmp_path / "blank_line.py"
    changed = tmp_path / "changed.py"
    same_a.write_text(SOURCE.format(suffix=""))
    same_b.write_text(SOURCE.format(suffix=""))
    spaced.write_text(SOURCE.format(suffix="").replace("return x + 1", "return x  + 1"))
    blank_line.write_text(SOURCE.format(suffix="").replace("    CALLS.append(x)\n",
                                                            "    CALLS.append(x)\n\n"))
    changed.write_text(SOURCE.format(suffix="0"))

    a = import_file(same_a)
    assert a.compute(1) == 2 and a.CALLS == [1]
    # The same text in another module: the key is the code, not the module it lives in.
    b = import_file(same_b)
    assert b.compute(1) == 2 and b.CALLS == []
    # Whitespace-only edits are edits.
    s = import_file(spaced)
    assert s.compute(1) == 2 and s.CALLS == [1]
    blank = import_file(blank_line)
    assert blank.compute(1) == 2 and blank.CALLS == [1]
    c = import_file(changed)
    assert c.compute(1) == 11 and c.CALLS == [1]
    # Each version keeps its own entry.
    assert a.compute(1) == 2 and a.CALLS == [1]
    assert s.compute(1) == 2 and s.CALLS == [1]
    assert len(entries(cache_dir() / "tmp")) == 4


def test_functions_without_source_get_keys_from_their_code():
    """exec'd code (no file, no linecache): the key comes from the bytecode."""
    text = textwrap.dedent("""
        @fused.cache
        def f(xs):
            CALLS.append(xs)
            return [x * 2 for x in xs if x not in {"skip", "me"}]
    """)
    calls: list = []
    ns1 = {"fused": fused, "CALLS": calls}
    ns2 = {"fused": fused, "CALLS": calls}
    exec(text, ns1)
    exec(text, ns2)  # a separate function object, with separate code objects
    assert ns1["f"]([1, 2]) == [2, 4]
    assert ns2["f"]([1, 2]) == [2, 4]
    assert calls == [[1, 2]]

    ns3 = {"fused": fused, "CALLS": calls}
    exec(text.replace("x * 2", "x * 3"), ns3)
    assert ns3["f"]([1, 2]) == [3, 6]
    assert len(calls) == 2


def test_functions_without_source_hit_across_processes(tmp_path):
    """`python -c` functions (comprehension and set constants) share keys between runs."""
    counter = tmp_path / "counter"
    code = textwrap.dedent(f"""
        import fused

        @fused.cache
        def f(xs):
            with open({str(counter)!r}, "a") as out:
                out.write("x\\n")
            return [x * 2 for x in xs if x not in {{"skip", "me", "too"}}]

        print(f([1, 2, "skip"]))
    """)
    outs = []
    for seed in ("1", "2"):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}, timeout=60)
        assert proc.returncode == 0, proc.stderr
        outs.append(proc.stdout.strip())
    assert outs == ["[2, 4]", "[2, 4]"]
    assert lines(counter) == ["x"]


# --------------------------------------------------------------------------- expiry


def test_max_age_expiry_and_call_time_override():
    short_calls, long_calls = [], []

    @fused.cache(cache_max_age="1s")
    def short(x):
        short_calls.append(time.time())
        return len(short_calls)

    @fused.cache  # 12h
    def long(x):
        long_calls.append(time.time())
        return len(long_calls)

    assert short(1) == 1 and short(1) == 1
    assert long(1) == 1
    time.sleep(1.3)
    assert short(1) == 2  # older than 1s: recomputed
    assert short(1) == 2  # and stored again
    assert long(1) == 1  # 12h: still valid
    assert long(1, cache_max_age="1s") == 2  # a call can shorten the age...
    assert long(1, cache_max_age=1) == 2  # ...and the new value was stored
    assert long(1) == 2
    assert short(1, cache_max_age="1h") == 2


@pytest.mark.parametrize("zero", [0, "0s", "0", "0m", 0.0])
def test_zero_max_age_disables_caching(zero):
    folder = unique("zero")
    calls = []

    @fused.cache(cache_max_age=zero, cache_folder_path=folder)
    def f(x):
        calls.append(x)
        return x

    assert [f(1), f(1), f(1)] == [1, 1, 1]
    assert calls == [1, 1, 1]
    assert entries(cache_dir() / folder) == []


def test_call_time_zero_max_age_bypasses_without_touching_the_entry():
    calls = []

    @fused.cache
    def f(x):
        calls.append(x)
        return len(calls)

    assert f(1) == 1
    assert f(1, cache_max_age="0s") == 2  # runs...
    assert f(1, cache_max_age=0) == 3
    assert f(1) == 1  # ...but neither reads nor replaces the stored value
    assert len(calls) == 3


# --------------------------------------------------------------------------- options


def test_cache_reset_recomputes_and_overwrites():
    calls = []

    @fused.cache
    def f(x):
        calls.append(x)
        return len(calls)

    assert f(1) == 1
    assert f(1, cache_reset=True) == 2
    assert f(1) == 2  # the reset value replaced the old one
    assert f(1, cache_reset=False) == 2
    assert len(calls) == 2


def test_decorator_cache_reset_always_recomputes():
    calls = []

    @fused.cache(cache_reset=True)
    def f(x):
        calls.append(x)
        return len(calls)

    assert [f(1), f(1), f(1)] == [1, 2, 3]
    assert f(1, cache_reset=False) == 3  # the last value was stored


def test_cache_verbose_prints_hits_and_misses(capsys):
    @fused.cache(cache_verbose=True)
    def loud(x):
        return x

    loud(1)
    err = capsys.readouterr().err
    assert "Cache miss for" in err and "loud" in err
    loud(1)
    err = capsys.readouterr().err
    assert "Cached data found for" in err and "loud" in err
    assert ".tfc" in err  # names the entry
    loud(1, cache_verbose=False)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_verbose_option_is_the_default_and_calls_can_silence_it(capsys):
    @fused.cache
    def quiet(x):
        return x

    quiet(1)
    assert capsys.readouterr().err == ""
    fused.options.verbose_cached_functions = True
    quiet(2)
    assert "Cache miss for" in capsys.readouterr().err
    quiet(2)
    assert "Cached data found for" in capsys.readouterr().err
    quiet(2, cache_verbose=False)
    assert capsys.readouterr().err == ""


def test_cache_storage_mount_and_local():
    folder = unique("st")
    calls = []

    @fused.cache(cache_storage="mount", cache_folder_path=folder)
    def f(x):
        calls.append(x)
        return x

    assert f(1) == 1 and f(1) == 1
    assert calls == [1]
    shared = Path(fused.options.temp_directory)
    assert len(entries(shared / "cached_data" / folder)) == 1
    assert entries(cache_dir() / folder) == []
    # A call can pick another storage: a separate folder, so a miss there.
    assert f(1, cache_storage="local") == 1
    assert calls == [1, 1]
    assert len(entries(cache_dir() / folder)) == 1
    assert f(1, cache_storage="auto") == 1  # auto is the cache directory too
    assert f(1) == 1
    assert calls == [1, 1]


def test_cache_storage_older_name_storage():
    folder = unique("old-storage")

    @fused.cache(storage="mount", cache_folder_path=folder)
    def f(x):
        return x

    f(1)
    assert len(entries(Path(fused.options.temp_directory) / "cached_data" / folder)) == 1


def test_deprecated_path_and_reset_still_work():
    folder = unique("legacy")
    calls = []

    def f(x):
        calls.append(x)
        return len(calls)

    with pytest.warns(DeprecationWarning, match="cache_folder_path"):
        by_path = fused.cache(path=folder)(f)
    assert by_path(1) == 1 and by_path(1) == 1
    assert len(entries(cache_dir() / folder)) == 1

    with pytest.warns(DeprecationWarning, match="cache_reset"):
        resetting = fused.cache(cache_folder_path=folder, reset=True)(f)
    assert resetting(1) == 2
    assert resetting(1) == 3
    assert by_path(1) == 3  # same function, folder and key: sees the reset's value


def test_relative_folder_lives_under_the_cache_directory():
    folder = unique("rel") + "/nested"

    @fused.cache(cache_folder_path=folder)
    def f(x):
        return x

    f(1)
    assert len(entries(cache_dir() / folder)) == 1


def test_absolute_folder_is_used_as_is(tmp_path):
    target = tmp_path / "elsewhere" / "cache"

    @fused.cache(cache_folder_path=str(target))
    def f(x):
        return x

    f(1)
    assert len(entries(target)) == 1
    assert entries(cache_dir()) == []


@pytest.mark.parametrize("prefix", ["/mount", "/mnt/cache"])
def test_mount_folders_map_to_the_shared_disk(prefix):
    folder = unique("mnt")

    @fused.cache(cache_folder_path=f"{prefix}/{folder}/")
    def f(x):
        return x

    f(1)
    assert len(entries(Path(fused.options.temp_directory) / folder)) == 1


@pytest.mark.parametrize("bad", ["../escape", "a/../../b", "/mount/../etc"])
def test_folder_with_dotdot_is_rejected(bad):
    with pytest.raises(ValueError, match=r"\.\."):
        fused.cache(cache_folder_path=bad)


def test_cache_key_exclude():
    calls = []

    @fused.cache(cache_key_exclude=["conn"])
    def query(sql, conn):
        calls.append(sql)
        return sql.upper()

    assert query("select 1", threading.Lock()) == "SELECT 1"
    assert query("select 1", conn=threading.Lock()) == "SELECT 1"  # another conn: same key
    assert calls == ["select 1"]
    assert query("select 2", threading.Lock()) == "SELECT 2"
    assert calls == ["select 1", "select 2"]


def test_cache_key_exclude_applies_to_var_keyword_arguments():
    calls = []

    @fused.cache(cache_key_exclude=["conn"])
    def query(sql, **options):
        calls.append(sql)
        return sql

    assert query("q", conn=threading.Lock(), limit=1) == "q"
    assert query("q", conn=threading.Lock(), limit=1) == "q"
    assert calls == ["q"]
    assert query("q", conn=threading.Lock(), limit=2) == "q"  # limit is still in the key
    assert calls == ["q", "q"]


def test_unhashable_argument_names_cache_key_exclude():
    @fused.cache
    def query(sql, conn):
        return sql

    with pytest.raises(TypeError, match=r"(?s)lock.*cache_key_exclude"):
        query("select 1", threading.Lock())


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"cache_max_age": "soon"}, ValueError, r"Invalid cache_max_age 'soon'"),
        ({"cache_max_age": "12 hours"}, ValueError, r"Invalid cache_max_age"),
        ({"cache_max_age": -5}, ValueError, r"must not be negative"),
        ({"cache_max_age": True}, ValueError, r"Invalid cache_max_age"),
        ({"cache_storage": "s3"}, ValueError, r"Invalid cache_storage 's3'.*auto, mount, local"),
        ({"storage": "disk"}, ValueError, r"Invalid cache_storage 'disk'"),
        ({"concurrent_lock_timeout": "forever"}, ValueError, r"Invalid concurrent_lock_timeout"),
        ({"max_age": "1h"}, TypeError, r"unexpected keyword arguments: max_age"),
        ({"bogus": 1, "cache_dir": "x"}, TypeError, r"bogus"),
    ],
)
def test_invalid_decorator_arguments_are_rejected(kwargs, error, match):
    with pytest.raises(error, match=match):
        fused.cache(**kwargs)


def test_decorating_a_non_callable_is_rejected():
    with pytest.raises(TypeError, match="expects a function, got int"):
        fused.cache(42)


def test_invalid_call_time_options_are_rejected():
    calls = []

    @fused.cache
    def f(x):
        calls.append(x)
        return x

    with pytest.raises(ValueError, match="Invalid cache_max_age 'later'"):
        f(1, cache_max_age="later")
    with pytest.raises(ValueError, match="Invalid cache_storage 'cloud'"):
        f(1, cache_storage="cloud")
    assert calls == []


# --------------------------------------------------------------------------- on-disk integrity


def test_truncated_entry_is_detected_and_recomputed():
    folder = unique("trunc")
    calls = []

    @fused.cache(cache_folder_path=folder)
    def f(x):
        calls.append(x)
        return list(range(x))

    assert f(100) == list(range(100))
    (entry,) = entries(cache_dir() / folder)
    size = entry.stat().st_size
    with open(entry, "r+b") as fh:
        fh.truncate(size // 2)
    assert f(100) == list(range(100))
    assert calls == [100, 100]
    (entry,) = entries(cache_dir() / folder)
    assert entry.stat().st_size == size  # rewritten whole
    assert f(100) == list(range(100))
    assert calls == [100, 100]


def test_flipped_byte_in_entry_is_detected_and_recomputed():
    folder = unique("flip")
    calls = []

    @fused.cache(cache_folder_path=folder)
    def f(x):
        calls.append(x)
        return "v" * 500

    f(1)
    (entry,) = entries(cache_dir() / folder)
    data = bytearray(entry.read_bytes())
    data[-10] ^= 0xFF  # inside the pickled payload: caught by the checksum
    entry.write_bytes(bytes(data))
    assert f(1) == "v" * 500
    assert calls == [1, 1]
    assert _cache.store_at(cache_dir() / folder).stats()["corrupt"] >= 1


def test_unreadable_payload_is_dropped_and_recomputed():
    folder = unique("badpickle")
    calls = []

    @fused.cache(cache_folder_path=folder)
    def f(x):
        calls.append(x)
        return {"x": x}

    f(1)
    (entry,) = entries(cache_dir() / folder)
    key = entry.name[: -len(".tfc")]
    store = _cache.store_at(cache_dir() / folder)
    assert store.entry_path(key) == str(entry)
    store.put(key, b"this is not a pickle")  # an intact entry an older version could write
    assert f(1) == {"x": 1}
    assert calls == [1, 1]
    assert f(1) == {"x": 1}
    assert calls == [1, 1]


def test_size_bound_evicts_least_recently_used():
    folder = unique("lru")
    # ~1,050 bytes per entry: two fit under the bound, three do not. The bound is read when a
    # folder's store is first opened, so set it before the first use of this fresh folder.
    fused.options.cache_max_bytes = 2500
    calls = []

    @fused.cache(cache_folder_path=folder)
    def blob(name):
        calls.append(name)
        return name.encode() * 1000

    def step(name):
        value = blob(name)
        assert value == name.encode() * 1000
        time.sleep(0.03)  # file times are coarse: keep uses apart

    step("a")
    step("b")
    step("a")  # hit: a is now more recently used than b
    assert calls == ["a", "b"]
    step("c")  # over the bound: evicts b, the least recently used
    assert len(entries(cache_dir() / folder)) == 2
    store = _cache.store_at(cache_dir() / folder)
    assert store.used_bytes() <= 2500
    assert store.stats()["evictions"] >= 1
    step("a")
    step("c")
    assert calls == ["a", "b", "c"]  # both survived
    step("b")
    assert calls == ["a", "b", "c", "b"]  # was evicted


# --------------------------------------------------------------------------- concurrency

SLOW_MODULE = """\
import os
import time

import fused


@fused.cache(concurrent_lock_timeout=float(os.environ["TEST_LOCK_TIMEOUT"]))
def slow(x):
    with open(os.environ["TEST_COUNTER"], "a") as out:
        out.write(f"{os.getpid()}\\n")
    time.sleep(1.0)
    return {"answer": x * 6}
"""

SLOW_CALLER = """\
import json
import os
import sys
import time

import slowmod

barrier, me = sys.argv[1], sys.argv[2]
open(os.path.join(barrier, me), "w").close()
deadline = time.time() + 30
while len(os.listdir(barrier)) < 2 and time.time() < deadline:  # start together
    time.sleep(0.002)
start = time.time()
value = slowmod.slow(7)
print(json.dumps({"value": value, "seconds": time.time() - start, "pid": os.getpid()}))
"""


def run_two_slow_callers(tmp_path: Path, lock_timeout: float) -> tuple[list[dict], list[str]]:
    (tmp_path / "slowmod.py").write_text(SLOW_MODULE)
    script = tmp_path / "caller.py"
    script.write_text(SLOW_CALLER)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    counter = tmp_path / "counter"
    env = {"TEST_COUNTER": str(counter), "TEST_LOCK_TIMEOUT": str(lock_timeout)}
    procs = [popen_python(script, str(barrier), name, env=env) for name in ("p1", "p2")]
    results = [json.loads(finish(p).strip().splitlines()[-1]) for p in procs]
    return results, lines(counter)


def test_concurrent_processes_compute_once(tmp_path):
    results, computed = run_two_slow_callers(tmp_path, lock_timeout=60)
    assert [r["value"] for r in results] == [{"answer": 42}, {"answer": 42}]
    assert len(computed) == 1, f"the body ran {len(computed)} times"
    waiter = next(r for r in results if str(r["pid"]) not in computed)
    assert waiter["seconds"] > 0.5  # it waited on the lock, then read the value
    assert len(entries(cache_dir() / "tmp")) == 1


def test_lock_timeout_lets_the_waiter_compute_itself(tmp_path):
    results, computed = run_two_slow_callers(tmp_path, lock_timeout=0.1)
    assert [r["value"] for r in results] == [{"answer": 42}, {"answer": 42}]
    assert sorted(computed) == sorted(str(r["pid"]) for r in results)  # both ran the body
    # Both stored the same key atomically: one intact entry remains.
    assert len(entries(cache_dir() / "tmp")) == 1


def test_threads_in_one_process_compute_once():
    calls = []
    start = threading.Barrier(4)

    @fused.cache
    def slow(x):
        calls.append(x)
        time.sleep(0.3)
        return x

    results = []

    def worker():
        start.wait()
        results.append(slow(5))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [5, 5, 5, 5]
    assert calls == [5]


# --------------------------------------------------------------------------- stable hashing

HASH_VALUES = """\
import datetime
import decimal
import pathlib

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import xarray as xr


def build():
    rng = np.random.default_rng(42)
    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", None], "c": [0.5, np.nan, 2.0],
                       "t": pd.to_datetime(["2024-01-01", "2024-06-01", "2025-01-01"])})
    gdf = gpd.GeoDataFrame({"id": [1, 2]}, geometry=[shapely.Point(1, 2), shapely.box(0, 0, 1, 1)],
                           crs="EPSG:4326")
    grid = rng.random((4, 5))
    da = xr.DataArray(grid, dims=("y", "x"), coords={"y": np.arange(4), "x": np.linspace(0, 1, 5)},
                      name="ndvi", attrs={"units": "1"})
    return {
        "dataframe": df,
        "series": df["b"],
        "index": pd.Index(["p", "q"]),
        "geodataframe": gdf,
        "geoseries": gdf.geometry,
        "ndarray": grid,
        "ndarray_int": np.arange(12, dtype=np.int32).reshape(3, 4),
        "ndarray_fortran": np.asfortranarray(grid),
        "np_scalar": np.float32(1.5),
        "dataarray": da,
        "dataset": da.to_dataset(),
        "polygon": shapely.Polygon([(0, 0), (1, 0), (1, 1)]),
        "dict": {"b": 2, "a": 1, "c": {"z": [1, 2], "y": None}},
        "set": {"alpha", "beta", "gamma", "delta"},
        "list": [1, "1", 1.0, None, True, b"1"],
        "nested": {"frames": [df, gdf], "arr": (grid, [{"k": "v"}]),
                   "when": datetime.date(2024, 9, 1)},
        "scalars": (decimal.Decimal("1.10"), pathlib.PurePosixPath("/a/b"), 2**70, -0.0),
    }
"""


@pytest.fixture
def hash_module(tmp_path):
    path = tmp_path / "hashvals.py"
    path.write_text(HASH_VALUES)
    return path


def test_equal_values_hash_equal_across_processes(hash_module):
    local = {name: hash_values(value) for name, value in import_file(hash_module).build().items()}
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import hashvals; "
            "from fused._hashing import hash_values; "
            "print(json.dumps({k: hash_values(v) for k, v in hashvals.build().items()}))")
    for seed in ("0", "12345"):
        proc = subprocess.run([sys.executable, "-c", code, str(hash_module.parent)],
                              capture_output=True, text=True, timeout=60,
                              env={**os.environ, "PYTHONHASHSEED": seed})
        assert proc.returncode == 0, proc.stderr
        remote = json.loads(proc.stdout)
        mismatched = sorted(k for k in local if local[k] != remote[k])
        assert not mismatched, f"hashes differ between processes for {mismatched}"
    assert all(len(h) == 32 and int(h, 16) >= 0 for h in local.values())
    distinct = {k: v for k, v in local.items() if k != "ndarray_fortran"}  # equals "ndarray"
    assert len(set(distinct.values())) == len(distinct)  # no two of the others collide


def test_equal_values_hash_equal_in_process(hash_module):
    a = import_file(hash_module).build()
    b = import_file(hash_module).build()  # fresh, separately built objects
    for name in a:
        assert hash_values(a[name]) == hash_values(b[name]), name
    # Dict insertion order and array memory layout do not matter.
    assert hash_values({"a": 1, "b": [1, 2]}) == hash_values({"b": [1, 2], "a": 1})
    assert hash_values(a["ndarray"]) == hash_values(a["ndarray_fortran"])
    grid = a["ndarray"]
    assert hash_values(grid[:, ::2]) == hash_values(np.ascontiguousarray(grid[:, ::2]))


def _variants():
    import geopandas as gpd
    import shapely
    import xarray as xr

    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    gdf = gpd.GeoDataFrame({"id": [1]}, geometry=[shapely.Point(1, 2)], crs="EPSG:4326")
    arr = np.arange(6, dtype=np.int64)
    da = xr.DataArray(np.arange(4.0).reshape(2, 2), dims=("y", "x"),
                      coords={"y": [0, 1], "x": [10, 20]}, name="v")
    return {
        "changed cell": (df, df.assign(a=[1, 2, 4])),
        "changed string cell": (df, df.assign(b=["x", "y", "Z"])),
        "column dtype": (df, df.astype({"a": "int32"})),
        "column name": (df, df.rename(columns={"a": "A"})),
        "column order": (df, df[["b", "a"]]),
        "index": (df, df.set_index(pd.Index([5, 6, 7]))),
        "extra row": (df, pd.concat([df, df.iloc[:1]], ignore_index=True)),
        "crs": (gdf, gdf.set_crs("EPSG:3857", allow_override=True)),
        "crs of a renamed geometry column": (
            gdf.rename_geometry("geom"),
            gdf.set_crs("EPSG:3857", allow_override=True).rename_geometry("geom")),
        "crs of an unnamed geoseries": (
            gpd.GeoSeries([shapely.Point(1, 2)], crs="EPSG:4326"),
            gpd.GeoSeries([shapely.Point(1, 2)], crs="EPSG:3857")),
        "geometry": (gdf, gdf.set_geometry([shapely.Point(1, 2.000001)], crs="EPSG:4326")),
        "frame vs geoframe": (pd.DataFrame({"id": [1]}), gpd.GeoDataFrame({"id": [1]})),
        "array value": (arr, arr + np.eye(1, 6, 5, dtype=np.int64)[0]),
        "array dtype": (arr, arr.astype(np.int32)),
        "array shape": (arr, arr.reshape(2, 3)),
        "array vs list": (arr, arr.tolist()),
        "dataarray value": (da, da + 1),
        "dataarray coord": (da, da.assign_coords(x=[10, 21])),
        "dataarray name": (da, da.rename("w")),
        "dataarray attrs": (da, da.assign_attrs(units="m")),
        "geometry types": (shapely.Point(0, 0), shapely.MultiPoint([(0, 0)])),
        "int vs str": (1, "1"),
        "int vs list": (1, [1]),
        "str vs list": ("1", ["1"]),
        "int vs float": (1, 1.0),
        "int vs bool": (1, True),
        "list vs tuple": ([1, 2], (1, 2)),
        "str vs bytes": ("ab", b"ab"),
        "none vs empty": (None, ""),
        "list order": ([1, 2], [2, 1]),
        "list nesting": ([[1], 2], [[1, 2]]),
        "string split": (["ab", "c"], ["a", "bc"]),
        "dict value": ({"a": 1}, {"a": 2}),
        "dict key": ({"a": 1}, {"b": 1}),
        "dict vs pairs": ({"a": 1}, [("a", 1)]),
        "nested change": ({"k": [1, {"z": (1, 2)}]}, {"k": [1, {"z": (1, 3)}]}),
        "set vs list": ({1, 2}, [1, 2]),
    }


@pytest.mark.parametrize("case", list(_variants()))
def test_different_values_hash_differently(case):
    a, b = _variants()[case]
    assert hash_values(a) != hash_values(b)


def test_hash_is_stable_for_repeated_calls_and_multiple_values():
    assert hash_values(1, 2) == hash_values(1, 2)
    assert hash_values(1, 2) != hash_values(2, 1)
    assert hash_values(1, 2) != hash_values((1, 2))
    assert hash_values() != hash_values(None)


def test_unhashable_type_error_mentions_cache_key_exclude():
    def gen():
        yield 1

    for value in (threading.Lock(), gen(), sys):
        with pytest.raises(TypeError,
                           match=r"Cannot hash an argument of type \w+.*cache_key_exclude"):
            hash_values({"arg": [value]})


def test_numpy_and_frame_arguments_are_cache_keys():
    calls = []

    @fused.cache
    def total(arr, frame):
        calls.append(1)
        return float(arr.sum() + frame["v"].sum())

    arr = np.arange(10.0)
    frame = pd.DataFrame({"v": [1, 2]})
    assert total(arr, frame) == 48.0
    assert total(arr.copy(), frame.copy()) == 48.0  # equal content: hit
    assert len(calls) == 1
    arr2 = arr.copy()
    arr2[3] = 100
    assert total(arr2, frame) == 145.0
    assert total(arr, frame.assign(v=[1, 3])) == 49.0
    assert len(calls) == 3


# --------------------------------------------------------------------------- inside UDFs


@fused.udf
def udf_with_cached_helper(counter: str, i: int = 1):
    @fused.cache
    def load_data(i):
        with open(counter, "a") as out:
            out.write(f"{i}\n")
        return i * 10

    return load_data(i)


def test_cache_inside_a_udf_hits_on_the_second_run(tmp_path):
    counter = tmp_path / "counter"
    run = lambda i: fused.run(udf_with_cached_helper, counter=str(counter), i=i,  # noqa: E731
                              engine="local", cache=False)
    assert run(1) == 10
    assert lines(counter) == ["1"]
    assert run(1) == 10
    assert lines(counter) == ["1"]  # the nested cached function hit
    assert run(2) == 20
    assert lines(counter) == ["1", "2"]


UDF_FILE = """\
@fused.udf
def udf(counter: str, i: int = 1):
    @fused.cache
    def load_data(i):
        with open(counter, "a") as out:
            out.write(f"{{i}}\\n")
        return i * {factor}

    return load_data(i)
"""


def test_cache_inside_a_loaded_udf_hits_across_processes(tmp_path):
    folder = tmp_path / "Hello"
    folder.mkdir()
    (folder / "Hello.py").write_text(UDF_FILE.format(factor=10))
    counter = tmp_path / "counter"
    code = (f"import fused; print(fused.run(fused.load({str(folder / 'Hello.py')!r}), "
            f"counter={str(counter)!r}, engine='local', cache=False))")
    assert fused.run(fused.load(str(folder / "Hello.py")), counter=str(counter), engine="local",
                     cache=False) == 10
    assert lines(counter) == ["1"]
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "10"
    assert lines(counter) == ["1"]  # the other process found the entry


def test_loaded_udfs_with_the_same_name_keep_their_own_cache_keys(tmp_path):
    counter = tmp_path / "counter"
    paths = []
    for version, factor in (("v1", 10), ("v2", 1000)):
        folder = tmp_path / version / "Hello"
        folder.mkdir(parents=True)
        (folder / "Hello.py").write_text(UDF_FILE.format(factor=factor))
        paths.append(str(folder / "Hello.py"))
    v1 = fused.load(paths[0])
    assert fused.run(v1, counter=str(counter), engine="local", cache=False) == 10
    v2 = fused.load(paths[1])  # same UDF name, different code
    assert fused.run(v2, counter=str(counter), engine="local", cache=False) == 1000
    assert len(lines(counter)) == 2
    # v1 again: its nested function must hit its own entry and return its own value.
    assert fused.run(v1, counter=str(counter), engine="local", cache=False) == 10
    assert len(lines(counter)) == 2
