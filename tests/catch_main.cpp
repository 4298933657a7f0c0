// Catch2 v2 only: the test runner's main, compiled once into weft_catch_main and linked into
// every test. With Catch2 v3 the tests link Catch2::Catch2WithMain and this file is not built.
#if defined(WEFT_CATCH2_V3) && WEFT_CATCH2_V3
#error "catch_main.cpp is for Catch2 v2; link Catch2::Catch2WithMain with Catch2 v3"
#endif

#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
