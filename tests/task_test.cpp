// Behaviours of weft::task<T>, sync_wait, when_all and yield: values and exceptions travel to
// the awaiter, tasks are lazy, fork-join computes exact results, awaiting a moved-from task is
// a reported misuse.
#include "catch_compat.hpp"

#include <weft/task.hpp>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

weft::task<int> value_of(int v) {
    co_return v;
}

weft::task<long> fib(int n) {
    if (n < 2)
        co_return n;
    auto [a, b] = co_await weft::when_all(fib(n - 1), fib(n - 2));
    co_return a + b;
}

// Go's classic: a tree of tasks, each with `div` children, sums the leaf numbers.
weft::task<long> skynet(long num, long size, long div) {
    if (size == 1)
        co_return num;
    std::vector<weft::task<long>> children;
    children.reserve(static_cast<std::size_t>(div));
    for (long i = 0; i < div; ++i)
        children.push_back(skynet(num + i * (size / div), size / div, div));
    long sum = 0;
    for (long v : co_await weft::when_all(std::move(children)))
        sum += v;
    co_return sum;
}

weft::task<int> thrower(std::string message) {
    throw std::runtime_error(message);
    co_return 0;
}

} // namespace

TEST_CASE("sync_wait returns a task's value, through nested awaits") {
    weft::scheduler s(2);
    auto outer = []() -> weft::task<int> {
        const int a = co_await value_of(20);
        const int b = co_await value_of(22);
        co_return a + b;
    };
    CHECK(weft::sync_wait(s, outer()) == 42);
}

TEST_CASE("a task is lazy: nothing runs until it is awaited") {
    weft::scheduler s(1);
    std::atomic<bool> ran{false};
    // A named lambda: a coroutine lambda's captures live in the closure, which must outlive
    // the task.
    auto body = [&]() -> weft::task<void> {
        ran = true;
        co_return;
    };
    auto t = body();
    CHECK_FALSE(ran.load());
    weft::sync_wait(s, std::move(t));
    CHECK(ran.load());
}

TEST_CASE("an exception propagates through nested awaits to sync_wait") {
    weft::scheduler s(2);
    auto middle = []() -> weft::task<int> { co_return 1 + co_await thrower("deep failure"); };
    auto outer = [&]() -> weft::task<int> { co_return co_await middle(); };
    REQUIRE_THROWS_WITH(weft::sync_wait(s, outer()), "deep failure");
    // The scheduler is still usable afterwards.
    CHECK(weft::sync_wait(s, value_of(7)) == 7);
}

TEST_CASE("an exception can be caught inside the awaiting task") {
    weft::scheduler s(1);
    auto outer = []() -> weft::task<std::string> {
        try {
            co_await thrower("caught");
        } catch (const std::runtime_error& e) {
            co_return std::string("handled: ") + e.what();
        }
        co_return "not thrown";
    };
    CHECK(weft::sync_wait(s, outer()) == "handled: caught");
}

TEST_CASE("awaiting a moved-from task throws task_error") {
    weft::scheduler s(1);
    auto outer = []() -> weft::task<int> {
        weft::task<int> t = value_of(1);
        weft::task<int> moved = std::move(t);
        co_return co_await std::move(t); // NOLINT(bugprone-use-after-move): the misuse under test
    };
    CHECK_THROWS_AS(weft::sync_wait(s, outer()), weft::task_error);
}

TEST_CASE("move-only values travel through tasks") {
    weft::scheduler s(1);
    auto make = []() -> weft::task<std::unique_ptr<int>> { co_return std::make_unique<int>(5); };
    auto outer = [&]() -> weft::task<int> { co_return *(co_await make()); };
    CHECK(weft::sync_wait(s, outer()) == 5);
}

TEST_CASE("fib(20) by fork-join with when_all is exact on 1 and 2 workers") {
    for (std::size_t workers : {1u, 2u}) {
        weft::scheduler s(workers);
        CHECK(weft::sync_wait(s, fib(20)) == 6765);
    }
}

TEST_CASE("skynet: a million tasks sum to 499999500000") {
    weft::scheduler s(2);
    CHECK(weft::sync_wait(s, skynet(0, 1'000'000, 10)) == 499'999'500'000L);
}

TEST_CASE("when_all waits for every task, then rethrows the first exception in order") {
    weft::scheduler s(2);
    std::atomic<int> finished{0};
    auto counted = [&](int v) -> weft::task<int> {
        ++finished;
        co_return v;
    };
    auto outer = [&]() -> weft::task<int> {
        auto [a, b, c] = co_await weft::when_all(counted(1), thrower("second"), counted(3));
        co_return a + b + c;
    };
    REQUIRE_THROWS_WITH(weft::sync_wait(s, outer()), "second");
    CHECK(finished == 2);
}

TEST_CASE("when_all of void tasks and of an empty vector") {
    weft::scheduler s(2);
    std::atomic<int> ran{0};
    auto work = [&]() -> weft::task<void> {
        ++ran;
        co_return;
    };
    auto outer = [&]() -> weft::task<void> {
        std::vector<weft::task<void>> many;
        for (int i = 0; i < 100; ++i)
            many.push_back(work());
        co_await weft::when_all(std::move(many));
        co_await weft::when_all(std::vector<weft::task<void>>{});
        auto [x] = co_await weft::when_all(work());
        (void)x; // std::monostate
    };
    weft::sync_wait(s, outer());
    CHECK(ran == 101);
}

TEST_CASE("yield lets the other queued tasks of a single worker run") {
    // One worker: the spinning task only sees the flag if yield really lets the setter run.
    weft::scheduler s(1);
    auto outer = []() -> weft::task<int> {
        std::atomic<bool> flag{false};
        int yields = 0;
        auto waiter = [&]() -> weft::task<void> {
            while (!flag.load() && yields < 1'000'000) {
                ++yields;
                co_await weft::yield();
            }
        };
        auto setter = [&]() -> weft::task<void> {
            flag = true;
            co_return;
        };
        // Setter first: a worker pops its own deque LIFO, so the waiter starts first and can
        // only finish if its yields let the setter run.
        co_await weft::when_all(setter(), waiter());
        co_return flag.load() ? yields : -1;
    };
    const int yields = weft::sync_wait(s, outer());
    CHECK(yields >= 0);
    CHECK(yields < 1'000'000);
}
