// Included first by every README block that tests/readme/readme_snippets.cmake compiles: what
// a reader is told to include, and the standard library. Nothing that a block itself should
// show goes here.
#pragma once

#include <weft/es.hpp>
#include <weft/es/json_codec.hpp>
#include <weft/es/sqlite_store.hpp>
#include <weft/weft.hpp>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

using namespace std::chrono_literals;
