# cmake -DSOURCE_DIR=<weft> -DWORK_DIR=<scratch> -DGENERATOR=<g> -DCXX_COMPILER=<c++> -P this
#
# WEFT_BUILD_TESTS / WEFT_BUILD_BENCH (cmake/WeftBuildOption.cmake), checked by configuring weft
# as the top-level project with Catch2 and Google Benchmark hidden
# (CMAKE_DISABLE_FIND_PACKAGE_<name>), as on a machine that has neither:
#   1. options not given: the configure succeeds, says what it skipped, and adds no tests or
#      benchmarks (a newcomer building one example needs neither package);
#   2. -DWEFT_BUILD_TESTS=ON: the configure fails (asked for, so a missing Catch2 is an error);
#   3. -DWEFT_BUILD_BENCH=ON: the same for Google Benchmark.
foreach(var IN ITEMS SOURCE_DIR WORK_DIR GENERATOR CXX_COMPILER)
    if(NOT DEFINED ${var})
        message(FATAL_ERROR "build_options_test: -D${var}=... is required")
    endif()
endforeach()

set(hidden -DCMAKE_DISABLE_FIND_PACKAGE_Catch2=ON -DCMAKE_DISABLE_FIND_PACKAGE_benchmark=ON)

# configure(<case> <out var> <rc var> [cmake args...]) in a fresh build directory.
function(configure case out_var rc_var)
    set(bin "${WORK_DIR}/${case}")
    file(REMOVE_RECURSE "${bin}")
    execute_process(
        COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${bin} -G ${GENERATOR}
                -DCMAKE_CXX_COMPILER=${CXX_COMPILER} ${hidden} ${ARGN}
        RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
    set(${out_var} "${out}" PARENT_SCOPE)
    set(${rc_var} "${rc}" PARENT_SCOPE)
endfunction()

set(problems)

configure(defaults out rc)
if(NOT rc EQUAL 0)
    list(APPEND problems "defaults: configure failed (exit ${rc}), it must skip tests and bench")
endif()
foreach(expected IN ITEMS "weft: Catch2 not found: tests not built"
                          "weft: benchmark not found: benchmarks not built")
    string(FIND "${out}" "${expected}" at)
    if(at EQUAL -1)
        list(APPEND problems "defaults: no message '${expected}'")
    endif()
endforeach()
foreach(dir IN ITEMS tests bench)
    if(EXISTS "${WORK_DIR}/defaults/${dir}")
        list(APPEND problems "defaults: ${dir}/ was configured although its package is missing")
    endif()
endforeach()
if(problems)
    string(APPEND problems "\n--- configure output ---\n${out}")
endif()

foreach(case IN ITEMS TESTS BENCH)
    configure(require_${case} out rc -DWEFT_BUILD_${case}=ON)
    if(rc EQUAL 0)
        list(APPEND problems "-DWEFT_BUILD_${case}=ON with its package missing: configure "
                             "succeeded, expected an error\n${out}")
    endif()
endforeach()

file(REMOVE_RECURSE "${WORK_DIR}")
if(problems)
    list(JOIN problems "\n" text)
    message(FATAL_ERROR "${text}")
endif()
message(STATUS "defaults skip tests and benchmarks with a message; -D...=ON requires them")
