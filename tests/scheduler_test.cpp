// Behaviours of weft::scheduler: spawned work runs (callables, tasks, callables returning
// tasks), exceptions of fire-and-forget work reach the handler, idle workers steal, an idle
// scheduler parks, and destroying a scheduler with work queued or suspended frees everything.
#include "catch_compat.hpp"

#include <weft/select.hpp>
#include <weft/sync.hpp>
#include <weft/task.hpp>
#include <weft/task_group.hpp>
#include <weft/time.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sys/resource.h>
#endif

using namespace std::chrono_literals;

TEST_CASE("spawn runs callables, tasks and callables returning tasks") {
    weft::scheduler s(2);
    weft::wait_group wg;
    std::atomic<int> ran{0};
    constexpr int each = 1000;
    wg.add(3 * each);
    for (int i = 0; i < each; ++i) {
        s.spawn([&] {
            ++ran;
            wg.done();
        });
        s.spawn([&]() -> weft::task<void> {
            ++ran;
            wg.done();
            co_return;
        });
        s.spawn([](std::atomic<int>& r, weft::wait_group& w) -> weft::task<void> {
            ++r;
            w.done();
            co_return;
        }(ran, wg));
    }
    wg.wait();
    CHECK(ran == 3 * each);
}

TEST_CASE("go runs work on the default scheduler") {
    weft::wait_group wg;
    std::atomic<int> ran{0};
    wg.add(100);
    for (int i = 0; i < 100; ++i)
        weft::go([&] {
            ++ran;
            wg.done();
        });
    wg.wait();
    CHECK(ran == 100);
    CHECK(weft::default_scheduler().size() >= 1);
}

TEST_CASE("go inside a task runs on that task's scheduler") {
    const bool started_before = weft::detail::default_scheduler_started.load();
    weft::scheduler s(1);
    weft::wait_group wg;
    std::atomic<int> on_s{0};
    std::atomic<int> ran{0};
    constexpr int n = 100;
    wg.add(n);
    s.spawn([&] {
        for (int i = 0; i < n; ++i)
            weft::go([&] {
                ++ran;
                if (weft::scheduler::current() == &s)
                    ++on_s;
                wg.done();
            });
    });
    wg.wait();
    CHECK(ran == n);
    CHECK(on_s == n);
    // Each ctest entry is its own process, where nothing else starts the default scheduler;
    // run with the whole file, an earlier test may have started it.
    if (!started_before)
        CHECK_FALSE(weft::detail::default_scheduler_started.load());
}

TEST_CASE(
    "a capturing coroutine lambda given to spawn or go or a task_group lives while it waits") {
    weft::scheduler s(1);
    weft::channel<int> ch(0);
    weft::wait_group wg;
    std::atomic<int> intact{0};
    std::atomic<long> received{0};
    constexpr int each = 50;
    weft::task_group group(s);
    wg.add(3 * each);
    for (int i = 0; i < each; ++i) {
        // The captures live only in the closure object handed over: nothing else keeps them.
        auto make = [&, i] {
            return [&, text = std::string(64, static_cast<char>('a' + i % 26)),
                    boxed = std::make_shared<int>(i), c = ch, i]() mutable -> weft::task<void> {
                co_await weft::yield();
                auto v = co_await c.async_recv(); // suspends until main sends
                if (v)
                    received += *v;
                if (text == std::string(64, static_cast<char>('a' + i % 26)) && *boxed == i)
                    ++intact;
                wg.done();
            };
        };
        s.spawn(make());
        group.spawn(make());
        s.spawn([&, make] { weft::go(make()); }); // go inside a task: on s
    }
    for (int i = 1; i <= 3 * each; ++i)
        REQUIRE(ch.send(i));
    wg.wait();
    CHECK(intact == 3 * each);
    CHECK(received == 3L * each * (3 * each + 1) / 2);
    CHECK_NOTHROW(weft::sync_wait(s, group.wait()));
}

TEST_CASE("an exception escaping spawned work goes to the handler, and the scheduler goes on") {
    weft::scheduler s(2);
    std::atomic<int> reported{0};
    std::atomic<bool> message_ok{true};
    weft::wait_group wg;
    s.on_unhandled_exception([&](std::exception_ptr e) {
        try {
            std::rethrow_exception(e);
        } catch (const std::runtime_error& err) {
            if (std::string(err.what()) != "fire and forget")
                message_ok = false;
        }
        ++reported;
        wg.done();
    });
    wg.add(20);
    for (int i = 0; i < 10; ++i) {
        s.spawn([]() { throw std::runtime_error("fire and forget"); });
        s.spawn([]() -> weft::task<void> {
            throw std::runtime_error("fire and forget");
            co_return;
        });
    }
    wg.wait();
    CHECK(reported == 20);
    CHECK(message_ok);
    CHECK(weft::sync_wait(s, []() -> weft::task<int> { co_return 3; }()) == 3);
}

TEST_CASE("an idle worker steals work queued on a busy one") {
    // Both tasks are queued on one worker's deque (when_all pushes them there). The first to run
    // spins until the second has started: that can only happen if another worker steals it.
    weft::scheduler s(2);
    auto outer = []() -> weft::task<bool> {
        std::atomic<int> started{0};
        std::atomic<bool> met{false};
        auto meet = [&]() -> weft::task<void> {
            started.fetch_add(1);
            const auto give_up = std::chrono::steady_clock::now() + 10s; // a hang guard only
            while (started.load() < 2 && std::chrono::steady_clock::now() < give_up)
                std::this_thread::yield();
            if (started.load() == 2)
                met = true;
            co_return;
        };
        co_await weft::when_all(meet(), meet());
        co_return met.load();
    };
    CHECK(weft::sync_wait(s, outer()));
}

TEST_CASE("work spawned from outside threads is spread over all workers") {
    weft::scheduler s(2);
    std::atomic<int> started{0};
    std::atomic<int> met{0};
    weft::wait_group wg;
    wg.add(2);
    for (int i = 0; i < 2; ++i)
        s.spawn([&] {
            started.fetch_add(1);
            const auto give_up = std::chrono::steady_clock::now() + 10s; // a hang guard only
            while (started.load() < 2 && std::chrono::steady_clock::now() < give_up)
                std::this_thread::yield();
            met += started.load() == 2;
            wg.done();
        });
    wg.wait();
    CHECK(met == 2);
}

#if defined(__linux__)
TEST_CASE("an idle scheduler parks its workers and uses no CPU") {
    weft::scheduler s(2);
    // Let it run something first, so every worker has been busy and gone idle again.
    CHECK(weft::sync_wait(s, []() -> weft::task<int> { co_return 1; }()) == 1);
    std::this_thread::sleep_for(50ms); // past the brief search before parking
    auto cpu = [] {
        rusage usage{};
        getrusage(RUSAGE_SELF, &usage);
        return std::chrono::seconds(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
               std::chrono::microseconds(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
    };
    const auto before = cpu();
    std::this_thread::sleep_for(200ms); // the measured window, not synchronization
    const auto used = cpu() - before;
    CHECK(used < 20ms); // two spinning workers would use ~400 ms
}
#endif

TEST_CASE("destroying a scheduler with work queued and suspended frees every frame") {
    // Each frame owns a token; when the frame is destroyed (run or not) the token goes too.
    auto tokens = std::make_shared<int>(0);
    std::atomic<bool> release{false};
    std::atomic<bool> blocker_running{false};
    {
        weft::scheduler s(1);
        // Occupies the only worker until the main thread is about to destroy the scheduler.
        s.spawn([&] {
            blocker_running = true;
            while (!release.load())
                std::this_thread::yield();
        });
        while (!blocker_running.load())
            std::this_thread::yield();
        for (int i = 0; i < 1000; ++i)
            s.spawn([token = tokens]() -> weft::task<void> { co_return; });
        // A task that suspends in a when_all whose children never got to run.
        s.spawn([token = tokens]() -> weft::task<void> {
            co_await weft::when_all(
                [](std::shared_ptr<int> /*held by the frame*/) -> weft::task<void> {
                    co_return;
                }(token));
        });
        CHECK(tokens.use_count() > 1000);
        release = true;
    } // the worker finishes the blocker and whatever it picks up next, then stops
    CHECK(tokens.use_count() == 1);
}

TEST_CASE("sync_wait reports a scheduler destroyed before its task finished") {
    auto s = std::make_unique<weft::scheduler>(1);
    std::atomic<bool> started{false};
    std::exception_ptr error;
    std::thread waiter([&, &sched = *s] {
        try {
            // Never finishes on its own: it yields until the scheduler stops under it.
            weft::sync_wait(sched, [&]() -> weft::task<int> {
                started = true;
                for (;;)
                    co_await weft::yield();
            }());
        } catch (...) {
            error = std::current_exception();
        }
    });
    while (!started.load()) // the task runs, so sync_wait has spawned it
        std::this_thread::yield();
    s.reset(); // stops after the task's current step and destroys its frame
    waiter.join();
    REQUIRE(error);
    CHECK_THROWS_AS(std::rethrow_exception(error), weft::scheduler_stopped);
}

TEST_CASE("the deadlock report names a task waiting on a channel nobody will send to") {
    weft::scheduler s(2);
    weft::channel<weft::deadlock_report> reports(4);
    s.report_deadlocks([&](const weft::deadlock_report& r) { (void)reports.try_send(r); }, 20ms);
    weft::channel<int> never(0);
    auto stuck = [&]() -> weft::task<void> { (void)co_await never.async_recv(); };
    s.spawn(stuck);
    auto r = reports.recv_for(30s);
    REQUIRE(r.has_value());
    CHECK(r->receiving == 1);
    CHECK(r->tasks() == 1);
    CHECK(r->message() ==
          "weft: all tasks are asleep - deadlock! 1 task blocked: 1 receiving from a channel");
    never.close(); // lets the task finish
}

TEST_CASE("the deadlock report counts each kind of wait") {
    weft::scheduler s(1);
    weft::channel<weft::deadlock_report> reports(4);
    s.report_deadlocks([&](const weft::deadlock_report& r) { (void)reports.try_send(r); }, 20ms);
    weft::channel<int> never(0), nobody_sends(0), nobody_receives(0);
    weft::wait_group never_done;
    never_done.add(1);
    auto sends = [&]() -> weft::task<void> { (void)co_await never.async_send(1); };
    auto selects = [&]() -> weft::task<void> {
        co_await weft::async_select(weft::on_recv(nobody_sends), weft::on_send(nobody_receives, 2));
    };
    auto waits = [&]() -> weft::task<void> { co_await never_done.async_wait(); };
    s.spawn(sends);
    s.spawn(selects);
    s.spawn(waits);
    auto r = reports.recv_for(30s);
    REQUIRE(r.has_value());
    CHECK(r->sending == 1);
    CHECK(r->selecting == 1);
    CHECK(r->wait_groups == 1);
    CHECK(r->receiving == 0);
    CHECK(r->message() == "weft: all tasks are asleep - deadlock! 3 tasks blocked: 1 sending on a "
                          "channel, 1 in select, 1 waiting on a wait_group");
    never.close();
    nobody_sends.close();
    never_done.done();
}

TEST_CASE("no deadlock is reported while a sleeping task will still wake the others") {
    // The receiver waits far longer than the grace period, but a timer is pending: the
    // sleeper will send when it wakes, so this is no deadlock.
    weft::scheduler s(1);
    std::atomic<int> reported{0};
    s.report_deadlocks([&](const weft::deadlock_report&) { ++reported; }, 5ms);
    weft::channel<int> ch(0);
    auto receiver = [&]() -> weft::task<int> {
        auto v = co_await ch.async_recv();
        co_return v.value_or(-1);
    };
    auto sleeper = [&]() -> weft::task<void> {
        co_await weft::sleep_for(100ms);
        co_await ch.async_send(5);
    };
    auto both = [&]() -> weft::task<int> {
        auto [v, none] = co_await weft::when_all(receiver(), sleeper());
        (void)none;
        co_return v;
    };
    CHECK(weft::sync_wait(s, both()) == 5);
    CHECK(reported == 0);
}
