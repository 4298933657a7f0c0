// README "Network I/O": nothing beyond the prelude (weft/net.hpp) and string_view literals.
#pragma once

#include <weft/net.hpp>

#include <array>
#include <span>

using namespace std::string_view_literals;
