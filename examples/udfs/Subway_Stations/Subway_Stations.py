@fused.udf
def udf(path: str = "examples/data/subway_stations.geojson", line: str = ""):
    import geopandas as gpd

    gdf = gpd.read_file(path)
    if line:
        gdf = gdf[gdf["line"] == line]
    print(gdf)
    return gdf
