// Includes Catch2 whichever major version the build found (tests/CMakeLists.txt defines
// WEFT_CATCH2_V3=1 for Catch2 3.x). Tests include only this header and use TEST_CASE, SECTION,
// REQUIRE, CHECK, REQUIRE_THROWS_AS, REQUIRE_THROWS_WITH, INFO and Approx unqualified.
#pragma once

#if defined(WEFT_CATCH2_V3) && WEFT_CATCH2_V3
#include <catch2/catch_approx.hpp>
#include <catch2/catch_message.hpp> // INFO
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers.hpp> // REQUIRE_THROWS_WITH
using Catch::Approx;
#else
#include <catch2/catch.hpp>
#endif
