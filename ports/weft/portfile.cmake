# vcpkg port of weft, kept next to the sources and used as an overlay port:
#
#   vcpkg install weft --overlay-ports=<weft>/ports             (classic mode)
#   vcpkg install weft[sqlite] --overlay-ports=<weft>/ports
#   "dependencies": [ { "name": "weft", "features": [ "sqlite" ] } ]   (manifest mode, with
#   "overlay-ports": [ "<weft>/ports" ] in vcpkg-configuration.json)
#
# It builds the weft tree it sits in (two levels up). A port for a registry would fetch a
# release instead:
#   vcpkg_from_github(OUT_SOURCE_PATH SOURCE_PATH REPO <owner>/weft REF "v${VERSION}"
#                     SHA512 <sha512 of the archive> HEAD_REF main)
#
# Header-only: one (release) configuration, nothing in lib/ but the package files, which
# vcpkg_cmake_config_fixup moves to share/weft.
set(VCPKG_BUILD_TYPE release)

get_filename_component(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)

# The sqlite feature decides weft::sqlite, whatever the machine has (no automagic dependency).
vcpkg_check_features(OUT_FEATURE_OPTIONS FEATURE_OPTIONS
    FEATURES
        sqlite CMAKE_REQUIRE_FIND_PACKAGE_SQLite3
    INVERTED_FEATURES
        sqlite CMAKE_DISABLE_FIND_PACKAGE_SQLite3
)

vcpkg_cmake_configure(
    SOURCE_PATH "${SOURCE_PATH}"
    OPTIONS
        -DWEFT_BUILD_TESTS=OFF
        -DWEFT_BUILD_BENCH=OFF
        -DWEFT_BUILD_EXAMPLES=OFF
        -DWEFT_INSTALL=ON
        ${FEATURE_OPTIONS}
)

vcpkg_cmake_install()
vcpkg_cmake_config_fixup(CONFIG_PATH lib/cmake/weft)
vcpkg_fixup_pkgconfig()

file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/lib" "${CURRENT_PACKAGES_DIR}/debug")

file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
