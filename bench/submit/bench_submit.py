"""Fan-out with ``fused.submit(engine="local")`` next to ProcessPoolExecutor and Dask.

Cases:

- **trivial**: N calls (1,000; ``--quick`` 200) of a UDF that returns its argument doubled,
  ``max_workers=32``, cache off (every call runs). Peers call the same Python function:
  ``concurrent.futures.ProcessPoolExecutor(32)`` as users write it (``with ... as ex:
  list(ex.map(f, args))``, its processes started inside the timing, since fused.submit keeps
  its own warm) and already started; Dask ``LocalCluster`` (2 worker processes, started
  outside the timing) with ``client.gather(client.map(f, args))``.
- **sleep**: 64 calls (``--quick`` 8) that each sleep 1 s (quick 0.25 s), ``max_workers=32``
  (quick 4): wall time is overhead, not CPU. Peer: ProcessPoolExecutor with as many workers.

Setup (the first submit, which starts and grows the worker pool) is not timed. Each case has
1 warm-up and N timed runs; the median is printed. Ratio is peer / terrafuse (above 1:
terrafuse is faster). Targets are printed beside the figures; the script never fails on them.

    python bench/submit/bench_submit.py [--quick] [--scale S] [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

_HOME = tempfile.mkdtemp(prefix="terrafuse-bench-submit-")
os.environ["TERRAFUSE_HOME"] = _HOME

import fused  # noqa: E402


@fused.udf
def trivial(a: int = 0):
    return a * 2


@fused.udf
def sleeper(a: int = 0, seconds: float = 1.0):
    import time

    time.sleep(seconds)
    return a


def trivial_fn(a: int) -> int:
    return a * 2


def sleep_fn(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def median_seconds(fn, runs: int) -> float:
    fn()  # warm-up
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def ratio(terrafuse: float, peer: float | None) -> str:
    return "-" if peer is None else f"{peer / terrafuse:.3g}x"


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def print_table(rows: list[tuple[str, ...]]) -> None:
    header = ("case", "terrafuse", "peer", "ratio", "target")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                                       for i, (c, w) in enumerate(zip(r, widths))) + " |"
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few runs (CI smoke run)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the number of trivial calls")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per case (default 5, quick 1)")
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask peer")
    args = parser.parse_args(argv)
    runs = args.runs or (1 if args.quick else 5)
    n_trivial = max(1, int((200 if args.quick else 1000) * args.scale))
    n_sleep, sleep_s, sleep_workers = (8, 0.25, 4) if args.quick else (64, 1.0, 32)
    workers = 32
    values = list(range(n_trivial))

    # -- setup (not timed): start the pool, grow it to 32 and check the answers ---------------
    expected = [v * 2 for v in values]
    df = fused.submit(trivial, values, engine="local", cache=False, max_workers=workers)
    assert list(df["result"]) == expected, "fused.submit gave wrong results"
    deadline = time.monotonic() + 120
    from fused import _submit

    while len(_submit._POOL.pool.worker_pids()) < workers and time.monotonic() < deadline:
        time.sleep(0.1)

    def tf_trivial() -> None:
        fused.submit(trivial, values, engine="local", cache=False, max_workers=workers)

    def ppe_fresh() -> None:
        with ProcessPoolExecutor(workers) as ex:
            list(ex.map(trivial_fn, values))

    warm_executor = ProcessPoolExecutor(workers)

    def ppe_warm() -> None:
        list(warm_executor.map(trivial_fn, values))

    rows = []
    t_tf = median_seconds(tf_trivial, runs)
    t_fresh = median_seconds(ppe_fresh, runs)
    t_warm = median_seconds(ppe_warm, runs)
    warm_executor.shutdown()
    target = "<= 1 s" if n_trivial == 1000 else ""
    rows.append((f"{n_trivial} trivial calls vs ProcessPoolExecutor(32)", ms(t_tf), ms(t_fresh),
                 ratio(t_tf, t_fresh), (target + ", >= 3x").lstrip(", ")))
    rows.append((f"{n_trivial} trivial calls vs ProcessPoolExecutor(32), already started", ms(t_tf),
                 ms(t_warm), ratio(t_tf, t_warm), ""))

    t_dask = None
    if not args.no_dask:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            print("dask.distributed is not installed: the Dask peer is skipped", file=sys.stderr)
        else:
            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                              silence_logs=40) as cluster, Client(cluster) as client:
                def dask_map() -> None:
                    client.gather(client.map(trivial_fn, values, pure=False))

                t_dask = median_seconds(dask_map, runs)
    rows.append((f"{n_trivial} trivial calls vs Dask LocalCluster client.map", ms(t_tf), ms(t_dask),
                 ratio(t_tf, t_dask), ">= 5x"))

    # -- sleeping calls: overhead of waiting ----------------------------------------------------
    sleep_inputs = [dict(a=i, seconds=sleep_s) for i in range(n_sleep)]
    fused.submit(sleeper, sleep_inputs[:1], engine="local", cache=False, max_workers=sleep_workers)

    def tf_sleep() -> None:
        fused.submit(sleeper, sleep_inputs, engine="local", cache=False, max_workers=sleep_workers)

    def ppe_sleep() -> None:
        with ProcessPoolExecutor(sleep_workers) as ex:
            list(ex.map(sleep_fn, [sleep_s] * n_sleep))

    t_sleep = median_seconds(tf_sleep, runs)
    t_sleep_peer = median_seconds(ppe_sleep, runs)
    rows.append((f"{n_sleep} calls sleeping {sleep_s} s, max_workers={sleep_workers}", ms(t_sleep),
                 ms(t_sleep_peer), ratio(t_sleep, t_sleep_peer), "<= 2.5 s" if not args.quick else ""))

    print(f"fused.submit(engine='local'), {os.cpu_count()} cores, median of {runs} run(s)")
    print_table(rows)
    if not args.quick and n_trivial == 1000:  # the targets are stated for the full sizes
        checks = [("1000 trivial calls <= 1 s", t_tf <= 1.0),
                  ("1000 trivial calls >= 3x ProcessPoolExecutor", t_fresh / t_tf >= 3)]
        if t_dask is not None:
            checks.append(("1000 trivial calls >= 5x Dask client.map", t_dask / t_tf >= 5))
        checks.append(("64 calls sleeping 1 s, max_workers=32 <= 2.5 s", t_sleep <= 2.5))
        for name, ok in checks:
            print(f"target {name}: {'PASS' if ok else 'MISS'}")
    _submit.shutdown_local_pool()
    shutil.rmtree(_HOME, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
