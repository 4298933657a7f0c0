# weft_check_version()
#
# project(weft VERSION ...) is the one home of weft's version. Three files repeat it because
# their formats cannot read CMake: include/weft/version.hpp (the WEFT_VERSION_* macros, checked
# in so that plain `-I include` users have them too), ports/weft/vcpkg.json (vcpkg reads the
# version from the manifest) and CHANGELOG.md (its newest release heading, `## [X.Y.Z]`). This
# check reads them back and stops the configure with an error naming both numbers when one
# differs, so a bump cannot forget them. (conanfile.py needs no check: its set_version() reads
# project() itself; weft.pc and weftConfigVersion.cmake are generated from it.)
# tests/config/version_check_test.cmake checks that a mismatch fails the configure.
include_guard(GLOBAL)

function(weft_check_version)
    set(header "${PROJECT_SOURCE_DIR}/include/weft/version.hpp")
    file(STRINGS "${header}" defines REGEX "^#define WEFT_VERSION_(MAJOR|MINOR|PATCH) +[0-9]+")
    foreach(part IN ITEMS MAJOR MINOR PATCH)
        set(number "")
        foreach(line IN LISTS defines)
            if(line MATCHES "^#define WEFT_VERSION_${part} +([0-9]+)")
                set(number "${CMAKE_MATCH_1}")
            endif()
        endforeach()
        if(number STREQUAL "")
            message(FATAL_ERROR "weft: ${header} defines no WEFT_VERSION_${part}")
        endif()
        list(APPEND header_version "${number}")
    endforeach()
    list(JOIN header_version "." header_version)
    if(NOT header_version VERSION_EQUAL PROJECT_VERSION)
        message(FATAL_ERROR
            "weft: include/weft/version.hpp says ${header_version} but project() in "
            "CMakeLists.txt says ${PROJECT_VERSION}; set WEFT_VERSION_MAJOR/MINOR/PATCH to "
            "${PROJECT_VERSION_MAJOR}/${PROJECT_VERSION_MINOR}/${PROJECT_VERSION_PATCH}")
    endif()

    # The port travels with the sources; a consumer building weft as a subproject is not
    # stopped by it.
    set(manifest "${PROJECT_SOURCE_DIR}/ports/weft/vcpkg.json")
    if(PROJECT_IS_TOP_LEVEL AND EXISTS "${manifest}")
        file(READ "${manifest}" json)
        string(JSON port_version ERROR_VARIABLE json_error GET "${json}" version)
        if(json_error)
            message(FATAL_ERROR "weft: ${manifest}: ${json_error}")
        endif()
        if(NOT port_version STREQUAL PROJECT_VERSION)
            message(FATAL_ERROR
                "weft: ports/weft/vcpkg.json says version ${port_version} but project() in "
                "CMakeLists.txt says ${PROJECT_VERSION}")
        endif()
    endif()

    # The newest release in the changelog ("## [Unreleased]" above it is skipped).
    set(changelog "${PROJECT_SOURCE_DIR}/CHANGELOG.md")
    if(PROJECT_IS_TOP_LEVEL AND EXISTS "${changelog}")
        file(STRINGS "${changelog}" releases REGEX "^## \\[[0-9]+\\.[0-9]+\\.[0-9]+\\]")
        list(LENGTH releases count)
        if(count EQUAL 0)
            message(FATAL_ERROR "weft: CHANGELOG.md has no release heading '## [X.Y.Z]'")
        endif()
        list(GET releases 0 newest)
        string(REGEX MATCH "[0-9]+\\.[0-9]+\\.[0-9]+" changelog_version "${newest}")
        if(NOT changelog_version STREQUAL PROJECT_VERSION)
            message(FATAL_ERROR
                "weft: CHANGELOG.md's newest release is ${changelog_version} but project() in "
                "CMakeLists.txt says ${PROJECT_VERSION}; add a '## [${PROJECT_VERSION}]' "
                "section (rename 'Unreleased')")
        endif()
    endif()
endfunction()
