// weft::detail random numbers for scheduling decisions (select's case order, a thief's choice
// of victim, the workers' seeds): fast, never shared between threads, not for anything that
// needs real randomness.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace weft::detail {

__extension__ typedef unsigned __int128 uint128; // __extension__: keeps -Wpedantic quiet

// wyrand: one multiply per number, passes BigCrush, 8 bytes of state.
class fast_random {
public:
    explicit fast_random(std::uint64_t seed) noexcept : state_(seed) {}

    std::uint64_t next() noexcept {
        state_ += 0xa0761d6478bd642fULL;
        const uint128 m = static_cast<uint128>(state_) * (state_ ^ 0xe7037ed1a0b428dbULL);
        return static_cast<std::uint64_t>(m >> 64) ^ static_cast<std::uint64_t>(m);
    }

    // Uniform in [0, bound) by Lemire's multiply-shift; the bias is below 2^-32 for the small
    // bounds we use.
    std::uint32_t below(std::uint32_t bound) noexcept {
        return static_cast<std::uint32_t>(((next() >> 32) * bound) >> 32);
    }

    // This thread's generator, seeded from a global counter and the clock so threads differ.
    static fast_random& for_this_thread() noexcept {
        static std::atomic<std::uint64_t> seeds{0x9e3779b97f4a7c15ULL};
        // relaxed: we only need distinct seeds, not ordering.
        thread_local fast_random rng(
            seeds.fetch_add(0x9e3779b97f4a7c15ULL, std::memory_order_relaxed) ^
            static_cast<std::uint64_t>(
                std::chrono::steady_clock::now().time_since_epoch().count()));
        return rng;
    }

private:
    std::uint64_t state_;
};

} // namespace weft::detail
