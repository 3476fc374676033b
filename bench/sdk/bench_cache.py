"""``@fused.cache`` hits: a large DataFrame and a small value, against their peers.

Cases
-----
- DataFrame hit: a cached function returning a DataFrame of 1M rows (4 numeric columns and
  1 string column), vs recomputing it by reading the same rows from a CSV with
  ``pd.read_csv`` (the peer). Target: the hit is >= 5x faster. For reference, the hit is also
  set against ``pickle.load`` of the same frame from a file (the floor of any disk cache).
- Small hit: a cached function of two small arguments returning a short string. Target: a hit
  costs <= 100 µs. Peers: ``pickle.load`` of a small file (a disk cache at its simplest) and
  ``functools.lru_cache`` (in memory, no disk: a lower bound, not a like-for-like peer).

Data is generated into a temporary directory, which is also the cache directory and the
data home (``TERRAFUSE_HOME``), removed at exit. Setup (writing the CSV, the first call that
fills the cache) is not timed; each case has 1 warm-up and N timed runs, median printed.
Ratio is peer / terrafuse (speed-up: above 1 means terrafuse is faster). Targets are printed next
to the figures; the script never fails on them.

    python bench/sdk/bench_cache.py [--quick] [--scale S] [--runs N]
"""

from __future__ import annotations

import argparse
import functools
import os
import pickle
import shutil
import statistics
import sys
import tempfile
import time

# Never touch ~/.terrafuse: options, cache and data home live in a throwaway directory.
_HOME = tempfile.mkdtemp(prefix="terrafuse-bench-cache-")
os.environ["TERRAFUSE_HOME"] = _HOME

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import fused  # noqa: E402

SPEEDUP_TARGET = 5.0
SMALL_HIT_TARGET_US = 100.0


# -- the functions under test ------------------------------------------------------------------
# Decorated in main(), once fused.options.cache_directory points at the temporary directory
# (the decorator resolves its folder when applied).
def read_frame(path: str) -> pd.DataFrame:
    return pd.read_csv(path)


def small_value(a: int, b: str = "x") -> str:
    return f"{b}-{a}"


# -- setup ---------------------------------------------------------------------------------
def make_frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(42)
    words = np.array(["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"])
    return pd.DataFrame({
        "id": np.arange(rows, dtype=np.int64),
        "x": rng.uniform(-180.0, 180.0, rows),
        "y": rng.uniform(-85.0, 85.0, rows),
        "count": rng.integers(0, 1_000_000, rows, dtype=np.int64),
        "name": np.char.add(words[rng.integers(0, len(words), rows)],
                            rng.integers(0, 10_000, rows).astype(str)),
    })


# -- timing --------------------------------------------------------------------------------
def median_seconds(fn, runs: int) -> float:
    """Median wall time of ``fn()`` over ``runs`` timed runs, after 1 warm-up."""
    fn()  # warm-up
    samples = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - start) / 1e9)
    return statistics.median(samples)


def per_call_us(loop, calls: int, runs: int) -> float:
    """Median over ``runs`` timed runs (after 1 warm-up) of ``loop(calls)``, in µs per call."""
    return median_seconds(lambda: loop(calls), runs) / calls * 1e6


def ratio(terrafuse: float, peer: float) -> str:
    value = peer / terrafuse
    return f"{value:.0f}x" if value >= 100 else f"{value:.3g}x"


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    header = ("case", "terrafuse", "peer", "ratio")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    line = lambda r: "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                                       for i, (c, w) in enumerate(zip(r, widths))) + " |"
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="~50k rows, few runs (CI smoke run)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply the rows (1M) and small calls")
    parser.add_argument("--runs", type=int, default=None,
                        help="timed runs per case (default 5, quick 3)")
    args = parser.parse_args(argv)
    rows = max(1, int((50_000 if args.quick else 1_000_000) * args.scale))
    calls = max(1, int((500 if args.quick else 5_000) * args.scale))
    runs = args.runs or (3 if args.quick else 5)

    # -- setup (not timed) -----------------------------------------------------------------
    fused.options.cache_directory = os.path.join(_HOME, "cache")
    data_dir = os.path.join(_HOME, "data")
    os.makedirs(data_dir)
    csv_path = os.path.join(data_dir, "rows.csv")
    pickle_path = os.path.join(data_dir, "rows.pkl")
    small_pickle_path = os.path.join(data_dir, "small.pkl")

    frame = make_frame(rows)
    frame.to_csv(csv_path, index=False)
    with open(pickle_path, "wb") as f:
        pickle.dump(pd.read_csv(csv_path), f, protocol=5)
    with open(small_pickle_path, "wb") as f:
        pickle.dump(small_value(7, "k"), f, protocol=5)
    csv_mb = os.path.getsize(csv_path) / 2**20
    pickle_mb = os.path.getsize(pickle_path) / 2**20
    del frame

    cached_frame = fused.cache(read_frame)
    cached_small = fused.cache(small_value)
    lru_small = functools.lru_cache(maxsize=None)(small_value)

    expected = pd.read_csv(csv_path)
    pd.testing.assert_frame_equal(cached_frame(csv_path), expected)  # the miss: fills the cache
    pd.testing.assert_frame_equal(cached_frame(csv_path), expected)  # a hit
    del expected
    assert cached_small(7, "k") == lru_small(7, "k") == "k-7"

    def loop_cached_small(n: int) -> None:
        f = cached_small
        for _ in range(n):
            f(7, "k")

    def loop_lru_small(n: int) -> None:
        f = lru_small
        for _ in range(n):
            f(7, "k")

    def loop_pickle_small(n: int) -> None:
        load, path = pickle.load, small_pickle_path
        for _ in range(n):
            with open(path, "rb") as f:
                load(f)

    def load_pickle_frame() -> pd.DataFrame:
        with open(pickle_path, "rb") as f:
            return pickle.load(f)

    # -- timed -----------------------------------------------------------------------------
    frame_hit = median_seconds(lambda: cached_frame(csv_path), runs)
    frame_csv = median_seconds(lambda: pd.read_csv(csv_path), runs)
    frame_pickle = median_seconds(load_pickle_frame, runs)
    small_hit = per_call_us(loop_cached_small, calls, runs)
    small_pickle = per_call_us(loop_pickle_small, calls, runs)
    small_lru = per_call_us(loop_lru_small, calls, runs)

    print(f"bench_cache: @fused.cache hits; {rows:,} rows "
          f"(CSV {csv_mb:.1f} MiB, pickle {pickle_mb:.1f} MiB), "
          f"{calls:,} small calls per run; median of {runs} runs (after 1 warm-up)")
    print("ratio = peer / terrafuse (speed-up: above 1 means terrafuse is faster, below 1 slower)")
    print()
    ms = lambda s: f"{s * 1e3:.1f} ms"  # noqa: E731
    us = lambda v: f"{v:.2f} µs"  # noqa: E731
    print_table([
        (f"DataFrame hit ({rows:,} rows) vs pd.read_csv", ms(frame_hit), ms(frame_csv),
         ratio(frame_hit, frame_csv)),
        (f"DataFrame hit ({rows:,} rows) vs pickle.load of a file", ms(frame_hit), ms(frame_pickle),
         ratio(frame_hit, frame_pickle)),
        ("small hit (2 args -> str) vs pickle.load of a file", us(small_hit), us(small_pickle),
         ratio(small_hit, small_pickle)),
        ("small hit (2 args -> str) vs functools.lru_cache", us(small_hit), us(small_lru),
         ratio(small_hit, small_lru)),
    ])
    print()
    speedup = frame_csv / frame_hit
    print(f"DataFrame hit is {speedup:.1f}x faster than pd.read_csv "
          f"(target >= {SPEEDUP_TARGET:.0f}x: {'PASS' if speedup >= SPEEDUP_TARGET else 'MISS'})")
    verdict = "PASS" if small_hit <= SMALL_HIT_TARGET_US else "MISS"
    print(f"small hit costs {small_hit:.1f} µs "
          f"(target <= {SMALL_HIT_TARGET_US:.0f} µs: {verdict})")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        shutil.rmtree(_HOME, ignore_errors=True)
