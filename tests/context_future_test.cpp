// Future waits given a context (future.hpp + context.hpp), and spawn_blocking's futures: a
// cancelled wait returns status::cancelled and leaves the future as it was (the producer runs
// on; a later wait or read gets the result); a cancelled task is no longer the future's
// consumer, so a later result does not resume it. Cancellation raced with set_value on threads
// and tasks, every round's outcome and value counted.
#include "catch_compat.hpp"
#include "test_support.hpp"

#include <weft/context.hpp>
#include <weft/future.hpp>
#include <weft/scheduler.hpp>
#include <weft/spawn_blocking.hpp>
#include <weft/sync.hpp>
#include <weft/task.hpp>

#include <atomic>
#include <chrono>
#include <latch>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>

using namespace std::chrono_literals;

TEST_CASE("a thread's wait(ctx) returns cancelled when the context is cancelled, then the value "
          "is still read") {
    weft::promise<int> p;
    weft::future<int> f = p.get_future();
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    std::thread canceller([cancel = cancel] { cancel(); });
    CHECK(f.wait(ctx) == weft::status::cancelled); // nothing sets the value before it
    canceller.join();
    CHECK(ctx.err() == weft::context_errc::cancelled);
    CHECK_FALSE(f.ready());
    p.set_value(7);
    CHECK(f.wait(ctx) == weft::status::ok); // ready: ok even with a done context
    CHECK(f.get() == 7);
}

TEST_CASE("wait(ctx) with a deadline says cancelled and err() says deadline_exceeded") {
    weft::promise<std::string> p;
    weft::future<std::string> f = p.get_future();
    auto [ctx, cancel] = weft::with_timeout(weft::background(), 10ms);
    CHECK(f.wait(ctx) == weft::status::cancelled);
    CHECK(ctx.err() == weft::context_errc::deadline_exceeded);
    p.set_value("late");
    CHECK(f.get() == "late");
    cancel();
}

TEST_CASE("wait(ctx) on an already cancelled context returns at once, ok only if ready") {
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    cancel();
    weft::promise<int> p;
    weft::future<int> f = p.get_future();
    CHECK(f.wait(ctx) == weft::status::cancelled);
    CHECK(f.wait(ctx) == weft::status::cancelled); // a second wait is a wait like the first
    p.set_value(3);
    CHECK(f.wait(ctx) == weft::status::ok);
    CHECK(f.get() == 3);
    // background() never cancels: wait(ctx) is wait().
    weft::future<int> g = weft::make_ready_future(5);
    CHECK(g.wait(weft::background()) == weft::status::ok);
    CHECK(g.get() == 5);
}

TEST_CASE("a task's async_wait(ctx) returns cancelled and a later set_value does not resume it") {
    weft::scheduler s(2);
    weft::promise<int> p;
    weft::future<int> f = p.get_future();
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    std::atomic<int> first{-1};
    std::atomic<int> resumed{0};
    weft::wait_group cancelled_wg, done_wg;
    cancelled_wg.add(1);
    done_wg.add(1);
    weft::channel<int> go_on(0); // rendezvous: the task waits here, not on the future
    s.spawn([&, ctx = ctx]() -> weft::task<void> {
        first = static_cast<int>(co_await f.async_wait(ctx));
        ++resumed;
        cancelled_wg.done();
        (void)co_await go_on.async_recv(); // moved on: parked elsewhere when the value comes
        // The future is still readable: a second wait (no context) gets the value.
        const int v = co_await std::move(f);
        first = first + v;
        done_wg.done();
    });
    cancel();
    cancelled_wg.wait();
    CHECK(first == static_cast<int>(weft::status::cancelled));
    p.set_value(100); // must not resume the task, which waits in go_on
    CHECK(go_on.send(1));
    done_wg.wait();
    CHECK(resumed == 1);
    CHECK(first == static_cast<int>(weft::status::cancelled) + 100);
}

TEST_CASE("a task's async_wait(ctx) returns ok once the value is set, and on a cancelled context "
          "returns at once") {
    weft::scheduler s(2);
    weft::promise<int> p;
    weft::future<int> f = p.get_future();
    auto [live, cancel_live] = weft::with_cancel(weft::background());
    auto [dead, cancel_dead] = weft::with_cancel(weft::background());
    cancel_dead();
    std::thread producer([&] { p.set_value(9); });
    auto consumer = [&, live = live, dead = dead]() -> weft::task<int> {
        if (co_await f.async_wait(dead) != weft::status::cancelled && !f.ready())
            co_return -1; // ok must mean ready
        if (co_await f.async_wait(live) != weft::status::ok)
            co_return -2;
        if (!f.ready())
            co_return -3;
        co_return co_await std::move(f);
    };
    CHECK(weft::sync_wait(s, consumer()) == 9);
    producer.join();
    cancel_live();
}

namespace {

// Spins a random while: lets a race land anywhere in the other side's steps.
void spin(std::mt19937& rng, unsigned most) {
    for (unsigned n = rng() % most; n > 0; --n)
        std::atomic_signal_fence(std::memory_order_seq_cst);
}

} // namespace

TEST_CASE("cancellation racing set_value on a thread's wait(ctx): one outcome, the value read "
          "once") {
    std::mt19937 rng(11);
    const int rounds = 200 * weft_test::stress_rounds();
    int ok = 0, cancelled = 0;
    long long sum = 0;
    for (int i = 0; i < rounds; ++i) {
        weft::promise<int> p;
        weft::future<int> f = p.get_future();
        auto [ctx, cancel] = weft::with_cancel(weft::background());
        const unsigned a = static_cast<unsigned>(rng()), b = static_cast<unsigned>(rng());
        std::thread producer([&p, a, i] {
            std::mt19937 r(a);
            spin(r, 20000);
            p.set_value(i);
        });
        std::thread canceller([cancel = cancel, b] {
            std::mt19937 r(b);
            spin(r, 20000);
            cancel();
        });
        const weft::status st = f.wait(ctx);
        if (st == weft::status::ok) {
            ++ok;
            CHECK(f.ready()); // ok means get() will not wait
        } else {
            ++cancelled;
            CHECK(st == weft::status::cancelled);
        }
        sum += f.get(); // either way the value arrives, once
        producer.join();
        canceller.join();
    }
    CHECK(ok + cancelled == rounds);
    CHECK(sum == static_cast<long long>(rounds) * (rounds - 1) / 2);
}

TEST_CASE("cancellation racing set_value on a task's async_wait(ctx): one outcome, no double "
          "resume, no lost wake-up") {
    weft::scheduler s(2);
    std::mt19937 rng(5);
    const int rounds = 200 * weft_test::stress_rounds();
    std::atomic<int> ok{0}, cancelled{0}, resumes{0};
    std::atomic<long long> sum{0};
    for (int i = 0; i < rounds; ++i) {
        weft::promise<int> p;
        weft::future<int> f = p.get_future();
        auto [ctx, cancel] = weft::with_cancel(weft::background());
        weft::wait_group wg;
        wg.add(1);
        s.spawn([&, ctx = ctx]() -> weft::task<void> {
            const weft::status st = co_await f.async_wait(ctx);
            ++resumes; // a double resume would count twice (and TSan would see it)
            if (st == weft::status::ok) {
                ++ok;
                if (!f.ready())
                    ++resumes; // ok must mean ready: fail the count
            } else {
                ++cancelled;
            }
            sum += co_await std::move(f); // cancelled or not, the value comes: no lost wake-up
            wg.done();
        });
        const unsigned a = static_cast<unsigned>(rng());
        std::thread producer([&p, a, i] {
            std::mt19937 r(a);
            spin(r, 20000);
            p.set_value(i);
        });
        spin(rng, 20000);
        cancel();
        wg.wait();
        producer.join();
    }
    CHECK(resumes == rounds);
    CHECK(ok + cancelled == rounds);
    CHECK(sum == static_cast<long long>(rounds) * (rounds - 1) / 2);
}

TEST_CASE("a cancelled wait on spawn_blocking returns while the call runs on, and its result is "
          "read afterwards") {
    std::latch gate(1);
    std::atomic<bool> finished{false};
    weft::future<int> f = weft::spawn_blocking([&] {
        gate.wait(); // blocks until the wait below has been cancelled
        finished = true;
        return 42;
    });
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    std::thread canceller([cancel = cancel] { cancel(); });
    CHECK(f.wait(ctx) == weft::status::cancelled);
    canceller.join();
    CHECK_FALSE(finished); // the call is still blocked on the gate
    gate.count_down();
    CHECK(f.get() == 42);
    CHECK(finished);

    // The same from a task.
    weft::scheduler s(1);
    std::latch gate2(1);
    weft::future<std::string> g = weft::spawn_blocking([&] {
        gate2.wait();
        return std::string("done");
    });
    auto [ctx2, cancel2] = weft::with_cancel(weft::background());
    auto consumer = [&, ctx2 = ctx2, cancel2 = cancel2]() -> weft::task<std::string> {
        std::thread([cancel2 = cancel2] { cancel2(); }).detach();
        if (co_await g.async_wait(ctx2) != weft::status::cancelled)
            co_return "not cancelled";
        gate2.count_down();
        co_return co_await std::move(g);
    };
    CHECK(weft::sync_wait(s, consumer()) == "done");
}

TEST_CASE("a spawn_blocking future dropped after a cancelled wait lets the call finish cleanly") {
    // Channels, captured by value: the call outlives everything of the test's but its handles.
    weft::channel<int> gate(1);
    weft::channel<int> finished(1);
    {
        weft::future<std::unique_ptr<int>> f = weft::spawn_blocking([gate, finished]() mutable {
            (void)gate.recv();
            auto result = std::make_unique<int>(1); // dropped with the state: no leak (ASan)
            (void)finished.try_send(*result);       // checked below, on the test's thread
            return result;
        });
        auto [ctx, cancel] = weft::with_timeout(weft::background(), 1ms);
        CHECK(f.wait(ctx) == weft::status::cancelled);
        cancel();
    } // the future is gone; the call still waits on the gate
    CHECK(gate.try_send(0) == weft::status::ok);
    CHECK(finished.recv() == 1); // the call ran to its end
}
