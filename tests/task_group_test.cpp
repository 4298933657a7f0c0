// Behaviours of weft::task_group, weft::parallel_for and wait_group::async_wait: every member
// runs, waiting inside a task frees the worker (so it works on one worker), the first
// exception comes back after all members finished, every index is visited exactly once.
#include "catch_compat.hpp"

#include <weft/sync.hpp>
#include <weft/task_group.hpp>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

TEST_CASE("a task_group waited on inside a task runs every member, even on one worker") {
    // One worker: the waiting task must suspend, or its members could never run.
    weft::scheduler s(1);
    std::atomic<int> ran{0};
    auto outer = [&]() -> weft::task<int> {
        weft::task_group g;
        for (int i = 0; i < 1000; ++i)
            g.spawn([&] { ++ran; });
        for (int i = 0; i < 10; ++i)
            g.spawn([&]() -> weft::task<void> {
                co_await weft::yield();
                ++ran;
            });
        co_await g.wait();
        co_return ran.load();
    };
    CHECK(weft::sync_wait(s, outer()) == 1010);
}

TEST_CASE("task_group::wait rethrows the first exception after every member finished") {
    weft::scheduler s(2);
    std::atomic<int> finished{0};
    auto outer = [&]() -> weft::task<void> {
        weft::task_group g;
        for (int i = 0; i < 100; ++i)
            g.spawn([&, i] {
                ++finished;
                if (i % 10 == 3)
                    throw std::runtime_error("member failed");
            });
        co_await g.wait();
    };
    REQUIRE_THROWS_WITH(weft::sync_wait(s, outer()), "member failed");
    CHECK(finished == 100);
}

TEST_CASE("a task_group can be waited on from a plain thread and reused") {
    weft::scheduler s(2);
    weft::task_group g(s);
    std::atomic<int> ran{0};
    for (int round = 1; round <= 3; ++round) {
        for (int i = 0; i < 100; ++i)
            g.spawn([&] { ++ran; });
        weft::sync_wait(s, g.wait());
        CHECK(ran == 100 * round);
    }
}

TEST_CASE("wait_group::async_wait suspends tasks until a thread brings the count to zero") {
    weft::scheduler s(2);
    weft::wait_group work, waiters;
    work.add(1);
    waiters.add(20);
    std::atomic<int> released{0};
    for (int i = 0; i < 20; ++i)
        s.spawn([&]() -> weft::task<void> {
            co_await work.async_wait();
            ++released;
            waiters.done();
        });
    CHECK(released == 0); // nothing can pass before done(): the count is 1
    work.done();
    waiters.wait();
    CHECK(released == 20);
}

TEST_CASE("parallel_for visits every index exactly once") {
    weft::scheduler s(2);
    for (std::size_t n : {0u, 1u, 7u, 100u, 10000u}) {
        INFO("n = " << n);
        std::vector<std::atomic<int>> visits(n + 5);
        weft::sync_wait(s, weft::parallel_for(5, 5 + n, [&](std::size_t i) { ++visits[i]; }));
        int wrong = 0;
        for (std::size_t i = 0; i < visits.size(); ++i)
            wrong += visits[i].load() != (i >= 5 ? 1 : 0);
        CHECK(wrong == 0);
    }
}

TEST_CASE("parallel_for rethrows an exception from its body") {
    weft::scheduler s(2);
    auto body = [](std::size_t i) {
        if (i == 42)
            throw std::out_of_range("index 42");
    };
    REQUIRE_THROWS_WITH(weft::sync_wait(s, weft::parallel_for(0, 100, body)), "index 42");
}
