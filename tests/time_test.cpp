// Behaviours of weft's timers: after(), timer and ticker fire when due, exactly as often as
// they should, stop for good, and all share one timer thread.
#include "catch_compat.hpp"

#include <weft/select.hpp>
#include <weft/time.hpp>

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

TEST_CASE("after fires once, no earlier than its delay") {
    const auto start = steady::now();
    auto ch = weft::after(20ms);
    auto fired = ch.recv();
    REQUIRE(fired);
    CHECK(*fired - start >= 20ms);
    CHECK(steady::now() - start >= 20ms);
    CHECK(ch.recv_for(30ms).status() == weft::status::timeout); // never a second value
}

TEST_CASE("after works as a select case for a deadline") {
    weft::channel<int> never(0);
    auto r = weft::select(weft::on_recv(never), weft::on_recv(weft::after(5ms)));
    CHECK(r.index == 1);
    CHECK(r.ok);
}

TEST_CASE("a stopped timer never fires") {
    weft::timer t(20ms);
    CHECK(t.stop());       // was pending
    CHECK_FALSE(t.stop()); // already stopped
    CHECK(t.channel().recv_for(60ms).status() == weft::status::timeout);
}

TEST_CASE("a timer fires once, and stop after firing reports false and clears the stale value") {
    weft::timer t(1ms);
    auto fired = t.channel().recv();
    REQUIRE(fired);
    CHECK_FALSE(t.stop());
    CHECK(t.channel().try_recv().status() == weft::status::not_ready);
}

TEST_CASE("reset re-arms a timer from now") {
    weft::timer t(1h);
    const auto start = steady::now();
    CHECK(t.reset(10ms));
    auto fired = t.channel().recv();
    REQUIRE(fired);
    CHECK(*fired - start >= 10ms);
}

TEST_CASE("a ticker ticks on its period until stopped, and never after stop returns") {
    const auto period = 5ms;
    const auto start = steady::now();
    weft::ticker ticker(period);
    auto ticks = ticker.channel();
    for (int i = 1; i <= 4; ++i) {
        auto tick = ticks.recv();
        REQUIRE(tick);
        // The i-th tick is due at start + i*period at the earliest (ticks never come early).
        CHECK(*tick - start >= i * period);
    }
    ticker.stop();
    CHECK(ticks.recv_for(6 * period).status() == weft::status::timeout);
}

TEST_CASE("a ticker drops ticks nobody takes instead of queueing them") {
    weft::ticker ticker(10ms);
    auto ticks = ticker.channel();
    ticks.recv();                          // ticking from here
    weft::select(weft::on_timeout(100ms)); // ~10 ticks fall due unread
    int backlog = 0;
    while (ticks.try_recv())
        ++backlog;
    // One kept tick, plus at most one that fell due while we drained; a queue would hold ~10.
    CHECK(backlog >= 1);
    CHECK(backlog <= 2);
}

TEST_CASE("a ticker rejects a non-positive period") {
    CHECK_THROWS_AS(weft::ticker(0ms), std::invalid_argument);
}

TEST_CASE("1000 pending timers share one timer thread") {
    auto threads = [] {
        std::size_t n = 0;
        for ([[maybe_unused]] auto& entry : std::filesystem::directory_iterator("/proc/self/task"))
            ++n;
        return n;
    };
    (void)weft::after(0ms).recv(); // the timer thread exists from here on
    const std::size_t before = threads();
    std::vector<weft::receiver<weft::time_point>> timers;
    for (int i = 0; i < 1000; ++i)
        timers.push_back(weft::after(std::chrono::milliseconds(i % 20)));
    CHECK(threads() == before);
    int fired = 0;
    for (auto& t : timers)
        fired += t.recv().has_value();
    CHECK(fired == 1000);
    CHECK(threads() == before);
}

TEST_CASE("assigning over a ticker stops the old one") {
    weft::ticker ticker(1ms);
    auto old_ticks = ticker.channel();
    old_ticks.recv(); // the first ticker is running
    ticker = weft::ticker(1h);
    (void)old_ticks.try_recv(); // a tick may have been taken before the stop
    CHECK(old_ticks.recv_for(20ms).status() == weft::status::timeout);
}

// --- Go 1.23 semantics -------------------------------------------------------------------------

namespace {

// Waits, without receiving it, until the timer's value sits in its channel (it has fired).
void wait_until_fired(const weft::receiver<weft::time_point>& ch) {
    while (ch.size() == 0)
        std::this_thread::yield();
}

} // namespace

TEST_CASE("stop on a timer that fired but was not received returns true and takes the value") {
    weft::timer t(1ms);
    wait_until_fired(t.channel());
    CHECK(t.stop()); // Go 1.23: stopped before its value was received
    CHECK(t.channel().try_recv().status() == weft::status::not_ready);
    CHECK_FALSE(t.stop()); // already stopped
}

TEST_CASE("Go's idiom: if not stopped then receive never blocks on a fired timer") {
    weft::timer t(1ms);
    wait_until_fired(t.channel());
    bool would_block = false;
    if (!t.stop()) // Go: if !t.Stop() { <-t.C }
        would_block = t.channel().recv_for(200ms).status() == weft::status::timeout;
    CHECK_FALSE(would_block);
}

TEST_CASE("reset of a fired but unreceived timer returns true and leaves no stale value") {
    weft::timer t(1ms);
    wait_until_fired(t.channel());
    CHECK(t.reset(1h));
    CHECK(t.channel().try_recv().status() == weft::status::not_ready);
    CHECK(t.stop()); // pending again
}

TEST_CASE("reset of a timer whose value was received returns false and re-arms it") {
    weft::timer t(1ms);
    REQUIRE(t.channel().recv());
    CHECK_FALSE(t.reset(1ms));
    CHECK(t.channel().recv_for(10s).status() == weft::status::ok);
}

TEST_CASE("ticker reset leaves no stale tick") {
    weft::ticker k(1ms);
    wait_until_fired(k.channel());
    k.reset(1h);
    CHECK(k.channel().try_recv().status() == weft::status::not_ready);
}

TEST_CASE("a ticker reset that throws changes nothing: the ticker keeps ticking") {
    weft::ticker k(2ms);
    REQUIRE(k.channel().recv());
    CHECK_THROWS_AS(k.reset(0ms), std::invalid_argument);
    CHECK_THROWS_AS(k.reset(-1s), std::invalid_argument);
    for (int i = 0; i < 3; ++i)
        CHECK(k.channel().recv_for(10s).status() == weft::status::ok);
}

TEST_CASE("after() whose receivers are all gone is cancelled at once") {
    auto& service = weft::detail::timer_service::instance();
    const std::size_t before = service.pending();
    for (int i = 0; i < 10'000; ++i)
        (void)weft::after(1h);
    CHECK(service.pending() == before);

    // A receiver still held keeps its timer, and copies keep it too.
    auto kept = weft::after(1h);
    auto copy = kept;
    CHECK(service.pending() == before + 1);
    kept = {};
    CHECK(service.pending() == before + 1);
    copy = {};
    CHECK(service.pending() == before);
}

TEST_CASE("stop and reset and channel on a moved-from timer or ticker throw logic_error") {
    weft::timer t(1h);
    weft::timer t2(std::move(t));
    CHECK_THROWS_WITH(t.stop(), "weft: stop() on a moved-from timer");
    CHECK_THROWS_WITH(t.reset(1s), "weft: reset() on a moved-from timer");
    CHECK_THROWS_WITH(t.channel(), "weft: channel() on a moved-from timer");
    CHECK_THROWS_AS(t.stop(), std::logic_error);
    CHECK(t2.stop()); // the moved-to timer is the live one

    weft::ticker k(1h);
    weft::ticker k2(std::move(k));
    CHECK_THROWS_WITH(k.stop(), "weft: stop() on a moved-from ticker");
    CHECK_THROWS_WITH(k.reset(1s), "weft: reset() on a moved-from ticker");
    CHECK_THROWS_WITH(k.channel(), "weft: channel() on a moved-from ticker");
    CHECK_THROWS_AS(k.reset(1s), std::logic_error);
    k2.stop();
}
