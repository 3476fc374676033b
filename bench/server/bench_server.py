"""terrafused over HTTP on loopback: cached tile hits, warm uncached UDF runs, a map viewport.

Three cases, each printed side by side with its peer in one run:

1. Cached tile hits over keep-alive: requests/s of GET ``.../realtime-shared/{token}/run/
   tiles/z/x/y.geojson`` (every tile requested before timing, so all are hits) under ``wrk
   -t2 -c32`` against nginx serving the same response bytes as files from disk; and the p50
   latency of one keep-alive connection making sequential requests (``http.client``,
   ``time.perf_counter_ns``) against the same loop on nginx.
2. A warm trivial UDF (``def udf(a: int = 1): return a``) uncached (``cache_max_age=0``):
   requests/s under the same wrk load against a uvicorn + FastAPI app that calls the same
   function in-process (1 worker, then 2), and the server's overhead per request beyond the
   UDF's own time (one connection, sequential requests).
3. A 20-tile viewport of a trivial tile UDF: wall time to fetch 20 distinct tiles over 8
   keep-alive connections, uncached (``cache_max_age=0``), right after saving a new version
   of the UDF (the workers load the new code), and cached; against FastAPI (uncached) and
   nginx (cached).

The ``X-Fused-Cache`` outcomes of every request the script checks are counted and printed,
and so are terrafused's /metrics counters over its load runs, so a "hit" row is shown to be
made of hits. A peer whose tool is missing (nginx, wrk,
fastapi/uvicorn) is skipped with a note; without wrk the throughput rows use a Python
keep-alive client (threads), which is much slower than wrk and is labelled as such.

Setup (starting the servers, saving UDFs, filling the cache) is not timed. Each comparison
has 1 warm-up of each side, then N rounds in which every side runs once in turn (so that a
busy spell of a shared machine hits all sides alike); the median per side is printed.
Ratio is the speed-up of terrafuse: peer /
terrafuse for times, terrafuse / peer for rates (above 1 terrafuse is faster). Targets are
printed under the table; the script never fails on them.

    python bench/server/bench_server.py [--quick] [--scale S] [--runs N] [--seconds S]
                                        [--without nginx|wrk|fastapi]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

# Never touch ~/.terrafuse: the server's data home and every peer's files live here.
_HOME = tempfile.mkdtemp(prefix="terrafuse-bench-server-")
os.environ["TERRAFUSE_HOME"] = _HOME

import requests
from fused._server import start_server

HOST = "127.0.0.1"
# Targets of issue 3.
HIT_RPS_TARGET = 0.8         # x nginx's requests/s
HIT_P50_TARGET_US = 100.0
OVERHEAD_P50_TARGET_US = 300.0
UDF_RPS_TARGET = 5.0         # x FastAPI's requests/s
VIEWPORT_UNCACHED_TARGET_MS = 250.0
VIEWPORT_CACHED_TARGET_MS = 20.0
VIEWPORT_TILES = 20
TILE_FORMAT = "geojson"
VIEWPORT_CONNECTIONS = 8
WRK_THREADS = 2
WRK_CONNECTIONS = 32

TRIVIAL_UDF = '''
@fused.udf
def udf(a: int = 1):
    return a
'''

TILE_UDF = '''
@fused.udf
def udf(bounds: fused.types.Bounds = None):
    import geopandas as gpd
    import shapely
    return gpd.GeoDataFrame({"w": [bounds[0]]}, geometry=[shapely.box(*bounds)], crs=4326)
'''

# What a user would write instead of terrafused: FastAPI calling the same functions
# in-process (the UDFs' own functions, loaded from the same code).
FASTAPI_APP = '''
import asyncio.base_events
import os
import socket

import fused
from fastapi import FastAPI, Response

# uvicorn --workers N hands its workers a listening socket whose `proto` is 0, so asyncio
# skips TCP_NODELAY on the connections (it checks proto == IPPROTO_TCP) and every answer waits
# ~40 ms for a delayed ACK (Nagle): 700 req/s instead of 11,000 on the development container.
# Set it on every TCP connection so the peer is measured at its best.
def _set_nodelay(sock):
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


asyncio.base_events._set_nodelay = _set_nodelay

TRIVIAL = fused.load({trivial!r}).function
TILE = fused.load({tile!r}).function
app = FastAPI()


@app.get("/health")
async def health():
    return {{"status": "ok", "pid": os.getpid()}}


@app.get("/run")
async def run(a: int = 1):
    return TRIVIAL(a=a)


@app.get("/tiles/{{z}}/{{x}}/{{y}}")
async def tile(z: int, x: int, y: int):
    bounds = list(fused.tiles.bounds(x, y, z))
    return Response(TILE(bounds=bounds).to_json(), media_type="application/geo+json")
'''


# -- small helpers ------------------------------------------------------------------------
_WITHOUT: set[str] = set()  # --without: tools to treat as missing


def find_tool(name: str) -> str | None:
    """The path of `name` (also looked up in /usr/sbin, where Debian puts nginx), or None."""
    if name in _WITHOUT:
        return None
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_http(port: int, path: str, process: subprocess.Popen, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode} before serving")
        try:
            status = requests.get(f"http://{HOST}:{port}{path}", timeout=1).status_code
            if status == 200:
                return
            last = f"status {status}"
        except requests.RequestException as e:
            last = repr(e)
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not answer {path} with 200 within {timeout} s ({last})")


def stop_process(process: subprocess.Popen | None) -> None:
    """SIGTERM the process group we created for `process`, then SIGKILL it if needed."""
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def tile_block(z: int, x0: int, y0: int, count: int, width: int) -> list[tuple[int, int, int]]:
    return [(z, x0 + i % width, y0 + i // width) for i in range(count)]


class Outcomes:
    """Counts of X-Fused-Cache per phase, printed under the table."""

    def __init__(self) -> None:
        self.phases: dict[str, Counter] = {}
        self.lock = threading.Lock()

    def add(self, phase: str, value: str | None) -> None:
        with self.lock:
            self.phases.setdefault(phase, Counter())[value or "(none)"] += 1


# -- clients ------------------------------------------------------------------------------
def get(conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes, http.client.HTTPResponse]:
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    return response.status, body, response


def sequential_latencies_us(port: int, paths: list[str], requests_count: int, check=None) -> list[float]:
    """One keep-alive connection, sequential GETs cycling `paths`; µs per request."""
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        samples = []
        n = len(paths)
        clock = time.perf_counter_ns
        for i in range(requests_count):
            path = paths[i % n]
            start = clock()
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            samples.append((clock() - start) / 1000.0)
            if response.status != 200:
                raise RuntimeError(f"GET {path} answered {response.status}")
            if check is not None:
                check(response, samples[-1])
        return samples
    finally:
        conn.close()


class Viewport:
    """A browser-like fetcher: N threads, each with its own warm keep-alive connection."""

    def __init__(self, port: int, connections: int, outcomes: Outcomes | None = None) -> None:
        self.port = port
        self.jobs: queue.Queue = queue.Queue()
        self.outcomes = outcomes
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self._serve, daemon=True) for _ in range(connections)]
        for thread in self.threads:
            thread.start()

    def _serve(self) -> None:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=60)
        conn.connect()
        while True:
            job = self.jobs.get()
            if job is None:
                conn.close()
                return
            path, phase, done = job
            try:
                status, _, response = get(conn, path)
                if status != 200:
                    self.errors.append(f"GET {path} answered {status}")
                if self.outcomes is not None and phase:
                    self.outcomes.add(phase, response.getheader("X-Fused-Cache"))
            except (OSError, http.client.HTTPException) as e:
                self.errors.append(f"GET {path}: {e!r}")
                conn.close()
                conn = http.client.HTTPConnection(HOST, self.port, timeout=60)
            done.release()

    def fetch_ms(self, paths: list[str], phase: str = "") -> float:
        done = threading.Semaphore(0)
        start = time.perf_counter_ns()
        for path in paths:
            self.jobs.put((path, phase, done))
        for _ in paths:
            done.acquire()
        elapsed = (time.perf_counter_ns() - start) / 1e6
        if self.errors:
            raise RuntimeError("viewport fetch failed: " + "; ".join(self.errors[:3]))
        return elapsed

    def close(self) -> None:
        for _ in self.threads:
            self.jobs.put(None)
        for thread in self.threads:
            thread.join(5)


def interleaved(measures: dict, runs: int) -> dict:
    """Median of each `measure(warmup)` over `runs` rounds, after a warm-up round; in each
    round every measure runs once, in turn, so that a busy spell of a shared machine hits
    all sides alike."""
    for measure in measures.values():
        measure(True)
    samples: dict = {key: [] for key in measures}
    for _ in range(runs):
        for key, measure in measures.items():
            samples[key].append(measure(False))
    return {key: statistics.median(values) for key, values in samples.items()}


# -- load generators ----------------------------------------------------------------------
class Load:
    """wrk when installed, else a Python keep-alive client (threads)."""

    def __init__(self, workdir: Path, seconds: int) -> None:
        self.wrk = find_tool("wrk")
        self.workdir = workdir
        self.seconds = seconds
        self.warmup_seconds = max(1, seconds // 2)  # wrk takes whole seconds
        self.label = (f"wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{seconds:g}s" if self.wrk
                      else f"Python client, 8 threads x 1 connection, {seconds:g} s (no wrk)")
        self.scripts: dict[tuple[str, ...], Path] = {}

    def _script(self, paths: list[str]) -> Path:
        key = tuple(paths)
        if key not in self.scripts:
            listing = ",\n".join(json.dumps(p) for p in paths)
            path = self.workdir / f"paths{len(self.scripts)}.lua"
            # Each wrk thread has its own Lua state; they start at different offsets.
            path.write_text(textwrap.dedent("""\
                local paths = {
                %s
                }
                local i = 0
                function setup(thread)
                  thread:set("offset", math.random(#paths))
                end
                function request()
                  i = i + 1
                  local p = paths[((i + (offset or 0)) %% #paths) + 1]
                  return wrk.format("GET", p)
                end
                """) % listing)
            self.scripts[key] = path
        return self.scripts[key]

    def _wrk(self, port: int, paths: list[str], seconds: float) -> tuple[float, int]:
        command = [self.wrk, f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{seconds:g}s",
                   "-s", str(self._script(paths)), f"http://{HOST}:{port}"]
        out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr or out.stdout}")
        rate = re.search(r"Requests/sec:\s*([0-9.]+)", out.stdout)
        if not rate:
            raise RuntimeError(f"cannot read wrk's output:\n{out.stdout}")
        bad = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s*(\d+)", out.stdout))
        errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out.stdout)
        bad += sum(int(n) for n in errors.groups()) if errors else 0
        return float(rate.group(1)), bad

    def _python(self, port: int, paths: list[str], seconds: float) -> tuple[float, int]:
        counts = [0] * 8
        bad = [0] * 8
        stop = time.perf_counter() + seconds

        def client(k: int) -> None:
            conn = http.client.HTTPConnection(HOST, port, timeout=30)
            i = k
            while time.perf_counter() < stop:
                try:
                    status, _, _ = get(conn, paths[i % len(paths)])
                    counts[k] += 1
                    bad[k] += status != 200
                except (OSError, http.client.HTTPException):
                    bad[k] += 1
                    conn.close()
                    conn = http.client.HTTPConnection(HOST, port, timeout=30)
                i += 1
            conn.close()

        threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return sum(counts) / (time.perf_counter() - start), sum(bad)

    def run(self, port: int, paths: list[str], warmup: bool = False) -> tuple[float, int]:
        """Requests/s of one load run (a shorter one to warm up) and its failed responses."""
        run = self._wrk if self.wrk else self._python
        return run(port, paths, self.warmup_seconds if warmup else self.seconds)


def server_metrics(port: int) -> dict[str, float]:
    """terrafused's /metrics as {name: value} (labels kept in the name)."""
    text = requests.get(f"http://{HOST}:{port}/metrics", timeout=10).text
    return {name: float(value) for name, value in
            (line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))}


# /metrics counters reported per load run (those this server version has).
COUNTERS = {
    "requests": 'terrafuse_http_requests_total{class="2xx"}',
    "memory hits": "terrafuse_cache_memory_hits_total",
    "disk hits": "terrafuse_cache_disk_hits_total",
    "misses": "terrafuse_cache_misses_total",
    "worker calls": "terrafuse_worker_calls_total",
    "workers started": "terrafuse_worker_started_total",
}


def settle_workers(port: int, path: str, workers: int, timeout: float = 10) -> None:
    """Wait until all `workers` are idle again and answer fast.

    When a load run ends, wrk closes its connections with requests in flight; terrafused
    cancels those calls by killing their workers (docs/design/server.md), and the
    replacements need a few hundred ms to start. The next timed run must not pay for that.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        idle = server_metrics(port).get("terrafuse_workers_idle")
        if idle is not None and idle < workers:  # older servers lack the gauge
            time.sleep(0.02)
            continue
        times: list[float] = []

        def one(times: list[float] = times) -> None:
            conn = http.client.HTTPConnection(HOST, port, timeout=30)
            start = time.perf_counter()
            get(conn, path)
            times.append(time.perf_counter() - start)
            conn.close()

        threads = [threading.Thread(target=one) for _ in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if max(times) < 0.02:
            return


# -- peers --------------------------------------------------------------------------------
class Nginx:
    """Debian's nginx as a child process serving `root` (nothing outside the temp dir)."""

    def __init__(self, workdir: Path, root: Path, media_type: str) -> None:
        self.port = free_port()
        workers = os.cpu_count() or 2  # one worker per core, as issue 3 asks
        prefix = workdir / "nginx"
        prefix.mkdir()
        config = prefix / "nginx.conf"
        temp = {name: prefix / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
        config.write_text(textwrap.dedent(f"""\
            worker_processes {workers};
            daemon off;
            pid {prefix / 'nginx.pid'};
            error_log {prefix / 'error.log'} warn;
            events {{ worker_connections 4096; }}
            http {{
              access_log off;
              sendfile on;
              tcp_nopush on;
              tcp_nodelay on;
              keepalive_timeout 65;
              keepalive_requests 1000000;
              open_file_cache max=10000 inactive=60s;
              types {{ }}
              default_type {media_type};
              client_body_temp_path {temp['body']};
              proxy_temp_path {temp['proxy']};
              fastcgi_temp_path {temp['fastcgi']};
              uwsgi_temp_path {temp['uwsgi']};
              scgi_temp_path {temp['scgi']};
              server {{
                listen {HOST}:{self.port};
                root {root};
                location / {{ }}
              }}
            }}
            """))
        # Worker processes drop to an unprivileged user when started as root: let it read.
        Path(_HOME).chmod(0o711)
        for path in (workdir, root, *root.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)
        binary = find_tool("nginx")
        self.process = subprocess.Popen(
            [binary, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(config)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True)
        self.workers = workers
        self.error_log = prefix / "error.log"

    def wait(self, path: str) -> None:
        try:
            wait_http(self.port, path, self.process, "nginx", timeout=10)
        except (RuntimeError, TimeoutError) as e:
            stop_process(self.process)
            log = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
            if self.error_log.exists():
                log += self.error_log.read_text(errors="replace")
            raise RuntimeError(f"{e}\n{log[-2000:]}") from None

    def stop(self) -> None:
        stop_process(self.process)


# One uvicorn process on its own SO_REUSEPORT socket. `uvicorn --workers N` shares one
# listening socket, and in some starts one process accepted all of wrk's connections (6.1k
# req/s against 10.4-11.5k with 2 processes); with a socket each, the kernel spreads the
# connections over the processes by their addresses, so the peer is measured at its best.
PEER_SERVE = """
import socket, sys, uvicorn
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
sock.bind((sys.argv[1], int(sys.argv[2])))
sock.listen(1024)
uvicorn.Server(uvicorn.Config("peer_app:app", log_level="warning", access_log=False)).run(sockets=[sock])
"""


class Uvicorn:
    def __init__(self, workdir: Path, workers: int) -> None:
        self.port = free_port()
        self.workers = workers
        app = workdir / "peer_app.py"
        if not app.exists():
            app.write_text(FASTAPI_APP.format(trivial=TRIVIAL_UDF, tile=TILE_UDF))
            (workdir / "peer_serve.py").write_text(PEER_SERVE)
        self.processes = [
            subprocess.Popen([sys.executable, "peer_serve.py", HOST, str(self.port)], cwd=workdir,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             start_new_session=True)
            for _ in range(workers)]
        try:
            for process in self.processes:
                wait_http(self.port, "/health", process, "uvicorn", timeout=60)
            # /health answered by one process: wait until every one has answered (each
            # request opens a new connection, which the kernel hands to one of the sockets).
            pids: set[int] = set()
            deadline = time.monotonic() + 60
            while len(pids) < workers and time.monotonic() < deadline:
                pids.add(requests.get(f"http://{HOST}:{self.port}/health", timeout=10).json()["pid"])
                time.sleep(0.01)
            if len(pids) < workers:
                raise TimeoutError(f"only {len(pids)} of {workers} uvicorn processes answered within 60 s")
            for _ in range(20 * workers):
                requests.get(f"http://{HOST}:{self.port}/run?a=1", timeout=10)
        except (RuntimeError, TimeoutError, requests.RequestException) as e:
            self.stop()
            log = "".join(p.stderr.read().decode(errors="replace") for p in self.processes if p.stderr)
            raise RuntimeError(f"{e}\n{log[-2000:]}") from None

    def stop(self) -> None:
        for process in self.processes:
            stop_process(process)


def fastapi_available() -> str | None:
    """None when fastapi and uvicorn import, else why not."""
    if "fastapi" in _WITHOUT:
        return "--without fastapi"
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        return f"{e.name} is not installed (pip install -r requirements-dev.txt)"
    return None


# -- terrafused setup ---------------------------------------------------------------------
class Api:
    def __init__(self, server) -> None:
        self.base = server.base_url
        self.prefix = "/server/v1"
        token = (Path(server.home) / "credentials").read_text().strip()
        self.headers = {"Authorization": f"Bearer {token}"}

    def save(self, name: str, code: str) -> dict:
        r = requests.post(f"{self.base}/udfs", json={"name": name, "code": code, "public": False},
                          headers=self.headers, timeout=30)
        r.raise_for_status()
        return r.json()

    def token(self, name: str) -> str:
        r = requests.post(f"{self.base}/tokens", json={"udf": name}, headers=self.headers, timeout=30)
        r.raise_for_status()
        return r.json()["token"]


# -- output -------------------------------------------------------------------------------
def speedup(value: float) -> str:
    return f"{value:.0f}x" if value >= 100 else f"{value:.3g}x"


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    header = ("case", "terrafuse", "peer", "ratio")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    line = lambda r: "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                       for i, (c, w) in enumerate(zip(r, widths))) + " |"
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def rate_verdict(load: Load, ok: bool) -> str:
    """A rate target is judged only under wrk: a Python client measures itself."""
    return verdict(ok) if load.wrk else "not judged without wrk"


# -- main ---------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short loads, few tiles and runs (CI smoke run)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply the cached tile set and the sequential request counts")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per case (default 3, quick 1)")
    parser.add_argument("--seconds", type=int, default=None,
                        help="duration of one load run, whole seconds (default 5, quick 2)")
    parser.add_argument("--without", action="append", default=[], choices=["nginx", "wrk", "fastapi"],
                        help="act as if this peer tool were not installed (repeatable)")
    args = parser.parse_args(argv)
    _WITHOUT.update(args.without)
    runs = args.runs or (1 if args.quick else 3)
    seconds = max(1, args.seconds or (2 if args.quick else 5))
    hit_tiles = max(4, int((32 if args.quick else 256) * args.scale))
    sequential = max(100, int((1_000 if args.quick else 5_000) * args.scale))
    viewport_runs = 3 if args.quick else 15

    work = Path(_HOME) / "bench"
    work.mkdir()
    load = Load(work, seconds)
    outcomes = Outcomes()
    notes: list[str] = []
    if not load.wrk:
        notes.append("wrk not found (Debian: apt-get install -y wrk) or --without wrk: req/s come from "
                     "a Python client, which saturates long before the servers do")
    rows: list[tuple[str, str, str, str]] = []
    targets: list[str] = []
    nginx: Nginx | None = None
    uvicorns: dict[int, Uvicorn] = {}
    viewports: list[Viewport] = []

    # Access log off (level warn), as for nginx and uvicorn; default workers: one per core.
    server = start_server(port=0, home=Path(_HOME) / "home", log_level="warn")
    try:
        api = Api(server)
        port = server.port
        api.save("bench_trivial", TRIVIAL_UDF)
        api.save("bench_tile", TILE_UDF)
        trivial_token, tile_token = api.token("bench_trivial"), api.token("bench_tile")
        tile_base = f"{api.prefix}/realtime-shared/{tile_token}/run/tiles"
        # GeoJSON tiles, named by extension: the FastAPI peer answers the same format (its
        # gdf.to_json()), and the figures do not move when the default tile format changes.
        hit_paths = [f"{tile_base}/{z}/{x}/{y}.{TILE_FORMAT}" for z, x, y in tile_block(12, 640, 1536, hit_tiles, 16)]
        view_paths = [f"{tile_base}/{z}/{x}/{y}.{TILE_FORMAT}"
                      for z, x, y in tile_block(13, 1310, 3160, VIEWPORT_TILES, 5)]

        # -- setup: fill the cache, check the hits, keep the bytes for nginx -----------------
        bodies: dict[str, bytes] = {}
        media_types = set()
        conn = http.client.HTTPConnection(HOST, port, timeout=60)
        for phase, paths in (("setup: first request of each tile", hit_paths + view_paths),
                             ("setup: second request of each tile", hit_paths + view_paths)):
            for path in paths:
                status, body, response = get(conn, path)
                if status != 200:
                    raise RuntimeError(f"GET {path} answered {status}: {body[:300]!r}")
                if path in bodies and bodies[path] != body:
                    raise RuntimeError(f"GET {path}: a cache hit answered other bytes than the miss")
                bodies[path] = body
                media_types.add(response.getheader("Content-Type"))
                header_bytes = len(str(response.headers))  # about what the wire carries
                outcomes.add(phase, response.getheader("X-Fused-Cache"))
        conn.close()
        tile_bytes = statistics.median(len(b) for b in bodies.values())
        www = work / "www"
        for path, body in bodies.items():
            file = www / path.lstrip("/")
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(body)

        if find_tool("nginx"):
            nginx = Nginx(work, www, media_types.pop() if len(media_types) == 1 else "application/octet-stream")
            try:
                nginx.wait(hit_paths[0])
            except RuntimeError as e:
                notes.append(f"nginx did not start, its rows are skipped: {e}")
                nginx = None
        else:
            notes.append("nginx not found (Debian: apt-get install -y nginx) or --without nginx: "
                         "the nginx rows are skipped")
        if nginx:
            for path in hit_paths[:3]:
                answer = requests.get(f"http://{HOST}:{nginx.port}{path}", timeout=5)
                if answer.content != bodies[path]:
                    raise RuntimeError(f"nginx served other bytes for {path}")
            conn = http.client.HTTPConnection(HOST, nginx.port, timeout=10)
            _, _, response = get(conn, hit_paths[0])
            conn.close()
            notes.append(f"response headers of a tile: terrafused ~{header_bytes} B, nginx ~{len(str(response.headers))} B "
                         f"(bodies: the same {tile_bytes:.0f} B)")

        # Every comparison runs its sides in turn, round after round (interleaved), so that a
        # busy spell of the machine hits terrafused and its peer alike.
        bad: Counter = Counter()

        counted: dict[str, Counter] = {}  # /metrics deltas over terrafused's timed load runs

        def load_run(key: str, port_: int, paths: list[str], settle=None):
            def measure(warmup: bool) -> float:
                before = server_metrics(port) if port_ == port and not warmup else None
                rate, failed = load.run(port_, paths, warmup)
                bad[key] += failed
                if settle is not None:
                    settle()
                if before is not None:
                    after = server_metrics(port)
                    for label, name in COUNTERS.items():
                        if name in after:
                            counted.setdefault(key, Counter())[label] += int(after[name] - before.get(name, 0))
                return rate
            return measure

        # -- case 1: cached tile hits --------------------------------------------------------
        def hit_latency(warmup: bool) -> float:
            def check(response, _):
                if not warmup:
                    outcomes.add("case 1: sequential requests", response.getheader("X-Fused-Cache"))
            return statistics.median(sequential_latencies_us(port, hit_paths, sequential // (4 if warmup else 1), check))

        rates = {"terrafused hits": load_run("terrafused hits", port, hit_paths)}
        latencies = {"terrafused": hit_latency}
        if nginx:
            rates["nginx"] = load_run("nginx", nginx.port, hit_paths)
            rates["terrafused /health"] = load_run("terrafused /health", port, ["/health"])
            latencies["nginx"] = lambda warmup: statistics.median(
                sequential_latencies_us(nginx.port, hit_paths, sequential // (4 if warmup else 1)))
        rate = interleaved(rates, runs)
        p50 = interleaved(latencies, runs)
        for path in hit_paths:  # still hits after the load
            conn = http.client.HTTPConnection(HOST, port, timeout=30)
            _, _, response = get(conn, path)
            outcomes.add("case 1: each tile again after the load", response.getheader("X-Fused-Cache"))
            conn.close()
        hit_rate, hit_p50 = rate["terrafused hits"], p50["terrafused"]
        label = f"cached tile hits, {load.label} ({len(hit_paths)} {TILE_FORMAT} tiles, {tile_bytes:.0f} B)"
        p50_label = "cached tile hit, p50 latency, 1 keep-alive connection"
        if nginx:
            nginx_rate = rate["nginx"]
            rows.append((f"{label}: req/s vs nginx ({nginx.workers} workers, files)",
                         f"{hit_rate:,.0f}/s", f"{nginx_rate:,.0f}/s", speedup(hit_rate / nginx_rate)))
            rows.append((f"{p50_label} vs nginx", f"{hit_p50:.1f} µs", f"{p50['nginx']:.1f} µs",
                         speedup(p50["nginx"] / hit_p50)))
            rows.append(("(floor of the HTTP layer) GET /health, req/s vs nginx tile files",
                         f"{rate['terrafused /health']:,.0f}/s", f"{nginx_rate:,.0f}/s",
                         speedup(rate["terrafused /health"] / nginx_rate)))
            targets.append(f"cached hits: {hit_rate / nginx_rate:.2f}x nginx's req/s (target >= {HIT_RPS_TARGET}x: "
                           f"{rate_verdict(load, hit_rate >= HIT_RPS_TARGET * nginx_rate)})")
        else:
            rows.append((f"{label}: req/s", f"{hit_rate:,.0f}/s", "n/a", ""))
            rows.append((p50_label, f"{hit_p50:.1f} µs", "n/a", ""))
        targets.append(f"cached hit p50: {hit_p50:.1f} µs (target <= {HIT_P50_TARGET_US:.0f} µs: "
                       f"{verdict(hit_p50 <= HIT_P50_TARGET_US)})")

        # -- case 2: warm trivial UDF, uncached ----------------------------------------------
        run_path = f"{api.prefix}/realtime-shared/{trivial_token}/run/file?a=1&cache_max_age=0"
        sequential_latencies_us(port, [run_path], 200)  # every worker has the code
        per_run: dict[str, list[float]] = {k: [] for k in ("overhead", "udf", "pool", "http")}

        def udf_latency(warmup: bool) -> float:
            udf_us: list[float] = []
            handler_us: list[float] = []

            def check(response, _):
                metadata = json.loads(response.getheader("X-Fused-Metadata"))
                udf_us.append(metadata["udf_seconds"] * 1e6)  # the worker's time for the call
                handler_us.append(metadata["ms"] * 1e3)  # the handler's, from parameters to encoded result
                if not warmup:
                    outcomes.add("case 2: sequential requests (cache_max_age=0)", response.getheader("X-Fused-Cache"))

            latencies = sequential_latencies_us(port, [run_path], max(100, sequential // (16 if warmup else 4)), check)
            if not warmup:
                for key, values in (("overhead", [t - u for t, u in zip(latencies, udf_us)]), ("udf", udf_us),
                                    ("pool", [h - u for h, u in zip(handler_us, udf_us)]),
                                    ("http", [t - h for t, h in zip(latencies, handler_us)])):
                    per_run[key].append(statistics.median(values))
            return statistics.median(latencies)

        # The same function called in this process, for scale.
        import fused
        direct = fused.load(TRIVIAL_UDF).function
        calls = 100_000
        start = time.perf_counter_ns()
        for _ in range(calls):
            direct(a=1)
        direct_us = (time.perf_counter_ns() - start) / calls / 1000

        why_not = fastapi_available()
        peers: dict[int, Uvicorn] = {}
        if why_not:
            notes.append(f"FastAPI rows skipped: {why_not}")
        else:
            for workers in (1, 2):
                try:
                    peers[workers] = uvicorns[workers] = Uvicorn(work, workers)
                except RuntimeError as e:
                    notes.append(f"uvicorn --workers {workers} did not start, its rows are skipped: {e}")
        cores = os.cpu_count() or 1  # terrafused's default: one worker per core
        rates = {"terrafused": load_run("terrafused UDF runs", port, [run_path],
                                        settle=lambda: settle_workers(port, run_path, cores))}
        latencies = {"terrafused": udf_latency}
        for workers, peer in peers.items():
            rates[workers] = load_run(f"uvicorn --workers {workers}", peer.port, ["/run?a=1"])
        if 1 in peers:
            latencies["uvicorn"] = lambda warmup: statistics.median(
                sequential_latencies_us(peers[1].port, ["/run?a=1"], max(100, sequential // (16 if warmup else 4))))
        rate = interleaved(rates, runs)
        p50 = interleaved(latencies, runs)
        p = {key: statistics.median(values) for key, values in per_run.items()}
        udf_rate, udf_latency, overhead = rate["terrafused"], p50["terrafused"], p["overhead"]

        udf_label = "trivial UDF uncached (cache_max_age=0)"
        peer_rates = {workers: rate[workers] for workers in peers}
        if not peer_rates:
            rows.append((f"{udf_label}, {load.label}: req/s", f"{udf_rate:,.0f}/s", "n/a", ""))
        for workers, peer_rate in peer_rates.items():
            rows.append((f"{udf_label}, {load.label}: req/s vs uvicorn+FastAPI ({workers} worker{'s' * (workers > 1)})",
                         f"{udf_rate:,.0f}/s", f"{peer_rate:,.0f}/s", speedup(udf_rate / peer_rate)))
        if "uvicorn" in p50:
            rows.append((f"{udf_label}, p50 latency, 1 connection vs uvicorn+FastAPI (1 worker)",
                         f"{udf_latency:.1f} µs", f"{p50['uvicorn']:.1f} µs", speedup(p50["uvicorn"] / udf_latency)))
        else:
            rows.append((f"{udf_label}, p50 latency, 1 connection", f"{udf_latency:.1f} µs", "n/a", ""))
        rows.append((f"{udf_label}, p50 server overhead beyond the worker's udf_seconds",
                     f"{overhead:.1f} µs", "", ""))
        if peer_rates:
            best = max(peer_rates.values())
            targets.append(f"trivial UDF uncached: {udf_rate / best:.2f}x the best FastAPI req/s "
                           f"(target >= {UDF_RPS_TARGET:.0f}x: {rate_verdict(load, udf_rate >= UDF_RPS_TARGET * best)})")
        targets.append(f"trivial UDF server overhead p50: {overhead:.1f} µs beyond the UDF's own time "
                       f"(target <= {OVERHEAD_P50_TARGET_US:.0f} µs: {verdict(overhead <= OVERHEAD_P50_TARGET_US)})"
                       f"\n  p50s: latency {udf_latency:.1f} µs, of which the worker's udf_seconds {p['udf']:.1f} µs "
                       f"(binding, coercion, capture and the call; the bare function takes {direct_us:.2f} µs), "
                       f"the rest of the route handler (X-Fused-Metadata ms) {p['pool']:.1f} µs, and the HTTP "
                       f"layer + the Python client {p['http']:.1f} µs (overhead includes the client's own time)")

        # -- case 3: a 20-tile viewport ------------------------------------------------------
        def viewport(target_port: int, paths: list[str], phase: str = "", before=None):
            view = Viewport(target_port, VIEWPORT_CONNECTIONS, outcomes)
            viewports.append(view)

            def measure(warmup: bool) -> float:
                if before is not None:
                    before()
                return view.fetch_ms(paths, "" if warmup else phase)
            return measure

        uncached_paths = [p + "?cache_max_age=0" for p in view_paths]
        uncached = {"terrafused": viewport(port, uncached_paths, "case 3: viewport, cache_max_age=0")}
        if 2 in peers:
            peer_paths = ["/tiles/" + p.split("/run/tiles/", 1)[1].removesuffix("." + TILE_FORMAT) for p in view_paths]
            uncached["uvicorn"] = viewport(peers[2].port, peer_paths)
        uncached_ms = interleaved(uncached, viewport_runs)
        versions = iter(range(1, 1_000_000))
        new_version_ms = interleaved({"terrafused": viewport(
            port, view_paths, "case 3: viewport after saving a new version",
            before=lambda: api.save("bench_tile", TILE_UDF + f"# version {next(versions)}\n"))}, viewport_runs)
        api.save("bench_tile", TILE_UDF)  # back to the first version: its tiles are cached
        cached = {"terrafused": viewport(port, view_paths, "case 3: viewport, cached")}
        if nginx:
            cached["nginx"] = viewport(nginx.port, view_paths)
        cached_ms = interleaved(cached, viewport_runs)

        vp = f"{VIEWPORT_TILES}-tile viewport ({TILE_FORMAT}), {VIEWPORT_CONNECTIONS} connections"
        if "uvicorn" in uncached_ms:
            rows.append((f"{vp}, uncached (cache_max_age=0) vs uvicorn+FastAPI (2 workers)",
                         f"{uncached_ms['terrafused']:.1f} ms", f"{uncached_ms['uvicorn']:.1f} ms",
                         speedup(uncached_ms["uvicorn"] / uncached_ms["terrafused"])))
        else:
            rows.append((f"{vp}, uncached (cache_max_age=0)", f"{uncached_ms['terrafused']:.1f} ms", "n/a", ""))
        rows.append((f"{vp}, first fetch after saving a new UDF version",
                     f"{new_version_ms['terrafused']:.1f} ms", "", ""))
        if "nginx" in cached_ms:
            rows.append((f"{vp}, cached vs nginx (files)", f"{cached_ms['terrafused']:.2f} ms",
                         f"{cached_ms['nginx']:.2f} ms", speedup(cached_ms["nginx"] / cached_ms["terrafused"])))
        else:
            rows.append((f"{vp}, cached", f"{cached_ms['terrafused']:.2f} ms", "n/a", ""))
        view_uncached, view_new, view_cached = (uncached_ms["terrafused"], new_version_ms["terrafused"],
                                                cached_ms["terrafused"])
        targets.append(f"viewport uncached: {view_uncached:.1f} ms (target <= {VIEWPORT_UNCACHED_TARGET_MS:.0f} ms: "
                       f"{verdict(view_uncached <= VIEWPORT_UNCACHED_TARGET_MS)}); after a new version "
                       f"{view_new:.1f} ms ({verdict(view_new <= VIEWPORT_UNCACHED_TARGET_MS)})")
        targets.append(f"viewport cached: {view_cached:.2f} ms (target <= {VIEWPORT_CACHED_TARGET_MS:.0f} ms: "
                       f"{verdict(view_cached <= VIEWPORT_CACHED_TARGET_MS)})")
        for key, count in bad.items():
            if count:
                notes.append(f"{count} failed responses or socket errors under load: {key}")
    finally:
        for view in viewports:
            view.close()
        for peer in (nginx, *uvicorns.values()):
            if peer is not None:
                peer.stop()
        code = server.stop()
        if code != 0:
            print(f"terrafused exited with status {code}:\n{server.log_text()[-3000:]}", file=sys.stderr)

    print(f"bench_server: terrafused vs nginx and uvicorn+FastAPI on loopback, {cores} cores shared by "
          f"servers and clients; median of {runs} runs (after 1 warm-up; viewports: {viewport_runs} runs)")
    print("ratio = terrafuse's speed-up: peer / terrafuse for times, terrafuse / peer for req/s "
          "(above 1 terrafuse is faster)")
    print()
    print_table(rows)
    print()
    for line in targets:
        print(line)
    print()
    print("X-Fused-Cache outcomes of the requests checked:")
    for phase, counts in outcomes.phases.items():
        print(f"  {phase}: " + ", ".join(f"{k} x{v}" for k, v in sorted(counts.items())))
    if counted:
        print("terrafused's /metrics counters over its timed load runs (and what settles after each: "
              "the answers still in flight, the settling requests, workers replaced):")
        for key, counts in counted.items():
            print(f"  {key}: " + ", ".join(f"{label} {counts[label]:,}" for label in COUNTERS if label in counts))
    for note in notes:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        shutil.rmtree(_HOME, ignore_errors=True)
