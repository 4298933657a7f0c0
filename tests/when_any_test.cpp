// Behaviours of weft::when_any: the first task to finish wins, the others see their context
// cancelled and have finished when when_any returns (counted); of two that finish at once
// exactly one is reported and the loser's value is destroyed (counted live objects); a winner's
// exception is rethrown after the join; the vector form; a cancelled parent ends the race.
#include "catch_compat.hpp"
#include "test_support.hpp"

#include <weft/channel.hpp>
#include <weft/context.hpp>
#include <weft/scheduler.hpp>
#include <weft/task.hpp>
#include <weft/when_any.hpp>

#include <atomic>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <variant>
#include <vector>

namespace {

// A value that counts its live instances, so a dropped loser's value can be seen destroyed.
struct tracked {
    static inline std::atomic<int> live{0};
    int id;
    explicit tracked(int i) : id(i) { ++live; }
    tracked(tracked&& other) noexcept : id(other.id) { ++live; }
    tracked& operator=(tracked&&) = delete;
    ~tracked() { --live; }
};

// Waits on a channel nobody sends to: returns only when `ctx` is cancelled (counted).
weft::task<int> wait_for_cancel(weft::context ctx, weft::channel<int> never,
                                std::atomic<int>& cancelled, std::atomic<int>& finished) {
    weft::recv_result<int> r = co_await never.async_recv(ctx);
    if (r.status() == weft::status::cancelled)
        ++cancelled;
    ++finished;
    co_return -1;
}

} // namespace

TEST_CASE("when_any returns the first result after the losers saw cancellation and finished") {
    weft::scheduler s(2);
    weft::channel<int> never(0);
    std::atomic<int> cancelled{0};
    std::atomic<int> finished{0};
    auto loser = [&](weft::context ctx) {
        return wait_for_cancel(std::move(ctx), never, cancelled, finished);
    };
    auto winner = [](weft::context) -> weft::task<std::string> { co_return "first"; };
    auto r = weft::sync_wait(s, weft::when_any(weft::background(), loser, winner, loser));
    // Joined before returning: both losers are done by now, not merely cancelled.
    CHECK(finished == 2);
    CHECK(cancelled == 2);
    REQUIRE(r.index == 1);
    CHECK(std::get<1>(r.value) == "first");
}

TEST_CASE("when_any of two tasks finishing at once reports exactly one and drops the other") {
    weft::scheduler s(4);
    const int rounds = 200 * weft_test::stress_rounds();
    int wins[2] = {0, 0};
    for (int round = 0; round < rounds; ++round) {
        std::atomic<int> finished{0};
        auto racer = [&finished](int id) {
            return [&finished, id](weft::context) -> weft::task<tracked> {
                co_await weft::yield();
                ++finished;
                co_return tracked(id);
            };
        };
        {
            auto r = weft::sync_wait(s, weft::when_any(weft::background(), racer(0), racer(1)));
            CHECK(finished == 2);      // the loser was joined
            CHECK(tracked::live == 1); // only the winner's value is alive: the loser's died
            REQUIRE(r.index < 2);
            const int id = r.index == 0 ? std::get<0>(r.value).id : std::get<1>(r.value).id;
            CHECK(id == static_cast<int>(r.index));
            ++wins[r.index];
        }
        CHECK(tracked::live == 0);
        // The vector form shares one slot: a second claimant would overwrite the winner's value.
        finished = 0;
        std::vector<std::function<weft::task<tracked>(weft::context)>> both{racer(0), racer(1)};
        {
            auto r = weft::sync_wait(s, weft::when_any(weft::background(), std::move(both)));
            CHECK(finished == 2);
            CHECK(tracked::live == 1);
            REQUIRE(r.index < 2);
            CHECK(r.value.id == static_cast<int>(r.index));
            ++wins[r.index];
        }
        CHECK(tracked::live == 0);
    }
    CHECK(wins[0] + wins[1] == 2 * rounds);
}

TEST_CASE("when_any rethrows the winner's exception after joining the others") {
    weft::scheduler s(2);
    weft::channel<int> never(0);
    std::atomic<int> cancelled{0};
    std::atomic<int> finished{0};
    auto loser = [&](weft::context ctx) {
        return wait_for_cancel(std::move(ctx), never, cancelled, finished);
    };
    auto thrower = [](weft::context) -> weft::task<void> {
        throw std::runtime_error("winner failed");
        co_return;
    };
    REQUIRE_THROWS_WITH(weft::sync_wait(s, weft::when_any(weft::background(), loser, thrower)),
                        "winner failed");
    CHECK(finished == 1);
    CHECK(cancelled == 1);
}

TEST_CASE("when_any with a void winner reports std::monostate") {
    weft::scheduler s(2);
    weft::channel<int> never(0);
    std::atomic<int> cancelled{0};
    std::atomic<int> finished{0};
    auto loser = [&](weft::context ctx) {
        return wait_for_cancel(std::move(ctx), never, cancelled, finished);
    };
    auto done = [](weft::context) -> weft::task<void> { co_return; };
    auto r = weft::sync_wait(s, weft::when_any(weft::background(), loser, done));
    CHECK(r.index == 1);
    CHECK(std::holds_alternative<std::monostate>(r.value));
    CHECK(finished == 1);
}

TEST_CASE("when_any over a vector reports the winner's position and joins the rest") {
    weft::scheduler s(2);
    weft::channel<int> never(0);
    std::atomic<int> cancelled{0};
    std::atomic<int> finished{0};
    constexpr int k_racers = 8;
    constexpr int k_winner = 5;
    std::vector<std::function<weft::task<int>(weft::context)>> racers;
    for (int i = 0; i < k_racers; ++i) {
        if (i == k_winner)
            racers.emplace_back([](weft::context) -> weft::task<int> { co_return 50; });
        else
            racers.emplace_back([&](weft::context ctx) {
                return wait_for_cancel(std::move(ctx), never, cancelled, finished);
            });
    }
    auto r = weft::sync_wait(s, weft::when_any(weft::background(), std::move(racers)));
    CHECK(r.index == static_cast<std::size_t>(k_winner));
    CHECK(r.value == 50);
    CHECK(finished == k_racers - 1);
    CHECK(cancelled == k_racers - 1);

    std::vector<std::function<weft::task<int>(weft::context)>> none;
    CHECK_THROWS_AS(weft::sync_wait(s, weft::when_any(weft::background(), std::move(none))),
                    std::invalid_argument);
}

TEST_CASE("cancelling the parent context ends a when_any whose tasks all wait on it") {
    weft::scheduler s(2);
    weft::channel<int> never(0);
    weft::channel<int> started(4);
    std::atomic<int> cancelled{0};
    std::atomic<int> finished{0};
    auto [parent, cancel_parent] = weft::with_cancel(weft::background());
    auto waiter = [&](weft::context ctx) -> weft::task<int> {
        co_await started.async_send(1);
        co_return co_await wait_for_cancel(std::move(ctx), never, cancelled, finished);
    };
    std::thread canceller([&, cancel = cancel_parent] {
        for (int i = 0; i < 3; ++i)
            CHECK(started.recv() == 1); // all three wait before the parent is cancelled
        cancel();
    });
    auto r = weft::sync_wait(s, weft::when_any(parent, waiter, waiter, waiter));
    canceller.join();
    CHECK(r.index < 3);
    CHECK(std::visit([](int v) { return v; }, r.value) == -1); // the winner saw cancellation too
    CHECK(finished == 3);
    CHECK(cancelled == 3);
}
