// The concurrent prime sieve from Go's tour, one thread per filter: a generator sends
// 2, 3, 4, ... and each prime found adds a filter that drops its multiples. Shutting down is
// just as Go-like: close the generator's channel and every filter closes its output in turn.
#include <weft/weft.hpp>

#include <fmt/core.h>

#include <thread>
#include <vector>

int main() {
    constexpr int wanted = 30;

    weft::channel<int> numbers(0);
    std::vector<std::thread> threads;
    threads.emplace_back([out = numbers]() mutable {
        for (int i = 2; out.send(i); ++i) {
        } // send fails once the channel is closed: stop
    });

    weft::channel<int> head = numbers;
    std::vector<int> primes;
    for (int n = 0; n < wanted; ++n) {
        const int prime = *head.recv();
        primes.push_back(prime);
        weft::channel<int> filtered(0);
        threads.emplace_back([in = head, out = filtered, prime]() mutable {
            for (int v : in)
                if (v % prime != 0 && !out.send(v))
                    break;
            out.close();
        });
        head = filtered;
    }

    numbers.close();
    for ([[maybe_unused]] int v : head) {
    } // drain the last filter until the close reaches it
    for (auto& t : threads)
        t.join();

    fmt::print("first {} primes:", wanted);
    for (int p : primes)
        fmt::print(" {}", p);
    fmt::print("\n");
    return primes.back() == 113 ? 0 : 1;
}
