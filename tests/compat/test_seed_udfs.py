"""UDFs from the seed docs (quickstart, core concepts), unchanged, on the local engine.

Each is loaded from its source text the way the Workbench runs it: `fused` is a global and
the code is not edited, except that URLs are pointed at local files (no network here).
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

import fused

SUBWAY = Path(__file__).resolve().parents[2] / "examples" / "data" / "subway_stations.geojson"


def run_seed(code: str, **params):
    return fused.run(fused.load(code), engine="local", **params)


def test_quickstart_subway_stations_on_a_local_geojson():
    code = f'''
@fused.udf
def udf():
    import geopandas as gpd
    DATASET = '{SUBWAY}'
    gdf = gpd.read_file(DATASET)
    return gdf
'''
    gdf = run_seed(code)
    assert isinstance(gdf, gpd.GeoDataFrame) and len(gdf) == len(json.loads(SUBWAY.read_text())["features"])


def test_quickstart_filter_and_print(capsys):
    code = f'''
@fused.udf
def udf():
    import geopandas as gpd
    DATASET = "{SUBWAY}"
    gdf = gpd.read_file(DATASET)
    gdf = gdf[gdf['name'].isin(['Canal St', 'Wall St'])]
    print(gdf)
    return gdf[['objectid', 'name']]
'''
    result = fused.run(fused.load(code), engine="local", _return_response=True)
    assert list(result.data.columns) == ["objectid", "name"] and len(result.data) == 2
    assert "Canal St" in result.stdout


def test_write_page_hello_and_cached_structure_output():
    assert run_seed('''
@fused.udf # <- Fused decorator
def udf(name: str = "Fused"): # <- Function declaration
    import pandas as pd
    return pd.DataFrame({'message': [f'Hello {name}!']})
''', name="terrafuse")["message"][0] == "Hello terrafuse!"
    df = run_seed('''
@fused.udf # <- Fused decorator
def udf(bounds: fused.types.Bounds = None, name: str = "Fused"):
    import pandas as pd
    @fused.cache # <- Cache decorator
    def structure_output(name):
        return pd.DataFrame({'message': [f'Hello {name}!']})
    df = structure_output(name)
    return df
''')
    assert df["message"][0] == "Hello Fused!"


def test_write_page_dataframe_parameters_as_json():
    code = '''
import geopandas as gpd
import pandas as pd
@fused.udf
def udf(
    gdf: gpd.GeoDataFrame = None,
    df: pd.DataFrame = None
):
    return pd.DataFrame({"gdf_rows": [len(gdf)], "df_rows": [len(df)]})
'''
    gdf_json = gpd.read_file(SUBWAY).head(3).to_json()
    out = run_seed(code, gdf=gdf_json, df=json.dumps({"a": [1, 2]}))
    assert out.to_dict("records") == [{"gdf_rows": 3, "df_rows": 2}]


def test_filetile_bounds_udfs():
    gdf = run_seed('''
@fused.udf
def udf(bounds: fused.types.Bounds):
    import geopandas as gpd
    from shapely.geometry import box
    # Returning bounds to gdf
    gdf = gpd.GeoDataFrame(geometry=[box(*bounds)], crs=4326)
    return gdf
''', x=5241, y=12662, z=15)
    assert gdf.total_bounds.tolist() == pytest.approx(fused.tiles.bounds(5241, 12662, 15))
    out = fused.run(fused.load('''
@fused.udf
def udf(bounds: fused.types.Bounds=None):
    print(bounds)
'''), bounds=[-1.52244399, 48.62747869, -1.50004107, 48.64359255], _return_response=True)
    assert out.stdout.strip() == "[-1.52244399, 48.62747869, -1.50004107, 48.64359255]"
    box = run_seed('''
@fused.udf
def udf(bounds: fused.types.Bounds=None):
    import shapely
    import geopandas as gpd
    box = shapely.box(*bounds)
    return gpd.GeoDataFrame(geometry=[box], crs=4326)
''', bounds=[-122.349, 37.781, -122.341, 37.818])
    assert box.total_bounds.tolist() == pytest.approx([-122.349, 37.781, -122.341, 37.818])


def test_filetile_legacy_tile_and_viewport_types():
    out = fused.run(fused.load('''
@fused.udf
def udf(bounds: fused.types.Tile=None):
    print(bounds)
'''), x=327, y=790, z=11, _return_response=True)
    assert "327" in out.stdout and "790" in out.stdout and "POLYGON" in out.stdout
    viewport = run_seed('''
@fused.udf
def udf(bbox: fused.types.ViewportGDF=None):
    print(bbox)
    return bbox
''', bounds=[-122.1, 37.0, -122.0, 37.1])
    assert viewport.total_bounds.tolist() == pytest.approx([-122.1, 37.0, -122.0, 37.1])


def test_cache_page_udfs():
    df = run_seed('''
@fused.udf
def udf():
    import pandas as pd
    @fused.cache
    def load_data(i):
        # Do heavy processing here
        return pd.DataFrame({"id": [i]})
    df_first = load_data(i=1)
    df_first_repeat = load_data(i=1)
    df_second = load_data(i=2)
    return pd.concat([df_first, df_first_repeat, df_second])
''')
    assert df["id"].tolist() == [1, 1, 2]
    out = run_seed('''
@fused.udf
def slow_caching_udf():
    import time
    import pandas as pd
    time.sleep(0.2)
    return pd.DataFrame({"output": ["I'm done running my long task!"]})
''')
    assert out["output"][0].startswith("I'm done")


def test_cache_page_telling_time_locally():
    namespace = {"fused": fused}
    exec('''
from datetime import datetime
@fused.cache(cache_max_age='30s')
def telling_time():
    current_time = datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f")
    return current_time
''', namespace)
    first = namespace["telling_time"]()
    assert namespace["telling_time"]() == first
    assert namespace["telling_time"](cache_max_age="0s") != first


def test_run_page_udfs():
    assert run_seed('''
@fused.udf
def my_udf(inputs: str):
    import pandas as pd
    return pd.DataFrame({"output": [inputs]})
''', inputs="hello world")["output"][0] == "hello world"
    assert run_seed('''
# Running a local UDF
@fused.udf
def local_udf():
    import pandas as pd
    return pd.DataFrame({})
''').empty
    assert run_seed('''
@fused.udf
def udf(val):
    import pandas as pd
    return pd.DataFrame({'val':[val]})
''', val=1)["val"][0] == "1"  # untyped parameters arrive as strings, as over HTTP
    private = fused.load('''
import fused
@fused.udf()
def my_super_duper_private_udf(my_udf_input):
    import pandas as pd
    # This code is so private I don't want anyone to be able to read it
    return pd.DataFrame({"input": [my_udf_input]})
''')
    assert fused.run(private, engine="local", my_udf_input="x")["input"][0] == "x"


def test_returning_simple_types_and_dicts():
    assert run_seed("@fused.udf\ndef udf():\n    return {'a': 1, 'b': [1, 2]}\n") == {"a": 1, "b": [1, 2]}
    assert isinstance(run_seed("@fused.udf\ndef udf():\n    import pandas as pd\n    return pd.Series([1])\n"), pd.Series)
