@fused.udf
def udf(bounds: fused.types.Bounds = [-74.02, 40.70, -73.97, 40.75]):
    import geopandas as gpd
    import shapely

    return gpd.GeoDataFrame({"area_deg2": [shapely.box(*bounds).area]}, geometry=[shapely.box(*bounds)], crs=4326)
