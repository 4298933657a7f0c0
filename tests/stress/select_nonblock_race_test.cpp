// Go's runtime TestNonblockSelectRace, for threads (select) and tasks (async_select).
//
// c1 holds a value. One side selects on c1 and c2 with otherwise(); the other sends on c2 and
// then receives from c1. At every instant one of the two channels holds a value, so the
// otherwise() branch must never run. Every value is counted: the two sent values end up
// received exactly once each (by the select, by the peer, or left in a channel).
//
// Two things make the race show up in seconds rather than millions of rounds, without
// changing what is asserted: the select also lists a few channels that stay empty (in a random
// order they sit between c2 and c1 and widen the window), and the peer starts after a random
// spin of 0-255 steps, so its two operations sweep across the select's pass.
//
// Rounds are WEFT_STRESS_ITERS x 20000 for threads, x 3000 for tasks (a task's round costs more,
// most of all under TSan; a quarter of that there); the default WEFT_STRESS_ITERS is 3, what CI
// runs. A soak: `WEFT_STRESS_ITERS=100 ./build/dev/tests/select_nonblock_race_test`.
#include "catch_compat.hpp"
#include "test_support.hpp"

#include <weft/scheduler.hpp>
#include <weft/select.hpp>
#include <weft/task.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <random>
#include <thread>

namespace {

// A quarter of the rounds under TSan, which took ~6 minutes of CI for the full count: the
// ordering check runs its full count in the other builds.
int rounds(int per_iter) {
    const int n = weft_test::stress_rounds() * per_iter;
    return weft_test::k_under_tsan ? n / 4 : n;
}

// What one round saw, filled in by the selecting side.
struct select_outcome {
    bool took_otherwise = false;
    int received = 0; // values the select received (0 or 1)
};

// Channels nobody sends on: never ready, they only widen the select's pass.
using empty_channels = std::array<weft::channel<int>, 4>;

// `mixed`: the last one is unbuffered, so on the locked path, and the select then takes the
// locked route (link()) instead of the lock-free poll.
empty_channels make_empty(bool mixed) {
    return {weft::channel<int>(1), weft::channel<int>(1), weft::channel<int>(1),
            weft::channel<int>(mixed ? 0 : 1)};
}

// The selecting side: Go's `select { case <-c1: case <-c2: default: }`, plus empty cases.
select_outcome select_once(weft::channel<int>& c1, weft::channel<int>& c2, empty_channels& e) {
    select_outcome out;
    weft::select(weft::on_recv(c1, [&](int) { ++out.received; }),
                 weft::on_recv(c2, [&](int) { ++out.received; }), weft::on_recv(e[0]),
                 weft::on_recv(e[1]), weft::on_recv(e[2]), weft::on_recv(e[3]),
                 weft::otherwise([&] { out.took_otherwise = true; }));
    return out;
}

// A busy pause of 0-255 steps: jitter for the interleaving, not synchronisation.
void jitter(std::minstd_rand& rng) {
    std::atomic<unsigned> steps{0};
    const unsigned n = rng() % 256;
    // relaxed: a counter nobody else reads; it only keeps the loop from being optimised out.
    while (steps.load(std::memory_order_relaxed) < n)
        steps.fetch_add(1, std::memory_order_relaxed);
}

// The peer side: returns the value it received (0 or 1).
int peer(weft::channel<int>& c1, weft::channel<int>& c2) {
    int seen = 0;
    REQUIRE(c2.try_send(2) == weft::status::ok); // c2 is empty: nobody else sends on it
    if (c1.try_recv())
        ++seen;
    return seen;
}

int drain(weft::channel<int>& c1, weft::channel<int>& c2) {
    int left = 0;
    while (c1.try_recv())
        ++left;
    while (c2.try_recv())
        ++left;
    return left;
}

} // namespace

namespace {

// The rounds, shared by the two sides. `start` is the round the selecting side may begin
// (release: publishes c1 and c2 of that round), `finished` the round it has completed
// (release: publishes `outcome`); each side reads the other's with acquire while it spins.
struct race {
    explicit race(bool mixed) : empty(make_empty(mixed)) {}
    std::atomic<int> start{0};
    std::atomic<int> finished{0};
    weft::channel<int> c1, c2;
    empty_channels empty;
    select_outcome outcome;
};

// The peer side of every round, on the calling thread; checks the counts at the end.
void run_peer(race& x, int n) {
    std::minstd_rand rng(42);
    int otherwise_taken = 0;
    int lost_or_duplicated = 0;
    for (int r = 1; r <= n; ++r) {
        x.c1 = weft::channel<int>(1);
        x.c2 = weft::channel<int>(1);
        REQUIRE(x.c1.try_send(1) == weft::status::ok);
        // release: pairs with the selecting side's acquire of `start` (this round's channels).
        x.start.store(r, std::memory_order_release);
        jitter(rng);
        int seen = peer(x.c1, x.c2);
        // acquire: pairs with the selecting side's release store of `finished`.
        while (x.finished.load(std::memory_order_acquire) != r)
            std::this_thread::yield();
        seen += x.outcome.received + drain(x.c1, x.c2);
        otherwise_taken += x.outcome.took_otherwise;
        lost_or_duplicated += seen != 2;
    }
    INFO("otherwise taken in " << otherwise_taken << " of " << n << " rounds");
    CHECK(otherwise_taken == 0);
    CHECK(lost_or_duplicated == 0);
}

void threads_race(bool mixed) {
    const int n = rounds(20000);
    race x(mixed);
    std::thread selector([&] {
        for (int r = 1; r <= n; ++r) {
            // acquire: pairs with the release store of `start` in run_peer.
            while (x.start.load(std::memory_order_acquire) != r)
                std::this_thread::yield();
            x.outcome = select_once(x.c1, x.c2, x.empty);
            // release: publishes `outcome` to run_peer's acquire spin.
            x.finished.store(r, std::memory_order_release);
        }
    });
    run_peer(x, n);
    selector.join();
}

} // namespace

TEST_CASE("a non-blocking select never takes otherwise while a case is ready (threads)") {
    threads_race(false);
}

TEST_CASE("a non-blocking select with a locked channel never takes otherwise wrongly (threads)") {
    threads_race(true);
}

// One task does every round's async_select, spinning on `start` with co_await yield() so that
// it is running, not parked, when the peer moves.
TEST_CASE("a non-blocking select never takes otherwise while a case is ready (tasks)") {
    const int n = rounds(3000);
    race x(false);
    weft::scheduler s(2);
    s.spawn([&x, n]() -> weft::task<void> {
        for (int r = 1; r <= n; ++r) {
            // acquire: pairs with the release store of `start` in run_peer.
            while (x.start.load(std::memory_order_acquire) != r)
                co_await weft::yield();
            select_outcome out;
            co_await weft::async_select(weft::on_recv(x.c1, [&](int) { ++out.received; }),
                                        weft::on_recv(x.c2, [&](int) { ++out.received; }),
                                        weft::on_recv(x.empty[0]), weft::on_recv(x.empty[1]),
                                        weft::on_recv(x.empty[2]), weft::on_recv(x.empty[3]),
                                        weft::otherwise([&] { out.took_otherwise = true; }));
            x.outcome = out;
            // release: publishes `outcome` to run_peer's acquire spin.
            x.finished.store(r, std::memory_order_release);
        }
    });
    run_peer(x, n);
}
