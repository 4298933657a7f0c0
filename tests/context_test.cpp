// weft::context (context.hpp): Go's context.Context. Cancellation reaches the context, its
// done() receiver, its stop_token and every descendant, once, with the reason; a deadline
// cancels by itself; background() never is.
#include "catch_compat.hpp"

#include <weft/context.hpp>
#include <weft/scheduler.hpp>
#include <weft/select.hpp>
#include <weft/sync.hpp>
#include <weft/task.hpp>

#include <atomic>
#include <chrono>
#include <stop_token>
#include <system_error>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

TEST_CASE("background is never cancelled, has no deadline, and its done() is nil") {
    weft::context ctx = weft::background();
    CHECK_FALSE(ctx.cancelled());
    CHECK_FALSE(ctx.err());
    CHECK_FALSE(ctx.cause());
    CHECK_FALSE(ctx.deadline());
    CHECK_FALSE(static_cast<bool>(ctx.done()));
    CHECK_FALSE(ctx.stop_token().stop_possible());
    // A nil receiver is never ready: select falls through to otherwise.
    bool fell_through = false;
    weft::select(weft::on_recv(ctx.done()), weft::otherwise([&] { fell_through = true; }));
    CHECK(fell_through);
}

TEST_CASE("cancel closes done(), requests the stop and sets err once") {
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    weft::receiver<std::monostate> done = ctx.done();
    std::stop_token token = ctx.stop_token();
    CHECK_FALSE(ctx.cancelled());
    CHECK_FALSE(ctx.err());
    CHECK(done.try_recv().status() == weft::status::not_ready);
    CHECK_FALSE(token.stop_requested());

    cancel();
    CHECK(ctx.cancelled());
    CHECK(ctx.err() == weft::context_errc::cancelled);
    CHECK(ctx.cause() == weft::context_errc::cancelled);
    CHECK(ctx.err().message() == "context cancelled");
    CHECK(std::string(ctx.err().category().name()) == "weft.context");
    CHECK_FALSE(done.recv()); // closed: recv returns at once with nothing
    CHECK(token.stop_requested());

    // Once: a second cancel with a cause changes nothing.
    cancel(std::make_error_code(std::errc::timed_out));
    CHECK(ctx.cause() == weft::context_errc::cancelled);
    // done() and stop_token() asked for after the cancel are already done.
    CHECK_FALSE(ctx.done().recv());
    CHECK(ctx.stop_token().stop_requested());
}

TEST_CASE("a cause given to cancel is cause(), and err() stays cancelled") {
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    auto [child, cancel_child] = weft::with_cancel(ctx);
    cancel(std::make_error_code(std::errc::connection_reset));
    CHECK(ctx.err() == weft::context_errc::cancelled);
    CHECK(ctx.cause() == std::errc::connection_reset);
    // The child inherits the parent's reason and cause.
    CHECK(child.err() == weft::context_errc::cancelled);
    CHECK(child.cause() == std::errc::connection_reset);
    cancel_child();
}

TEST_CASE("cancelling a parent cancels every descendant, cancelling a child leaves the parent") {
    auto [root, cancel_root] = weft::with_cancel(weft::background());
    auto [a, cancel_a] = weft::with_cancel(root);
    auto [b, cancel_b] = weft::with_cancel(root);
    auto [a1, cancel_a1] = weft::with_cancel(a);
    weft::receiver<std::monostate> a1_done = a1.done();

    cancel_a();
    CHECK(a.cancelled());
    CHECK(a1.cancelled());
    CHECK_FALSE(a1_done.recv());
    CHECK_FALSE(root.cancelled());
    CHECK_FALSE(b.cancelled());

    cancel_root();
    CHECK(b.err() == weft::context_errc::cancelled);
    // A child made from a cancelled parent is born cancelled.
    auto [late, cancel_late] = weft::with_cancel(root);
    CHECK(late.err() == weft::context_errc::cancelled);
    CHECK_FALSE(late.done().recv());
    cancel_b();
    cancel_a1();
    cancel_late();
}

TEST_CASE("a timeout cancels with deadline_exceeded and done() wakes a blocked receiver") {
    const auto start = std::chrono::steady_clock::now();
    auto [ctx, cancel] = weft::with_timeout(weft::background(), 50ms);
    REQUIRE(ctx.deadline());
    CHECK(*ctx.deadline() >= start + 50ms);
    CHECK_FALSE(ctx.done().recv()); // blocks until the deadline closes it
    CHECK(std::chrono::steady_clock::now() >= start + 50ms);
    CHECK(ctx.err() == weft::context_errc::deadline_exceeded);
    CHECK(ctx.err().message() == "context deadline exceeded");
    cancel(); // after the deadline: changes nothing
    CHECK(ctx.err() == weft::context_errc::deadline_exceeded);
}

TEST_CASE("a deadline in the past is exceeded at once, and a child keeps the earlier deadline") {
    auto [past, cancel_past] =
        weft::with_deadline(weft::background(), std::chrono::steady_clock::now() - 1s);
    CHECK(past.err() == weft::context_errc::deadline_exceeded);

    auto [parent, cancel_parent] = weft::with_timeout(weft::background(), 1h);
    auto [later, cancel_later] = weft::with_timeout(parent, 2h);
    auto [sooner, cancel_sooner] = weft::with_timeout(parent, 30min);
    auto [plain, cancel_plain] = weft::with_cancel(parent);
    CHECK(later.deadline() == parent.deadline());
    CHECK(plain.deadline() == parent.deadline());
    CHECK(sooner.deadline() < parent.deadline());

    // The parent's deadline reaches a child with no timer of its own, with its reason.
    auto [short_parent, cancel_short] = weft::with_timeout(weft::background(), 20ms);
    auto [child, cancel_child] = weft::with_cancel(short_parent);
    CHECK_FALSE(child.done().recv());
    CHECK(child.err() == weft::context_errc::deadline_exceeded);
    for (auto* c : {&cancel_past, &cancel_parent, &cancel_later, &cancel_sooner, &cancel_plain,
                    &cancel_short, &cancel_child})
        (*c)();
}

TEST_CASE("ctx.done() is a case in async_select: a task stops waiting when cancelled") {
    weft::scheduler s(2);
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    weft::channel<int> never(0);
    std::atomic<int> outcome{0};
    weft::wait_group wg;
    wg.add(1);
    s.spawn([&, ctx = ctx]() -> weft::task<void> {
        // A handler without parameters runs only for a received value; done() is closed,
        // never sent on, so the case is told by the result's index (or an optional handler).
        weft::select_result r = co_await weft::async_select(
            weft::on_recv(never), weft::on_recv(ctx.done(), [&](std::optional<std::monostate> v) {
                outcome = v ? 1 : 2;
            }));
        if (r.index != 1 || r.ok)
            outcome = 3;
        wg.done();
    });
    cancel();
    wg.wait();
    CHECK(outcome == 2);
}

TEST_CASE("stop_token interoperates with std::stop_callback") {
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    std::atomic<int> calls{0};
    std::stop_callback callback(ctx.stop_token(), [&] { ++calls; });
    CHECK(calls == 0);
    cancel();
    CHECK(calls == 1);
    cancel();
    CHECK(calls == 1);
}

TEST_CASE("children made, cancelled and dropped on many threads while the parent is cancelled: "
          "every surviving child ends cancelled") {
    for (int round = 0; round < 20; ++round) {
        auto [root, cancel_root] = weft::with_cancel(weft::background());
        std::atomic<bool> go{false};
        std::vector<std::thread> threads;
        std::vector<std::vector<weft::context>> kept(4);
        for (int t = 0; t < 4; ++t)
            threads.emplace_back([&, t, root = root] {
                while (!go.load(std::memory_order_acquire)) {
                }
                for (int i = 0; i < 200; ++i) {
                    auto [child, cancel_child] = weft::with_cancel(root);
                    if (i % 3 == 0)
                        cancel_child(); // cancelled by itself
                    else if (i % 3 == 1)
                        kept[t].push_back(child); // kept: must end cancelled by the root
                    // else dropped at once: unlinks itself from the root
                    (void)child.done();
                }
            });
        go.store(true, std::memory_order_release);
        cancel_root();
        for (auto& th : threads)
            th.join();
        std::size_t checked = 0;
        for (auto& list : kept)
            for (auto& c : list) {
                CHECK(c.err() == weft::context_errc::cancelled);
                CHECK_FALSE(c.done().recv());
                ++checked;
            }
        CHECK(checked == 4 * 67);
    }
}

TEST_CASE("a deadline racing cancel and the last handle's release: one reason wins, once") {
    int exceeded = 0;
    int cancelled = 0;
    for (int i = 0; i < 2000; ++i) {
        auto [ctx, cancel] =
            weft::with_timeout(weft::background(), std::chrono::microseconds(i % 7 * 50));
        weft::receiver<std::monostate> done = ctx.done();
        if (i % 3 == 0)
            continue; // dropped while its timer may be firing
        if (i % 3 == 1)
            cancel();             // racing the timer
        CHECK_FALSE(done.recv()); // closed either way, never hangs
        const std::error_code err = ctx.err();
        CHECK(
            (err == weft::context_errc::cancelled || err == weft::context_errc::deadline_exceeded));
        (err == weft::context_errc::cancelled ? cancelled : exceeded) += 1;
        cancel(); // after it ended: changes nothing
        CHECK(ctx.err() == err);
    }
    // Every third context waited for its deadline without a cancel: those all exceeded it.
    CHECK(exceeded >= 666);
    CHECK(exceeded + cancelled == 1333);
}
