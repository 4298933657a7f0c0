# One compile-fail check, run by ctest: `cmake -DCXX=... -DINCLUDE=... -DSOURCE=... -P check.cmake`.
#
# SOURCE's first line says what must happen:
#   // expect-error: <text>   compiling must fail, and the compiler's output must contain <text>
#   // expect: compiles       compiling must succeed (a control: the snippets' setup is valid)
# Syntax-only, so a check costs a parse of the headers and no code generation.
foreach(var CXX INCLUDE SOURCE)
    if(NOT DEFINED ${var})
        message(FATAL_ERROR "compile_fail/check.cmake: -D${var}=... is required")
    endif()
endforeach()

file(STRINGS ${SOURCE} first_line LIMIT_COUNT 1)
execute_process(
    COMMAND ${CXX} -std=c++20 -fsyntax-only -I${INCLUDE} ${SOURCE}
    RESULT_VARIABLE result
    OUTPUT_VARIABLE output
    ERROR_VARIABLE output)

if(first_line MATCHES "^// expect-error: (.+)$")
    set(expected "${CMAKE_MATCH_1}")
    if(result EQUAL 0)
        message(FATAL_ERROR "${SOURCE} compiled, but it must fail with: ${expected}")
    endif()
    string(FIND "${output}" "${expected}" at)
    if(at EQUAL -1)
        message(FATAL_ERROR "${SOURCE} failed without the expected message\n"
                            "expected: ${expected}\ncompiler said:\n${output}")
    endif()
    message(STATUS "${SOURCE}: rejected with \"${expected}\", as it must be")
elseif(first_line STREQUAL "// expect: compiles")
    if(NOT result EQUAL 0)
        message(FATAL_ERROR "${SOURCE} must compile, but:\n${output}")
    endif()
else()
    message(FATAL_ERROR "${SOURCE}: the first line must be '// expect-error: ...' or "
                        "'// expect: compiles'")
endif()
