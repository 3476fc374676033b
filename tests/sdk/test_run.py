"""fused.run with the local engine: binding, coercion, reserved parameters, outputs, errors, cache."""

from __future__ import annotations

import io
import json
import re
from typing import Literal, Optional, Union

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import fused
from fused import InvalidArgumentError, UdfError


@fused.udf
def hello(name: str = "world", n: int = 3):
    import pandas as pd

    return pd.DataFrame({"hello": [name] * n})


def test_issue_example_coerces_string_to_int():
    df = fused.run(hello, engine="local", name="terrafuse", n="2")
    assert list(df["hello"]) == ["terrafuse", "terrafuse"]


def test_default_engine_is_local_without_a_server():
    assert len(fused.run(hello)) == 3


def test_remote_engine_without_server_is_a_clear_error():
    with pytest.raises(InvalidArgumentError, match="No terrafuse server is configured: set fused.options.base_url"):
        fused.run(hello, engine="remote")
    with pytest.raises(ValueError, match="Invalid engine 'gpu'"):
        fused.run(hello, engine="gpu")


def test_unknown_parameter_is_rejected_by_name():
    with pytest.raises(InvalidArgumentError, match=r"Unknown parameter 'nme' for UDF 'hello': it takes name, n"):
        fused.run(hello, nme="x")


def test_bound_udf_and_positional_parameters():
    bound = hello(name="bound")
    assert bound is not hello and hello.parameters == {}
    assert list(fused.run(bound, n=1)["hello"]) == ["bound"]
    assert list(fused.run(hello, "pos", 1)["hello"]) == ["pos"]
    assert list(fused.run(hello("a", 2))["hello"]) == ["a", "a"]
    assert len(fused.run(hello, parameters={"n": 4})) == 4
    with pytest.raises(TypeError, match="takes 2 positional parameters, got 3"):
        fused.run(hello, "a", 1, 2)


@fused.udf
def typed(
    i: int = 0,
    f: float = 0.0,
    b: bool = False,
    s: str = "",
    items: list = None,
    mapping: dict = None,
    maybe: Optional[int] = None,
    either: Union[int, str] = 0,
    choice: Literal["a", "b", 3] = "a",
    untyped=None,
):
    return {"i": i, "f": f, "b": b, "s": s, "items": items, "mapping": mapping, "maybe": maybe,
            "either": either, "choice": choice, "untyped": untyped}


@pytest.mark.parametrize(
    "param, given, expected",
    [
        ("i", "42", 42), ("i", 7, 7), ("i", 3.0, 3),
        ("f", "2.5", 2.5), ("f", 2, 2.0),
        ("b", "true", True), ("b", "1", True), ("b", "yes", True), ("b", "False", False),
        ("b", "0", False), ("b", "off", False), ("b", True, True),
        ("s", 5, "5"), ("s", "x", "x"),
        ("items", "[1, 2]", [1, 2]), ("items", "a,b", ["a", "b"]), ("items", (1, 2), [1, 2]),
        ("mapping", '{"k": 1}', {"k": 1}),
        ("maybe", None, None), ("maybe", "null", None), ("maybe", "5", 5),
        ("either", "12", 12), ("either", "text", "text"),
        ("choice", "b", "b"), ("choice", "3", 3),
        ("untyped", 5, "5"), ("untyped", "x", "x"), ("untyped", [1, 2], "[1, 2]"),
    ],
)
def test_coercion_by_annotation(param, given, expected):
    out = fused.run(typed, cache=False, **{param: given})
    assert out[param] == expected
    assert type(out[param]) is type(expected)


@pytest.mark.parametrize(
    "param, given, message",
    [
        ("i", "abc", r"parameter 'i' of UDF 'typed': expected int, got 'abc'"),
        ("i", True, r"parameter 'i' of UDF 'typed': expected int, got True"),
        ("f", "x", r"parameter 'f' of UDF 'typed': expected float"),
        ("b", "maybe", r"parameter 'b' of UDF 'typed': expected bool, got 'maybe': use true/false"),
        ("mapping", "[1]", r"parameter 'mapping' of UDF 'typed': expected dict"),
        ("choice", "c", r"parameter 'choice' of UDF 'typed': expected Literal\['a', 'b', 3\], got 'c': must be one of"),
    ],
)
def test_bad_values_name_the_parameter(param, given, message):
    with pytest.raises(InvalidArgumentError, match=message):
        fused.run(typed, cache=False, **{param: given})


def test_dataframe_and_geodataframe_from_json():
    @fused.udf
    def tables(df: pd.DataFrame = None, gdf: gpd.GeoDataFrame = None):
        return {"rows": len(df), "cols": list(df.columns), "geoms": list(gdf.geometry.geom_type), "crs": gdf.crs.to_epsg()}

    feature_collection = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"a": 1}, "geometry": {"type": "Point", "coordinates": [1, 2]}}]}
    out = fused.run(tables, df=json.dumps([{"x": 1}, {"x": 2}]), gdf=json.dumps(feature_collection))
    assert out == {"rows": 2, "cols": ["x"], "geoms": ["Point"], "crs": 4326}


def test_string_annotations_resolve():
    code = '''
@fused.udf
def udf(bounds: "fused.types.Bounds" = None, n: "int" = 1, gdf: "gpd.GeoDataFrame" = None):
    return [bounds, n, type(gdf).__name__]
'''
    udf = fused.load(code)
    assert fused.run(udf, bounds="0,1,2,3", n="4") == [[0.0, 1.0, 2.0, 3.0], 4, "NoneType"]


@fused.udf
def box_udf(bounds: fused.types.Bounds = None):
    return bounds


def test_bounds_from_list_geodataframe_geometry_and_xyz():
    assert fused.run(box_udf, bounds=[-1, -2, 3, 4]) == [-1.0, -2.0, 3.0, 4.0]
    gdf = gpd.GeoDataFrame(geometry=[shapely.box(10, 20, 11, 21)], crs=4326)
    assert fused.run(box_udf, bounds=gdf) == [10.0, 20.0, 11.0, 21.0]
    assert fused.run(box_udf, bounds=shapely.box(1, 2, 3, 4)) == [1.0, 2.0, 3.0, 4.0]
    west, south, east, north = fused.run(box_udf, x=0, y=0, z=1)
    assert west == pytest.approx(-180) and east == pytest.approx(0)
    assert north == pytest.approx(85.0511287798) and south == pytest.approx(0, abs=1e-9)
    assert fused.run(box_udf) is None


def test_bad_bounds_and_partial_tiles_are_errors():
    with pytest.raises(InvalidArgumentError, match="Invalid bounds for UDF 'box_udf'"):
        fused.run(box_udf, bounds=[1, 2, 3])
    with pytest.raises(InvalidArgumentError, match="Tile needs all of x, y and z"):
        fused.run(box_udf, x=1, y=2)


def test_legacy_bbox_parameter_receives_bounds():
    @fused.udf
    def legacy(bbox=None):
        return bbox

    assert fused.run(legacy, bounds=[0, 0, 1, 1]) == [0.0, 0.0, 1.0, 1.0]
    assert fused.run(legacy, bbox=[0, 0, 2, 2]) == [0.0, 0.0, 2.0, 2.0]
    # the caller's legacy keyword maps onto a modern `bounds` parameter too
    assert fused.run(box_udf, bbox=[0, 0, 3, 3]) == [0.0, 0.0, 3.0, 3.0]


def test_xyz_are_ordinary_parameters_when_the_udf_declares_them():
    @fused.udf
    def xyz(x: int = 0, y: int = 0, z: int = 0):
        return (x, y, z)

    assert fused.run(xyz, x="1", y=2, z=3) == (1, 2, 3)


@fused.udf
def legacy_tile(bounds: fused.types.TileGDF = None):
    import geopandas as gpd

    return gpd.GeoDataFrame({"x": bounds.x, "y": bounds.y, "z": bounds.z}, geometry=bounds.geometry, crs=4326)


def test_legacy_tile_type_gets_a_tile_geodataframe():
    out = fused.run(legacy_tile, x=327, y=790, z=11)
    assert list(out[["x", "y", "z"]].iloc[0]) == [327, 790, 11]
    assert isinstance(out, gpd.GeoDataFrame)
    assert out.geometry.iloc[0].bounds == pytest.approx(tuple(fused.tiles.bounds(327, 790, 11)))


def test_legacy_tile_type_with_larger_bounds_runs_per_tile_and_concatenates():
    bounds = [-122.5, 37.7, -122.3, 37.85]
    out = fused.run(legacy_tile, bounds=bounds)
    zoom = fused.tiles.estimate_zoom(bounds)
    expected = {tuple(t) for t in fused.tiles.tiles(*bounds, zooms=zoom)}
    assert {tuple(r) for r in out[["x", "y", "z"]].itertuples(index=False)} == expected
    assert len(out) == len(expected) >= 1
    assert shapely.box(*bounds).within(out.union_all().buffer(1e-9))


def test_viewport_gdf_gets_the_bounds_polygon():
    @fused.udf
    def viewport(bbox: fused.types.ViewportGDF = None):
        return bbox

    out = fused.run(viewport, bounds=[0, 0, 1, 2])
    assert out.geometry.iloc[0].equals(shapely.box(0, 0, 1, 2))


# -- outputs -------------------------------------------------------------------------------
def _returning(value):
    code = f"""
@fused.udf
def udf():
    import io, numpy as np, pandas as pd, geopandas as gpd, shapely, xarray as xr
    return {value}
"""
    return fused.load(code)


@pytest.mark.parametrize(
    "expression",
    [
        "pd.DataFrame({'a': [1]})", "pd.Series([1, 2])", "gpd.GeoDataFrame(geometry=[shapely.Point(0, 0)])",
        "gpd.GeoSeries([shapely.Point(0, 0)])", "shapely.Point(1, 2)", "np.zeros((3, 4, 4), dtype='uint8')",
        "(np.zeros((4, 4), dtype='uint8'), [0, 0, 1, 1])", "xr.DataArray(np.zeros((2, 2)))",
        "xr.Dataset({'v': ('x', [1, 2])})", "io.BytesIO(b'png')", "'<h1>html</h1>'", "3", "2.5", "True",
        "{'raster': np.zeros((2, 2)), 'table': pd.DataFrame({'a': [1]}), 'note': 'x'}", "[1, 'a']", "(1, 2)", "None",
    ],
)
def test_valid_outputs_are_returned(expression):
    fused.run(_returning(expression), cache=False)


def test_response_objects_are_valid():
    code = """
@fused.udf
def udf():
    class Response:
        def __init__(self, body, media_type):
            self.body, self.media_type = body, media_type
    return Response(b"<p>hi</p>", "text/html")
"""
    assert fused.run(fused.load(code)).media_type == "text/html"


@pytest.mark.parametrize("expression, kind", [("{1, 2}", "builtins.set"), ("object()", "builtins.object"),
                                              ("[lambda: 1]", "builtins.list")])
def test_invalid_outputs_are_clear_errors(expression, kind):
    with pytest.raises(InvalidArgumentError, match=f"returned a {kind}, which is not a valid UDF output"):
        fused.run(_returning(expression), cache=False)


# -- errors and captured output ------------------------------------------------------------
def test_udf_exception_carries_traceback_and_captured_output(capsys):
    code = """
@fused.udf
def udf(a: int = 1):
    print("before the fall")
    import sys
    print("warned", file=sys.stderr)
    return helper(a)

def helper(a):
    return a / 0
"""
    udf = fused.load(code)
    with pytest.raises(UdfError, match=r"UDF 'udf' raised ZeroDivisionError: division by zero") as info:
        fused.run(udf)
    error = info.value
    assert error.stdout == "before the fall\n"
    assert error.stderr == "warned\n"
    assert re.search(r'File "<udf udf [0-9a-f]{8}>", line 7, in udf', error.traceback)
    assert "in helper" in error.traceback and "return a / 0" in error.traceback
    assert "_run.py" not in error.traceback  # engine frames are not the user's concern
    assert isinstance(error.__cause__, ZeroDivisionError)
    assert "before the fall" in capsys.readouterr().out  # still shown while it runs


def test_print_output_is_captured_in_the_response():
    @fused.udf
    def chatty(n: int = 2):
        for i in range(n):
            print("line", i)
        return n

    result = fused.run(chatty, _return_response=True, cache=False)
    assert result.stdout == "line 0\nline 1\n" and result.data == 2 and not result.cache_hit


def test_max_retry_runs_again(tmp_path):
    counter = tmp_path / "count"
    counter.write_text("0")

    @fused.udf
    def flaky(path: str = ""):
        from pathlib import Path

        n = int(Path(path).read_text()) + 1
        Path(path).write_text(str(n))
        if n < 3:
            raise RuntimeError(f"attempt {n}")
        return n

    with pytest.raises(UdfError, match="attempt 1"):
        fused.run(flaky, path=str(counter), cache=False)
    counter.write_text("0")
    assert fused.run(flaky, path=str(counter), max_retry=2, cache=False) == 3


def test_run_rejects_plain_functions_and_missing_udf():
    def plain():
        return 1

    with pytest.raises(TypeError, match="decorate 'plain' with @fused.udf"):
        fused.run(plain)
    with pytest.raises(ValueError, match="fused.run needs a UDF"):
        fused.run()


# -- result cache --------------------------------------------------------------------------
def _counting_udf(tmp_path, body_suffix=""):
    code = f"""
@fused.udf
def udf(k: int = 0, path: str = "{tmp_path / 'calls'}"):
    with open(path, "a") as f:
        f.write("x")
    print("computed", k)
    return k * 10{body_suffix}
"""
    return fused.load(code)


def _calls(tmp_path):
    p = tmp_path / "calls"
    return len(p.read_text()) if p.exists() else 0


def test_results_are_cached_by_code_and_parameters(tmp_path, capsys):
    udf = _counting_udf(tmp_path)
    assert fused.run(udf, k=1) == 10
    first = fused.run(udf, k=1, _return_response=True)
    assert first.cache_hit and first.data == 10 and first.stdout == "computed 1\n"
    assert _calls(tmp_path) == 1
    assert capsys.readouterr().out.count("computed 1") == 2  # replayed on the hit
    fused.run(udf, k="1")  # coerced to the same value: same key
    assert _calls(tmp_path) == 1
    fused.run(udf, k=2)
    assert _calls(tmp_path) == 2
    fused.run(_counting_udf(tmp_path, body_suffix=" "), k=1)  # whitespace changes the code
    assert _calls(tmp_path) == 3


def test_cache_can_be_disabled(tmp_path):
    udf = _counting_udf(tmp_path)
    fused.run(udf)
    fused.run(udf, cache=False)
    fused.run(udf, cache_max_age="0s")
    assert _calls(tmp_path) == 3
    fused.options.local_engine_cache = False
    fused.run(udf)
    assert _calls(tmp_path) == 4


def test_cache_max_age_precedence_run_over_decorator_over_default(tmp_path):
    import time

    udf = _counting_udf(tmp_path)
    fused.run(udf)
    time.sleep(1.1)
    fused.run(udf)  # default 90 days: hit
    assert _calls(tmp_path) == 1
    udf.cache_max_age = "1s"  # as @fused.udf(cache_max_age="1s") would set
    fused.run(udf)  # entry is older than 1s: recomputed
    assert _calls(tmp_path) == 2
    fused.run(udf, cache_max_age="90d")  # the run's value wins over the decorator's
    assert _calls(tmp_path) == 2


def test_header_modules_are_part_of_the_key(tmp_path):
    from fused._udf import Header

    def make(value):
        udf = fused.load(f'''
@fused.udf
def udf():
    import utils
    with open("{tmp_path / 'calls'}", "a") as f:
        f.write("x")
    return utils.VALUE
'''.replace("def udf", "def udf"))
        udf.headers = [Header("utils", f"VALUE = {value}\n")]
        udf._modules = None
        udf.__dict__.pop("_hash", None)
        return udf

    assert fused.run(make(1)) == 1
    assert fused.run(make(1)) == 1
    assert fused.run(make(2)) == 2
    assert _calls(tmp_path) == 2


def test_decorator_validates_cache_max_age():
    with pytest.raises(ValueError, match="Invalid cache_max_age 'soon'"):
        fused.udf(cache_max_age="soon")(lambda: 1)


def test_output_capture_is_per_thread_and_restores_the_streams():
    import sys
    from concurrent.futures import ThreadPoolExecutor

    @fused.udf
    def talker(i: int = 0):
        import time

        for _ in range(20):
            print(f"from {i}")
            time.sleep(0.001)
        return i

    before = sys.stdout, sys.stderr
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: fused.run(talker, i=i, cache=False, _return_response=True), range(8)))
    for i, result in enumerate(results):
        assert result.stdout == f"from {i}\n" * 20
    assert (sys.stdout, sys.stderr) == before


def test_nested_runs_see_their_inner_output():
    @fused.udf
    def inner():
        print("inner says")
        return 1

    @fused.udf
    def outer():
        print("outer says")
        return fused.run(inner, cache=False) + 1

    result = fused.run(outer, cache=False, _return_response=True)
    assert result.data == 2 and result.stdout == "outer says\ninner says\n"


def test_sync_false_returns_an_awaitable():
    import asyncio

    async def gather():
        return await asyncio.gather(*(fused.run(hello, n=i, sync=False) for i in (1, 2)))

    assert [len(df) for df in asyncio.run(gather())] == [1, 2]


def test_remote_only_keywords_are_accepted_locally():
    assert len(fused.run(hello, instance_type="m5.large", disk_size_gb=50, n=1)) == 1
