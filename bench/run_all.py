"""Run every benchmark (``bench/*/bench_*.py``), each in its own process, and show its output.

Arguments are passed through to every benchmark unchanged, e.g. ``--quick`` (CI: tiny sizes,
few runs) or ``--scale 4``. Figures are only printed, never judged: the exit status is
non-zero only when a benchmark crashed (exited non-zero or could not start).

    python bench/run_all.py [--quick] [--scale S]
    make bench BENCH_ARGS=--quick
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    scripts = sorted(BENCH_DIR.glob("*/bench_*.py"))
    if not scripts:
        print(f"No benchmarks found under {BENCH_DIR}/*/bench_*.py", file=sys.stderr)
        return 1
    args = " ".join(argv)
    results: list[tuple[str, int, float]] = []
    for script in scripts:
        name = script.relative_to(BENCH_DIR.parent).as_posix()
        print(f"\n=== {name} {args}".rstrip() + " ===", flush=True)
        # Each benchmark gets its own throwaway data home, so none touches ~/.terrafuse.
        home = tempfile.mkdtemp(prefix="terrafuse-bench-home-")
        env = {**os.environ, "TERRAFUSE_HOME": home, "PYTHONUNBUFFERED": "1"}
        start = time.perf_counter()
        try:
            command = [sys.executable, str(script), *argv]
            code = subprocess.run(command, cwd=BENCH_DIR.parent, env=env).returncode
        except OSError as e:
            print(f"cannot start {name}: {e}", file=sys.stderr)
            code = -1
        finally:
            shutil.rmtree(home, ignore_errors=True)
        seconds = time.perf_counter() - start
        results.append((name, code, seconds))
        if code != 0:
            print(f"!!! {name} crashed (exit status {code})", file=sys.stderr, flush=True)

    print("\n=== summary ===")
    width = max(len(name) for name, _, _ in results)
    for name, code, seconds in results:
        status = "ok" if code == 0 else f"CRASHED ({code})"
        print(f"{name.ljust(width)}  {status:>13}  {seconds:6.1f} s")
    crashed = [name for name, code, _ in results if code != 0]
    if crashed:
        print(f"{len(crashed)} of {len(results)} benchmarks crashed: {', '.join(crashed)}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
