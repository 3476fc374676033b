"""UDFs over HTTP: the SDK's remote engine, shared tokens, public names, errors and the cache,
against the real terrafused with real worker processes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests

import fused
from fused import InvalidArgumentError, NotFoundError, UdfError


def _load(code: str, name: str):
    udf = fused.load(code)
    udf.name = name
    return udf


HELLO = '''
@fused.udf
def udf(year: int = 2020, name: str = "world"):
    import pandas as pd
    print("year is", year)
    return pd.DataFrame({"year": [year], "hello": [name]})
'''


def test_issue_example_save_share_and_run_by_token(remote):
    my_udf = _load(HELLO, "issue_hello")
    saved = my_udf.to_fused()
    assert saved["name"] == "issue_hello" and len(saved["version"]) == 32
    token = my_udf.create_access_token()
    assert token.token.startswith("fsh_")
    df = fused.run(token.token, year=2021)  # engine="remote" by default once a server is set
    assert df.to_dict("records") == [{"year": 2021, "hello": "world"}]
    csv = requests.get(token.get_file_url(dtype_out_vector="csv", year=2021), timeout=30)
    assert csv.status_code == 200 and csv.headers["Content-Type"] == "text/csv"
    assert pd.read_csv(pd.io.common.StringIO(csv.text)).to_dict("records") == [{"year": 2021, "hello": "world"}]
    assert json.loads(csv.headers["X-Fused-Metadata"])["stdout"] == "year is 2021\n"



def test_metadata_header_is_ascii_json_of_any_captured_output(remote):
    """X-Fused-Metadata is an HTTP header: non-ASCII output travels as \\u escapes, and a tail
    cut inside a character (output over 2 KB keeps its last 2 KB) becomes U+FFFD."""
    udf = _load('''
@fused.udf
def udf(n: int = 1):
    import sys
    print("héllo \\"quoted\\" \\\\ tab\\t 😀 €" * n)
    sys.stderr.write("\\x01 ctl")
    return n
''', "unicode_output")
    udf.to_fused()
    token = udf.create_access_token()
    short = requests.get(token.get_file_url(n=1), timeout=30)
    raw = short.headers["X-Fused-Metadata"]
    assert raw.isascii()
    meta = json.loads(raw)
    assert meta["stdout"] == 'héllo "quoted" \\ tab\t 😀 €\n'
    assert meta["stderr"] == "\x01 ctl" and meta["udf"] == "unicode_output"
    assert isinstance(meta["udf_seconds"], float) and meta["cache"] in ("miss", "bypass")
    # The last 2,048 bytes start inside a character: its stray bytes become U+FFFD each.
    long = json.loads(requests.get(token.get_file_url(n=200), timeout=30).headers["X-Fused-Metadata"])
    printed = ('héllo "quoted" \\ tab\t 😀 €' * 200 + "\n").encode()
    tail = printed[-2048:]
    assert tail[0] & 0xC0 == 0x80  # the cut is inside a character
    assert long["stdout"] == "..." + tail.decode("utf-8", "replace")


@pytest.mark.parametrize(
    "expression",
    [
        "pd.DataFrame({'a': [1, 2], 'b': ['x', 'y']})",
        "gpd.GeoDataFrame({'v': [1]}, geometry=[shapely.box(0, 0, 1, 1)], crs=4326)",
        "np.arange(12, dtype='uint8').reshape(3, 2, 2)",
        "np.linspace(0, 1, 6, dtype='float32').reshape(2, 3)",
        "{'a': 1, 'b': [1, 2, 'x'], 'c': None}",
        "[1, 2.5, 'x']",
        "'plain text'",
        "'<h1>html</h1>'",
        "None",
        "42",
    ],
)
def test_remote_and_local_return_equal_objects(remote, expression):
    code = f"""
@fused.udf
def udf():
    import numpy as np, pandas as pd, geopandas as gpd, shapely
    return {expression}
"""
    udf = _load(code, "roundtrip")
    local = fused.run(udf, engine="local", cache=False)
    got = fused.run(udf, engine="remote")
    if isinstance(local, pd.DataFrame):
        pd.testing.assert_frame_equal(got, local, check_like=True)
        assert type(got) is type(local)
        if hasattr(local, "crs"):
            assert got.crs == local.crs
    elif isinstance(local, np.ndarray):
        assert got.dtype == local.dtype and np.array_equal(got, local)
    else:
        assert got == local


def test_raster_with_bounds_round_trips(remote):
    udf = _load("@fused.udf\ndef udf():\n    import numpy as np\n    return np.ones((2, 2), 'uint8'), [0, 0, 1, 1]\n", "raster_bounds")
    array, bounds = fused.run(udf, engine="remote")
    assert array.tolist() == [[1, 1], [1, 1]] and bounds == [0, 0, 1, 1]


def test_udf_errors_reach_the_caller_with_traceback_and_output(remote):
    udf = _load("@fused.udf\ndef udf(a: int = 1):\n    print('about to fail')\n    return 1 / 0\n", "failing")
    with pytest.raises(UdfError, match="division by zero") as info:
        fused.run(udf, engine="remote")
    assert "ZeroDivisionError" in info.value.traceback and "return 1 / 0" in info.value.traceback
    assert info.value.stdout == "about to fail\n"
    with pytest.raises(InvalidArgumentError, match="parameter 'a' of UDF 'failing': expected int, got 'x'"):
        fused.run(udf, engine="remote", a="x")


def test_http_errors_and_metadata_header(remote):
    udf = _load("@fused.udf\ndef udf(n: int = 1):\n    raise ValueError(f'bad n={n}')\n", "http_errors")
    udf.to_fused()
    token = udf.create_access_token()
    r = requests.get(token.get_file_url(n=3), timeout=30)
    assert r.status_code == 500
    meta = json.loads(r.headers["X-Fused-Metadata"])["error"]
    assert meta["kind"] == "udf_failed" and "bad n=3" in meta["message"]
    assert "ValueError" in meta["udf"]["traceback"]
    r = requests.get(token.get_file_url(n="three"), timeout=30)
    assert r.status_code == 422 and "parameter 'n'" in r.json()["error"]["message"]
    r = requests.get(f"{remote.base_url}/realtime-shared/fsh_{'x' * 32}/run/file", timeout=30)
    assert r.status_code == 404
    r = requests.get(f"{remote.base_url}/udfs", timeout=30)  # no API token
    assert r.status_code == 401
    r = requests.get(token.get_file_url(dtype_out_vector="pdf"), timeout=30)
    assert r.status_code == 422 and "Unsupported dtype_out_vector 'pdf'" in r.text


def test_cached_results_are_served_without_running_again(remote, tmp_path):
    calls = tmp_path / "calls"
    udf = _load(f"""
@fused.udf
def udf(k: int = 0):
    with open({str(calls)!r}, "a") as f:
        f.write("x")
    return {{"k": k}}
""", "counted")
    udf.to_fused()
    token = udf.create_access_token()
    first = requests.get(token.get_file_url(k=1), timeout=30)
    second = requests.get(token.get_file_url(k=1), timeout=30)
    assert first.json() == second.json() == {"k": 1}
    assert first.headers["X-Fused-Cache"] == "miss" and second.headers["X-Fused-Cache"] == "hit"
    assert len(calls.read_text()) == 1
    requests.get(token.get_file_url(k=1, cache_max_age=0), timeout=30)  # bypass
    assert len(calls.read_text()) == 2
    no_cache = udf.create_access_token(cache=False)
    requests.get(no_cache.get_file_url(k=1), timeout=30)
    assert len(calls.read_text()) == 3
    owner = fused.api.whoami()
    assert requests.delete(f"{remote.base_url}/cache/udfs/{owner}/counted", timeout=30,
                           headers={"Authorization": f"Bearer {(Path(remote.home) / 'credentials').read_text().strip()}"}
                           ).status_code == 204
    assert requests.get(token.get_file_url(k=1), timeout=30).headers["X-Fused-Cache"] == "miss"
    assert len(calls.read_text()) == 4


def _fast_responses(server) -> int:
    text = requests.get(f"{server.base_url}/metrics", timeout=30).text
    return int(next(line.split()[1] for line in text.splitlines()
                    if line.startswith("terrafuse_http_fast_responses_total ")))


def test_memory_hits_skip_the_pool_but_never_outlive_a_registry_change(remote):
    # Hits are answered on the I/O thread from a memo of the resolved token: every change to
    # the token or its UDF must still apply to the very next request.
    udf = _load("@fused.udf\ndef udf(k: int = 0):\n    return {'k': k, 'v': 1}\n", "memo_hits")
    udf.to_fused()
    token = udf.create_access_token()
    url = token.get_file_url(k=5)
    assert requests.get(url, timeout=30).headers["X-Fused-Cache"] == "miss"
    before = _fast_responses(remote)
    hit = requests.get(url, timeout=30)
    assert hit.headers["X-Fused-Cache"] == "hit" and hit.json() == {"k": 5, "v": 1}
    assert json.loads(hit.headers["X-Fused-Metadata"])["cache"] == "hit"
    assert _fast_responses(remote) == before + 1

    auth = {"Authorization": f"Bearer {(Path(remote.home) / 'credentials').read_text().strip()}"}
    patched = requests.patch(f"{remote.base_url}/tokens/{token.token}", json={"cache": False},
                             headers=auth, timeout=30)
    assert patched.status_code == 200, patched.text
    assert requests.get(url, timeout=30).headers["X-Fused-Cache"] == "bypass"
    requests.patch(f"{remote.base_url}/tokens/{token.token}", json={"cache": True}, headers=auth, timeout=30)
    assert requests.get(url, timeout=30).headers["X-Fused-Cache"] == "hit"

    udf2 = _load("@fused.udf\ndef udf(k: int = 0):\n    return {'k': k, 'v': 2}\n", "memo_hits")
    udf2.to_fused()  # a new version: the token runs it at once
    assert requests.get(url, timeout=30).json() == {"k": 5, "v": 2}

    assert requests.delete(f"{remote.base_url}/tokens/{token.token}", headers=auth, timeout=30).status_code == 204
    assert requests.get(url, timeout=30).status_code == 404


def test_tiles_get_the_tile_bounds(remote):
    udf = _load("""
@fused.udf
def udf(bounds: fused.types.Bounds = None):
    import geopandas as gpd, shapely
    return gpd.GeoDataFrame({"w": [bounds[0]]}, geometry=[shapely.box(*bounds)], crs=4326)
""", "tile_box")
    udf.to_fused()
    token = udf.create_access_token()
    url = token.get_tile_url().format(z=12, x=778, y=1548)
    mvt = requests.get(url, timeout=30)  # no dtype: a vector tile, as map clients expect
    assert mvt.status_code == 200 and mvt.headers["Content-Type"] == "application/vnd.mapbox-vector-tile"
    import mapbox_vector_tile

    layer = mapbox_vector_tile.decode(mvt.content)["udf"]
    assert layer["extent"] == 4096 and len(layer["features"]) == 1
    r = requests.get(url + "?dtype_out_vector=geojson", timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/geo+json"
    feature = r.json()["features"][0]
    assert feature["properties"]["w"] == pytest.approx(fused.tiles.bounds(778, 1548, 12).west)
    assert requests.get(url.replace("/1548", "/1548.parquet"), timeout=30).headers["Content-Type"] == \
        "application/vnd.apache.parquet"
    bad = requests.get(token.get_tile_url().format(z=3, x=9, y=0), timeout=30)
    assert bad.status_code == 400 and "x" in bad.json()["error"]["message"]
    gdf = fused.run(token.token, x=778, y=1548, z=12)
    assert gdf.total_bounds.tolist() == pytest.approx(list(fused.tiles.bounds(778, 1548, 12)))


def test_public_names_saved_loads_and_deletes(remote):
    udf = _load(HELLO, "Public_Hello")
    udf.to_fused(public=True)
    r = requests.get(f"{remote.base_url}/realtime-shared/UDF_Public_Hello/run/file?dtype_out_vector=json&year=1999",
                     timeout=30)
    assert r.status_code == 200 and r.json() == [{"year": 1999, "hello": "world"}]
    loaded = fused.load("Public_Hello")
    assert loaded.code == udf.code
    assert fused.run(loaded, engine="local", year=1).iloc[0]["year"] == 1
    token = udf.create_access_token()
    owner = fused.api.whoami()
    headers = {"Authorization": f"Bearer {(Path(remote.home) / 'credentials').read_text().strip()}"}
    assert requests.delete(f"{remote.base_url}/udfs/{owner}/Public_Hello", headers=headers, timeout=30).status_code == 204
    with pytest.raises(NotFoundError):
        fused.run(token.token)


def test_team_tokens_need_the_owner(remote):
    udf = _load(HELLO, "team_hello")
    udf.to_fused()
    token = udf.create_access_token(scope="team")
    assert requests.get(token.get_file_url(), timeout=30).status_code == 401
    assert fused.run(token.token).iloc[0]["year"] == 2020  # the SDK sends the API token


def test_parquet_results_support_range_requests(remote):
    udf = _load("@fused.udf\ndef udf():\n    import pandas as pd\n    return pd.DataFrame({'a': range(1000)})\n", "ranged")
    udf.to_fused()
    url = udf.create_access_token().get_file_url()
    whole = requests.get(url, timeout=30).content
    part = requests.get(url, headers={"Range": "bytes=-8"}, timeout=30)
    assert part.status_code == 206 and part.content == whole[-8:] and whole[-4:] == b"PAR1"


def test_cached_results_keep_the_etag_of_their_body(remote):
    # The cache computes an entry's ETag once; it must be the one FinalizeResponse gives any
    # other body (here: the same bytes uncached), and honour If-None-Match and If-Range.
    udf = _load("@fused.udf\ndef udf(k: int = 0):\n    return {'k': k, 'pad': 'x' * 500}\n", "etags")
    udf.to_fused()
    url = udf.create_access_token().get_file_url(k=3)
    miss, hit = requests.get(url, timeout=30), requests.get(url, timeout=30)
    bypass = requests.get(url + "&cache_max_age=0", timeout=30)
    assert [r.headers["X-Fused-Cache"] for r in (miss, hit, bypass)] == ["miss", "hit", "bypass"]
    assert miss.content == hit.content == bypass.content
    etag = hit.headers["ETag"]
    assert etag.startswith('"') and miss.headers["ETag"] == etag == bypass.headers["ETag"]
    unchanged = requests.get(url, headers={"If-None-Match": etag}, timeout=30)
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged.headers["X-Fused-Cache"] == "hit" and unchanged.headers["ETag"] == etag
    part = requests.get(url, headers={"Range": "bytes=0-9", "If-Range": etag}, timeout=30)
    assert part.status_code == 206 and part.content == hit.content[:10]
    stale = requests.get(url, headers={"Range": "bytes=0-9", "If-Range": '"other"'}, timeout=30)
    assert stale.status_code == 200 and stale.content == hit.content
    head = requests.head(url, timeout=30)
    assert head.status_code == 200 and head.content == b"" and head.headers["ETag"] == etag
    assert int(head.headers["Content-Length"]) == len(hit.content)


def test_decorator_cache_max_age_applies_on_the_server(remote):
    import time

    udf = _load('@fused.udf(cache_max_age="1s")\ndef udf(k: int = 0):\n    import time\n    return {"t": time.time()}\n',
                "short_lived")
    udf.to_fused()
    token = udf.create_access_token()
    first = requests.get(token.get_file_url(), timeout=30)
    assert requests.get(token.get_file_url(), timeout=30).headers["X-Fused-Cache"] == "hit"
    time.sleep(1.2)
    later = requests.get(token.get_file_url(), timeout=30)
    assert later.headers["X-Fused-Cache"] == "miss" and later.json() != first.json()
    # the run's own cache_max_age wins over the decorator's
    assert requests.get(token.get_file_url(cache_max_age="1h"), timeout=30).headers["X-Fused-Cache"] == "hit"


def test_core_run_helpers(remote):
    import asyncio

    from fused import core

    udf = _load(HELLO, "core_hello")
    udf.to_fused()
    owner = fused.api.whoami()
    assert core.run_file(owner, "core_hello", year=1).iloc[0]["year"] == 1
    assert core.run_file(f"{owner}/core_hello", year=2).iloc[0]["year"] == 2
    token = udf.create_access_token()
    assert core.run_shared_file(token.token, year=3).iloc[0]["year"] == 3
    tile_udf = _load("@fused.udf\ndef udf(bounds: fused.types.Bounds = None):\n    return {'west': bounds[0]}\n",
                     "core_tile")
    tile_udf.to_fused()
    west = fused.tiles.bounds(1, 1, 2).west
    assert core.run_tile(owner, "core_tile", x=1, y=1, z=2) == {"west": west}
    assert core.run_shared_tile(tile_udf.create_access_token().token, x=1, y=1, z=2) == {"west": west}

    async def both():
        return await asyncio.gather(core.run_shared_file_async(token.token, year=4),
                                    core.run_file_async(owner, "core_hello", year=5))

    assert [df.iloc[0]["year"] for df in asyncio.run(both())] == [4, 5]


def test_empty_vector_tiles_answer_204(remote):
    udf = _load("""
@fused.udf
def udf(bounds: fused.types.Bounds = None):
    import geopandas as gpd, shapely
    return gpd.GeoDataFrame(geometry=[shapely.Point(179.9, 85)], crs=4326)
""", "far_point")
    udf.to_fused()
    url = udf.create_access_token().get_tile_url().format(z=10, x=100, y=100)
    r = requests.get(url, timeout=30)
    assert r.status_code == 204 and r.content == b""


def test_raster_formats_over_http(remote):
    from PIL import Image

    udf = _load("""
@fused.udf
def udf(bounds: fused.types.Bounds = None):
    import numpy as np
    arr = np.zeros((3, 16, 16), dtype="uint8")
    arr[0] = 255
    return arr
""", "red_tile")
    udf.to_fused()
    token = udf.create_access_token()
    base = token.get_tile_url().format(z=5, x=10, y=12)
    png = requests.get(base, timeout=30)  # no dtype: PNG
    assert png.headers["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(png.content))
    assert image.size == (16, 16) and image.getpixel((0, 0))[:3] == (255, 0, 0)
    for fmt, media in (("jpeg", "image/jpeg"), ("webp", "image/webp"), ("gif", "image/gif"), ("tiff", "image/tiff")):
        r = requests.get(base + f"?dtype_out_raster={fmt}", timeout=30)
        assert r.status_code == 200 and r.headers["Content-Type"] == media, fmt
        assert Image.open(io.BytesIO(r.content)).size == (16, 16)
    tiff = Image.open(io.BytesIO(requests.get(base + "?dtype_out_raster=tiff", timeout=30).content))
    assert 33922 in tiff.tag_v2 and 34735 in tiff.tag_v2  # georeferenced: tiepoint + geokeys


def test_load_by_token_needs_include_code(remote):
    udf = _load(HELLO, "shared_code")
    udf.to_fused()
    hidden = udf.create_access_token()
    with pytest.raises(fused._errors.PermissionDeniedError, match="without sharing its code"):
        fused.load(hidden.token)
    shown = udf.create_access_token(include_code=True)
    loaded = fused.load(shown.token)
    assert loaded.code == udf.code and fused.run(loaded, engine="local", year=7).iloc[0]["year"] == 7


def test_huge_decorator_arguments_do_not_hurt_the_server(remote):
    # The decorator's cache_max_age is read by a linear scan (a backtracking regex once
    # overflowed the stack on code like this and killed the server).
    code = ('@fused.udf(cache_max_age="1h", default_parameters={"doc": "' + "x" * 200_000 + '"})\n'
            "def udf(a: int = 1, doc: str = ''):\n    return {'a': a}\n")
    udf = _load(code, "huge_decorator")
    assert fused.run(udf, engine="remote", a=2) == {"a": 2}
    assert requests.get(f"{remote.url}/health", timeout=30).status_code == 200
