// weft's version as macros, for `#if` and for printing.
//
//   #if WEFT_VERSION >= 100   // 0.1.0 or newer (MAJOR * 10000 + MINOR * 100 + PATCH)
//   std::puts("weft " WEFT_VERSION_STRING);
//
// The version has one home: project(weft VERSION ...) in CMakeLists.txt. This header is checked
// in rather than generated into the build tree, so that every way of using weft sees the same
// file: add_subdirectory/FetchContent, an installed tree, a vcpkg or Conan package, and a plain
// `-I weft/include` with no CMake at all. Configuring weft reads the numbers below back
// (cmake/WeftVersion.cmake) and stops with an error naming both versions if they differ from
// project(), so the two cannot drift apart: bump project(), configure, copy the numbers here.
#pragma once

#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 1
#define WEFT_VERSION_PATCH 0

#define WEFT_VERSION (WEFT_VERSION_MAJOR * 10000 + WEFT_VERSION_MINOR * 100 + WEFT_VERSION_PATCH)

#define WEFT_DETAIL_STRINGIFY_(x) #x
#define WEFT_DETAIL_STRINGIFY(x) WEFT_DETAIL_STRINGIFY_(x)
// "MAJOR.MINOR.PATCH", e.g. "0.1.0".
#define WEFT_VERSION_STRING                                                                        \
    WEFT_DETAIL_STRINGIFY(WEFT_VERSION_MAJOR)                                                      \
    "." WEFT_DETAIL_STRINGIFY(WEFT_VERSION_MINOR) "." WEFT_DETAIL_STRINGIFY(WEFT_VERSION_PATCH)
