# MVT encoder (being written).
target_sources(terrafuse PRIVATE ${CMAKE_CURRENT_LIST_DIR}/mvt_encoder.cc)
