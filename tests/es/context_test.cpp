// weft::es waits given a context, on memory_store: append(ctx) is cancelled (nothing stored)
// only when the context is done before it starts; subscription next(ctx) / async_next(ctx)
// return status::cancelled and read nothing, so the cursor stays where it was; projection
// wait_for(ctx) / async_wait_for(ctx) return ok, closed or cancelled. Cancelled readers raced
// with appends, every position counted.
#include "catch_compat.hpp"
#include "test_support.hpp"

#include <weft/context.hpp>
#include <weft/es/memory_store.hpp>
#include <weft/es/projection.hpp>
#include <weft/es/subscription.hpp>
#include <weft/scheduler.hpp>
#include <weft/sync.hpp>
#include <weft/task.hpp>

#include <atomic>
#include <chrono>
#include <latch>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace es = weft::es;
using namespace std::chrono_literals;

namespace {

std::vector<es::event_data> one_event() {
    return {es::event_data{.type = "e", .payload = "x"}};
}

} // namespace

TEST_CASE("memory_store append(ctx) on a done context stores nothing, on a live one stores") {
    es::memory_store store;
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    cancel();
    es::append_result r = store.append(ctx, "s", es::expected_version::any(), one_event());
    CHECK(r.status == es::append_status::cancelled);
    CHECK_FALSE(r);
    CHECK(store.version_of("s") == 0);
    CHECK(store.head_position() == 0);
    auto [live, cancel_live] = weft::with_cancel(weft::background());
    es::append_result ok = store.append(live, "s", es::expected_version::any(), one_event());
    REQUIRE(ok);
    CHECK(ok.version == 1);
    cancel_live();
}

TEST_CASE("subscription next(ctx) returns cancelled while nothing comes, and reads nothing") {
    es::memory_store store;
    es::subscription sub = store.subscribe_all(1);
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    std::thread canceller([cancel = cancel] { cancel(); });
    weft::recv_result<std::vector<es::recorded_event>> r = sub.next(ctx);
    canceller.join();
    CHECK(r.status() == weft::status::cancelled);
    CHECK(sub.position() == 1);
    // Events already there are returned even on a done context.
    REQUIRE(store.append("s", es::expected_version::any(), one_event()));
    weft::recv_result<std::vector<es::recorded_event>> batch = sub.next(ctx);
    REQUIRE(batch);
    REQUIRE(batch->size() == 1);
    CHECK((*batch)[0].position == 1);
    CHECK(sub.next(ctx).status() == weft::status::cancelled); // nothing more: at once
    sub.close();
    CHECK(sub.next(weft::background()).status() == weft::status::closed);
}

TEST_CASE("subscription next(ctx) with a deadline ends with cancelled and deadline_exceeded") {
    es::memory_store store;
    es::subscription sub = store.subscribe_all(1);
    auto [ctx, cancel] = weft::with_timeout(weft::background(), 5ms);
    CHECK(sub.next(ctx).status() == weft::status::cancelled);
    CHECK(ctx.err() == weft::context_errc::deadline_exceeded);
    cancel();
}

TEST_CASE("subscription async_next(ctx) in a task returns cancelled, then the next event") {
    weft::scheduler s(2);
    es::memory_store store;
    es::subscription sub = store.subscribe_all(1);
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    std::latch cancelled_seen(1);
    std::thread appender([&] {
        cancelled_seen.wait(); // appends only once the reader has seen its cancellation
        (void)store.append("s", es::expected_version::any(), one_event());
    });
    auto reader = [&, ctx = ctx, cancel = cancel]() -> weft::task<int> {
        std::thread([cancel] { cancel(); }).detach();
        auto r = co_await sub.async_next(ctx);
        cancelled_seen.count_down();
        if (r.status() != weft::status::cancelled)
            co_return -1;
        auto next = co_await sub.async_next(weft::background());
        if (!next || next->size() != 1)
            co_return -2;
        co_return static_cast<int>((*next)[0].position);
    };
    CHECK(weft::sync_wait(s, reader()) == 1);
    appender.join();
}

namespace {

// One appender adds `k_events` events while a reader reads with contexts that a canceller
// cancels at random moments; after each cancelled read the reader goes on with a fresh
// context. Every position is read exactly once, in order: a cancelled read consumed nothing.
template <bool Tasks>
void race_reads_with_cancel(unsigned seed) {
    constexpr int k_events = 300;
    weft::scheduler s(2);
    es::memory_store store;
    es::subscription sub = store.subscribe_all(1);
    std::atomic<bool> reading{true};
    std::vector<es::log_position> seen;
    int cancelled = 0;
    // The canceller cancels the reader's current context, whichever it is now.
    std::mutex m;
    weft::cancel_func current_cancel;
    auto fresh = [&] {
        auto c = weft::with_cancel(weft::background());
        std::lock_guard lock(m);
        current_cancel = c.cancel;
        return c.ctx;
    };
    std::thread canceller([&] {
        std::mt19937 rng(seed);
        while (reading.load()) {
            for (unsigned spin = rng() % 50000; spin > 0; --spin)
                std::atomic_signal_fence(std::memory_order_seq_cst);
            std::lock_guard lock(m);
            current_cancel();
        }
    });
    std::atomic<int> failed_appends{0}; // counted here, checked on the test's thread
    std::thread appender([&] {
        for (int i = 0; i < k_events; ++i)
            if (!store.append("s", es::expected_version::any(), one_event()))
                ++failed_appends;
    });
    auto take = [&](weft::recv_result<std::vector<es::recorded_event>>& r) {
        if (r.status() == weft::status::cancelled) {
            ++cancelled;
            return;
        }
        for (const es::recorded_event& e : *r)
            seen.push_back(e.position);
    };
    if constexpr (Tasks) {
        auto reader = [&]() -> weft::task<void> {
            while (seen.size() < static_cast<std::size_t>(k_events)) {
                auto r = co_await sub.async_next(fresh(), 7);
                take(r);
            }
        };
        weft::sync_wait(s, reader());
    } else {
        while (seen.size() < static_cast<std::size_t>(k_events)) {
            auto r = sub.next(fresh(), 7);
            take(r);
        }
    }
    reading = false;
    canceller.join();
    appender.join();
    INFO(cancelled << " reads were cancelled on the way"); // how hard the race was this time
    REQUIRE(failed_appends == 0);
    REQUIRE(seen.size() == static_cast<std::size_t>(k_events));
    for (std::size_t i = 0; i < seen.size(); ++i)
        CHECK(seen[i] == i + 1); // each once, in order
    CHECK(sub.position() == static_cast<es::log_position>(k_events) + 1);
}

} // namespace

TEST_CASE("cancelled next(ctx) racing appends on a thread: every position read once") {
    for (int round = 0; round < weft_test::stress_rounds(); ++round)
        race_reads_with_cancel<false>(static_cast<unsigned>(round + 1));
}

TEST_CASE("cancelled async_next(ctx) racing appends in a task: every position read once") {
    for (int round = 0; round < weft_test::stress_rounds(); ++round)
        race_reads_with_cancel<true>(static_cast<unsigned>(round + 100));
}

TEST_CASE("projection wait_for(ctx) says cancelled, ok once reached, closed once stopped") {
    weft::scheduler s(2);
    es::memory_store store;
    es::projection_runner<es::memory_store> runner(s, store);
    std::latch gate(1);
    std::atomic<int> handled{0};
    es::function_target target;
    target.handle = [&](const es::recorded_event&) {
        gate.wait(); // holds the projection before its first event
        ++handled;
    };
    runner.add("p", std::move(target));
    es::append_result r = store.append("s", es::expected_version::any(), one_event());
    REQUIRE(r);

    auto [ctx, cancel] = weft::with_cancel(weft::background());
    std::thread canceller([cancel = cancel] { cancel(); });
    CHECK(runner.wait_for(ctx, "p", r.last_position) == weft::status::cancelled);
    canceller.join();
    CHECK(handled == 0); // the gate is still shut: cancelled, not reached

    // In a task, on a context with a deadline.
    auto [short_ctx, cancel_short] = weft::with_timeout(weft::background(), 5ms);
    auto waiter = [&, short_ctx = short_ctx]() -> weft::task<weft::status> {
        co_return co_await runner.async_wait_for(short_ctx, "p", r.last_position);
    };
    CHECK(weft::sync_wait(s, waiter()) == weft::status::cancelled);
    cancel_short();

    gate.count_down();
    auto [live, cancel_live] = weft::with_cancel(weft::background());
    CHECK(runner.wait_for(live, "p", r.last_position) == weft::status::ok);
    CHECK(handled == 1);
    auto live_waiter = [&, live = live]() -> weft::task<weft::status> {
        co_return co_await runner.async_wait_for(live, "p", r.last_position);
    };
    CHECK(weft::sync_wait(s, live_waiter()) == weft::status::ok);
    runner.stop("p");
    CHECK(runner.wait_for(live, "p", r.last_position + 1) == weft::status::closed);
    cancel_live();
}
