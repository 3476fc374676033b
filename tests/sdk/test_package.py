"""The package itself: a light import, the public names, the terrafuse command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import fused

REPO = Path(__file__).resolve().parents[2]


def test_import_fused_is_light(run_python):
    # Workers start faster when `import fused` does not pull in the heavy libraries.
    out = run_python("import sys, fused; print(sorted(m for m in ('pandas', 'geopandas', 'shapely', "
                     "'xarray', 'requests', 'pyarrow') if m in sys.modules))").stdout
    assert out.strip() == "[]"


def test_public_names():
    for name in ("udf", "cache", "load", "run", "file_path", "download", "types", "secrets", "options",
                 "tiles", "UdfError"):
        assert hasattr(fused, name), name
    from fused._optional_deps import GPD_GEODATAFRAME, HAS_GEOPANDAS, HAS_MERCANTILE, HAS_SHAPELY, SHAPELY_GEOMETRY

    assert HAS_GEOPANDAS and HAS_SHAPELY and HAS_MERCANTILE
    assert GPD_GEODATAFRAME and SHAPELY_GEOMETRY


def test_terrafuse_examples_runs_every_example(fused_home):
    result = subprocess.run([sys.executable, "-m", "fused.cli", "examples", "--dir", str(REPO / "examples" / "udfs")],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 of 4 example UDFs ran" in result.stdout
    assert "=== Hello_World" in result.stdout and "hello" in result.stdout


def test_terrafuse_run_with_parameters_and_errors(fused_home):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "fused.cli", *args], capture_output=True, text=True, cwd=REPO,
                              timeout=60)

    ok = cli("run", str(REPO / "examples" / "udfs" / "Hello_World"), "name=cli", "n=2")
    assert ok.returncode == 0 and ok.stdout.count("cli") == 2
    bad = cli("run", str(REPO / "examples" / "udfs" / "Hello_World"), "n=two")
    assert bad.returncode == 1 and "parameter 'n' of UDF 'Hello_World': expected int, got 'two'" in bad.stderr
    assert "Traceback" not in bad.stderr
    missing = cli("run", "nowhere/")
    assert missing.returncode == 1 and "no such file or directory" in missing.stderr
