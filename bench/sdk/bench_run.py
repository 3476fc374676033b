"""Engine overhead of a warm ``fused.run(udf, engine="local")`` over calling the function.

The UDF is trivial (``def udf(a: int = 1): return a``), so what is timed is the engine's own
work per call: resolve the UDF and engine, bind and coerce the parameters, capture
stdout/stderr, validate the output and, with the cache on, hash the arguments and read the
result store. The peer is the UDF's Python function called directly.

Setup (decorating, the first run that builds the call plan, the cache write) is not timed.
Each case has 1 warm-up and N timed runs of many calls; the median per-call time is printed.
Ratio is peer / terrafuse (speed-up: below 1 means terrafuse is slower). Targets are printed next
to the figures; the script never fails on them.

    python bench/sdk/bench_run.py [--quick] [--scale S] [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

# Never touch ~/.terrafuse: options, cache and data home live in a throwaway directory.
_HOME = tempfile.mkdtemp(prefix="terrafuse-bench-run-")
os.environ["TERRAFUSE_HOME"] = _HOME

import fused  # noqa: E402

OVERHEAD_TARGET_US = 20.0


# -- the UDF -------------------------------------------------------------------------------
@fused.udf
def udf(a: int = 1):
    return a


# -- timing --------------------------------------------------------------------------------
def per_call_us(loop, calls: int, runs: int) -> float:
    """Median over ``runs`` timed runs (after 1 warm-up) of ``loop(calls)``, in µs per call."""
    loop(calls)  # warm-up
    samples = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        loop(calls)
        samples.append((time.perf_counter_ns() - start) / calls / 1000.0)
    return statistics.median(samples)


# Each loop calls the same thing `n` times with names bound locally, so the loop's own cost
# (the same on both sides) stays small and cancels out of the overhead.
def loop_direct_kw(n: int) -> None:
    function = udf.function
    for _ in range(n):
        function(a=1)


def loop_direct_default(n: int) -> None:
    function = udf.function
    for _ in range(n):
        function()


def loop_run_uncached_kw(n: int) -> None:
    run, u = fused.run, udf
    for _ in range(n):
        run(u, engine="local", cache=False, a=1)


def loop_run_uncached_default(n: int) -> None:
    run, u = fused.run, udf
    for _ in range(n):
        run(u, engine="local", cache=False)


def loop_run_cached_kw(n: int) -> None:
    run, u = fused.run, udf
    for _ in range(n):
        run(u, engine="local", a=1)


# -- output --------------------------------------------------------------------------------
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
    parser.add_argument("--quick", action="store_true", help="few calls and runs (CI smoke run)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the calls per timed run")
    parser.add_argument("--runs", type=int, default=None,
                        help="timed runs per case (default 7, quick 3)")
    args = parser.parse_args(argv)
    calls = max(1, int((1_000 if args.quick else 10_000) * args.scale))
    runs = args.runs or (3 if args.quick else 7)

    # -- setup (not timed) -----------------------------------------------------------------
    fused.options.cache_directory = os.path.join(_HOME, "cache")
    fused.options.local_engine_cache = True
    assert udf.function(a=1) == 1
    assert fused.run(udf, engine="local", cache=False, a=1) == 1  # builds the call plan
    first = fused.run(udf, engine="local", a=1, _return_response=True)  # writes the cached result
    hit = fused.run(udf, engine="local", a=1, _return_response=True)
    if first.data != 1 or hit.data != 1 or not hit.cache_hit:
        raise RuntimeError(f"fused.run cache did not hit: first={first}, second={hit}")

    # -- timed -----------------------------------------------------------------------------
    direct_kw = per_call_us(loop_direct_kw, calls, runs)
    direct_default = per_call_us(loop_direct_default, calls, runs)
    uncached_kw = per_call_us(loop_run_uncached_kw, calls, runs)
    uncached_default = per_call_us(loop_run_uncached_default, calls, runs)
    cached_kw = per_call_us(loop_run_cached_kw, calls, runs)

    print(f"bench_run: warm fused.run(engine='local') of a trivial UDF vs a direct call; "
          f"median of {runs} runs x {calls} calls (after 1 warm-up), µs per call")
    print("ratio = peer / terrafuse (speed-up: above 1 means terrafuse is faster, below 1 slower)")
    print()
    us = lambda v: f"{v:.3f} µs"  # noqa: E731
    print_table([
        ("run(udf, cache=False, a=1) vs udf.function(a=1)", us(uncached_kw), us(direct_kw),
         ratio(uncached_kw, direct_kw)),
        ("run(udf, cache=False) vs udf.function()", us(uncached_default), us(direct_default),
         ratio(uncached_default, direct_default)),
        ("run(udf, a=1) cached-result hit vs udf.function(a=1)", us(cached_kw), us(direct_kw),
         ratio(cached_kw, direct_kw)),
    ])
    print()
    for label, value in (("run(udf, cache=False, a=1)", uncached_kw - direct_kw),
                         ("run(udf, cache=False)", uncached_default - direct_default)):
        verdict = "PASS" if value <= OVERHEAD_TARGET_US else "MISS"
        print(f"overhead of {label} over a direct call: {value:.2f} µs "
              f"(target <= {OVERHEAD_TARGET_US:.0f} µs: {verdict})")
    print(f"overhead of a cached-result hit over a direct call: "
          f"{cached_kw - direct_kw:.2f} µs (no target)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        shutil.rmtree(_HOME, ignore_errors=True)
