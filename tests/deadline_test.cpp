// Deadlines made from durations saturate, as Go's timers do (detail/deadline.hpp): a duration
// too large for the clock means "never" and nothing fires at once; zero or negative means
// "already passed". Every form that takes a duration is checked: after, timer, ticker,
// on_timeout, sleep_for, and the *_for forms of channels and wait_group, for threads and
// tasks. "Never" is shown by racing the huge deadline against something that does happen
// (a short after(), or a value sent later): the event wins.
#include "catch_compat.hpp"

#include <weft/channel.hpp>
#include <weft/scheduler.hpp>
#include <weft/select.hpp>
#include <weft/sync.hpp>
#include <weft/task.hpp>
#include <weft/time.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <ratio>
#include <thread>

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

// Sends `v` on `ch` from another thread once a short timer has fired: a value that arrives
// later than any select or receive started now would time out with a broken deadline.
std::thread send_later(weft::channel<int> ch, int v) {
    return std::thread([ch, v]() mutable {
        (void)weft::after(20ms).recv();
        ch.send(v);
    });
}

// True if `ch` delivers nothing before a 30 ms timer does.
bool silent_for_a_while(weft::receiver<weft::time_point> ch) {
    return weft::select(weft::on_recv(ch), weft::on_recv(weft::after(30ms))).index == 1;
}

} // namespace

TEST_CASE("deadline_after saturates huge durations of any rep and period to time_point::max") {
    using weft::detail::deadline_after;
    const auto never = steady::time_point::max();
    CHECK(deadline_after(std::chrono::nanoseconds::max()) == never);
    CHECK(deadline_after(std::chrono::hours::max()) == never);
    CHECK(deadline_after(std::chrono::duration<std::int32_t, std::ratio<86400 * 365>>::max()) ==
          never);
    CHECK(deadline_after(std::chrono::duration<double>(1e300)) == never);
    CHECK(deadline_after(std::chrono::duration<double>::max()) == never);
    CHECK(deadline_after(std::chrono::duration<std::uint64_t, std::nano>::max()) == never);
    CHECK(deadline_after(std::chrono::duration<std::int64_t, std::pico>::max()) < never);
    CHECK(deadline_after(std::chrono::duration<std::int64_t, std::ratio<3, 7>>::max()) == never);
}

TEST_CASE("deadline_after keeps ordinary durations exact and treats d <= 0 as already passed") {
    using weft::detail::deadline_after;
    const auto before = steady::now();
    const auto hour = deadline_after(1h);
    const auto after = steady::now();
    CHECK(hour >= before + 1h);
    CHECK(hour <= after + 1h);
    CHECK(deadline_after(std::chrono::duration<double>(2.5)) >= before + 2500ms);
    CHECK(deadline_after(std::chrono::duration<std::int64_t, std::pico>(5'000'000)) >=
          before + 5us);
    // Each deadline is taken before the clock is read again (the operands of <= may be
    // evaluated in either order).
    const auto passed = {deadline_after(-1s), deadline_after(std::chrono::hours::min()),
                         deadline_after(std::chrono::duration<double>(-1e300)), deadline_after(0s)};
    const auto now = steady::now();
    for (const auto& d : passed)
        CHECK(d <= now);
}

TEST_CASE("after and timer and ticker with a huge duration never fire") {
    CHECK(silent_for_a_while(weft::after(std::chrono::nanoseconds::max())));
    CHECK(silent_for_a_while(weft::after(std::chrono::hours::max())));
    weft::timer t(std::chrono::hours::max());
    CHECK(silent_for_a_while(t.channel()));
    CHECK(t.stop()); // still pending
    weft::ticker k(std::chrono::nanoseconds::max());
    CHECK(silent_for_a_while(k.channel()));
    CHECK(t.reset(std::chrono::duration<double>(1e300)) == false); // stopped above
    CHECK(silent_for_a_while(t.channel()));
}

TEST_CASE("a negative duration fires at once") {
    CHECK(weft::after(-1s).recv_for(10s).status() == weft::status::ok);
    weft::timer t(std::chrono::hours::min());
    CHECK(t.channel().recv_for(10s).status() == weft::status::ok);
    weft::channel<int> empty(1);
    bool timed_out = false;
    weft::select(weft::on_recv(empty), weft::on_timeout(-5ms, [&] { timed_out = true; }));
    CHECK(timed_out);
    CHECK(empty.recv_for(-1s).status() == weft::status::timeout);
}

TEST_CASE("a select with a huge on_timeout takes the value sent later") {
    for (auto* kind : {"lock-free", "locked"}) {
        weft::channel<int> ch(std::string(kind) == "locked" ? 0 : 1);
        std::thread sender = send_later(ch, 7);
        int got = 0;
        bool timed_out = false;
        auto r = weft::select(
            weft::on_recv(ch, [&](int v) { got = v; }),
            weft::on_timeout(std::chrono::nanoseconds::max(), [&] { timed_out = true; }));
        sender.join();
        INFO(kind);
        CHECK(r.index == 0);
        CHECK(got == 7);
        CHECK_FALSE(timed_out);
    }
}

TEST_CASE("recv_for and send_for and wait_for with a huge timeout wait for the event") {
    weft::channel<int> ch(1);
    std::thread sender = send_later(ch, 5);
    auto got = ch.recv_for(std::chrono::hours::max());
    sender.join();
    REQUIRE(got.status() == weft::status::ok);
    CHECK(*got == 5);

    weft::receiver<int> view(ch);
    sender = send_later(ch, 6);
    got = view.recv_for(std::chrono::duration<double>(1e300));
    sender.join();
    REQUIRE(got.status() == weft::status::ok);
    CHECK(*got == 6);

    // A full channel: send_for waits until a receiver makes room.
    REQUIRE(ch.try_send(1) == weft::status::ok);
    std::thread receiver([ch]() mutable {
        (void)weft::after(20ms).recv();
        (void)ch.recv();
    });
    CHECK(ch.send_for(2, std::chrono::nanoseconds::max()) == weft::status::ok);
    receiver.join();
    CHECK(*ch.try_recv() == 2);

    weft::wait_group wg;
    wg.add(1);
    std::thread done([&wg] {
        (void)weft::after(20ms).recv();
        wg.done();
    });
    CHECK(wg.wait_for(std::chrono::hours::max()));
    done.join();
}

TEST_CASE("async_recv_for and async_send_for with a huge timeout wait for the event") {
    weft::scheduler s(1);
    weft::channel<int> ch(1);
    std::thread sender = send_later(ch, 8);
    auto got = weft::sync_wait(s, ch.async_recv_for(std::chrono::nanoseconds::max()));
    sender.join();
    REQUIRE(got.status() == weft::status::ok);
    CHECK(*got == 8);

    REQUIRE(ch.try_send(1) == weft::status::ok);
    std::thread receiver([ch]() mutable {
        (void)weft::after(20ms).recv();
        (void)ch.recv();
    });
    CHECK(weft::sync_wait(s, ch.async_send_for(2, std::chrono::hours::max())) == weft::status::ok);
    receiver.join();
    CHECK(*ch.try_recv() == 2);
}

TEST_CASE("sleep_for with a huge duration does not finish at once") {
    weft::channel<int> woke(1);
    {
        weft::scheduler s(1);
        s.spawn([woke]() mutable -> weft::task<void> {
            co_await weft::sleep_for(std::chrono::nanoseconds::max());
            woke.try_send(1);
        });
        // The sleeper is still asleep when a 30 ms timer fires.
        auto r = weft::select(weft::on_recv(woke), weft::on_recv(weft::after(30ms)));
        CHECK(r.index == 1);
    } // destroying the scheduler destroys the sleeping task
    CHECK(woke.try_recv().status() == weft::status::not_ready);
}
