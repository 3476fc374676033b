"""Benchmark fused.tiles (C++ engine) against mercantile (pure Python).

Usage: python bench/tiles/bench_tiles.py [--quick] [--scale S] [--runs N]

Each case has a setup (load) part and a timed (run) part. The run part is executed once to
warm up, then N times; the table shows the median time of one run and the speedup
(mercantile / terrafuse). Both sides are checked to give the same answer first. Times are
printed, never asserted.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import warnings

import mercantile

from fused import tiles


def median_seconds(fn, runs):
    fn()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def format_seconds(seconds):
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def cover_cases(scale):
    """Covers at zoom 16 of boxes around San Francisco: ~0.1, ~0.3 and ~1 degree wide."""
    cases = []
    for side in (0.1, 0.3, 1.0):
        side *= scale
        west, south = -122.55, 37.60
        bounds = (west, south, west + side, south + side)
        count = len(tiles.tiles_array(*bounds, 16))
        label = f"{side:g} deg box at z16 ({count} tiles)"
        cases.append(
            (
                f"tiles_array: {label}",
                lambda b=bounds: tiles.tiles_array(*b, 16),
                lambda b=bounds: list(mercantile.tiles(*b, 16)),
                lambda ours, theirs: ours.tolist() == [list(t) for t in theirs],
            )
        )
        cases.append(
            (
                f"tiles (list): {label}",
                lambda b=bounds: tiles.tiles(*b, 16),
                lambda b=bounds: list(mercantile.tiles(*b, 16)),
                lambda ours, theirs: ours == theirs,
            )
        )
    return cases


def point_cases(scale):
    rng = random.Random(42)
    n = max(1, int(10_000 * scale))
    points = [(rng.uniform(-180, 180), rng.uniform(-85, 85), rng.randint(0, 22)) for _ in range(n)]
    tile_list = [mercantile.tile(*p) for p in points]
    boxes = [mercantile.bounds(t) for t in tile_list]
    return [
        (
            f"tile(): {n} points",
            lambda: [tiles.tile(lng, lat, z) for lng, lat, z in points],
            lambda: [mercantile.tile(lng, lat, z) for lng, lat, z in points],
            lambda ours, theirs: ours == theirs,
        ),
        (
            f"bounds(): {n} tiles",
            lambda: [tiles.bounds(t) for t in tile_list],
            lambda: [mercantile.bounds(t) for t in tile_list],
            lambda ours, theirs: ours == theirs,
        ),
        (
            f"bounding_tile(): {n} boxes",
            lambda: [tiles.bounding_tile(*b) for b in boxes],
            lambda: [mercantile.bounding_tile(*b) for b in boxes],
            lambda ours, theirs: ours == theirs,
        ),
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs of smaller cases (for CI)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply box sides and counts")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per case (default 15)")
    args = parser.parse_args(argv)
    runs = args.runs or (3 if args.quick else 15)
    scale = args.scale * (0.1 if args.quick else 1.0)
    warnings.simplefilter("ignore", FutureWarning)

    rows = []
    cases = cover_cases(1.0 if args.quick else args.scale) + point_cases(scale)
    for name, ours, theirs, same in cases:
        if not same(ours(), theirs()):
            print(f"MISMATCH in {name}", file=sys.stderr)
            return 1
        t_ours = median_seconds(ours, runs)
        t_theirs = median_seconds(theirs, runs)
        ratio = f"{t_theirs / t_ours:.1f}x"
        rows.append((name, format_seconds(t_ours), format_seconds(t_theirs), ratio))

    header = ("case", "terrafuse", "mercantile", "ratio")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
    print(
        f"fused.tiles vs mercantile {mercantile.__version__}: median of {runs} runs after"
        " 1 warm-up; ratio = mercantile / terrafuse"
    )
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("-|-".join("-" * w for w in widths))
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        print(" | ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
