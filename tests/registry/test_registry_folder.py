"""A UDF folder written by the C++ registry loads and runs in the Python SDK.

There is no binding for the registry yet, so the folder comes from the ``udf_test`` binary:
its ``RegistryTest.WritesLoadableFolder`` case saves a UDF (with a header module and
metadata full of characters to escape) into ``$TERRAFUSE_TEST_OUT/home`` and writes the
folder's path to ``$TERRAFUSE_TEST_OUT/folder.txt``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import fused
import pytest

REPO = Path(__file__).resolve().parents[2]


def _udf_test_binary() -> Path:
    candidates = sorted(
        REPO.glob("build/*/engine/terrafuse/udf/udf_test"), key=lambda p: p.stat().st_mtime
    )
    if not candidates:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("udf_test is not built: build the C++ tests before running this test on CI")
        pytest.skip("udf_test is not built (cmake --build <build dir> --target udf_test)")
    return candidates[-1]


@pytest.fixture
def registry_folder(tmp_path) -> Path:
    out = tmp_path / "registry"
    out.mkdir()
    result = subprocess.run(
        [str(_udf_test_binary()), "--gtest_filter=*WritesLoadableFolder*"],
        env={**os.environ, "TERRAFUSE_TEST_OUT": str(out)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 test" in result.stdout, "the gtest filter matched nothing:\n" + result.stdout
    return Path((out / "folder.txt").read_text())


def test_registry_folder_layout(registry_folder):
    assert registry_folder.parts[-4:-1] == ("udfs", "local@terrafuse", "Registry_Loadable")
    assert len(registry_folder.name) == 32  # the version: a content hash
    assert sorted(p.name for p in registry_folder.iterdir()) == [
        "README.MD",
        "Registry_Loadable.py",
        "helpers.py",
        "meta.json",
    ]


def test_registry_folder_loads_and_runs(registry_folder):
    udf = fused.load(registry_folder)
    assert udf.name == "Registry_Loadable"
    assert udf.entrypoint == "udf"
    assert [h.module_name for h in udf.headers] == ["helpers"]
    assert udf.metadata == {
        "fused:name": "Registry_Loadable",
        "fused:slug": "Registry_Loadable",
        "fused:udfType": "vector_single",
        "fused:id": None,
        "fused:description": 'Made by the C++ registry: "quotes", unicode \u00e9 \u2713\nline 2',
        "custom": {"nested": [1, 2.5, None, True], "tab": "a\tb"},
    }
    # The SDK writes the same meta.json document for the UDF it loaded.
    assert udf.meta_json() == json.loads((registry_folder / "meta.json").read_text())
    assert (registry_folder / "README.MD").read_text() == (
        "<!--fused:readme-->\n" + udf.metadata["fused:description"] + "\n"
    )

    df = fused.run(udf, n=4, label="z", engine="local")
    assert df["x"].tolist() == [0, 10, 20, 30]
    assert df["label"].tolist() == ["z"] * 4
