// Actor waits given a context (actor.hpp, registry.hpp + context.hpp): tell(ctx, m) and
// async_tell(ctx, m) on a full mailbox return status::cancelled and enqueue nothing; ask(ctx, m)
// and async_ask(ctx, m) return an ask_result that is cancelled when the context is done before
// the reply, saying whether the message was enqueued (then the actor still handles it).
// Cancellation raced with senders on a small mailbox, every message counted.
#include "catch_compat.hpp"
#include "test_support.hpp"

#include <weft/actor.hpp>
#include <weft/context.hpp>
#include <weft/registry.hpp>
#include <weft/sync.hpp>
#include <weft/task.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <latch>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct add {
    int amount;
};
struct total {}; // -> the sum of what was added
struct count {}; // -> how many adds were handled
struct hold {};  // blocks the actor until its gate opens

// Sums what it is told. `hold` keeps the actor (and one worker) busy until `gate` opens, so the
// mailbox behind it fills up.
struct summer {
    std::latch* started = nullptr; // counted down when a hold begins
    std::latch* gate = nullptr;
    long sum = 0;
    int adds = 0;

    void handle(add a) {
        sum += a.amount;
        ++adds;
    }
    long handle(total) { return sum; }
    int handle(count) { return adds; }
    void handle(hold) {
        started->count_down();
        gate->wait();
    }
};

weft::actor_options small_mailbox(std::size_t capacity) {
    weft::actor_options o;
    o.mailbox_capacity = capacity;
    return o;
}

} // namespace

TEST_CASE("tell(ctx) on a full mailbox returns cancelled and enqueues nothing") {
    weft::scheduler s(2);
    std::latch started(1), gate(1);
    auto a = weft::spawn_actor<summer>(s, small_mailbox(1), &started, &gate);
    a.tell(hold{});
    started.wait(); // the hold is out of the mailbox and running
    a.tell(add{1}); // fills the one slot
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    std::thread canceller([cancel = cancel] { cancel(); });
    CHECK(a.tell(ctx, add{100}) == weft::status::cancelled); // no room before the cancel
    canceller.join();
    // Already cancelled: a full mailbox refuses at once.
    CHECK(a.tell(ctx, add{1000}) == weft::status::cancelled);
    gate.count_down();
    CHECK(a.ask(total{}).get() == 1); // only the add that fit
    // Already cancelled, but there is room: the message is taken.
    CHECK(a.tell(ctx, add{10}) == weft::status::ok);
    CHECK(a.ask(total{}).get() == 11);
}

TEST_CASE("async_tell(ctx) in a task returns cancelled while the mailbox stays full") {
    weft::scheduler s(2);
    std::latch started(1), gate(1);
    auto a = weft::spawn_actor<summer>(s, small_mailbox(1), &started, &gate);
    a.tell(hold{});
    started.wait();
    a.tell(add{1});
    auto [ctx, cancel] = weft::with_timeout(weft::background(), 5ms);
    auto sender = [&, ctx = ctx]() -> weft::task<weft::status> {
        co_return co_await a.async_tell(ctx, add{100});
    };
    CHECK(weft::sync_wait(s, sender()) == weft::status::cancelled);
    CHECK(ctx.err() == weft::context_errc::deadline_exceeded);
    gate.count_down();
    CHECK(a.ask(total{}).get() == 1);
    cancel();
}

TEST_CASE("ask(ctx) cancelled while waiting for the reply says sent and the actor still handles "
          "it") {
    weft::scheduler s(2);
    std::latch started(1), gate(1);
    auto a = weft::spawn_actor<summer>(s, small_mailbox(4), &started, &gate);
    a.tell(hold{});
    started.wait();
    a.tell(add{5});
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    std::thread canceller([cancel = cancel] { cancel(); });
    weft::ask_result<long> r = a.ask(ctx, total{}); // the reply waits behind the hold
    canceller.join();
    CHECK(r.status() == weft::status::cancelled);
    CHECK_FALSE(r);
    CHECK(r.sent());
    gate.count_down();
    CHECK(a.ask(count{}).get() == 1); // the add ran; the cancelled ask ran too (reply dropped)

    // With room and a live context the reply comes.
    auto [live, cancel_live] = weft::with_cancel(weft::background());
    weft::ask_result<long> ok = a.ask(live, total{});
    REQUIRE(ok);
    CHECK(ok.sent());
    CHECK(*ok == 5);
    cancel_live();
}

TEST_CASE("ask(ctx) cancelled while waiting for room says not sent and is never handled") {
    weft::scheduler s(2);
    std::latch started(1), gate(1);
    auto a = weft::spawn_actor<summer>(s, small_mailbox(1), &started, &gate);
    a.tell(hold{});
    started.wait();
    a.tell(add{1});
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    cancel();
    weft::ask_result<void> r = a.ask(ctx, add{100});
    CHECK(r.status() == weft::status::cancelled);
    CHECK_FALSE(r.sent());
    gate.count_down();
    CHECK(a.ask(total{}).get() == 1);
}

TEST_CASE("async_ask(ctx) in a task: the reply, or cancelled behind a held actor") {
    weft::scheduler s(2);
    std::latch started(1), gate(1);
    auto a = weft::spawn_actor<summer>(s, small_mailbox(4), &started, &gate);
    a.tell(add{7});
    auto [live, cancel_live] = weft::with_cancel(weft::background());
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    auto asker = [&, live = live, ctx = ctx, cancel = cancel]() -> weft::task<int> {
        weft::ask_result<long> first = co_await a.async_ask(live, total{});
        if (!first || *first != 7)
            co_return -1;
        a.tell(hold{});
        std::thread([cancel = cancel] { cancel(); }).detach();
        weft::ask_result<long> second = co_await a.async_ask(ctx, total{});
        if (second.status() != weft::status::cancelled || !second.sent())
            co_return -2;
        co_return 1;
    };
    CHECK(weft::sync_wait(s, asker()) == 1);
    started.wait();
    gate.count_down();
    CHECK(a.ask(count{}).get() == 1);
    cancel_live();
}

TEST_CASE("registry tell(ctx) and ask(ctx) go through to the key's actor") {
    weft::scheduler s(2);
    std::latch started(1), gate(1);
    weft::registry_options<int, summer> options;
    options.actor = small_mailbox(1);
    weft::registry<int, summer> reg(
        s,
        [&](int) {
            return summer{&started, &gate};
        },
        options);
    auto [live, cancel_live] = weft::with_cancel(weft::background());
    CHECK(reg.tell(live, 1, add{3}) == weft::status::ok);
    weft::ask_result<long> r = reg.ask(live, 1, total{});
    REQUIRE(r);
    CHECK(*r == 3);
    reg.tell(1, hold{});
    started.wait();
    reg.tell(1, add{1}); // full now
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    cancel();
    CHECK(reg.tell(ctx, 1, add{100}) == weft::status::cancelled);
    weft::ask_result<long> refused = reg.ask(ctx, 1, total{});
    CHECK(refused.status() == weft::status::cancelled);
    CHECK_FALSE(refused.sent());
    gate.count_down();
    CHECK(reg.ask(1, total{}).get() == 4);
    cancel_live();
}

namespace {

// Senders tell(ctx, v) (threads) or async_tell(ctx, v) (tasks) into a mailbox of two while the
// actor is slowed by the consumer, each sender's context cancelled at a random moment. Every
// value whose tell said ok is added exactly once; no cancelled one is.
template <bool Tasks>
void race_tell(unsigned seed) {
    constexpr int k_senders = 4;
    constexpr int k_per_sender = 500;
    weft::scheduler s(2);
    auto a = weft::spawn_actor<summer>(s, small_mailbox(2));
    std::vector<weft::cancellable_context> contexts;
    for (int i = 0; i < k_senders; ++i)
        contexts.push_back(weft::with_cancel(weft::background()));
    std::atomic<long> ok_sum{0};
    std::atomic<int> ok_count{0}, cancelled_count{0};
    weft::wait_group senders;
    senders.add(k_senders);
    std::vector<std::thread> threads;
    for (int p = 0; p < k_senders; ++p) {
        const weft::context ctx = contexts[static_cast<std::size_t>(p)].ctx;
        if constexpr (Tasks) {
            s.spawn([&, ctx, p]() -> weft::task<void> {
                for (int i = 1; i <= k_per_sender; ++i) {
                    const int v = p * k_per_sender + i;
                    if (co_await a.async_tell(ctx, add{v}) == weft::status::ok) {
                        ok_sum += v;
                        ++ok_count;
                    } else {
                        ++cancelled_count;
                    }
                }
                senders.done();
            });
        } else {
            threads.emplace_back([&, ctx, p] {
                for (int i = 1; i <= k_per_sender; ++i) {
                    const int v = p * k_per_sender + i;
                    if (a.tell(ctx, add{v}) == weft::status::ok) {
                        ok_sum += v;
                        ++ok_count;
                    } else {
                        ++cancelled_count;
                    }
                }
                senders.done();
            });
        }
    }
    std::mt19937 rng(seed);
    for (auto& c : contexts) {
        for (unsigned spin = rng() % 200000; spin > 0; --spin)
            std::atomic_signal_fence(std::memory_order_seq_cst);
        c.cancel();
    }
    senders.wait();
    for (auto& t : threads)
        t.join();
    CHECK(ok_count + cancelled_count == k_senders * k_per_sender);
    CHECK(a.ask(count{}).get() == ok_count); // ordered after every ok tell
    CHECK(a.ask(total{}).get() == ok_sum);
}

} // namespace

TEST_CASE("cancellation racing tell(ctx) from threads: every ok message handled once, no "
          "cancelled one") {
    for (int round = 0; round < weft_test::stress_rounds(); ++round)
        race_tell<false>(static_cast<unsigned>(round * 13 + 1));
}

TEST_CASE("cancellation racing async_tell(ctx) from tasks: every ok message handled once, no "
          "cancelled one") {
    for (int round = 0; round < weft_test::stress_rounds(); ++round)
        race_tell<true>(static_cast<unsigned>(round * 17 + 3));
}

TEST_CASE("cancellation racing ask(ctx) replies: each ask is answered or cancelled once, and "
          "handled exactly when sent") {
    weft::scheduler s(2);
    auto a = weft::spawn_actor<summer>(s, small_mailbox(2));
    const int rounds = 100 * weft_test::stress_rounds();
    std::mt19937 rng(29);
    int replied = 0, cancelled_sent = 0, cancelled_unsent = 0;
    for (int i = 0; i < rounds; ++i) {
        auto [ctx, cancel] = weft::with_cancel(weft::background());
        const unsigned delay = static_cast<unsigned>(rng() % 20000);
        std::thread canceller([cancel = cancel, delay] {
            for (unsigned spin = delay; spin > 0; --spin)
                std::atomic_signal_fence(std::memory_order_seq_cst);
            cancel();
        });
        weft::ask_result<void> r = a.ask(ctx, add{1});
        canceller.join();
        if (r) {
            ++replied;
            CHECK(r.sent());
        } else if (r.sent()) {
            ++cancelled_sent;
        } else {
            ++cancelled_unsent;
        }
    }
    CHECK(replied + cancelled_sent + cancelled_unsent == rounds);
    // Every ask that was enqueued was handled (those cancelled after sending too), no other.
    CHECK(a.ask(count{}).get() == replied + cancelled_sent);
}
