# `mvt`: Mapbox Vector Tiles (mvt_encoder.cc), geometry in mvt_geometry_internal.cc. The
# protobuf is written with protozero (header-only, Debian libprotozero-dev).
find_path(PROTOZERO_INCLUDE_DIR protozero/pbf_writer.hpp REQUIRED)
target_sources(terrafuse PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/mvt_encoder.cc
  ${CMAKE_CURRENT_LIST_DIR}/mvt_geometry_internal.cc
)
target_include_directories(terrafuse SYSTEM PRIVATE ${PROTOZERO_INCLUDE_DIR})

terrafuse_test(mvt_test ${CMAKE_CURRENT_LIST_DIR}/mvt_encoder_test.cc)
if(TARGET mvt_test)
  # The tests decode tiles with protozero's pbf_reader.
  target_include_directories(mvt_test SYSTEM PRIVATE ${PROTOZERO_INCLUDE_DIR})
endif()
