// WKB geometry to text: WKT for csv/json, GeoJSON geometry objects for geojson. Reads ISO
// WKB and extended WKB (PostGIS/GEOS flags, optional SRID) in either byte order; Point,
// LineString, Polygon, their Multi* forms and GeometryCollection. Z is kept, M is dropped.
#pragma once

#include <arrow/array.h>

#include <memory>
#include <string>
#include <string_view>

#include "terrafuse/common/status.h"

namespace terrafuse::encode {

/// Appends the WKT of one WKB geometry to `out` ("POINT (1 2)", "POLYGON Z ((...))").
/// Fails with InvalidArgument describing the fault when `wkb` is malformed; `out` may then
/// hold a partial geometry.
Status AppendWkt(std::string_view wkb, std::string* out);

/// Appends the GeoJSON geometry object of one WKB geometry to `out`
/// (`{"type":"Point","coordinates":[1,2]}`). Errors as AppendWkt.
Status AppendGeoJson(std::string_view wkb, std::string* out);

/// Converts an array of WKB (binary, large_binary or binary_view) into a large_string array
/// of WKT; nulls stay null. Errors name the row.
Result<std::shared_ptr<arrow::Array>> WkbArrayToWkt(const arrow::Array& wkb);

}  // namespace terrafuse::encode
