// weft::es::subscription (subscription.hpp) on its own: how readers wait for the log to grow.
// The store contract's subscription cases (catch-up then live, from a position, close, a store
// destroyed under it) run per store in store_conformance.hpp; these check the waiting itself:
// one commit wakes every waiting task at once, close() wakes a waiting task, a poll interval
// finds events nobody signalled (another process's), and close racing appends loses nothing.
#include "catch_compat.hpp"
#include "test_support.hpp"

#include <weft/es/memory_store.hpp>
#include <weft/es/subscription.hpp>
#include <weft/scheduler.hpp>
#include <weft/sync.hpp>
#include <weft/task.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace es = weft::es;
using namespace std::chrono_literals;

namespace {

std::vector<es::event_data> one_event(const std::string& type = "e") {
    return {es::event_data{.type = type, .payload = "x"}};
}

// A log that grows without telling anyone, as a file does when another process appends to it:
// only polling finds the new events.
class silent_log final : public es::detail::log_source {
public:
    void add() {
        std::lock_guard lock(mutex_);
        es::recorded_event e;
        e.position = events_.size() + 1;
        e.stream = "other-process";
        e.version = e.position;
        events_.push_back(e);
    }
    std::vector<es::recorded_event> read_all(es::log_position from,
                                             std::size_t max) const override {
        std::lock_guard lock(mutex_);
        std::vector<es::recorded_event> out;
        for (es::log_position p = from < 1 ? 1 : from; p <= events_.size() && out.size() < max; ++p)
            out.push_back(events_[p - 1]);
        return out;
    }

private:
    mutable std::mutex mutex_;
    std::vector<es::recorded_event> events_;
};

} // namespace

TEST_CASE("one commit wakes every task waiting in async_next") {
    constexpr int readers = 50;
    weft::scheduler s(2);
    es::memory_store store;
    std::vector<es::subscription> subs;
    for (int i = 0; i < readers; ++i)
        subs.push_back(store.subscribe_all(1));
    weft::wait_group started;
    started.add(readers);
    std::atomic<int> woken{0};
    std::atomic<int> got_position_1{0};
    weft::wait_group finished;
    finished.add(readers);
    for (int i = 0; i < readers; ++i)
        s.spawn([&, i]() -> weft::task<void> {
            started.done();
            std::vector<es::recorded_event> batch =
                co_await subs[static_cast<std::size_t>(i)].async_next();
            woken.fetch_add(1);
            if (batch.size() == 1 && batch.front().position == 1)
                got_position_1.fetch_add(1);
            finished.done();
        });
    started.wait();
    REQUIRE(store.append("a", es::expected_version::any(), one_event()));
    REQUIRE(finished.wait_for(10s));
    CHECK(woken.load() == readers);
    CHECK(got_position_1.load() == readers);
}

TEST_CASE("close() on another thread ends a task's async_next with an empty batch") {
    weft::scheduler s(2);
    es::memory_store store;
    REQUIRE(store.append("a", es::expected_version::any(), one_event()));
    es::subscription sub = store.subscribe_all(1);
    std::atomic<bool> caught_up{false};
    auto reader = [&]() -> weft::task<std::size_t> {
        std::size_t total = (co_await sub.async_next()).size();
        caught_up.store(true);
        const std::vector<es::recorded_event> after_close = co_await sub.async_next();
        co_return after_close.empty() ? total : 1000;
    };
    std::thread closer([&] {
        while (!caught_up.load())
            std::this_thread::yield();
        sub.close();
    });
    CHECK(weft::sync_wait(s, reader()) == 1);
    closer.join();
    CHECK(sub.closed());
}

TEST_CASE("a poll interval finds events nobody signalled, in a task and on a thread") {
    weft::scheduler s(2);
    auto log = std::make_shared<silent_log>();
    es::subscription task_sub(log, 1, 5ms);
    es::subscription thread_sub(log, 1, 5ms);
    std::atomic<bool> waiting{false};
    auto reader = [&]() -> weft::task<es::log_position> {
        waiting.store(true);
        std::vector<es::recorded_event> batch = co_await task_sub.async_next();
        co_return batch.empty() ? 0 : batch.front().position;
    };
    std::thread grower([&] {
        while (!waiting.load())
            std::this_thread::yield();
        log->add(); // no signal: only a poll can see it
    });
    CHECK(weft::sync_wait(s, reader()) == 1);
    grower.join();
    // next() on a thread polls too (it would wait for ever without).
    std::vector<es::recorded_event> batch = thread_sub.next();
    REQUIRE(batch.size() == 1);
    CHECK(batch.front().stream == "other-process");
}

TEST_CASE("without a poll interval a task waits for a signal, not a timer") {
    // memory_store subscribes with poll interval zero: the wait ends only on a commit.
    weft::scheduler s(2);
    es::memory_store store;
    es::subscription sub = store.subscribe_all(1);
    std::atomic<bool> returned{false};
    weft::wait_group done;
    done.add(1);
    s.spawn([&]() -> weft::task<void> {
        (void)co_await sub.async_next();
        returned.store(true);
        done.done();
    });
    // 50 ms with nothing appended: a timer would have ended the wait by now.
    CHECK_FALSE(done.wait_for(50ms));
    CHECK_FALSE(returned.load());
    REQUIRE(store.append("a", es::expected_version::any(), one_event()));
    CHECK(done.wait_for(10s));
}

TEST_CASE("close racing appends and waits: every subscriber sees a gapless prefix, then ends") {
    const int rounds = 20 * weft_test::stress_rounds();
    weft::scheduler s(2);
    for (int round = 0; round < rounds; ++round) {
        es::memory_store store;
        constexpr int readers = 4;
        std::vector<es::subscription> subs;
        for (int i = 0; i < readers; ++i)
            subs.push_back(store.subscribe_all(1));
        std::atomic<int> broken{0};
        weft::wait_group finished;
        finished.add(readers);
        for (int i = 0; i < readers; ++i)
            s.spawn([&, i]() -> weft::task<void> {
                es::subscription& sub = subs[static_cast<std::size_t>(i)];
                es::log_position expected = 1;
                for (;;) {
                    std::vector<es::recorded_event> batch = co_await sub.async_next(3);
                    if (batch.empty())
                        break;
                    for (const es::recorded_event& e : batch)
                        if (e.position != expected++)
                            broken.fetch_add(1);
                }
                if (!sub.closed())
                    broken.fetch_add(1);
                finished.done();
            });
        std::thread writer([&] {
            for (int i = 0; i < 30; ++i)
                (void)store.append("s" + std::to_string(i % 3), es::expected_version::any(),
                                   one_event());
        });
        // Close some subscriptions while the writer runs, the rest after it.
        subs[0].close();
        subs[1].close();
        writer.join();
        subs[2].close();
        subs[3].close();
        REQUIRE(finished.wait_for(10s));
        REQUIRE(broken.load() == 0);
    }
}
