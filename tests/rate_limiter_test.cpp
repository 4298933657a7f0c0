// weft::rate_limiter: a token bucket on a fake clock (exact counts over simulated seconds, no
// sleeping), reservations and their cancellation, run-time changes of rate and burst, and
// wait/async_wait given a context: cancelled without consuming a token.
#include "catch_compat.hpp"
#include "test_support.hpp"

#include <weft/context.hpp>
#include <weft/rate_limiter.hpp>
#include <weft/scheduler.hpp>
#include <weft/task.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <random>
#include <thread>

using namespace std::chrono_literals;

namespace {

// A clock that moves only when the test says.
struct fake_clock {
    weft::rate_limiter::time_point now{};
    std::function<weft::rate_limiter::time_point()> fn() {
        return [this] { return now; };
    }
};

// Every `step` from the clock's now to now + `span` (both ends included), allow() until it says
// no (a greedy caller that keeps the bucket empty); how many were allowed.
std::int64_t allow_over(weft::rate_limiter& lim, fake_clock& clock, std::chrono::nanoseconds span,
                        std::chrono::nanoseconds step) {
    std::int64_t allowed = 0;
    const auto end = clock.now + span;
    for (; clock.now <= end; clock.now += step)
        while (lim.allow())
            ++allowed;
    clock.now -= step; // back to the last instant looked at
    return allowed;
}

} // namespace

TEST_CASE("over 10 simulated seconds exactly rate times 10 plus burst events are allowed") {
    for (const double rate : {1.0, 100.0, 1000.0}) {
        for (const std::int64_t burst : {1, 10}) {
            fake_clock clock;
            weft::rate_limiter lim(rate, burst, clock.fn());
            const std::int64_t allowed = allow_over(lim, clock, 10s, 1ms);
            INFO("rate " << rate << " burst " << burst);
            CHECK(allowed == static_cast<std::int64_t>(rate) * 10 + burst);
        }
    }
}

TEST_CASE("the bucket starts full and holds at most burst tokens however long it is idle") {
    fake_clock clock;
    weft::rate_limiter lim(10, 3, clock.fn());
    CHECK(lim.tokens() == 3.0);
    clock.now += 1h;
    int allowed = 0;
    while (lim.allow())
        ++allowed;
    CHECK(allowed == 3);
    CHECK_FALSE(lim.allow(4)); // more than the burst: never
    clock.now += 1h;
    CHECK(lim.allow(3));
}

TEST_CASE("an infinite rate allows everything") {
    weft::rate_limiter lim(weft::rate_limiter::inf, 0);
    for (int i = 0; i < 10000; ++i)
        REQUIRE(lim.allow());
    CHECK(lim.allow(1000000));
    weft::rate_limiter::reservation r = lim.reserve(5);
    CHECK(r.ok());
    CHECK(r.delay() == weft::rate_limiter::duration::zero());
    CHECK(lim.wait(weft::background()) == weft::status::ok);
}

TEST_CASE("reserve says when the token may be used and cancel gives it back") {
    fake_clock clock;
    weft::rate_limiter lim(1, 2, clock.fn()); // 1 a second, bursts of 2
    auto r1 = lim.reserve();
    auto r2 = lim.reserve();
    auto r3 = lim.reserve();
    REQUIRE(r1.ok());
    REQUIRE(r3.ok());
    CHECK(r1.delay() == 0s);
    CHECK(r2.delay() == 0s);
    CHECK(r3.delay() == 1s);
    auto r4 = lim.reserve();
    CHECK(r4.delay() == 2s);

    // The latest reservation is given back whole: the next one gets its time.
    r4.cancel();
    r4.cancel(); // a second cancel gives nothing more
    auto r5 = lim.reserve();
    CHECK(r5.delay() == 2s);

    // r1's token is counted on by r3 and r5 (reserved after it): cancelling it gives nothing.
    r1.cancel();
    auto r6 = lim.reserve();
    CHECK(r6.delay() == 3s);

    // More than the burst can never be had.
    auto big = lim.reserve(3);
    CHECK_FALSE(big.ok());
    CHECK(big.delay() == weft::rate_limiter::duration::max());
}

TEST_CASE("a cancelled reservation returns its token and a used one does not") {
    fake_clock clock;
    weft::rate_limiter lim(1, 5, clock.fn());
    {
        auto r = lim.reserve();
        REQUIRE(r.ok());
        CHECK(lim.tokens() == 4.0);
        r.cancel();
        CHECK(lim.tokens() == 5.0);
    }
    int allowed = 0;
    while (lim.allow())
        ++allowed;
    CHECK(allowed == 5);

    auto later = lim.reserve(); // due in 1 s
    CHECK(later.delay() == 1s);
    clock.now += 2s; // its time passed: it counts as used
    const double before = lim.tokens();
    later.cancel();
    CHECK(lim.tokens() == before);
}

TEST_CASE("set_limit and set_burst change the rate from then on") {
    fake_clock clock;
    weft::rate_limiter lim(10, 1, clock.fn());
    CHECK(allow_over(lim, clock, 1s, 1ms) == 10 + 1);

    lim.set_limit(100);
    clock.now += 1ms;
    CHECK(allow_over(lim, clock, 1s - 1ms, 1ms) == 100);

    lim.set_burst(5);
    clock.now += 1s; // refills to the new burst
    int allowed = 0;
    while (lim.allow())
        ++allowed;
    CHECK(allowed == 5);

    lim.set_limit(weft::rate_limiter::inf);
    for (int i = 0; i < 1000; ++i)
        REQUIRE(lim.allow());

    // From an infinite rate to none: the bucket is full, then nothing more comes.
    lim.set_limit(0);
    CHECK(lim.limit() == 0.0);
    allowed = 0;
    while (lim.allow())
        ++allowed;
    CHECK(allowed == 5);
    clock.now += 24h;
    CHECK_FALSE(lim.allow());
    CHECK_FALSE(lim.reserve().ok());
    CHECK(lim.wait(weft::background()) == weft::status::not_ready);
}

TEST_CASE("wait returns cancelled at once when the deadline comes before the token") {
    weft::rate_limiter lim(0.05, 1); // the real clock: one token every 20 s
    REQUIRE(lim.allow());
    auto [ctx, cancel] = weft::with_timeout(weft::background(), 1min);
    auto [short_ctx, cancel_short] = weft::with_timeout(weft::background(), 10s);
    // The next token is 20 s away, past short_ctx's deadline: no wait, no token.
    CHECK(lim.wait(short_ctx) == weft::status::cancelled);
    CHECK(short_ctx.err() == std::error_code{}); // it was not waited for
    CHECK(lim.tokens() > -0.5);
    CHECK(lim.wait(ctx, 2) == weft::status::not_ready); // more than the burst
    cancel();
    cancel_short();
}

TEST_CASE("wait and async_wait take the token once its time comes") {
    weft::rate_limiter lim(1000, 1); // a token every millisecond
    weft::scheduler s(1);
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    int ok = 0;
    for (int i = 0; i < 5; ++i) {
        ok += lim.wait(ctx) == weft::status::ok ? 1 : 0;
        ok += weft::sync_wait(s, lim.async_wait(ctx)) == weft::status::ok ? 1 : 0;
    }
    CHECK(ok == 10);
    cancel();
}

// The token is 10 s away, so the wait sleeps; a cancel at a random moment (before or during the
// sleep) ends it with cancelled, and the token is given back either way.
TEST_CASE("a cancelled wait gives its token back, in a thread and in a task") {
    weft::scheduler s(2);
    std::mt19937 rng(7);
    for (int round = 0; round < 4 * weft_test::stress_rounds(); ++round) {
        weft::rate_limiter lim(0.1, 1);
        REQUIRE(lim.allow()); // empty now: the next token in 10 s
        auto [ctx, cancel] = weft::with_cancel(weft::background());
        std::atomic<int> result{-1};
        std::thread canceller([&, cancel = cancel] {
            for (unsigned spin = rng() % 200000; spin > 0; --spin)
                std::atomic_signal_fence(std::memory_order_seq_cst);
            cancel();
        });
        if (round % 2 == 0)
            result = static_cast<int>(lim.wait(ctx));
        else
            result = static_cast<int>(weft::sync_wait(s, lim.async_wait(ctx)));
        canceller.join();
        CHECK(result == static_cast<int>(weft::status::cancelled));
        // Not taken (a fresh token would take 10 s): the bucket is back near 0, not -1.
        CHECK(lim.tokens() > -0.5);
        CHECK(lim.tokens() < 0.5);
    }
}
