// weft actors: messages of one sender arrive in order; an actor handles one message at a time,
// also across co_await; ask works from threads and tasks; a throwing handler fails only its
// message; a full mailbox waits, fails or is refused by policy; stop and scheduler shutdown
// leave no ask hanging; many actors exchange messages with every one counted.
#include "catch_compat.hpp"
#include "test_support.hpp"

#include <weft/actor.hpp>
#include <weft/channel.hpp>
#include <weft/sync.hpp>
#include <weft/task.hpp>
#include <weft/task_group.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct add {
    int amount;
};
struct get {};
struct fail {};
struct slow_add {
    int amount;
};
struct sequence {
    int sender;
    int number;
};
struct health {}; // -> {overlaps, out_of_order}
struct health_report {
    int overlaps;
    int out_of_order;
};

// Detects two messages running at once: `busy` must be false whenever a handler starts.
struct counter {
    long total = 0;
    std::atomic<bool> busy{false};
    std::atomic<int> overlaps{0};
    std::vector<int> last_seen = std::vector<int>(8, -1);
    int out_of_order = 0;

    void enter() {
        // relaxed: a detector; a real overlap shows up as true here.
        if (busy.exchange(true, std::memory_order_relaxed))
            overlaps.fetch_add(1, std::memory_order_relaxed);
    }
    void leave() { busy.store(false, std::memory_order_relaxed); }

    void handle(add a) {
        enter();
        total += a.amount;
        leave();
    }
    long handle(get) {
        enter();
        const long t = total;
        leave();
        return t;
    }
    int handle(fail) { throw std::runtime_error("handler refused"); }
    // Suspends mid-message: no other message of this actor may start meanwhile.
    weft::task<long> handle(slow_add a) {
        enter();
        co_await weft::yield();
        total += a.amount;
        leave();
        co_return total;
    }
    health_report handle(health) const {
        return {overlaps.load(std::memory_order_relaxed), out_of_order};
    }
    void handle(sequence s) {
        enter();
        if (s.number != last_seen[static_cast<std::size_t>(s.sender)] + 1)
            ++out_of_order;
        last_seen[static_cast<std::size_t>(s.sender)] = s.number;
        leave();
    }
};

} // namespace

TEST_CASE("tell and ask: one sender's messages arrive in order, replies come back") {
    weft::scheduler s(2);
    auto ref = weft::spawn_actor<counter>(s);
    constexpr int senders = 4, each = 5000;
    std::vector<std::thread> threads;
    for (int t = 0; t < senders; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < each; ++i)
                ref.tell(sequence{t, i});
        });
    for (auto& t : threads)
        t.join();
    ref.tell(add{5});
    CHECK(ref.ask(get{}).get() == 5);
    const health_report h = ref.ask(health{}).get();
    CHECK(h.out_of_order == 0);
    CHECK(h.overlaps == 0);
}

TEST_CASE("an actor handles one message at a time, even while a handler is suspended") {
    weft::scheduler s(2);
    auto ref = weft::spawn_actor<counter>(s);
    constexpr int per_source = 2000;
    auto from_task = [&]() -> weft::task<void> {
        for (int i = 0; i < per_source; ++i) {
            if (i % 2)
                co_await ref.async_tell(slow_add{1});
            else
                (void)co_await ref.async_ask(slow_add{1});
        }
    };
    auto tasks = [&]() -> weft::task<void> {
        weft::task_group g;
        for (int i = 0; i < 4; ++i)
            g.spawn(from_task);
        co_await g.wait();
    };
    std::thread from_thread([&] {
        for (int i = 0; i < per_source; ++i)
            ref.tell(add{1});
    });
    weft::sync_wait(s, tasks());
    from_thread.join();
    CHECK(ref.ask(get{}).get() == 5L * per_source);
    CHECK(ref.ask(health{}).get().overlaps == 0);
}

TEST_CASE("a throwing handler fails only its ask, and a tell's exception goes to the handler") {
    weft::scheduler s(1);
    std::atomic<int> reported{0};
    s.on_unhandled_exception([&](std::exception_ptr) { ++reported; });
    auto ref = weft::spawn_actor<counter>(s);
    ref.tell(add{1});
    auto failed = ref.ask(fail{});
    CHECK_THROWS_WITH(failed.get(), "handler refused");
    ref.tell(fail{});
    ref.tell(add{2});
    CHECK(ref.ask(get{}).get() == 3); // the actor went on after both failures
    CHECK(reported == 1);
}

TEST_CASE("ask from a task awaits the reply, also from an async handler") {
    weft::scheduler s(2);
    auto ref = weft::spawn_actor<counter>(s);
    auto run = [&]() -> weft::task<long> {
        co_await ref.async_tell(add{10});
        const long slow = co_await ref.ask(slow_add{5});
        const long now = co_await ref.async_ask(get{});
        co_return slow + now;
    };
    CHECK(weft::sync_wait(s, run()) == 30);
}

namespace {

// Holds its first message until `gate` is closed, so the mailbox fills behind it; says on
// `started` when it holds it.
struct gated {
    weft::channel<int> gate;
    weft::channel<int> started;
    int handled = 0;
    gated(weft::channel<int> g, weft::channel<int> s) : gate(std::move(g)), started(std::move(s)) {}
    weft::task<int> handle(int) {
        if (handled++ == 0) {
            (void)started.try_send(1);
            (void)co_await gate.async_recv();
        }
        co_return handled;
    }
};

} // namespace

TEST_CASE("a full mailbox: try_tell refuses, when_full::fail throws") {
    weft::scheduler s(1);
    weft::channel<int> gate(0), started(1);
    weft::actor_options options;
    options.mailbox_capacity = 2;
    options.full = weft::when_full::fail;
    auto ref = weft::spawn_actor<gated>(s, options, gate, started);
    auto first = ref.ask(0);
    REQUIRE(started.recv_for(30s)); // the actor holds it: the mailbox is empty again
    CHECK(ref.try_tell(1) == weft::status::ok);
    auto third = ref.ask(0); // the second and last slot
    CHECK(ref.try_tell(1) == weft::status::not_ready);
    CHECK_THROWS_AS(ref.tell(1), weft::mailbox_full);
    CHECK_THROWS_WITH(ref.tell(1), "weft: actor mailbox full (capacity 2)");
    gate.close();
    CHECK(first.get() == 1);
    CHECK(third.get() == 3); // the accepted tell came between; nothing refused was handled
}

TEST_CASE("a full mailbox with when_full::wait blocks a thread until there is room") {
    weft::scheduler s(1);
    weft::channel<int> gate(0), started(1);
    weft::actor_options options;
    options.mailbox_capacity = 2;
    auto ref = weft::spawn_actor<gated>(s, options, gate, started);
    std::atomic<int> sent{0};
    std::thread sender([&] {
        for (int i = 0; i < 50; ++i) {
            ref.tell(1);
            sent.fetch_add(1);
        }
    });
    REQUIRE(started.recv_for(30s));
    while (sent.load() < 3) // the held message and a full mailbox behind it
        std::this_thread::yield();
    const int before_release = sent.load();
    gate.close();
    sender.join();
    CHECK(before_release == 3);    // the fourth tell waited for room
    CHECK(ref.ask(0).get() == 51); // all 50 tells handled, then this ask
}

TEST_CASE("stop: finish handles what was sent before, drop fails pending asks, later messages are "
          "refused") {
    weft::scheduler s(1);
    SECTION("finish") {
        weft::channel<int> gate(0), started(1);
        auto ref = weft::spawn_actor<gated>(s, gate, started);
        auto first = ref.ask(0);
        REQUIRE(started.recv_for(30s));
        auto second = ref.ask(0);
        ref.stop();
        CHECK(ref.stopped());
        CHECK_THROWS_AS(ref.tell(1), weft::actor_stopped);
        CHECK(ref.try_tell(1) == weft::status::closed);
        gate.close();
        CHECK(first.get() == 1);
        CHECK(second.get() == 2); // sent before stop: handled
    }
    SECTION("drop") {
        weft::channel<int> gate(0), started(1);
        auto ref = weft::spawn_actor<gated>(s, gate, started);
        auto first = ref.ask(0);
        REQUIRE(started.recv_for(30s));
        auto second = ref.ask(0);
        ref.stop(weft::stop_mode::drop);
        gate.close();
        CHECK(first.get() == 1); // already being handled: it finishes
        CHECK_THROWS_AS(second.get(), weft::actor_stopped);
    }
}

TEST_CASE("destroying the scheduler fails the asks still queued, none hangs") {
    weft::channel<int> gate(0), started(1);
    std::vector<weft::future<int>> replies;
    {
        weft::scheduler s(1);
        auto ref = weft::spawn_actor<gated>(s, gate, started);
        for (int i = 0; i < 5; ++i)
            replies.push_back(ref.ask(0));
        REQUIRE(started.recv_for(30s));
    }
    int stopped = 0;
    for (auto& r : replies) {
        try {
            (void)r.get();
        } catch (const weft::actor_stopped&) {
            ++stopped;
        }
    }
    CHECK(stopped == 5); // the held one too: its handler was destroyed mid-way
}

TEST_CASE("a task in async_tell suspends while the mailbox is full, and its worker runs on") {
    // One worker, capacity 1. The sender task fills the mailbox and must suspend (not block the
    // worker), so the opener task on the same worker can release the gate.
    weft::scheduler s(1);
    weft::channel<int> gate(0), started(1);
    weft::actor_options options;
    options.mailbox_capacity = 1;
    auto ref = weft::spawn_actor<gated>(s, options, gate, started);
    auto sender = [&]() -> weft::task<int> {
        for (int i = 0; i < 20; ++i)
            co_await ref.async_tell(1);
        co_return co_await ref.async_ask(0);
    };
    auto opener = [&]() -> weft::task<void> {
        (void)co_await started.async_recv();
        gate.close();
    };
    auto both = [&]() -> weft::task<int> {
        auto [handled, none] = co_await weft::when_all(sender(), opener());
        (void)none;
        co_return handled;
    };
    CHECK(weft::sync_wait(s, both()) == 21);
}

namespace {

// An actor whose handler waits on a channel nobody sends to: it holds its turn for ever.
struct stuck {
    weft::channel<int> never;
    weft::task<void> handle(int) { (void)co_await never.async_recv(); }
};

} // namespace

TEST_CASE("the deadlock report names a task waiting for room in a full mailbox as such") {
    // One worker, capacity 1. The actor's first handler waits for ever (a receive); the second
    // message fills the mailbox; the third sender waits for room: a mailbox wait, not a send.
    weft::scheduler s(1);
    weft::channel<weft::deadlock_report> reports(4);
    s.report_deadlocks([&](const weft::deadlock_report& r) { (void)reports.try_send(r); }, 20ms);
    weft::channel<int> never(0);
    weft::actor_options options;
    options.mailbox_capacity = 1;
    auto ref = weft::spawn_actor<stuck>(s, options, never);
    auto sender = [&]() -> weft::task<void> {
        for (int i = 0; i < 3; ++i)
            co_await ref.async_tell(i);
    };
    s.spawn(sender);
    auto r = reports.recv_for(30s);
    REQUIRE(r.has_value());
    CHECK(r->mailboxes == 1);
    CHECK(r->sending == 0);
    CHECK(r->receiving == 1);
    CHECK(r->message() == "weft: all tasks are asleep - deadlock! 2 tasks blocked: 1 receiving "
                          "from a channel, 1 waiting for room in an actor's mailbox");
    never.close(); // the handlers return, the sender gets its room
}

namespace {

// A ring of actors passing tokens: each token makes `hops` hops, then is counted. Nodes find
// their successor by index in a shared table, so the actors hold no references to each other.
struct ring_node {
    const std::vector<weft::actor_ref<ring_node>>* ring;
    std::size_t next;
    weft::wait_group* arrived;
    void handle(int hops_left) {
        if (hops_left == 0)
            arrived->done();
        else
            (*ring)[next].tell(hops_left - 1);
    }
};

} // namespace

TEST_CASE("100k actors pass tokens around a ring and every token arrives") {
    weft::scheduler s(2);
    constexpr std::size_t actors = 100'000;
    constexpr int tokens = 1000, hops = 100;
    weft::wait_group arrived;
    arrived.add(tokens);
    weft::actor_options unbounded;
    unbounded.mailbox_capacity = 0; // a handler's tell must never wait for room
    std::vector<weft::actor_ref<ring_node>> ring;
    ring.reserve(actors);
    for (std::size_t i = 0; i < actors; ++i)
        ring.push_back(
            weft::spawn_actor<ring_node>(s, unbounded, &ring, (i + 1) % actors, &arrived));
    for (int i = 0; i < tokens; ++i)
        ring[static_cast<std::size_t>(i) * (actors / tokens)].tell(hops);
    CHECK(arrived.wait_for(120s));
}
