// Helpers shared by weft's tests (not part of the library).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

namespace weft_test {

// True in a ThreadSanitizer build (GCC defines __SANITIZE_THREAD__, clang has the feature
// test). Long races run fewer rounds there: TSan reports a data race on the first round that
// has it, and every round costs 5-20x as much.
#if defined(__SANITIZE_THREAD__)
inline constexpr bool k_under_tsan = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool k_under_tsan = true;
#else
inline constexpr bool k_under_tsan = false;
#endif
#else
inline constexpr bool k_under_tsan = false;
#endif

// True in an AddressSanitizer build (the asan preset: ASan + UBSan).
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool k_under_asan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool k_under_asan = true;
#else
inline constexpr bool k_under_asan = false;
#endif
#else
inline constexpr bool k_under_asan = false;
#endif

// Rounds for the long races: WEFT_STRESS_ITERS if set to a positive number, else 3 (what CI
// runs under the sanitizers). A local soak: `WEFT_STRESS_ITERS=1000 ./build/dev/tests/...`.
inline int stress_rounds() {
    if (const char* text = std::getenv("WEFT_STRESS_ITERS")) {
        const int n = std::atoi(text);
        if (n > 0)
            return n;
    }
    return 3;
}

// The first `n` primes by trial division: what a sieve under test must produce.
inline std::vector<int> first_primes(std::size_t n) {
    std::vector<int> primes;
    for (int i = 2; primes.size() < n; ++i) {
        bool is_prime = true;
        for (int p : primes)
            is_prime = is_prime && i % p != 0;
        if (is_prime)
            primes.push_back(i);
    }
    return primes;
}

// Passivates idle actors of `r` (a registry or an aggregate_service) until `want` have been, or
// 10 s pass; returns how many were. A reply is sent before its actor's drain job ends its
// turn, so right after `ask(...).get()` the actor may still count as busy for a moment.
template <class R>
std::size_t passivate_until(R& r, std::size_t want) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    std::size_t done = r.passivate_idle(std::chrono::seconds(0));
    while (done < want && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::yield();
        done += r.passivate_idle(std::chrono::seconds(0));
    }
    return done;
}

// Spins (yielding) until `done()` or 10 s pass; true if done. Polls a state the test needs: no
// sleep stands in for an event.
template <class Done>
bool eventually(Done done) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done()) {
        if (std::chrono::steady_clock::now() > give_up)
            return false;
        std::this_thread::yield();
    }
    return true;
}

// Calls cancel(i) for each i < n in a random order (from `seed`), each after a random spin of up
// to `max_spin` fenced iterations, so that cancellations land at unpredictable moments of the
// race the caller started.
template <class Cancel>
void cancel_at_random_moments(std::size_t n, unsigned seed, Cancel cancel,
                              unsigned max_spin = 400000) {
    std::mt19937 rng(seed);
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::shuffle(order.begin(), order.end(), rng);
    for (std::size_t i : order) {
        for (unsigned spin = rng() % max_spin; spin > 0; --spin)
            std::atomic_signal_fence(std::memory_order_seq_cst);
        cancel(i);
    }
}

} // namespace weft_test
