// Behaviours of weft::wait_group, after Go's sync.WaitGroup.
#include "catch_compat.hpp"

#include <weft/sync.hpp>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

TEST_CASE("wait returns at once when the counter is zero") {
    weft::wait_group wg;
    wg.wait();
    CHECK(wg.wait_for(0ms));
    CHECK(wg.count() == 0);
}

TEST_CASE("wait returns only after every done") {
    constexpr int workers = 8;
    weft::wait_group wg;
    std::atomic<int> finished{0};
    wg.add(workers);
    std::vector<std::thread> threads;
    for (int i = 0; i < workers; ++i)
        threads.emplace_back([&] {
            ++finished;
            wg.done();
        });
    wg.wait();
    CHECK(finished == workers); // every done() came after its increment
    for (auto& t : threads)
        t.join();
}

TEST_CASE("every waiter is released when the counter drops to zero") {
    weft::wait_group wg;
    wg.add(1);
    std::atomic<int> released{0};
    std::vector<std::thread> waiters;
    for (int i = 0; i < 4; ++i)
        waiters.emplace_back([&] {
            wg.wait();
            ++released;
        });
    std::this_thread::sleep_for(5ms); // pressure only: let them block first
    CHECK(released == 0);
    wg.done();
    for (auto& t : waiters)
        t.join();
    CHECK(released == 4);
}

TEST_CASE("wait_for times out while work is outstanding") {
    weft::wait_group wg;
    wg.add(1);
    const auto start = std::chrono::steady_clock::now();
    CHECK_FALSE(wg.wait_for(10ms));
    CHECK(std::chrono::steady_clock::now() - start >= 10ms);
    wg.done();
    CHECK(wg.wait_for(10ms));
}

TEST_CASE("a negative counter throws sync_error and leaves the counter unchanged") {
    weft::wait_group wg;
    wg.add(1);
    REQUIRE_THROWS_AS(wg.add(-2), weft::sync_error);
    REQUIRE_THROWS_WITH(wg.add(-2), "weft: negative wait_group counter");
    CHECK(wg.count() == 1);
    wg.done();
    REQUIRE_THROWS_AS(wg.done(), weft::sync_error);
    CHECK(wg.count() == 0);
}

TEST_CASE("a wait_group can be reused after reaching zero") {
    weft::wait_group wg;
    for (int round = 0; round < 3; ++round) {
        wg.add(2);
        std::thread a([&] { wg.done(); }), b([&] { wg.done(); });
        wg.wait();
        a.join();
        b.join();
        CHECK(wg.count() == 0);
    }
}
