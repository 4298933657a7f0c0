# cmake -DSOURCE_DIR=<weft> -DWORK_DIR=<scratch> -DGENERATOR=<g> -DCXX_COMPILER=<c++> -P this
#
# The version check (cmake/WeftVersion.cmake) must stop the configure when a copy of the version
# disagrees with project(). Configures a copy of weft's build files (CMakeLists.txt, cmake/,
# include/, ports/, CHANGELOG.md) as it is, which must succeed, and then with one file's version
# changed at a time, which must fail with a message naming that file.
foreach(var IN ITEMS SOURCE_DIR WORK_DIR GENERATOR CXX_COMPILER)
    if(NOT DEFINED ${var})
        message(FATAL_ERROR "version_check_test: -D${var}=... is required")
    endif()
endforeach()

set(problems)

# check(<case> <file> <regex> <replacement> <expected message>): configures a fresh copy with
# <regex> in <file> replaced (no replacement for case "as_is"); "as_is" must succeed, the others
# must fail with <expected message> in the output.
function(check case file regex replacement expected)
    set(copy "${WORK_DIR}/${case}/src")
    file(REMOVE_RECURSE "${WORK_DIR}/${case}")
    file(MAKE_DIRECTORY "${copy}")
    file(COPY ${SOURCE_DIR}/CMakeLists.txt ${SOURCE_DIR}/CHANGELOG.md ${SOURCE_DIR}/cmake
              ${SOURCE_DIR}/include ${SOURCE_DIR}/ports DESTINATION "${copy}")
    if(NOT case STREQUAL "as_is")
        file(READ "${copy}/${file}" text)
        string(REGEX REPLACE "${regex}" "${replacement}" changed "${text}")
        if(changed STREQUAL text)
            list(APPEND problems "${case}: '${regex}' not found in ${file}")
            set(problems "${problems}" PARENT_SCOPE)
            return()
        endif()
        file(WRITE "${copy}/${file}" "${changed}")
    endif()
    execute_process(
        COMMAND ${CMAKE_COMMAND} -S ${copy} -B ${WORK_DIR}/${case}/build -G ${GENERATOR}
                -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DWEFT_BUILD_TESTS=OFF
                -DWEFT_BUILD_BENCH=OFF -DWEFT_BUILD_EXAMPLES=OFF
        RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
    string(REGEX REPLACE "[ \n]+" " " flat "${out}") # CMake wraps long messages
    if(case STREQUAL "as_is")
        if(NOT rc EQUAL 0)
            list(APPEND problems "as_is: the unchanged copy failed to configure:\n${out}")
        endif()
    elseif(rc EQUAL 0)
        list(APPEND problems "${case}: configure succeeded with a mismatched ${file}")
    else()
        string(FIND "${flat}" "${expected}" at)
        if(at EQUAL -1)
            list(APPEND problems "${case}: failed without '${expected}':\n${out}")
        endif()
    endif()
    set(problems "${problems}" PARENT_SCOPE)
endfunction()

check(as_is "" "" "" "")
check(header include/weft/version.hpp "#define WEFT_VERSION_PATCH [0-9]+"
      "#define WEFT_VERSION_PATCH 99" "include/weft/version.hpp says")
check(vcpkg ports/weft/vcpkg.json "\"version\": \"[0-9.]+\"" "\"version\": \"9.9.9\""
      "ports/weft/vcpkg.json says version 9.9.9")
check(changelog CHANGELOG.md "\n## \\[[0-9]+\\.[0-9]+\\.[0-9]+\\]" "\n## [9.9.9]"
      "CHANGELOG.md's newest release is 9.9.9")
check(project CMakeLists.txt "VERSION [0-9]+\\.[0-9]+\\.[0-9]+" "VERSION 9.9.9"
      "include/weft/version.hpp says")

file(REMOVE_RECURSE "${WORK_DIR}")
if(problems)
    list(JOIN problems "\n" text)
    message(FATAL_ERROR "${text}")
endif()
message(STATUS "a version that differs from project() in any copy fails the configure")
