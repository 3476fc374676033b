# JPEG/WebP/TIFF/GIF rasters and HTML/XML/Excel tables (being written).
target_sources(terrafuse PRIVATE ${CMAKE_CURRENT_LIST_DIR}/more_formats.cc)
