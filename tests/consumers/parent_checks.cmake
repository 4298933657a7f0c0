# What weft must not do to a project that adds it with add_subdirectory or FetchContent: change
# the parent's flags or directory properties, or add its tests, benchmarks, examples or install
# rules. Used by the subdirectory and fetchcontent consumers:
#
#   weft_consumer_snapshot_flags(before)             # before adding weft
#   add_subdirectory(...) / FetchContent_MakeAvailable(weft)
#   weft_consumer_check_parent(before <weft source dir>)

set(weft_consumer_watched_variables
    CMAKE_CXX_FLAGS CMAKE_CXX_FLAGS_DEBUG CMAKE_CXX_FLAGS_RELEASE CMAKE_CXX_FLAGS_RELWITHDEBINFO
    CMAKE_CXX_FLAGS_MINSIZEREL CMAKE_EXE_LINKER_FLAGS CMAKE_SHARED_LINKER_FLAGS
    CMAKE_CXX_STANDARD CMAKE_CXX_STANDARD_REQUIRED CMAKE_CXX_EXTENSIONS
    CMAKE_POSITION_INDEPENDENT_CODE CMAKE_MODULE_PATH CMAKE_PREFIX_PATH CMAKE_BUILD_TYPE
    BUILD_TESTING)
set(weft_consumer_watched_properties
    COMPILE_OPTIONS COMPILE_DEFINITIONS INCLUDE_DIRECTORIES LINK_OPTIONS LINK_DIRECTORIES)

macro(weft_consumer_snapshot_flags prefix)
    foreach(var IN LISTS weft_consumer_watched_variables)
        set(${prefix}_var_${var} "${${var}}")
        set(${prefix}_cache_${var} "$CACHE{${var}}")
    endforeach()
    foreach(prop IN LISTS weft_consumer_watched_properties)
        get_property(${prefix}_prop_${prop} DIRECTORY PROPERTY ${prop})
    endforeach()
endmacro()

function(weft_consumer_check_parent prefix weft_dir)
    set(problems)
    foreach(var IN LISTS weft_consumer_watched_variables)
        if(NOT "${${var}}" STREQUAL "${${prefix}_var_${var}}")
            list(APPEND problems "${var} changed from '${${prefix}_var_${var}}' to '${${var}}'")
        endif()
        if(NOT "$CACHE{${var}}" STREQUAL "${${prefix}_cache_${var}}")
            set(was "${${prefix}_cache_${var}}")
            list(APPEND problems "cache ${var} changed from '${was}' to '$CACHE{${var}}'")
        endif()
    endforeach()
    foreach(prop IN LISTS weft_consumer_watched_properties)
        get_property(now DIRECTORY PROPERTY ${prop})
        if(NOT "${now}" STREQUAL "${${prefix}_prop_${prop}}")
            list(APPEND problems "directory property ${prop} changed to '${now}'")
        endif()
    endforeach()

    # Tests, benchmarks and examples default OFF for a subproject: no subdirectories, and
    # nothing but the INTERFACE libraries.
    foreach(option IN ITEMS WEFT_BUILD_TESTS WEFT_BUILD_BENCH WEFT_BUILD_EXAMPLES WEFT_INSTALL)
        if($CACHE{${option}})
            list(APPEND problems "${option} is ON in a subproject")
        endif()
    endforeach()
    get_property(subdirs DIRECTORY ${weft_dir} PROPERTY SUBDIRECTORIES)
    if(subdirs)
        list(APPEND problems "weft added subdirectories: ${subdirs}")
    endif()
    get_property(targets DIRECTORY ${weft_dir} PROPERTY BUILDSYSTEM_TARGETS)
    foreach(target IN LISTS targets)
        get_target_property(type ${target} TYPE)
        if(NOT type STREQUAL "INTERFACE_LIBRARY")
            list(APPEND problems "weft added target ${target} (${type})")
        endif()
    endforeach()
    if(NOT TARGET weft::weft)
        list(APPEND problems "no target weft::weft")
    endif()

    if(problems)
        list(JOIN problems "\n  " text)
        message(FATAL_ERROR "weft as a subproject changed its parent:\n  ${text}")
    endif()
    message(STATUS "weft as a subproject: targets ${targets}; parent flags untouched")
endfunction()
