// weft::on_done(ctx) in select and async_select (select.hpp + context.hpp): the case fires when
// the context is cancelled while the select waits, is a ready case (picked at random among the
// ready ones) when the context is done already, combines with otherwise() and on_timeout(), and
// never fires for background(). A select that on_done ends consumes nothing: raced against
// producers and consumers on both channel flavors, every value is counted once.
#include "catch_compat.hpp"
#include "test_support.hpp"

#include <weft/channel.hpp>
#include <weft/context.hpp>
#include <weft/scheduler.hpp>
#include <weft/select.hpp>
#include <weft/sync.hpp>
#include <weft/task.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

// Capacities that pick each flavor: 0 is a locked rendezvous, 4 the lock-free ring.
constexpr std::size_t k_capacities[] = {0, 4};

} // namespace

TEST_CASE("a thread's select returns on_done when the context is cancelled while it waits") {
    for (std::size_t cap : k_capacities) {
        weft::channel<int> empty(cap);
        weft::channel<int> unbuffered(0);
        auto [ctx, cancel] = weft::with_cancel(weft::background());
        std::atomic<bool> handled{false};
        weft::select_result r{99, false};
        std::thread selecting([&, ctx = ctx] {
            r = weft::select(weft::on_recv(empty), weft::on_recv(unbuffered),
                             weft::on_done(ctx, [&] { handled = true; }));
        });
        cancel();
        selecting.join();
        CHECK(r.index == 2);
        CHECK(r.ok);
        CHECK(handled);
        // Nothing consumed and no waiter left behind: a rendezvous send finds no receiver.
        CHECK(unbuffered.try_send(1) == weft::status::not_ready);
        CHECK(empty.size() == 0);
    }
}

TEST_CASE("a task's async_select returns on_done when cancelled while it is parked") {
    for (std::size_t cap : k_capacities) {
        weft::channel<weft::deadlock_report> reports(4);
        weft::channel<int> empty(cap);
        auto [ctx, cancel] = weft::with_cancel(weft::background());
        weft::channel<weft::select_result> result(1);
        bool handled = false;
        weft::scheduler s(2); // declared last: destroyed first, it joins its tasks
        // The report proves the task is parked in its select before we cancel.
        s.report_deadlocks([&](const weft::deadlock_report& r) { (void)reports.try_send(r); }, 5ms);
        s.spawn([&, ctx = ctx]() -> weft::task<void> {
            auto r = co_await weft::async_select(weft::on_recv(empty),
                                                 weft::on_done(ctx, [&] { handled = true; }));
            (void)result.try_send(r);
        });
        auto report = reports.recv_for(30s);
        REQUIRE(report.has_value());
        CHECK(report->selecting == 1);
        cancel();
        auto r = result.recv();
        REQUIRE(r.has_value());
        CHECK(r->index == 1);
        CHECK(handled);
        CHECK(empty.try_send(1) == (cap == 0 ? weft::status::not_ready : weft::status::ok));
    }
}

TEST_CASE("on_done of a context done already is a ready case chosen at random") {
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    cancel();
    weft::channel<int> empty(1), full(1);
    // Only on_done is ready: it runs without waiting, thread and task alike.
    CHECK(weft::select(weft::on_recv(empty), weft::on_done(ctx)).index == 1);
    weft::channel<std::size_t> index(1);
    weft::scheduler s(1);
    s.spawn([&, ctx = ctx]() -> weft::task<void> {
        auto r = co_await weft::async_select(weft::on_done(ctx), weft::on_recv(empty));
        (void)index.try_send(r.index);
    });
    CHECK(index.recv() == 0u);

    // A ready channel and on_done: each is picked sometimes, and when on_done is, the value
    // stays in the channel.
    int took_value = 0, took_done = 0;
    for (int i = 0; i < 400; ++i) {
        if (full.size() == 0)
            REQUIRE(full.try_send(i) == weft::status::ok);
        auto r = weft::select(weft::on_recv(full), weft::on_done(ctx));
        if (r.index == 0) {
            ++took_value;
        } else {
            ++took_done;
            CHECK(full.size() == 1);
        }
    }
    CHECK(took_value > 0);
    CHECK(took_done > 0);
    CHECK(took_value + took_done == 400);
}

TEST_CASE("on_done with otherwise is ready iff the context is cancelled") {
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    weft::channel<int> empty(1);
    weft::channel<int> rendezvous(0);
    CHECK(weft::select(weft::on_recv(empty), weft::on_done(ctx), weft::otherwise()).index == 2);
    CHECK(weft::select(weft::on_recv(rendezvous), weft::on_done(ctx), weft::otherwise()).index ==
          2);
    CHECK(weft::select(weft::on_done(ctx), weft::otherwise()).index == 1);
    cancel();
    CHECK(weft::select(weft::on_recv(empty), weft::on_done(ctx), weft::otherwise()).index == 1);
    CHECK(weft::select(weft::on_recv(rendezvous), weft::on_done(ctx), weft::otherwise()).index ==
          1);
    CHECK(weft::select(weft::on_done(ctx), weft::otherwise()).index == 0);
}

TEST_CASE("on_done and on_timeout in one select: whichever comes first runs") {
    weft::channel<int> empty(0);
    {
        auto [ctx, cancel] = weft::with_cancel(weft::background());
        auto r = weft::select(weft::on_recv(empty), weft::on_timeout(1ms), weft::on_done(ctx));
        CHECK(r.index == 1); // nobody cancels: the timeout ends it
        cancel();
        r = weft::select(weft::on_recv(empty), weft::on_timeout(1h), weft::on_done(ctx));
        CHECK(r.index == 2);
    }
    {
        // A context whose deadline passes while the select waits: on_done, deadline_exceeded.
        auto [ctx, cancel] = weft::with_timeout(weft::background(), 2ms);
        auto r = weft::select(weft::on_recv(empty), weft::on_done(ctx), weft::on_timeout(1h));
        CHECK(r.index == 1);
        CHECK(ctx.err() == weft::context_errc::deadline_exceeded);
        cancel();
    }
    weft::channel<std::size_t> index(2);
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    weft::scheduler s(1);
    s.spawn([&, ctx = ctx]() -> weft::task<void> {
        auto r = co_await weft::async_select(weft::on_recv(empty), weft::on_done(ctx),
                                             weft::on_timeout(1ms));
        (void)index.try_send(r.index);
    });
    CHECK(index.recv() == 2u);
    s.spawn([&, ctx = ctx]() -> weft::task<void> {
        auto r = co_await weft::async_select(weft::on_recv(empty), weft::on_done(ctx),
                                             weft::on_timeout(1h));
        (void)index.try_send(r.index);
    });
    cancel();
    CHECK(index.recv() == 1u);
}

TEST_CASE("on_done of background never fires") {
    weft::channel<int> ch(0);
    const weft::context bg = weft::background();
    CHECK(weft::select(weft::on_done(bg), weft::otherwise()).index == 1);
    std::thread sender([&] { CHECK(ch.send(5)); });
    int got = 0;
    auto r = weft::select(weft::on_done(bg), weft::on_recv(ch, [&](int v) { got = v; }));
    sender.join();
    CHECK(r.index == 1);
    CHECK(got == 5);
}

// Producers select(on_send(ch, v), on_done(own ctx)) and consumers select(on_recv(ch),
// on_done(own ctx)); every context is cancelled at a random moment, then the channel is closed
// and drained. A value a producer's select reports sent is received exactly once (by a consumer
// or by the drain); a value whose select ran on_done is never received.
template <bool Tasks>
void race_select_cancel(std::size_t cap, unsigned seed) {
    constexpr int k_producers = 3;
    constexpr int k_consumers = 3;
    constexpr int k_per_producer = 2000;
    weft::channel<int> ch(cap);
    std::vector<weft::cancellable_context> contexts;
    for (int i = 0; i < k_producers + k_consumers; ++i)
        contexts.push_back(weft::with_cancel(weft::background()));

    std::mutex m;
    std::vector<int> sent_ok, received;
    std::atomic<int> unsent{0};
    weft::wait_group producers, consumers;
    producers.add(k_producers);
    consumers.add(k_consumers);

    auto produce = [&](int p) {
        const weft::context& ctx = contexts[static_cast<std::size_t>(p)].ctx;
        std::vector<int> mine;
        int i = 0;
        for (; i < k_per_producer; ++i) {
            const int v = p * k_per_producer + i;
            auto r = weft::select(weft::on_send(ch, v), weft::on_done(ctx));
            if (r.index == 1)
                break;
            mine.push_back(v);
        }
        unsent += k_per_producer - i;
        std::lock_guard lock(m);
        sent_ok.insert(sent_ok.end(), mine.begin(), mine.end());
    };
    auto keep = [&](const std::vector<int>& mine) {
        std::lock_guard lock(m);
        received.insert(received.end(), mine.begin(), mine.end());
    };

    weft::scheduler s(2); // declared after what its tasks use: destroyed first, it joins them
    std::vector<std::thread> threads;
    for (int p = 0; p < k_producers; ++p)
        threads.emplace_back([&, p] {
            produce(p);
            producers.done();
        });
    for (int c = 0; c < k_consumers; ++c) {
        if constexpr (Tasks) {
            s.spawn([&, c]() -> weft::task<void> {
                const weft::context& ctx = contexts[static_cast<std::size_t>(k_producers + c)].ctx;
                std::vector<int> mine;
                bool more = true;
                while (more) { // the handlers clear it
                    co_await weft::async_select(weft::on_recv(ch,
                                                              [&](std::optional<int> v) {
                                                                  if (v)
                                                                      mine.push_back(*v);
                                                                  else
                                                                      more = false;
                                                              }),
                                                weft::on_done(ctx, [&] { more = false; }));
                }
                keep(mine);
                consumers.done();
            });
        } else {
            threads.emplace_back([&, c] {
                const weft::context& ctx = contexts[static_cast<std::size_t>(k_producers + c)].ctx;
                std::vector<int> mine;
                bool more = true;
                while (more) { // the handlers clear it
                    weft::select(weft::on_recv(ch,
                                               [&](std::optional<int> v) {
                                                   if (v)
                                                       mine.push_back(*v);
                                                   else
                                                       more = false;
                                               }),
                                 weft::on_done(ctx, [&] { more = false; }));
                }
                keep(mine);
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
    CHECK(static_cast<int>(sent_ok.size()) + unsent.load() == k_producers * k_per_producer);
}

TEST_CASE("select with on_done racing transfer on threads: every value sent is received once") {
    for (int round = 0; round < weft_test::stress_rounds(); ++round)
        for (std::size_t cap : k_capacities)
            race_select_cancel<false>(cap, static_cast<unsigned>(round * 7 + cap));
}

TEST_CASE("async_select with on_done racing transfer: every value sent is received once") {
    for (int round = 0; round < weft_test::stress_rounds(); ++round)
        for (std::size_t cap : k_capacities)
            race_select_cancel<true>(cap, static_cast<unsigned>(round * 11 + cap));
}
