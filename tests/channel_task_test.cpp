// Channels from coroutine tasks: co_await ch.async_send / async_recv suspend the task and free
// its worker; tasks and plain threads talk over one channel in both directions; Go's chain
// and sieve run as tasks; a scheduler destroyed with tasks waiting on channels frees them; a
// coroutine of another kind that waits on a plain thread is resumed on the default scheduler.
#include "catch_compat.hpp"
#include "test_support.hpp"

#include <weft/channel.hpp>
#include <weft/sync.hpp>
#include <weft/task.hpp>
#include <weft/task_group.hpp>
#include <weft/time.hpp>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <exception>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

namespace {

weft::task<long> sum_all(weft::channel<int> ch) {
    long sum = 0;
    while (auto v = co_await ch.async_recv())
        sum += *v;
    co_return sum;
}

weft::task<void> send_range(weft::channel<int> ch, int from, int to, bool close_after) {
    for (int i = from; i < to; ++i)
        co_await ch.async_send(int(i));
    if (close_after)
        ch.close();
}

// A coroutine type of another library: starts at once, frees itself at the end.
struct foreign_coroutine {
    struct promise_type {
        foreign_coroutine get_return_object() noexcept { return {}; }
        std::suspend_never initial_suspend() noexcept { return {}; }
        std::suspend_never final_suspend() noexcept { return {}; }
        void return_void() noexcept {}
        void unhandled_exception() noexcept { std::terminate(); }
    };
};

} // namespace

TEST_CASE("a task waiting on a channel frees its worker for the task that sends") {
    // One worker: the receiver can only get its value if its wait let the sender run.
    weft::scheduler s(1);
    for (std::size_t capacity : {0u, 4u}) {
        weft::channel<int> ch(capacity);
        auto both = [&]() -> weft::task<long> {
            auto [sum, none] = co_await weft::when_all(sum_all(ch), send_range(ch, 0, 1000, true));
            (void)none;
            co_return sum;
        };
        CHECK(weft::sync_wait(s, both()) == 999L * 1000 / 2);
    }
}

TEST_CASE("tasks and threads share channels in both directions") {
    weft::scheduler s(2);
    for (std::size_t capacity : {0u, 1u, 16u}) {
        INFO("capacity " << capacity);
        weft::channel<int> to_tasks(capacity), to_thread(capacity);
        // Thread -> task: a plain thread sends, a task receives and echoes back to the thread.
        std::thread producer([&] {
            for (int i = 0; i < 1000; ++i)
                to_tasks.send(int(i));
            to_tasks.close();
        });
        s.spawn([to_tasks, to_thread]() mutable -> weft::task<void> {
            while (auto v = co_await to_tasks.async_recv())
                co_await to_thread.async_send(*v * 2);
            to_thread.close();
        });
        long sum = 0;
        for (int v : to_thread)
            sum += v;
        producer.join();
        CHECK(sum == 2L * 999 * 1000 / 2);
    }
}

TEST_CASE("async_send on a closed channel reports false and leaves the value") {
    weft::scheduler s(1);
    weft::channel<std::unique_ptr<int>> ch(0);
    ch.close();
    auto t = [&]() -> weft::task<bool> {
        auto value = std::make_unique<int>(7);
        const bool sent = co_await ch.async_send(std::move(value));
        co_return !sent && value && *value == 7;
    };
    CHECK(weft::sync_wait(s, t()));
    auto r = [&]() -> weft::task<bool> { co_return !(co_await ch.async_recv()).has_value(); };
    CHECK(weft::sync_wait(s, r()));
}

TEST_CASE("close wakes tasks blocked in async_send and async_recv") {
    weft::scheduler s(2);
    weft::channel<int> full(1), empty(1);
    REQUIRE(full.send(0));
    std::atomic<int> woke{0};
    weft::wait_group wg;
    wg.add(20);
    for (int i = 0; i < 10; ++i) {
        s.spawn([&]() -> weft::task<void> {
            woke += !(co_await full.async_send(1));
            wg.done();
        });
        s.spawn([&]() -> weft::task<void> {
            woke += !(co_await empty.async_recv()).has_value();
            wg.done();
        });
    }
    full.close();
    empty.close();
    wg.wait();
    CHECK(woke == 20);
}

TEST_CASE("a value passes through a chain of 10000 tasks and unbuffered channels") {
    weft::scheduler s(2);
    constexpr int links = 10000;
    std::vector<weft::channel<int>> chain;
    for (int i = 0; i <= links; ++i)
        chain.emplace_back(0);
    for (int i = 0; i < links; ++i)
        s.spawn([](weft::channel<int> left, weft::channel<int> right) -> weft::task<void> {
            auto v = co_await left.async_recv();
            co_await right.async_send(*v + 1);
        }(chain[i], chain[i + 1]));
    chain.front().send(0);
    CHECK(chain.back().recv() == links);
}

TEST_CASE("prime sieve of filter tasks yields the first 100 primes") {
    weft::scheduler s(2);
    auto sieve = [&]() -> weft::task<std::vector<int>> {
        weft::channel<int> numbers(0);
        weft::scheduler& sched = *weft::scheduler::current();
        sched.spawn([](weft::channel<int> out) -> weft::task<void> {
            for (int i = 2;; ++i)
                if (!co_await out.async_send(int(i)))
                    co_return;
        }(numbers));
        std::vector<int> primes;
        std::vector<weft::channel<int>> stages{numbers};
        for (int n = 0; n < 100; ++n) {
            const int prime = *(co_await stages.back().async_recv());
            primes.push_back(prime);
            weft::channel<int> out(0);
            sched.spawn(
                [](weft::channel<int> in, weft::channel<int> next, int p) -> weft::task<void> {
                    while (auto v = co_await in.async_recv())
                        if (*v % p != 0 && !co_await next.async_send(int(*v)))
                            co_return;
                    next.close();
                }(stages.back(), out, prime));
            stages.push_back(out);
        }
        numbers.close();
        while (co_await stages.back().async_recv()) {
        }
        co_return primes;
    };
    const std::vector<int> primes = weft::sync_wait(s, sieve());
    CHECK(primes == weft_test::first_primes(100));
}

TEST_CASE("many producer and consumer tasks count every value exactly once") {
    weft::scheduler s(2);
    for (std::size_t capacity : {0u, 1u, 64u}) {
        INFO("capacity " << capacity);
        constexpr int producers = 8, per_producer = 2000;
        weft::channel<int> ch(capacity);
        std::vector<std::atomic<int>> seen(producers * per_producer);
        weft::wait_group senders, receivers;
        senders.add(producers);
        receivers.add(4);
        for (int p = 0; p < producers; ++p)
            s.spawn([&, p]() -> weft::task<void> {
                co_await send_range(ch, p * per_producer, (p + 1) * per_producer, false);
                senders.done();
            });
        for (int c = 0; c < 4; ++c)
            s.spawn([&]() -> weft::task<void> {
                while (auto v = co_await ch.async_recv())
                    seen[static_cast<std::size_t>(*v)].fetch_add(1);
                receivers.done();
            });
        senders.wait();
        ch.close();
        receivers.wait();
        int wrong = 0;
        for (auto& n : seen)
            wrong += n.load() != 1;
        CHECK(wrong == 0);
    }
}

TEST_CASE("destroying a scheduler with tasks blocked on channels frees them and unlinks them") {
    auto token = std::make_shared<int>(0);
    weft::channel<int> never(0), full(1);
    REQUIRE(full.send(0));
    std::atomic<int> waiting{0};
    {
        weft::scheduler s(2);
        for (int i = 0; i < 50; ++i) {
            s.spawn([&, t = token]() -> weft::task<void> {
                (void)t;
                ++waiting;
                co_await never.async_recv();
            });
            s.spawn([&, t = token]() -> weft::task<void> {
                (void)t;
                ++waiting;
                co_await full.async_send(1);
            });
        }
        while (waiting.load() < 100)
            std::this_thread::yield();
    }
    CHECK(token.use_count() == 1);
    // The channels hold no dangling waiters: they still work from a thread.
    CHECK(never.try_send(1) == weft::status::not_ready);
    CHECK(full.recv() == 0);
    CHECK(full.try_send(2) == weft::status::ok);
}

TEST_CASE("10000 tasks sleeping 50 ms each finish far sooner than one after another") {
    // Serially this is 500 s; sleeping tasks hold no worker, so it is about 50 ms plus
    // overhead. 5 s is a functional bound (no thread per sleeper, no blocked worker), not a
    // speed test.
    weft::scheduler s(2);
    constexpr int sleepers = 10000;
    std::atomic<int> woke{0};
    weft::wait_group wg;
    wg.add(sleepers);
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < sleepers; ++i)
        s.spawn([&]() -> weft::task<void> {
            const auto before = std::chrono::steady_clock::now();
            co_await weft::sleep_for(std::chrono::milliseconds(50));
            woke += std::chrono::steady_clock::now() - before >= std::chrono::milliseconds(50);
            wg.done();
        });
    wg.wait();
    const auto elapsed = std::chrono::steady_clock::now() - start;
    CHECK(woke == sleepers); // none woke early
    CHECK(elapsed < std::chrono::seconds(5));
}

namespace {

// Bounces a value `rounds` times between two tasks over unbuffered channels.
weft::task<void> bounce(weft::channel<int> in, weft::channel<int> out, int rounds,
                        std::atomic<int>& done, bool serve_first) {
    for (int i = 0; i < rounds; ++i) {
        if (serve_first) {
            co_await out.async_send(int(i));
            (void)co_await in.async_recv();
        } else {
            (void)co_await in.async_recv();
            co_await out.async_send(int(i));
        }
        done.fetch_add(1, std::memory_order_relaxed); // relaxed: read after sync_wait
    }
}

} // namespace

TEST_CASE("two tasks waking each other on one worker do not starve its other queued tasks") {
    // A woken task runs next on the waker's worker, but only a few times in a row: the deque
    // gets its turn, so `other`, queued before the pair started, runs long before they finish.
    weft::scheduler s(1);
    constexpr int rounds = 2000;
    std::atomic<int> done{0};
    int done_when_other_ran = -1;
    weft::channel<int> ping(0), pong(0);
    auto start = [&]() -> weft::task<void> {
        weft::task_group g;
        g.spawn([&] { done_when_other_ran = done.load(std::memory_order_relaxed); });
        g.spawn(bounce(pong, ping, rounds, done, true));
        g.spawn(bounce(ping, pong, rounds, done, false));
        co_await g.wait();
    };
    weft::sync_wait(s, start());
    CHECK(done == 2 * rounds);
    CHECK(done_when_other_ran >= 0);
    CHECK(done_when_other_ran < 100);
}

TEST_CASE(
    "a coroutine of another kind waiting on a plain thread resumes on the default scheduler") {
    // No worker runs this thread, so the wait's host is the fallback: default_scheduler().
    weft::channel<int> ch(0);
    weft::wait_group done;
    done.add(1);
    std::atomic<int> got{0};
    std::atomic<bool> on_default{false};
    auto receive = [&]() -> foreign_coroutine {
        auto v = co_await ch.async_recv();
        got = v.value_or(-1);
        on_default = weft::scheduler::current() == &weft::default_scheduler();
        done.done();
    };
    receive(); // runs here until it waits
    CHECK(ch.send(7));
    done.wait();
    CHECK(got == 7);
    CHECK(on_default);
}
