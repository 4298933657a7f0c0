# cmake -DTEST_BINARY=<catch2 test> -DUNMATCHED_ARGS=<flag;value> -DKNOWN_TEST=<name> -P this
#
# Checks the flag weft_add_test passes to every ctest entry, with the Catch2 the tests were built
# against: with it, a spec naming an existing test case must exit 0 (so the flag is one this
# Catch2 knows; an unknown warning fails every run) and a spec naming none must exit non-zero
# (so a ctest entry whose name Catch2 cannot match fails instead of passing with no test run).
foreach(var IN ITEMS TEST_BINARY UNMATCHED_ARGS KNOWN_TEST)
    if(NOT DEFINED ${var})
        message(FATAL_ERROR "catch_unmatched_check: -D${var}=... is required")
    endif()
endforeach()

execute_process(COMMAND ${TEST_BINARY} ${UNMATCHED_ARGS} ${KNOWN_TEST}
    RESULT_VARIABLE known_rc OUTPUT_VARIABLE known_out ERROR_VARIABLE known_out)
if(NOT known_rc EQUAL 0)
    message(FATAL_ERROR "'${TEST_BINARY} ${UNMATCHED_ARGS} <known test>' exited ${known_rc}, "
                        "expected 0:\n${known_out}")
endif()

execute_process(COMMAND ${TEST_BINARY} ${UNMATCHED_ARGS} "no test case has this name"
    RESULT_VARIABLE unknown_rc OUTPUT_VARIABLE unknown_out ERROR_VARIABLE unknown_out)
if(unknown_rc EQUAL 0)
    message(FATAL_ERROR "'${TEST_BINARY} ${UNMATCHED_ARGS} <no such test>' exited 0, expected "
                        "a failure:\n${unknown_out}")
endif()
message(STATUS "known spec: exit 0; unmatched spec: exit ${unknown_rc}")
