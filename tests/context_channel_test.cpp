// Channel operations given a context (channel.hpp + context.hpp): a cancelled wait returns
// status::cancelled, unlinks its waiter and moves nothing — a cancelled receive takes no value,
// a cancelled send leaves its value with the caller. Raced against completion on both flavors
// (a rendezvous is locked, a buffered int channel is the lock-free ring), thread and task forms,
// with every value counted.
#include "catch_compat.hpp"
#include "test_support.hpp"

#include <weft/channel.hpp>
#include <weft/context.hpp>
#include <weft/scheduler.hpp>
#include <weft/sync.hpp>
#include <weft/task.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

// Capacities that pick each flavor: 0 is a locked rendezvous, 4 the lock-free ring.
constexpr std::size_t k_capacities[] = {0, 4};

// Waits until `wg` is zero, on this thread.
void join(weft::wait_group& wg) {
    wg.wait();
}

} // namespace

TEST_CASE(
    "a thread's recv(ctx) returns cancelled when the context is cancelled and takes nothing") {
    for (std::size_t cap : k_capacities) {
        weft::channel<int> ch(cap);
        auto [ctx, cancel] = weft::with_cancel(weft::background());
        std::atomic<int> result{-1};
        std::thread receiver([&, ctx = ctx] {
            weft::recv_result<int> r = ch.recv(ctx);
            result = static_cast<int>(r.status());
        });
        cancel();
        receiver.join();
        CHECK(result == static_cast<int>(weft::status::cancelled));
        // The receiver left no waiter behind: a later value goes to the next receiver.
        std::atomic<bool> sent{false};
        std::thread sender([&] { sent = ch.send(7); }); // no Catch2 assertion off this thread
        CHECK(ch.recv() == 7);
        sender.join();
        CHECK(sent);
    }
}

TEST_CASE("a thread's send(ctx) on a full channel returns cancelled and leaves the value") {
    for (std::size_t cap : k_capacities) {
        weft::channel<std::unique_ptr<int>> ch(cap);
        for (std::size_t i = 0; i < cap; ++i)
            REQUIRE(ch.try_send(std::make_unique<int>(0)) == weft::status::ok);
        auto [ctx, cancel] = weft::with_timeout(weft::background(), 20ms);
        auto value = std::make_unique<int>(42);
        CHECK(ch.send(ctx, std::move(value)) == weft::status::cancelled);
        REQUIRE(value != nullptr); // not moved from
        CHECK(*value == 42);
        CHECK(ctx.err() == weft::context_errc::deadline_exceeded);
        CHECK(ch.size() == cap);
        cancel();
    }
}

TEST_CASE("an operation that can complete at once completes even if the context is done") {
    weft::channel<int> ch(1);
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    cancel();
    CHECK(ch.send(ctx, 1) == weft::status::ok);
    weft::recv_result<int> r = ch.recv(ctx);
    REQUIRE(r);
    CHECK(*r == 1);
    CHECK(ch.recv(ctx).status() == weft::status::cancelled); // empty now: no wait at all
}

TEST_CASE("a nil channel's recv(ctx) and send(ctx) end when the context does") {
    weft::channel<int> nil;
    auto [ctx, cancel] = weft::with_timeout(weft::background(), 10ms);
    CHECK(nil.recv(ctx).status() == weft::status::cancelled);
    CHECK(nil.send(ctx, 1) == weft::status::cancelled);
    std::atomic<int> r{-1};
    weft::wait_group wg;
    wg.add(1);
    weft::scheduler s(1); // declared last: destroyed first, while what its tasks use lives
    s.spawn([&, ctx = ctx]() -> weft::task<void> {
        r = static_cast<int>((co_await nil.async_recv(ctx)).status());
        wg.done();
    });
    wg.wait();
    CHECK(r == static_cast<int>(weft::status::cancelled));
    cancel();
}

TEST_CASE("a task's async_recv(ctx) and async_send(ctx) stop waiting when cancelled") {
    for (std::size_t cap : k_capacities) {
        weft::channel<int> empty(cap);
        weft::channel<int> full(cap);
        for (std::size_t i = 0; i < cap; ++i)
            REQUIRE(full.try_send(0) == weft::status::ok);
        auto [ctx, cancel] = weft::with_cancel(weft::background());
        std::atomic<int> recv_status{-1}, send_status{-1};
        weft::wait_group wg;
        wg.add(2);
        weft::scheduler s(2); // declared last: destroyed first, while what its tasks use lives
        s.spawn([&, ctx = ctx]() -> weft::task<void> {
            recv_status = static_cast<int>((co_await empty.async_recv(ctx)).status());
            wg.done();
        });
        s.spawn([&, ctx = ctx]() -> weft::task<void> {
            send_status = static_cast<int>(co_await full.async_send(ctx, 5));
            wg.done();
        });
        cancel();
        join(wg);
        CHECK(recv_status == static_cast<int>(weft::status::cancelled));
        CHECK(send_status == static_cast<int>(weft::status::cancelled));
        CHECK(empty.size() == 0);
        CHECK(full.size() == cap);
    }
}

// Producers send(ctx) numbered values and consumers recv(ctx), each with its own context that a
// canceller cancels at a random moment; then the channel is closed and drained. Every value
// whose send said ok is received exactly once, and no other value is.
template <bool Tasks>
void race_cancel_with_transfer(std::size_t cap, unsigned seed) {
    constexpr int k_producers = 3;
    constexpr int k_consumers = 3;
    constexpr int k_per_producer = 2000;
    weft::channel<int> ch(cap);
    std::vector<weft::cancellable_context> contexts;
    for (int i = 0; i < k_producers + k_consumers; ++i)
        contexts.push_back(weft::with_cancel(weft::background()));

    std::mutex m;
    std::vector<int> sent_ok, received;
    std::atomic<int> cancelled_sends{0};
    weft::wait_group producers, consumers;
    producers.add(k_producers);
    consumers.add(k_consumers);
    weft::scheduler s(2); // declared after what its tasks use: destroyed first

    auto produce = [&](int p) {
        const weft::context ctx = contexts[static_cast<std::size_t>(p)].ctx;
        std::vector<int> mine;
        for (int i = 0; i < k_per_producer; ++i) {
            const int v = p * k_per_producer + i;
            if (ch.send(ctx, v) == weft::status::ok)
                mine.push_back(v);
            else
                ++cancelled_sends;
        }
        std::lock_guard lock(m);
        sent_ok.insert(sent_ok.end(), mine.begin(), mine.end());
    };
    auto consume_thread = [&](int c) {
        const weft::context ctx = contexts[static_cast<std::size_t>(k_producers + c)].ctx;
        std::vector<int> mine;
        for (;;) {
            weft::recv_result<int> r = ch.recv(ctx);
            if (r)
                mine.push_back(*r);
            else if (r.status() == weft::status::closed)
                break;
            else
                break; // cancelled: this consumer stops, the drain below takes the rest
        }
        std::lock_guard lock(m);
        received.insert(received.end(), mine.begin(), mine.end());
    };

    std::vector<std::thread> threads;
    for (int p = 0; p < k_producers; ++p)
        threads.emplace_back([&, p] {
            produce(p);
            producers.done();
        });
    for (int c = 0; c < k_consumers; ++c) {
        if constexpr (Tasks) {
            s.spawn([&, c]() -> weft::task<void> {
                const weft::context ctx = contexts[static_cast<std::size_t>(k_producers + c)].ctx;
                std::vector<int> mine;
                for (;;) {
                    weft::recv_result<int> r = co_await ch.async_recv(ctx);
                    if (r) {
                        mine.push_back(*r);
                        continue;
                    }
                    break; // closed, or cancelled: the drain below takes the rest
                }
                {
                    std::lock_guard lock(m);
                    received.insert(received.end(), mine.begin(), mine.end());
                }
                consumers.done();
            });
        } else {
            threads.emplace_back([&, c] {
                consume_thread(c);
                consumers.done();
            });
        }
    }
    weft_test::cancel_at_random_moments(contexts.size(), seed,
                                        [&](std::size_t i) { contexts[i].cancel(); });
    producers.wait();
    ch.close();
    consumers.wait();
    for (auto& t : threads)
        t.join();
    while (std::optional<int> v = ch.recv())
        received.push_back(*v);

    std::sort(sent_ok.begin(), sent_ok.end());
    std::sort(received.begin(), received.end());
    CHECK(std::adjacent_find(received.begin(), received.end()) == received.end()); // once each
    CHECK(received == sent_ok); // nothing lost, nothing invented
    CHECK(static_cast<int>(sent_ok.size()) + cancelled_sends.load() ==
          k_producers * k_per_producer);
}

TEST_CASE("cancellation racing transfer on threads: every value sent ok is received once") {
    for (int round = 0; round < weft_test::stress_rounds(); ++round)
        for (std::size_t cap : k_capacities)
            race_cancel_with_transfer<false>(cap, static_cast<unsigned>(round * 7 + cap));
}

TEST_CASE("cancellation racing transfer with task receivers: every value sent ok is received "
          "once") {
    for (int round = 0; round < weft_test::stress_rounds(); ++round)
        for (std::size_t cap : k_capacities)
            race_cancel_with_transfer<true>(cap, static_cast<unsigned>(round * 11 + cap));
}
