"""Instructions per request of terrafused (or of one Python worker), counted by callgrind.

Request rates on a shared 2-core machine swing by 2x from run to run; instruction counts do
not. This starts the real server under ``valgrind --tool=callgrind`` (or its single worker,
``--worker``), sends warm-up requests, zeroes the counters, sends N sequential requests on one
keep-alive connection, dumps, and prints instructions per request. The dump is kept for
``callgrind_annotate --inclusive=yes <file>``.

    python bench/server/profile_callgrind.py hit            # a memory-cache hit
    python bench/server/profile_callgrind.py uncached       # a trivial UDF, cache_max_age=0
    python bench/server/profile_callgrind.py uncached --worker   # the Python worker's side

Not a benchmark (bench/run_all.py does not run it): a tool for finding where time goes.
"""

from __future__ import annotations

import argparse
import glob
import http.client
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import requests

from fused._server import find_terrafused, start_server

TRIVIAL_UDF = "@fused.udf\ndef udf(a: int = 1):\n    return a\n"


def wrapper(directory: Path, program: str) -> Path:
    """A script that runs `program` under callgrind, writing its dumps into `directory`."""
    script = directory / f"callgrind-{Path(program).name}.sh"
    script.write_text(f'#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file={directory}/out.%p '
                      f'"{program}" "$@"\n')
    script.chmod(0o755)
    return script


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=["hit", "uncached"])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--worker", action="store_true", help="profile the Python worker, not the server")
    args = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind is not installed (Debian: apt-get install -y valgrind)", file=sys.stderr)
        return 2

    out = Path(tempfile.mkdtemp(prefix="tf-callgrind-"))
    home = out / "home"
    if args.worker:
        # The real interpreter: a pyenv shim would exec it outside valgrind.
        python = os.path.realpath(sys.executable)
        options = {"workers": 1, "extra_args": ["--python", str(wrapper(out, python))]}
    else:
        options = {"binary": wrapper(out, str(find_terrafused()))}
    server = start_server(port=0, home=home, log_level="warn", startup_timeout=600, **options)
    try:
        headers = {"Authorization": f"Bearer {(home / 'credentials').read_text().strip()}"}
        requests.post(f"{server.base_url}/udfs", json={"name": "trivial", "code": TRIVIAL_UDF},
                      headers=headers, timeout=600).raise_for_status()
        token = requests.post(f"{server.base_url}/tokens", json={"udf": "trivial"}, headers=headers,
                              timeout=600).json()["token"]
        path = f"/server/v1/realtime-shared/{token}/run/file?a=1"
        if args.kind == "uncached":
            path += "&cache_max_age=0"
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)

        def send(n: int) -> None:
            for _ in range(n):
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    raise RuntimeError(f"GET {path} answered {response.status}")

        send(200)
        subprocess.run(["callgrind_control", "-z"], capture_output=True, check=False)
        send(args.requests)
        subprocess.run(["callgrind_control", "-d"], capture_output=True, check=False)
    finally:
        server.stop()
    dumps = sorted(glob.glob(f"{out}/out.*.1"))
    if not dumps:
        print(f"callgrind wrote no dump under {out}", file=sys.stderr)
        return 1
    annotate = subprocess.run(["callgrind_annotate", dumps[0]], capture_output=True, text=True).stdout
    total = next(int(line.split()[0].replace(",", "")) for line in annotate.splitlines() if "PROGRAM TOTALS" in line)
    side = "worker" if args.worker else "terrafused"
    print(f"{side}, {args.kind}: {total / args.requests:,.0f} instructions per request ({dumps[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
