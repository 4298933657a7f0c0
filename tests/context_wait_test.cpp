// Sleeps and wait_group waits given a context (time.hpp, sync.hpp + context.hpp): a sleep
// returns ok after the full sleep or cancelled as soon as the context is done; a wait_group wait
// returns ok when the counter reached zero or cancelled, its waiter unlinked. Thread and task
// forms, cancelled while waiting and done already; completion raced against cancellation; and
// 100,000 waiting tasks (channel receives and sleeps) all resumed by one cancel.
#include "catch_compat.hpp"
#include "test_support.hpp"

#include <weft/channel.hpp>
#include <weft/context.hpp>
#include <weft/scheduler.hpp>
#include <weft/sync.hpp>
#include <weft/task.hpp>
#include <weft/time.hpp>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

constexpr bool k_tsan = weft_test::k_under_tsan;

// The "cancel 100k waiting tasks" tests: 100,000, or 10,000 under ThreadSanitizer (which
// tracks every frame's memory and would take minutes).
constexpr int k_many = k_tsan ? 10'000 : 100'000;

int as_int(weft::status s) {
    return static_cast<int>(s);
}

} // namespace

// --- sleep ---------------------------------------------------------------------------------

TEST_CASE("a task's sleep_for(ctx) returns cancelled when the context is cancelled") {
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    weft::channel<weft::status> result(1);
    std::atomic<bool> started{false};
    weft::scheduler s(2);
    s.spawn([&, ctx = ctx]() -> weft::task<void> {
        started = true;
        (void)result.try_send(co_await weft::sleep_for(ctx, 1h));
    });
    while (!started)
        std::this_thread::yield();
    cancel();
    CHECK(result.recv() == weft::status::cancelled); // an hour early: the timer did not end it
}

TEST_CASE("a task's sleep_for(ctx) returns ok after the full sleep") {
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    weft::channel<weft::status> result(1);
    weft::scheduler s(1);
    s.spawn([&, ctx = ctx]() -> weft::task<void> {
        (void)result.try_send(co_await weft::sleep_for(ctx, 2ms));
    });
    CHECK(result.recv() == weft::status::ok);
    CHECK(!ctx.cancelled());
    cancel();
}

TEST_CASE("sleep with a context done already: cancelled, unless the deadline passed too") {
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    cancel();
    weft::channel<weft::status> result(4);
    weft::scheduler s(1);
    s.spawn([&, ctx = ctx]() -> weft::task<void> {
        (void)result.try_send(co_await weft::sleep_for(ctx, 1h));
        (void)result.try_send(co_await weft::sleep_for(ctx, 0ms));
        (void)result.try_send(co_await weft::sleep_until(ctx, std::chrono::steady_clock::now()));
    });
    CHECK(result.recv() == weft::status::cancelled);
    CHECK(result.recv() == weft::status::ok);
    CHECK(result.recv() == weft::status::ok);
    CHECK(weft::this_thread::sleep_for(ctx, 1h) == weft::status::cancelled);
    CHECK(weft::this_thread::sleep_for(ctx, -1s) == weft::status::ok);
}

TEST_CASE("a sleep_for(ctx) ends with the context's deadline") {
    auto [ctx, cancel] = weft::with_timeout(weft::background(), 2ms);
    CHECK(weft::this_thread::sleep_for(ctx, 1h) == weft::status::cancelled);
    CHECK(ctx.err() == weft::context_errc::deadline_exceeded);
    auto [ctx2, cancel2] = weft::with_timeout(weft::background(), 2ms);
    weft::channel<weft::status> result(1);
    weft::scheduler s(1);
    s.spawn([&, ctx = ctx2]() -> weft::task<void> {
        (void)result.try_send(co_await weft::sleep_for(ctx, 1h));
    });
    CHECK(result.recv() == weft::status::cancelled);
    CHECK(ctx2.err() == weft::context_errc::deadline_exceeded);
    cancel();
    cancel2();
}

TEST_CASE("a thread's this_thread::sleep_for(ctx) returns cancelled when cancelled, else ok") {
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    std::atomic<int> result{-1};
    std::thread sleeper([&, ctx = ctx] { result = as_int(weft::this_thread::sleep_for(ctx, 1h)); });
    cancel();
    sleeper.join();
    CHECK(result == as_int(weft::status::cancelled));
    auto [live, cancel_live] = weft::with_cancel(weft::background());
    CHECK(weft::this_thread::sleep_for(live, 1ms) == weft::status::ok);
    CHECK(weft::this_thread::sleep_for(weft::background(), 1ms) == weft::status::ok);
    cancel_live();
}

// --- wait_group ----------------------------------------------------------------------------

TEST_CASE("a thread's wg.wait(ctx) returns cancelled when cancelled and leaves no waiter") {
    weft::wait_group wg;
    wg.add(1);
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    std::atomic<int> result{-1};
    std::thread waiting([&, ctx = ctx] { result = as_int(wg.wait(ctx)); });
    cancel();
    waiting.join();
    CHECK(result == as_int(weft::status::cancelled));
    CHECK(wg.count() == 1);
    wg.done(); // at zero: a waiter left linked would be claimed here, on a dead stack
    CHECK(wg.count() == 0);
    CHECK(wg.wait(ctx) == weft::status::ok); // zero: ok at once, even though ctx is done
}

TEST_CASE("a thread's wg.wait(ctx) returns ok when the counter reaches zero") {
    weft::wait_group wg;
    wg.add(1);
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    std::thread worker([&] { wg.done(); });
    CHECK(wg.wait(ctx) == weft::status::ok);
    CHECK(wg.count() == 0);
    worker.join();
    cancel();
}

TEST_CASE("a task's wg.async_wait(ctx) returns cancelled when cancelled while parked") {
    weft::channel<weft::deadlock_report> reports(4);
    weft::wait_group wg;
    wg.add(1);
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    weft::channel<weft::status> result(2);
    weft::scheduler s(2); // declared last: destroyed first, it joins its tasks
    // The report proves the task is parked on the wait group before we cancel.
    s.report_deadlocks([&](const weft::deadlock_report& r) { (void)reports.try_send(r); }, 5ms);
    s.spawn([&, ctx = ctx]() -> weft::task<void> {
        (void)result.try_send(co_await wg.async_wait(ctx));
    });
    auto report = reports.recv_for(30s);
    REQUIRE(report.has_value());
    CHECK(report->wait_groups == 1);
    cancel();
    CHECK(result.recv() == weft::status::cancelled);
    wg.done(); // no waiter left linked
    s.spawn([&, ctx = ctx]() -> weft::task<void> {
        (void)result.try_send(co_await wg.async_wait(ctx)); // zero: ok, ctx done or not
    });
    CHECK(result.recv() == weft::status::ok);
}

TEST_CASE("a task's wg.async_wait(ctx) returns ok when the counter reaches zero") {
    weft::wait_group wg;
    wg.add(1);
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    weft::channel<weft::status> result(1);
    weft::scheduler s(2);
    s.spawn([&, ctx = ctx]() -> weft::task<void> {
        (void)result.try_send(co_await wg.async_wait(ctx));
    });
    wg.done();
    CHECK(result.recv() == weft::status::ok);
    cancel();
}

// Waiters (threads and tasks) wait on one wait group, each with its own context; one thread
// brings the counter to zero and another cancels the contexts, all at random moments. Each
// waiter ends exactly once: ok only when the counter is zero, cancelled only when its context is
// done; afterwards the group is reused, which would touch any waiter left linked.
TEST_CASE("wait_group completion racing cancellation: each waiter ends once, truthfully") {
    constexpr int k_threads = 3;
    constexpr int k_tasks = 3;
    constexpr int k_waiters = k_threads + k_tasks;
    weft::scheduler s(2);
    std::mt19937 rng(17);
    for (int round = 0; round < 20 * weft_test::stress_rounds(); ++round) {
        weft::wait_group wg;
        wg.add(1);
        std::vector<weft::cancellable_context> contexts;
        for (int i = 0; i < k_waiters; ++i)
            contexts.push_back(weft::with_cancel(weft::background()));
        std::atomic<int> ok{0}, cancelled{0}, untruthful{0};
        weft::wait_group finished;
        finished.add(k_waiters);
        auto account = [&](weft::status st, const weft::context& ctx) {
            if (st == weft::status::ok) {
                ++ok;
                untruthful += wg.count() != 0 ? 1 : 0;
            } else if (st == weft::status::cancelled) {
                ++cancelled;
                untruthful += ctx.cancelled() ? 0 : 1;
            } else {
                ++untruthful;
            }
            finished.done();
        };
        std::vector<std::thread> threads;
        for (int i = 0; i < k_threads; ++i)
            threads.emplace_back([&, i] {
                const weft::context& ctx = contexts[static_cast<std::size_t>(i)].ctx;
                account(wg.wait(ctx), ctx);
            });
        for (int i = k_threads; i < k_waiters; ++i)
            s.spawn([&, i]() -> weft::task<void> {
                const weft::context& ctx = contexts[static_cast<std::size_t>(i)].ctx;
                account(co_await wg.async_wait(ctx), ctx);
            });
        const unsigned done_at = rng() % 200000;
        const unsigned cancel_at = rng() % 200000;
        std::thread doer([&] {
            for (unsigned spin = done_at; spin > 0; --spin)
                std::atomic_signal_fence(std::memory_order_seq_cst);
            wg.done();
        });
        for (unsigned spin = cancel_at; spin > 0; --spin)
            std::atomic_signal_fence(std::memory_order_seq_cst);
        for (auto& c : contexts)
            c.cancel();
        finished.wait();
        doer.join();
        for (auto& t : threads)
            t.join();
        CHECK(ok + cancelled == k_waiters);
        CHECK(untruthful == 0);
        wg.add(1); // reuse: a waiter left linked would be claimed when it drops to zero again
        wg.done();
        CHECK(wg.count() == 0);
    }
}

// --- many waiting tasks --------------------------------------------------------------------

TEST_CASE("cancelling a parent resumes 100k tasks waiting in async_recv with cancelled") {
    weft::channel<weft::deadlock_report> reports(16);
    const weft::cancellable_context root = weft::with_cancel(weft::background());
    const weft::context& parent = root.ctx;
    weft::channel<int> never(0);
    std::atomic<int> cancelled{0}, other{0};
    weft::wait_group finished;
    finished.add(k_many);
    weft::scheduler s(2); // declared last: destroyed first, it joins its tasks
    s.report_deadlocks([&](const weft::deadlock_report& r) { (void)reports.try_send(r); }, 5ms);
    for (int i = 0; i < k_many; ++i)
        s.spawn([&]() -> weft::task<void> {
            auto [ctx, cancel_child] = weft::with_cancel(parent); // a child of the parent
            weft::recv_result<int> r = co_await never.async_recv(ctx);
            if (r.status() == weft::status::cancelled)
                ++cancelled;
            else
                ++other;
            cancel_child();
            finished.done();
        });
    // Wait until the report shows every task parked in its receive.
    for (;;) {
        auto report = reports.recv_for(60s);
        REQUIRE(report.has_value());
        if (report->receiving == static_cast<std::size_t>(k_many))
            break;
    }
    root.cancel();
    finished.wait();
    CHECK(cancelled == k_many);
    CHECK(other == 0);
    CHECK(never.try_send(1) == weft::status::not_ready); // no receiver left linked
}

TEST_CASE("cancelling a parent resumes 100k tasks in sleep_for(ctx, 1h) with cancelled") {
    const weft::cancellable_context root = weft::with_cancel(weft::background());
    const weft::context& parent = root.ctx;
    std::atomic<int> started{0}, cancelled{0}, other{0};
    weft::wait_group finished;
    finished.add(k_many);
    weft::scheduler s(2); // declared last: destroyed first, it joins its tasks
    for (int i = 0; i < k_many; ++i)
        s.spawn([&]() -> weft::task<void> {
            started.fetch_add(1, std::memory_order_relaxed);
            const weft::status st = co_await weft::sleep_for(parent, 1h);
            if (st == weft::status::cancelled)
                ++cancelled;
            else
                ++other;
            finished.done();
        });
    while (started.load(std::memory_order_relaxed) < k_many)
        std::this_thread::yield();
    root.cancel();
    finished.wait();
    CHECK(cancelled == k_many);
    CHECK(other == 0);
}
