// Behaviours of weft::errgroup: the first failure cancels the group's context and comes back
// from wait() after every member finished (counted); a parent's cancellation reaches the
// members; set_limit bounds the members running at once (measured), try_go refuses past it,
// async_go waits for room; the destructor cancels and joins; wait() leaves the context
// cancelled.
#include "catch_compat.hpp"
#include "test_support.hpp"

#include <weft/channel.hpp>
#include <weft/context.hpp>
#include <weft/errgroup.hpp>
#include <weft/scheduler.hpp>
#include <weft/task.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <variant>

namespace {

// Raises `max` to at least `value`.
void raise_to(std::atomic<int>& max, int value) {
    int seen = max.load();
    while (seen < value && !max.compare_exchange_weak(seen, value)) {
    }
}

} // namespace

TEST_CASE("a failing errgroup member cancels the others and wait rethrows after all finished") {
    weft::scheduler s(2);
    constexpr int k_waiters = 50;
    weft::channel<int> never(0); // nobody sends: only cancellation ends the waits
    std::atomic<int> saw_cancelled{0};
    std::atomic<int> finished{0};
    auto outer = [&]() -> weft::task<void> {
        weft::errgroup g;
        for (int i = 0; i < k_waiters; ++i)
            g.go([&](weft::context ctx) -> weft::task<void> {
                weft::recv_result<int> r = co_await never.async_recv(ctx);
                if (r.status() == weft::status::cancelled)
                    ++saw_cancelled;
                ++finished;
            });
        g.go([&](weft::context) -> weft::task<void> {
            ++finished;
            throw std::runtime_error("member failed");
            co_return;
        });
        co_await g.wait();
    };
    REQUIRE_THROWS_WITH(weft::sync_wait(s, outer()), "member failed");
    CHECK(finished == k_waiters + 1);
    CHECK(saw_cancelled == k_waiters);
}

TEST_CASE("errgroup keeps the first error and gives its system_error code as the cause") {
    weft::scheduler s(2);
    weft::errgroup g(s);
    std::atomic<int> finished{0};
    // The second failure can only happen after the first cancelled the context.
    g.go([&](weft::context ctx) -> weft::task<void> {
        co_await ctx.done().async_recv();
        ++finished;
        throw std::runtime_error("second");
    });
    g.go([&](weft::context) {
        ++finished;
        throw std::system_error(std::make_error_code(std::errc::io_error), "first");
    });
    bool caught_first = false;
    try {
        g.wait_blocking();
    } catch (const std::system_error& e) {
        caught_first = e.code() == std::errc::io_error;
    }
    CHECK(caught_first);
    CHECK(finished == 2);
    CHECK(g.context().err() == weft::context_errc::cancelled);
    CHECK(g.context().cause() == std::errc::io_error);
    // The group is spent: waiting again reports the same outcome.
    CHECK_THROWS_AS(g.wait_blocking(), std::system_error);
}

TEST_CASE("errgroup members that all succeed leave wait quiet and the context cancelled") {
    weft::scheduler s(2);
    std::atomic<std::int64_t> sum{0};
    weft::errgroup g(s);
    for (int i = 1; i <= 100; ++i) {
        g.go([&, i](weft::context ctx) -> weft::task<void> {
            if (!ctx.cancelled()) // nobody failed: never cancelled while members run
                sum += i;
            co_return;
        });
        g.go([&](weft::context) { sum += 1000; }); // a callable returning void
    }
    CHECK_FALSE(g.context().cancelled());
    CHECK_NOTHROW(weft::sync_wait(s, g.wait()));
    CHECK(sum == 5050 + 100 * 1000);
    CHECK(g.context().err() == weft::context_errc::cancelled); // as Go's Wait does
}

TEST_CASE("cancelling the parent context cancels an errgroup's members") {
    weft::scheduler s(2);
    auto [parent, cancel_parent] = weft::with_cancel(weft::background());
    weft::channel<int> never(0);
    weft::channel<int> started(64);
    std::atomic<int> saw_cancelled{0};
    constexpr int k_members = 20;
    weft::errgroup g(parent, s);
    for (int i = 0; i < k_members; ++i)
        g.go([&](weft::context ctx) -> weft::task<void> {
            co_await started.async_send(1);
            if ((co_await never.async_recv(ctx)).status() == weft::status::cancelled)
                ++saw_cancelled;
        });
    for (int i = 0; i < k_members; ++i)
        CHECK(started.recv() == 1); // every member is running before the parent is cancelled
    CHECK_FALSE(g.context().cancelled());
    cancel_parent();
    CHECK_NOTHROW(g.wait_blocking()); // members returned normally: no error
    CHECK(saw_cancelled == k_members);
    CHECK(g.context().err() == weft::context_errc::cancelled);
}

TEST_CASE("errgroup set_limit is never exceeded, with go from a thread and async_go in a task") {
    constexpr int k_limit = 3;
    weft::scheduler s(4);
    for (int round = 0; round < weft_test::stress_rounds(); ++round) {
        std::atomic<int> running{0};
        std::atomic<int> max_running{0};
        std::atomic<int> ran{0};
        auto member = [&](weft::context) -> weft::task<void> {
            const int now = ++running;
            raise_to(max_running, now);
            co_await weft::yield();
            co_await weft::yield();
            --running;
            ++ran;
        };
        {
            weft::errgroup g(s);
            g.set_limit(k_limit);
            for (int i = 0; i < 200; ++i)
                g.go(member);
            g.wait_blocking();
        }
        auto in_task = [&]() -> weft::task<void> {
            weft::errgroup g;
            g.set_limit(k_limit);
            for (int i = 0; i < 200; ++i)
                co_await g.async_go(member);
            co_await g.wait();
        };
        weft::sync_wait(s, in_task());
        CHECK(ran == 400);
        CHECK(running == 0);
        CHECK(max_running <= k_limit);
        CHECK(max_running >= 1);
    }
}

TEST_CASE("errgroup try_go refuses past the limit and async_go waits for a token") {
    weft::scheduler s(2);
    weft::channel<int> gate(0);
    weft::channel<int> started(8);
    std::atomic<int> ran{0};
    auto member = [&](weft::context) -> weft::task<void> {
        co_await started.async_send(1);
        (void)co_await gate.async_recv();
        ++ran;
    };
    weft::errgroup g(s);
    g.set_limit(2);
    CHECK(g.try_go(member));
    CHECK(g.try_go(member));
    CHECK_FALSE(g.try_go(member)); // both tokens are held: the members wait on the gate
    CHECK_THROWS_AS(g.set_limit(5), weft::sync_error); // members running
    CHECK(started.recv() == 1);
    CHECK(started.recv() == 1);
    // Lets one member end; async_go then gets its token and starts a third.
    CHECK(gate.send(1));
    auto third = [&]() -> weft::task<void> { co_await g.async_go(member); };
    weft::sync_wait(s, third());
    CHECK(started.recv() == 1);
    CHECK(ran == 1);
    CHECK_FALSE(g.try_go(member)); // two running again
    gate.close();
    g.wait_blocking();
    CHECK(ran == 3);
    CHECK(g.try_go(member)); // all tokens back (the gate is closed: it ends at once)
    g.wait_blocking();
    CHECK(ran == 4);
    CHECK_THROWS_AS(g.set_limit(0), weft::sync_error);
}

TEST_CASE("an errgroup of 10000 members runs each exactly once") {
    weft::scheduler s(2);
    constexpr int k_members = 10000;
    std::vector<std::atomic<int>> hits(k_members);
    auto outer = [&]() -> weft::task<void> {
        weft::errgroup g;
        for (int i = 0; i < k_members; ++i)
            g.go([&hits, i](weft::context) -> weft::task<void> {
                ++hits[static_cast<std::size_t>(i)];
                co_return;
            });
        co_await g.wait();
    };
    weft::sync_wait(s, outer());
    CHECK(std::all_of(hits.begin(), hits.end(), [](const std::atomic<int>& h) { return h == 1; }));
}

TEST_CASE("destroying an errgroup with members running cancels its context and joins them") {
    weft::scheduler s(2);
    constexpr int k_members = 10;
    std::atomic<int> finished{0};
    weft::channel<int> gate(0); // the members wait here, not on their context
    weft::channel<int> started(16);
    std::thread opener;
    {
        weft::errgroup g(s);
        for (int i = 0; i < k_members; ++i)
            g.go([&](weft::context) -> weft::task<void> {
                co_await started.async_send(1);
                (void)co_await gate.async_recv();
                ++finished;
            });
        for (int i = 0; i < k_members; ++i)
            CHECK(started.recv() == 1);
        // Opens the gate only once the group's context is cancelled, i.e. from inside the
        // destructor: the destructor must then still wait for every member.
        opener = std::thread([&gate, ctx = g.context()] {
            (void)ctx.done().recv();
            gate.close();
        });
        CHECK(finished == 0);
    }
    CHECK(finished == k_members);
    opener.join();
}
