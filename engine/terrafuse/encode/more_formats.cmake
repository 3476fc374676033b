# JPEG/WebP/TIFF/GIF rasters and HTML/XML/Excel tables (more_formats.h), from Debian's
# libjpeg62-turbo-dev, libwebp-dev, libtiff-dev and libgif-dev; xlsx is written here (zip +
# XML, with zlib): Debian's libxlsxwriter links libcrypto, which pyarrow's libparquet breaks
# by exporting its own OpenSSL symbols (see excel_encoder.cc).
target_sources(terrafuse PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/more_formats.cc
  ${CMAKE_CURRENT_LIST_DIR}/raster_internal.cc
  ${CMAKE_CURRENT_LIST_DIR}/jpeg_encoder.cc
  ${CMAKE_CURRENT_LIST_DIR}/webp_encoder.cc
  ${CMAKE_CURRENT_LIST_DIR}/tiff_encoder.cc
  ${CMAKE_CURRENT_LIST_DIR}/gif_encoder.cc
  ${CMAKE_CURRENT_LIST_DIR}/table_text_internal.cc
  ${CMAKE_CURRENT_LIST_DIR}/html_encoder.cc
  ${CMAKE_CURRENT_LIST_DIR}/xml_encoder.cc
  ${CMAKE_CURRENT_LIST_DIR}/zip_writer_internal.cc
  ${CMAKE_CURRENT_LIST_DIR}/excel_encoder.cc
)

pkg_check_modules(LIBJPEG REQUIRED IMPORTED_TARGET GLOBAL libjpeg)
pkg_check_modules(LIBWEBP REQUIRED IMPORTED_TARGET GLOBAL libwebp)
pkg_check_modules(LIBTIFF REQUIRED IMPORTED_TARGET GLOBAL libtiff-4>=4.5)
pkg_check_modules(LIBGIF REQUIRED IMPORTED_TARGET GLOBAL libgif)
find_package(ZLIB REQUIRED)
target_link_libraries(terrafuse PUBLIC PkgConfig::LIBJPEG PkgConfig::LIBWEBP PkgConfig::LIBTIFF
                      PkgConfig::LIBGIF ZLIB::ZLIB)

terrafuse_test(formats_test
  ${CMAKE_CURRENT_LIST_DIR}/more_formats_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/jpeg_encoder_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/webp_encoder_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/tiff_encoder_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/gif_encoder_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/table_text_internal_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/html_encoder_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/xml_encoder_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/zip_writer_internal_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/excel_encoder_test.cc
)
