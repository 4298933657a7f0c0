// weft::detail context_fwd — what layer-1 waits need from weft::context without including it.
//
// context.hpp includes channel.hpp (a context's done() is a channel), so channel.hpp, select.hpp
// and the other waits cannot include context.hpp. They take `const context&` (an incomplete type
// is enough for a reference) and reach its cancellation through these functions, defined
// inline in context.hpp. A caller that has a context has included context.hpp, so the
// definition is in every translation unit that calls it.
#pragma once

#include "cancel_source.hpp"

namespace weft {

class context;

namespace detail {

// The context's cancel_source, to arm a cancel_claim with (wait_limit.hpp); empty (nothing to
// arm) for background().
inline cancel_ref cancellation_of(const context& ctx);

// ctx.cancelled(): one relaxed load, for the fast paths that look before they wait.
inline bool cancelled_of(const context& ctx) noexcept;

} // namespace detail
} // namespace weft
