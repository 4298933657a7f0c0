// weft::future and weft::promise (future.hpp): a value or an exception set once on one thread
// reaches a task that awaits it or a thread that get()s it; misuse is a future_error; a promise
// dropped unset is a broken_promise, never a hang.
#include "catch_compat.hpp"

#include <weft/future.hpp>
#include <weft/scheduler.hpp>
#include <weft/task.hpp>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

TEST_CASE("a value set on another thread reaches get()") {
    weft::promise<std::string> p;
    weft::future<std::string> f = p.get_future();
    CHECK_FALSE(f.ready());
    std::thread producer([p = std::move(p)]() mutable { p.set_value("forty-two"); });
    CHECK(f.get() == "forty-two");
    producer.join();
}

TEST_CASE("a task awaiting a future is resumed with the value") {
    weft::scheduler s(2);
    weft::promise<int> p;
    weft::future<int> f = p.get_future();
    std::atomic<bool> waiting{false};
    auto consumer = [&]() -> weft::task<int> {
        waiting.store(true);
        co_return co_await std::move(f) + 1;
    };
    std::thread producer([&] {
        while (!waiting.load())
            std::this_thread::yield();
        p.set_value(41);
    });
    CHECK(weft::sync_wait(s, consumer()) == 42);
    producer.join();
}

TEST_CASE("an exception set by the producer is rethrown to the consumer") {
    weft::promise<int> p;
    weft::future<int> f = p.get_future();
    p.set_exception(std::make_exception_ptr(std::runtime_error("disk on fire")));
    CHECK(f.ready());
    REQUIRE_THROWS_WITH(f.get(), "disk on fire");
}

TEST_CASE("promise<void> completes a future<void>") {
    weft::scheduler s(1);
    weft::promise<void> p;
    weft::future<void> f = p.get_future();
    p.set_value();
    auto consumer = [&]() -> weft::task<bool> {
        co_await std::move(f);
        co_return true;
    };
    CHECK(weft::sync_wait(s, consumer()));
}

TEST_CASE("a promise destroyed unset breaks its future instead of leaving it waiting") {
    weft::future<int> f = [] {
        weft::promise<int> p;
        return p.get_future();
    }();
    REQUIRE(f.ready());
    CHECK_THROWS_AS(f.get(), weft::broken_promise);

    // Also when the consumer is a task that is already waiting.
    weft::scheduler s(1);
    auto holder = std::make_unique<weft::promise<int>>();
    weft::future<int> g = holder->get_future();
    auto consumer = [&]() -> weft::task<std::string> {
        try {
            (void)co_await std::move(g);
        } catch (const weft::broken_promise& e) {
            co_return e.what();
        }
        co_return "no error";
    };
    std::thread dropper([&] { holder.reset(); });
    CHECK(weft::sync_wait(s, consumer()) == "weft: promise destroyed before it set a value");
    dropper.join();
}

TEST_CASE("a promise set twice, or a second get_future, is a future_error") {
    weft::promise<int> p;
    weft::future<int> f = p.get_future();
    CHECK_THROWS_AS(p.get_future(), weft::future_error);
    p.set_value(1);
    CHECK_THROWS_AS(p.set_value(2), weft::future_error);
    CHECK_THROWS_AS(p.set_exception(std::make_exception_ptr(std::runtime_error("x"))),
                    weft::future_error);
    CHECK(f.get() == 1); // the first value stands
}

TEST_CASE("a future is read once: a second read is a future_error") {
    weft::future<std::string> f = weft::make_ready_future(std::string("once"));
    CHECK(f.get() == "once");
    CHECK_THROWS_AS(f.get(), weft::future_error);
    CHECK_THROWS_AS(f.ready(), weft::future_error);
}

TEST_CASE("a moved-from promise cannot be set and does not break the moved-to one") {
    weft::promise<int> p;
    weft::future<int> f = p.get_future();
    weft::promise<int> q = std::move(p);
    CHECK_THROWS_AS(p.set_value(1), weft::future_error); // NOLINT(bugprone-use-after-move)
    q.set_value(7);
    CHECK(f.get() == 7);
}

TEST_CASE("move-assigning over an unset promise breaks the future it had") {
    weft::promise<int> a;
    weft::future<int> fa = a.get_future();
    weft::promise<int> b;
    weft::future<int> fb = b.get_future();
    a = std::move(b);
    CHECK_THROWS_AS(fa.get(), weft::broken_promise);
    a.set_value(3);
    CHECK(fb.get() == 3);
}

TEST_CASE("make_ready_future and make_exceptional_future are ready at once") {
    weft::future<int> f = weft::make_ready_future(5);
    CHECK(f.ready());
    CHECK(f.get() == 5);
    weft::future<void> v = weft::make_ready_future();
    CHECK(v.ready());
    v.get();
    weft::future<int> e =
        weft::make_exceptional_future<int>(std::make_exception_ptr(std::logic_error("bad")));
    CHECK(e.ready());
    CHECK_THROWS_AS(e.get(), std::logic_error);
}

TEST_CASE("promises set while their tasks suspend: every value arrives exactly once") {
    // Setting races with the consumer's suspension: each of 2000 tasks awaits a future whose
    // promise another thread sets at about the same moment.
    constexpr int n = 2000;
    weft::scheduler s(2);
    std::vector<weft::promise<int>> promises(n);
    std::vector<weft::future<int>> futures;
    futures.reserve(n);
    for (auto& p : promises)
        futures.push_back(p.get_future());
    std::atomic<long long> sum{0};
    std::atomic<int> arrived{0};
    auto consume = [&](int i) -> weft::task<void> {
        sum.fetch_add(co_await std::move(futures[static_cast<std::size_t>(i)]));
        arrived.fetch_add(1);
    };
    for (int i = 0; i < n; ++i)
        s.spawn(consume(i));
    std::thread producer([&] {
        for (int i = 0; i < n; ++i)
            promises[static_cast<std::size_t>(i)].set_value(i + 1);
    });
    producer.join();
    auto all_arrived = [&]() -> weft::task<int> {
        while (arrived.load() < n)
            co_await weft::yield();
        co_return arrived.load();
    };
    CHECK(weft::sync_wait(s, all_arrived()) == n);
    CHECK(sum.load() == static_cast<long long>(n) * (n + 1) / 2);
}
