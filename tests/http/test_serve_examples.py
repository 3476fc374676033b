"""`terrafuse serve --examples`: the main job of `make serve`."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]


def test_serve_publishes_the_examples_and_stops_on_sigterm(terrafused_bin, tmp_path, monkeypatch):
    monkeypatch.setenv("TERRAFUSE_SERVER_BIN", str(terrafused_bin))
    proc = subprocess.Popen(
        [sys.executable, "-m", "fused.cli", "serve", "--examples", "examples/udfs", "--port", "0",
         "--home", str(tmp_path / "home"), "--workers", "1"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        urls = {}
        deadline = time.monotonic() + 120
        for line in proc.stdout:
            if match := re.match(r"\s+UDF_(\w+): (\S+)", line):
                urls[match[1]] = match[2]
            if "press Ctrl-C" in line or time.monotonic() > deadline:
                break
        assert set(urls) == {"Bounds_Box", "Cached_Utils", "Hello_World", "Subway_Stations"}
        assert urls["Bounds_Box"].endswith("/run/tiles/{z}/{x}/{y}")
        hello = requests.get(urls["Hello_World"] + "?dtype_out_vector=json&name=serve&n=2", timeout=60)
        assert hello.json() == [{"hello": "serve"}, {"hello": "serve"}]
        stations = requests.get(urls["Subway_Stations"] + "?dtype_out_vector=geojson", timeout=60)
        assert stations.status_code == 200 and len(stations.json()["features"]) == 12
        tile = requests.get(urls["Bounds_Box"].format(z=12, x=1205, y=1539) + "?dtype_out_vector=geojson", timeout=60)
        assert tile.status_code == 200 and tile.json()["features"][0]["properties"]["area_deg2"] > 0
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    assert code == 0, proc.stderr.read()
