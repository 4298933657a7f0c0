// weft::detail::deadline_after — "now + d" that saturates instead of overflowing.
//
// Every deadline weft makes from a duration goes through here, as Go clamps its timers: a
// duration too large for the steady clock (nanoseconds::max(), hours::max(), 1e300 seconds)
// means "never", time_point::max(); zero, negative or NaN means "already passed", now. Any
// rep and period work, integral or floating, without signed overflow on the way.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <ratio>
#include <type_traits>

namespace weft::detail {

// `d` in steady-clock ticks, clamped to [zero, duration::max()]: zero for d <= 0 (and NaN).
template <class Rep, class Period>
constexpr std::chrono::steady_clock::duration
saturating_ticks(std::chrono::duration<Rep, Period> d) noexcept {
    using ticks = std::chrono::steady_clock::duration;
    using rep = ticks::rep;
    constexpr rep most = std::numeric_limits<rep>::max();
    if (!(d > d.zero()))
        return ticks::zero();
    // d in ticks is d.count() * num / den.
    using factor = std::ratio_divide<Period, ticks::period>;
    if constexpr (std::is_integral_v<Rep> && factor::den == 1) {
        // Coarser than a tick (hours, seconds, ...): compare before multiplying.
        const auto count = static_cast<std::uintmax_t>(d.count());
        if (count > static_cast<std::uintmax_t>(most / factor::num))
            return ticks::max();
        return ticks(static_cast<rep>(count) * static_cast<rep>(factor::num));
    } else if constexpr (std::is_integral_v<Rep> && factor::num == 1) {
        // Finer than a tick (picoseconds, ...): dividing cannot overflow.
        const auto count = static_cast<std::uintmax_t>(d.count()) / factor::den;
        return count > static_cast<std::uintmax_t>(most) ? ticks::max()
                                                         : ticks(static_cast<rep>(count));
    } else {
        // Floating reps and odd ratios: in long double, which cannot overflow here; the
        // comparison keeps the conversion back to an integer in range.
        const long double exact = static_cast<long double>(d.count()) *
                                  static_cast<long double>(factor::num) /
                                  static_cast<long double>(factor::den);
        if (!(exact < static_cast<long double>(most)))
            return ticks::max();
        return ticks(static_cast<rep>(exact));
    }
}

// `t + d` for d >= 0, or time_point::max() if that would overflow.
inline std::chrono::steady_clock::time_point
saturating_add(std::chrono::steady_clock::time_point t,
               std::chrono::steady_clock::duration d) noexcept {
    using time_point = std::chrono::steady_clock::time_point;
    if (t.time_since_epoch() >= t.time_since_epoch().zero() && d > time_point::max() - t)
        return time_point::max();
    return t + d;
}

// The steady-clock deadline `d` from now: time_point::max() if it is beyond the clock's
// range, now if d <= 0.
template <class Rep, class Period>
std::chrono::steady_clock::time_point
deadline_after(std::chrono::duration<Rep, Period> d) noexcept {
    return saturating_add(std::chrono::steady_clock::now(), saturating_ticks(d));
}

} // namespace weft::detail
