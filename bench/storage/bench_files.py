"""Files API throughput: upload and download of one big file through terrafused vs ``cp``.

Both sides move the same file on the same disk (the benchmark's temp directory): ``cp``
copies it to a new file (copy_file_range: one copy in the kernel); terrafused receives it
over loopback HTTP (``PUT /files/upload``, spliced from the socket into a temp file renamed
at the end) and sends it back (``GET /files/download``, sendfile). Three clients: a
zero-copy one written here (sendfile(2) up, splice(2) socket -> pipe -> file down: the
client costs what ``cp`` costs, so the ratio measures the server), the SDK
(``fused.api.upload/download``: what users run) and ``curl`` when installed (a common
client, which copies through user space in 16-64 KB pieces; once more with chunked
transfer encoding, which the server decodes in user space). Once more the zero-copy upload
over a file that exists, against ``cp`` over a file that exists. The server's peak resident
memory (VmHWM) before and after the transfers shows that memory stays flat whatever the
file's size.

1 warm-up per case, then N rounds alternating the cases; medians are printed. Ratio is
terrafuse / cp throughput (target: >= 0.7 with the zero-copy client). Never fails on figures.

    python bench/storage/bench_files.py [--quick] [--scale S] [--runs N] [--binary PATH]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

_HOME = tempfile.mkdtemp(prefix="terrafuse-bench-files-")
os.environ["TERRAFUSE_HOME"] = _HOME

import fused  # noqa: E402
from fused._server import start_server  # noqa: E402

MB = 1 << 20


def _make_file(path: Path, size: int) -> None:
    block = os.urandom(MB)
    with open(path, "wb") as out:
        for _ in range(size // MB):
            out.write(block)
        out.write(block[: size % MB])


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _request(url: str, head: str) -> tuple[socket.socket, str]:
    parts = urllib.parse.urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port))
    target = parts.path + ("?" + parts.query if parts.query else "")
    sock.sendall(head.format(target=target, host=parts.netloc).encode())
    return sock, target


def _read_head(sock: socket.socket) -> tuple[int, dict[str, str]]:
    """Reads exactly the response head (peeking), leaving the body in the socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        peek = sock.recv(65536, socket.MSG_PEEK)
        if not peek:
            raise ConnectionError("connection closed before the response head")
        end = (data + peek).find(b"\r\n\r\n")
        data += sock.recv(end + 4 - len(data) if end >= 0 else len(peek))
    lines = data.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:]) if k}
    return int(lines[0].split()[1]), headers


def zero_copy_upload(url: str, token: str, path: Path) -> None:
    size = path.stat().st_size
    sock, _ = _request(url, "PUT {target} HTTP/1.1\r\nHost: {host}\r\n"
                       f"Authorization: Bearer {token}\r\nContent-Length: {size}\r\n"
                       "Connection: close\r\n\r\n")
    with sock, open(path, "rb") as body:
        sock.sendfile(body)
        status, _ = _read_head(sock)
    if status != 200:
        raise RuntimeError(f"upload answered HTTP {status}")


def zero_copy_download(url: str, token: str, path: Path) -> None:
    sock, _ = _request(url, "GET {target} HTTP/1.1\r\nHost: {host}\r\n"
                       f"Authorization: Bearer {token}\r\nConnection: close\r\n\r\n")
    with sock:
        status, headers = _read_head(sock)
        if status != 200:
            raise RuntimeError(f"download answered HTTP {status}")
        left = int(headers["content-length"])
        pipe_r, pipe_w = os.pipe()
        try:
            fcntl.fcntl(pipe_w, 1031, MB)  # F_SETPIPE_SZ: 1 MiB per splice
        except OSError:
            pass
        out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            while left:
                moved = os.splice(sock.fileno(), pipe_w, min(left, MB))
                if moved == 0:
                    raise ConnectionError("download body cut short")
                left -= moved
                while moved:
                    moved -= os.splice(pipe_r, out, moved)
        finally:
            os.close(out)
            os.close(pipe_r)
            os.close(pipe_w)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    """CPU time of this process and its finished children (cp, curl)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _timed(fn, server_pid: int) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds of the client, CPU seconds of the server) of one call."""
    client, server = _own_cpu_seconds(), _cpu_seconds(server_pid)
    start = time.perf_counter()
    fn()
    wall = time.perf_counter() - start
    return wall, _own_cpu_seconds() - client, _cpu_seconds(server_pid) - server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="32 MB, one round (CI)")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply the file size (1 GB at 1)"
    )
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--binary", default=None, help="the terrafused to measure (default: the installed one)")
    args = parser.parse_args()
    size = int((32 * MB if args.quick else 1024 * MB) * args.scale)
    runs = args.runs or (1 if args.quick else 5)

    work = Path(_HOME) / "work"
    work.mkdir()
    source = work / "big.bin"
    _make_file(source, size)
    server = start_server(port=0, home=_HOME, workers=1, threads=4, binary=args.binary)
    token = (Path(_HOME) / "credentials").read_text().strip()
    auth = f"Authorization: Bearer {token}"
    base = server.base_url
    upload_url = f"{base}/files/upload?" + urllib.parse.urlencode({"path": "fd://bench/big.bin"})
    download_url = f"{base}/files/download?" + urllib.parse.urlencode(
        {"path": "fd://bench/big.bin"}
    )
    curl = shutil.which("curl")
    uploaded = Path(_HOME) / "fd" / "bench" / "up.bin"  # where PUT fd://bench/up.bin lands
    up_url = upload_url.replace("big.bin", "up.bin")

    def check_download() -> None:
        assert (work / "down.bin").stat().st_size == size, "short download"
        (work / "down.bin").unlink()

    # name -> (timed action, untimed cleanup). Every target is new when its case starts (cp's
    # copy, the uploaded file, the downloaded file) and is removed untimed afterwards:
    # replacing a file whose blocks are on disk costs its unlink (and a discard), which no
    # side should pay inside the timing.
    cases = {
        "cp": (lambda: subprocess.run(["cp", str(source), str(work / "copy.bin")], check=True),
               lambda: (work / "copy.bin").unlink()),
        "upload, zero-copy client": (lambda: zero_copy_upload(up_url, token, source), uploaded.unlink),
        "download, zero-copy client": (lambda: zero_copy_download(download_url, token, work / "down.bin"),
                                       check_download),
    }
    # What a user runs: the SDK (requests) with the server as fd://'s home.
    os.environ["TERRAFUSE_TOKEN"] = token
    fused.options.base_url = base
    cases["upload, fused.api"] = (lambda: fused.api.upload(str(source), "fd://bench/up.bin"), uploaded.unlink)
    cases["download, fused.api"] = (lambda: fused.api.download("fd://bench/big.bin", work / "down.bin"),
                                    check_download)
    if curl:
        cases["upload, curl"] = (
            lambda: subprocess.run([curl, "-sf", "-o", "/dev/null", "-T", str(source), "-H", auth, up_url],
                                   check=True),
            uploaded.unlink)
        # No Content-Length: the server decodes the chunks in user space (1 MiB buffer).
        cases["upload, curl chunked"] = (
            lambda: subprocess.run([curl, "-sf", "-o", "/dev/null", "-T", str(source), "-H", auth,
                                    "-H", "Transfer-Encoding: chunked", up_url], check=True),
            uploaded.unlink)
        cases["download, curl"] = (
            lambda: subprocess.run([curl, "-sf", "-o", str(work / "down.bin"), "-H", auth, download_url],
                                   check=True),
            check_download)

    # Replacing a file that is on disk (the warm-up creates it; each round's sync writes it
    # out): the upload's peer is cp over an existing file. Their rounds come after the
    # others': freeing the replaced blocks (a discard on this disk) slows what follows.
    over_url = upload_url.replace("big.bin", "over.bin")
    replacing = {
        "cp, replacing a file": (
            lambda: subprocess.run(["cp", str(source), str(work / "over.bin")], check=True), lambda: None),
        "upload, replacing a file": (lambda: zero_copy_upload(over_url, token, source), lambda: None),
    }

    try:
        zero_copy_upload(upload_url, token, source)  # the file the downloads read
        rss_before = _peak_rss_mb(server.process.pid)
        times: dict[str, list[float]] = {}
        client_cpu: dict[str, list[float]] = {}
        server_cpu: dict[str, list[float]] = {}
        loads = []
        for group in (cases, replacing):
            for fn, cleanup in group.values():  # warm-up
                fn()
                cleanup()
            for _ in range(runs):
                loads.append(os.getloadavg()[0])
                for name, (fn, cleanup) in group.items():
                    os.sync()  # each case starts with no dirty pages of the one before (untimed)
                    wall, client, served = _timed(fn, server.process.pid)
                    cleanup()
                    times.setdefault(name, []).append(wall)
                    client_cpu.setdefault(name, []).append(client)
                    server_cpu.setdefault(name, []).append(served)
        cases.update(replacing)
        rss_after = _peak_rss_mb(server.process.pid)
    finally:
        server.stop()
        shutil.rmtree(_HOME, ignore_errors=True)

    gb = size / (1 << 30)
    rate = {k: size / MB / statistics.median(v) for k, v in times.items()}
    client_gb = {k: statistics.median(v) / gb for k, v in client_cpu.items()}
    server_gb = {k: statistics.median(v) / gb for k, v in server_cpu.items()}
    print(f"file: {size / MB:.0f} MB, {runs} round(s), same disk, loopback, {os.cpu_count()} cores, "
          f"load average {min(loads):.1f}-{max(loads):.1f} over the rounds")
    print(f"| {'case (through the server)':<28} | {'terrafuse MB/s':>14} | {'cp MB/s':>8} | {'ratio':>6} "
          f"| {'CPU s/GB client':>15} | {'server':>6} | {'cp':>5} |")
    for case in cases:
        if case.startswith("cp"):
            continue
        peer = "cp, replacing a file" if "replacing" in case else "cp"
        print(f"| {case:<28} | {rate[case]:>14.0f} | {rate[peer]:>8.0f} | {rate[case] / rate[peer]:>6.2f} "
              f"| {client_gb[case]:>15.2f} | {server_gb[case]:>6.2f} | {client_gb[peer]:>5.2f} |")
    print("(throughput is wall time, so other load on the machine lowers it; CPU is per side)")
    print(
        f"server peak RSS: {rss_before:.0f} MB before, {rss_after:.0f} MB after "
        f"({rss_after - rss_before:+.0f} MB for a {size / MB:.0f} MB file)"
    )
    for case in ("upload, zero-copy client", "download, zero-copy client"):
        verdict = "PASS" if rate[case] / rate["cp"] >= 0.7 else "MISS"
        print(f"target {case}: ratio >= 0.7: {verdict}")
    print(f"target memory flat (< 64 MB growth): {'PASS' if rss_after - rss_before < 64 else 'MISS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
