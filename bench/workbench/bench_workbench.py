"""The workbench: loading its bundle from terrafused, and the browser figures.

1. The whole bundle (index.html, every file under assets/, the base map) fetched over one
   keep-alive connection, as a browser's first visit does: terrafused (precompressed gzip
   files, ``Accept-Encoding: gzip``) against Python's ``http.server`` serving the same
   directory (HTTP/1.1 keep-alive; the standard library has no compression). Wall time
   (``time.perf_counter_ns``), median of N runs after 1 warm-up; ratio = peer / terrafuse.
2. Without ``--quick``, and when node and chromium are there: the end-to-end test's figures
   (web/e2e/workbench.e2e.mjs against a real terrafused), printed against their targets.

    python bench/workbench/bench_workbench.py [--quick] [--runs N]
"""

from __future__ import annotations

import argparse
import functools
import http.client
import http.server
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

_HOME = tempfile.mkdtemp(prefix="terrafuse-bench-workbench-")
os.environ["TERRAFUSE_HOME"] = _HOME

from fused._server import find_web_root, start_server  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BUNDLE_TARGET_MB = 2.5
TARGETS = {  # e2e figure -> (target, unit)
    "edit_to_map_uncached_p50_ms": (150, "ms"),
    "edit_to_map_cached_p50_ms": (50, "ms"),
    "cached_viewport_draw_p50_ms": (300, "ms"),
    "first_load_ms": (1500, "ms"),
    "bundle_gzipped_mb": (BUNDLE_TARGET_MB, "MB"),
}


def bundle_paths(root: Path) -> list[str]:
    files = ["index.html"] + sorted(
        str(p.relative_to(root)) for p in (root / "assets").iterdir() if p.suffix != ".gz")
    if (root / "basemap" / "land.geojson").is_file():
        files.append("basemap/land.geojson")
    return files


def fetch_all(port: int, prefix: str, paths: list[str], gzip: bool) -> tuple[float, int]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    start = time.perf_counter_ns()
    size = 0
    for path in paths:
        conn.request("GET", f"{prefix}/{path}", headers={"Accept-Encoding": "gzip"} if gzip else {})
        response = conn.getresponse()
        body = response.read()
        assert response.status == 200, (path, response.status)
        size += len(body)
    elapsed = (time.perf_counter_ns() - start) / 1e6
    conn.close()
    return elapsed, size


class _KeepAliveHandler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # A fair peer: no Nagle + delayed-ACK stall between the header and body writes.
    disable_nagle_algorithm = True
    wbufsize = 1 << 16

    def log_message(self, *args):  # quiet
        pass


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--scale", type=float, default=1)
    parser.add_argument("--runs", type=int, default=None)
    args = parser.parse_args()
    runs = args.runs or (3 if args.quick else 15)
    root = find_web_root()
    if root is None:
        print("the workbench is not built (cd web && npm run build): nothing to measure")
        return 0
    paths = bundle_paths(root)

    server = start_server(port=0, home=Path(_HOME) / "home", workers=1)
    peer = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_KeepAliveHandler, directory=str(root)))
    threading.Thread(target=peer.serve_forever, daemon=True).start()
    try:
        ours, theirs = [], []
        fetch_all(server.port, "/workbench", paths, True)  # warm-up
        fetch_all(peer.server_address[1], "", paths, False)
        for _ in range(runs):  # alternate, so a busy spell hits both alike
            ms, gz_bytes = fetch_all(server.port, "/workbench", paths, True)
            ours.append(ms)
            ms, raw_bytes = fetch_all(peer.server_address[1], "", paths, False)
            theirs.append(ms)
        a, b = statistics.median(ours), statistics.median(theirs)
        print(f"bundle: {len(paths)} files, {gz_bytes / 1e6:.2f} MB as served gzipped, {raw_bytes / 1e6:.2f} MB raw")
        print("| case | terrafuse | peer | ratio |")
        print("|------|-----------|------|-------|")
        print(f"| whole bundle, one keep-alive connection (terrafused gzip vs http.server) | {a:.1f} ms | {b:.1f} ms | {b / a:.2f}x |")
        mb = gz_bytes / 1024 / 1024
        print(f"target: bundle <= {BUNDLE_TARGET_MB} MB gzipped: {mb:.2f} MB {'PASS' if mb <= BUNDLE_TARGET_MB else 'MISS'}")
    finally:
        peer.shutdown()
        server.stop()

    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if args.quick or not shutil.which("node") or not Path(chromium).is_file():
        print("browser figures: run without --quick (needs node and chromium); `make test` prints them too")
        return 0
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "tests/workbench", "-k", "end_to_end"],
                            cwd=REPO, capture_output=True, text=True, timeout=900)
    figures = {}
    for line in result.stdout.splitlines():
        if line.startswith("[e2e] figures "):
            figures = json.loads(line.removeprefix("[e2e] figures "))
    if not figures:
        print("the end-to-end run printed no figures:\n" + result.stdout[-2000:])
        return 1
    print("| browser figure | terrafuse | target | |")
    print("|----------------|-----------|--------|---|")
    for name, value in figures.items():
        target = TARGETS.get(name)
        verdict = "" if target is None else ("PASS" if value <= target[0] else "MISS")
        print(f"| {name} | {value} | {'' if target is None else f'<= {target[0]} {target[1]}'} | {verdict} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
