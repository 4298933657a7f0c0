# weft_build_option(<var> <what> <package> [find_package arguments...])
#
# Decides whether to build one of weft's own parts (tests, benchmarks, examples) that needs
# <package>:
#   - <var> given (-D<var>=ON/OFF, a preset, or a cache entry): that choice holds. ON builds the
#     part, whose directory then finds <package> REQUIRED, so a missing one stops the configure.
#   - not given, weft the top-level project: built if <package> is found; if not, skipped with a
#     message saying how to get it, so that building an example needs no test framework.
#   - not given, weft a subproject (add_subdirectory/FetchContent): not built.
# The automatic choice is not cached: installing the package and configuring again turns the
# part on.
include_guard(GLOBAL)

function(weft_build_option var what package)
    if(DEFINED CACHE{${var}})
        return()
    endif()
    set(build OFF)
    if(PROJECT_IS_TOP_LEVEL)
        find_package(${package} ${ARGN} QUIET)
        if(${package}_FOUND)
            set(build ON)
        else()
            message(STATUS "weft: ${package} not found: ${what} not built "
                           "(install it, or -D${var}=ON to require it)")
        endif()
    endif()
    set(${var} ${build} PARENT_SCOPE)
endfunction()
