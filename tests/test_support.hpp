// Helpers shared by weft's tests (not part of the library).
#pragma once

#include <cstdlib>
#include <vector>

namespace weft_test {

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

} // namespace weft_test
