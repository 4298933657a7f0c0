// weft::semaphore: weighted permits, FIFO grants (a large request is not passed by small ones),
// a cancelled first waiter lets the ones behind it in, and cancellation raced against grants
// never leaks or doubles a permit. Threads and tasks wait in the same queue.
#include "catch_compat.hpp"
#include "test_support.hpp"

#include <weft/context.hpp>
#include <weft/scheduler.hpp>
#include <weft/semaphore.hpp>
#include <weft/sync.hpp>
#include <weft/task.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

using weft_test::eventually;

// Who was granted, in the order they returned.
struct grant_log {
    std::mutex m;
    std::vector<int> order;
    std::atomic<int> finished{0};
    void add(int who) {
        {
            std::lock_guard lock(m);
            order.push_back(who);
        }
        ++finished;
    }
};

} // namespace

TEST_CASE("try_acquire takes free permits and release gives them back") {
    weft::semaphore sem(3);
    CHECK(sem.try_acquire(2));
    CHECK(sem.held() == 2);
    CHECK_FALSE(sem.try_acquire(2));
    CHECK(sem.try_acquire(1));
    CHECK_FALSE(sem.try_acquire(1));
    CHECK(sem.try_acquire(0));
    sem.release(3);
    CHECK(sem.held() == 0);
    CHECK(sem.try_acquire(3));
    sem.release(3);
}

TEST_CASE("misuse of a semaphore throws sync_error and changes nothing") {
    CHECK_THROWS_AS(weft::semaphore(-1), weft::sync_error);
    weft::semaphore sem(2);
    CHECK_THROWS_AS(sem.release(1), weft::sync_error);
    REQUIRE(sem.try_acquire(1));
    CHECK_THROWS_AS(sem.release(2), weft::sync_error);
    CHECK(sem.held() == 1);
    CHECK_THROWS_AS(sem.try_acquire(-1), weft::sync_error);
    // Larger than the size and nothing can end the wait: it would wait for ever.
    CHECK_THROWS_AS(sem.acquire(3), weft::sync_error);
    CHECK_THROWS_AS(sem.acquire(weft::background(), 3), weft::sync_error);
    CHECK_THROWS_AS((void)sem.async_acquire(3), weft::sync_error);
    sem.release(1);
    CHECK(sem.held() == 0);
}

TEST_CASE("a context done already makes acquire return cancelled even when permits are free") {
    weft::semaphore sem(1);
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    cancel();
    CHECK(sem.acquire(ctx) == weft::status::cancelled);
    weft::status st = weft::status::ok;
    weft::sync_wait([](weft::semaphore& s, weft::context c, weft::status& out) -> weft::task<void> {
        out = co_await s.async_acquire(c);
    }(sem, ctx, st));
    CHECK(st == weft::status::cancelled);
    CHECK(sem.held() == 0);
    CHECK(sem.waiting() == 0);
}

TEST_CASE("a large request is served in order behind small ones and is not passed by them") {
    weft::scheduler s(2);
    weft::semaphore sem(10);
    REQUIRE(sem.try_acquire(10));
    grant_log granted;
    // A (1, a thread), BIG (10, a task), C (1, a thread) queue in this order.
    std::thread a([&] {
        sem.acquire(1);
        granted.add(1);
    });
    REQUIRE(eventually([&] { return sem.waiting() == 1; }));
    s.spawn([&]() -> weft::task<void> {
        co_await sem.async_acquire(10);
        granted.add(10);
    });
    REQUIRE(eventually([&] { return sem.waiting() == 2; }));
    std::thread c([&] {
        sem.acquire(1);
        granted.add(2);
    });
    REQUIRE(eventually([&] { return sem.waiting() == 3; }));

    // 5 free: A fits and is first; BIG does not fit, and C, though it would fit, waits behind.
    sem.release(5);
    CHECK(sem.held() == 6);
    CHECK(sem.waiting() == 2);
    CHECK_FALSE(sem.try_acquire(1)); // a newcomer does not pass the queue either
    REQUIRE(eventually([&] { return granted.finished == 1; }));

    // All 10 free: BIG takes them; C still waits.
    sem.release(6);
    CHECK(sem.held() == 10);
    CHECK(sem.waiting() == 1);
    REQUIRE(eventually([&] { return granted.finished == 2; }));

    sem.release(10);
    REQUIRE(eventually([&] { return granted.finished == 3; }));
    a.join();
    c.join();
    CHECK(granted.order == std::vector<int>{1, 10, 2});
    CHECK(sem.held() == 1);
    CHECK(sem.waiting() == 0);
}

TEST_CASE("a cancelled first waiter lets the waiters behind it that fit be granted") {
    weft::scheduler s(2);
    weft::semaphore sem(10);
    REQUIRE(sem.try_acquire(10));
    auto [big_ctx, cancel_big] = weft::with_cancel(weft::background());
    std::atomic<int> big_status{-1};
    grant_log granted;
    s.spawn([&, ctx = big_ctx]() -> weft::task<void> {
        big_status = static_cast<int>(co_await sem.async_acquire(ctx, 10));
        granted.add(10);
    });
    REQUIRE(eventually([&] { return sem.waiting() == 1; }));
    std::thread small_thread([&] {
        sem.acquire(1);
        granted.add(1);
    });
    REQUIRE(eventually([&] { return sem.waiting() == 2; }));
    s.spawn([&]() -> weft::task<void> {
        co_await sem.async_acquire(1);
        granted.add(2);
    });
    REQUIRE(eventually([&] { return sem.waiting() == 3; }));

    sem.release(2); // both small ones would fit, but BIG is first
    CHECK(sem.waiting() == 3);
    CHECK(sem.held() == 8);

    cancel_big(); // BIG leaves: the two behind it take the 2 free permits
    REQUIRE(eventually([&] { return granted.finished == 3; }));
    small_thread.join();
    CHECK(big_status == static_cast<int>(weft::status::cancelled));
    CHECK(sem.held() == 10);
    CHECK(sem.waiting() == 0);
    sem.release(10);
    CHECK(sem.try_acquire(10));
    CHECK_FALSE(sem.try_acquire(1));
}

TEST_CASE("a request larger than the size waits for its context and holds nobody up") {
    weft::scheduler s(2);
    weft::semaphore sem(2);
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    std::atomic<int> task_status{-1}, thread_status{-1};
    std::atomic<int> finished{0};
    s.spawn([&, ctx = ctx]() -> weft::task<void> {
        task_status = static_cast<int>(co_await sem.async_acquire(ctx, 5));
        ++finished;
    });
    std::thread t([&, ctx = ctx] {
        thread_status = static_cast<int>(sem.acquire(ctx, 3));
        ++finished;
    });
    // Neither is in the queue: the size can be taken and given back around them.
    for (int i = 0; i < 100; ++i) {
        CHECK(sem.waiting() == 0);
        REQUIRE(sem.try_acquire(2));
        sem.release(2);
    }
    cancel();
    REQUIRE(eventually([&] { return finished == 2; }));
    t.join();
    CHECK(task_status == static_cast<int>(weft::status::cancelled));
    CHECK(thread_status == static_cast<int>(weft::status::cancelled));
    CHECK(sem.held() == 0);
}

// Tasks and threads acquire random weights with contexts that time out after a random few
// microseconds, so the timer's cancellation races the grants. Every acquire is counted: ok or
// cancelled, never more permits in use than the size, and at the end the whole size (and no
// more) is free again with nobody left in the queue.
TEST_CASE("cancellation racing grants never leaks or doubles a permit") {
    constexpr std::int64_t k_size = 4;
    constexpr int k_tasks = 8;
    constexpr int k_threads = 2;
    const int per_worker = 100 * weft_test::stress_rounds();
    weft::scheduler s(2);
    weft::semaphore sem(k_size);
    std::atomic<std::int64_t> in_use{0};
    std::atomic<int> overdrawn{0}, ok{0}, cancelled{0};
    weft::wait_group wg;
    wg.add(k_tasks + k_threads);

    auto use = [&](std::int64_t w) {
        if (in_use.fetch_add(w) + w > k_size)
            ++overdrawn;
        in_use.fetch_sub(w);
    };
    auto outcome = [&](weft::status st) {
        if (st == weft::status::ok)
            ++ok;
        else if (st == weft::status::cancelled)
            ++cancelled;
    };
    for (int i = 0; i < k_tasks; ++i) {
        s.spawn([&, i]() -> weft::task<void> {
            std::mt19937 rng(static_cast<unsigned>(i));
            for (int k = 0; k < per_worker; ++k) {
                const std::int64_t w = 1 + static_cast<std::int64_t>(rng() % 3);
                auto [ctx, cancel] =
                    weft::with_timeout(weft::background(), std::chrono::microseconds(rng() % 50));
                const weft::status st = co_await sem.async_acquire(ctx, w);
                outcome(st);
                if (st == weft::status::ok) {
                    use(w);
                    co_await weft::yield(); // hold it across a switch now and then
                    sem.release(w);
                }
                cancel();
            }
            wg.done();
        });
    }
    std::vector<std::thread> threads;
    for (int i = 0; i < k_threads; ++i) {
        threads.emplace_back([&, i] {
            std::mt19937 rng(static_cast<unsigned>(100 + i));
            for (int k = 0; k < per_worker; ++k) {
                const std::int64_t w = 1 + static_cast<std::int64_t>(rng() % 3);
                auto [ctx, cancel] =
                    weft::with_timeout(weft::background(), std::chrono::microseconds(rng() % 50));
                const weft::status st = sem.acquire(ctx, w);
                outcome(st);
                if (st == weft::status::ok) {
                    use(w);
                    sem.release(w);
                }
                cancel();
            }
            wg.done();
        });
    }
    wg.wait();
    for (auto& t : threads)
        t.join();
    CHECK(ok + cancelled == (k_tasks + k_threads) * per_worker);
    CHECK(overdrawn == 0);
    CHECK(sem.held() == 0);
    CHECK(sem.waiting() == 0);
    CHECK(sem.try_acquire(k_size));
    CHECK_FALSE(sem.try_acquire(1));
}

TEST_CASE("a task destroyed while it waits (its scheduler shut down) leaves the queue") {
    weft::semaphore sem(1);
    REQUIRE(sem.try_acquire());
    {
        weft::scheduler s(1);
        s.spawn([&]() -> weft::task<void> { co_await sem.async_acquire(); });
        REQUIRE(eventually([&] { return sem.waiting() == 1; }));
    } // the scheduler destroys the waiting task's frame
    CHECK(sem.waiting() == 0);
    sem.release();
    CHECK(sem.held() == 0);
    CHECK(sem.try_acquire());
}
