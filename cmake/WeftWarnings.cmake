# weft_add_warnings(<target>)
#
# Applies the project's warning flags to one of weft's own executables (tests, benchmarks,
# examples). Never used on the INTERFACE target `weft`: consumers choose their own warnings.
# With WEFT_WARNINGS_AS_ERRORS=ON warnings also fail the build.
include_guard(GLOBAL)

function(weft_add_warnings target)
    if(MSVC)
        target_compile_options(${target} PRIVATE /W4 /permissive-)
        if(WEFT_WARNINGS_AS_ERRORS)
            target_compile_options(${target} PRIVATE /WX)
        endif()
    else()
        target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
        if(WEFT_WARNINGS_AS_ERRORS)
            target_compile_options(${target} PRIVATE -Werror)
        endif()
    endif()
endfunction()
