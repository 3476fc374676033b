"""Files API throughput: upload and download of one big file through terrafused vs ``cp``.

Both sides move the same file on the same disk (the benchmark's temp directory): ``cp``
copies it to a new file; terrafused receives it over loopback HTTP (``PUT
/files/upload``, streamed into a temp file renamed at the end) and sends it back (``GET
/files/download``). The HTTP client is ``curl`` when installed (else a Python client, labelled
as such). The server's peak resident memory (VmHWM) before and after the transfers shows
that memory stays flat whatever the file's size.

1 warm-up per side, then N rounds alternating the sides; medians are printed. Ratio is
terrafuse / cp throughput (target: >= 0.7). Never fails on figures.

    python bench/storage/bench_files.py [--quick] [--scale S] [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

_HOME = tempfile.mkdtemp(prefix="terrafuse-bench-files-")
os.environ["TERRAFUSE_HOME"] = _HOME

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


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="32 MB, one round (CI)")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply the file size (1 GB at 1)"
    )
    parser.add_argument("--runs", type=int, default=None)
    args = parser.parse_args()
    size = int((32 * MB if args.quick else 1024 * MB) * args.scale)
    runs = args.runs or (1 if args.quick else 3)

    work = Path(_HOME) / "work"
    work.mkdir()
    source = work / "big.bin"
    _make_file(source, size)
    server = start_server(port=0, home=_HOME, workers=1, threads=4)
    token = (Path(_HOME) / "credentials").read_text().strip()
    auth = f"Authorization: Bearer {token}"
    base = server.base_url
    upload_url = f"{base}/files/upload?" + urllib.parse.urlencode({"path": "fd://bench/big.bin"})
    download_url = f"{base}/files/download?" + urllib.parse.urlencode(
        {"path": "fd://bench/big.bin"}
    )
    curl = shutil.which("curl")
    client = "curl" if curl else "python requests"

    def cp() -> None:
        shutil.copyfile(source, work / "copy.bin") if not shutil.which("cp") else subprocess.run(
            ["cp", str(source), str(work / "copy.bin")], check=True
        )
        (work / "copy.bin").unlink()

    def upload() -> None:
        if curl:
            subprocess.run(
                [curl, "-sf", "-o", "/dev/null", "-T", str(source), "-H", auth, upload_url],
                check=True,
            )
        else:
            import requests

            with open(source, "rb") as body:
                requests.put(
                    upload_url, data=body, headers={"Authorization": f"Bearer {token}"}
                ).raise_for_status()

    def download() -> None:
        target = work / "down.bin"
        if curl:
            subprocess.run([curl, "-sf", "-o", str(target), "-H", auth, download_url], check=True)
        else:
            import requests

            with (
                requests.get(
                    download_url, headers={"Authorization": f"Bearer {token}"}, stream=True
                ) as r,
                open(target, "wb") as out,
            ):
                for chunk in r.iter_content(MB):
                    out.write(chunk)
        assert target.stat().st_size == size
        target.unlink()

    try:
        rss_before = _peak_rss_mb(server.process.pid)
        for fn in (cp, upload, download):  # warm-up
            fn()
        times: dict[str, list[float]] = {"cp": [], "upload": [], "download": []}
        for _ in range(runs):
            times["cp"].append(_timed(cp))
            times["upload"].append(_timed(upload))
            times["download"].append(_timed(download))
        rss_after = _peak_rss_mb(server.process.pid)
    finally:
        server.stop()
        shutil.rmtree(_HOME, ignore_errors=True)

    rate = {k: size / MB / statistics.median(v) for k, v in times.items()}
    print(f"file: {size / MB:.0f} MB, {runs} round(s), client: {client}")
    print(f"{'case':<28} | {'terrafuse MB/s':>14} | {'cp MB/s':>8} | {'ratio':>6}")
    for case in ("upload", "download"):
        print(
            f"{case + ' through the server':<28} | {rate[case]:>14.0f} | {rate['cp']:>8.0f} | "
            f"{rate[case] / rate['cp']:>6.2f}"
        )
    print(
        f"server peak RSS: {rss_before:.0f} MB before, {rss_after:.0f} MB after "
        f"({rss_after - rss_before:+.0f} MB for a {size / MB:.0f} MB file)"
    )
    print("target: ratio >= 0.7 for both, peak RSS flat")
    return 0


if __name__ == "__main__":
    sys.exit(main())
