// A loop of awaits that complete at once does not grow the stack (task.hpp's promise), in every
// build: at -O0 and under the sanitizers, g++ and clang do not turn symmetric transfer into a
// tail call, so an awaiter that "transfers" back and forth nests one call per await. Each test
// runs a million such awaits in one task on a worker (8 MiB stack): before the fix the first
// forms overflowed it in the dev preset; each counts what it awaited.
#include "catch_compat.hpp"

#include <weft/actor.hpp>
#include <weft/channel.hpp>
#include <weft/select.hpp>
#include <weft/sync.hpp>
#include <weft/task.hpp>

#include <chrono>
#include <cstdint>
#include <vector>

using namespace std::chrono_literals;

namespace {

constexpr int k_rounds = 1'000'000;

weft::task<int> at_once(int v) {
    co_return v;
}

weft::task<void> nothing() {
    co_return;
}

struct add {
    int amount;
};
struct total {};
struct tally {
    std::int64_t sum = 0;
    void handle(add a) { sum += a.amount; }
    std::int64_t handle(total) const { return sum; }
};

} // namespace

TEST_CASE("a million co_awaits of tasks that return at once do not grow the stack") {
    weft::scheduler s(1);
    const std::int64_t sum = weft::sync_wait(s, []() -> weft::task<std::int64_t> {
        std::int64_t total = 0;
        for (int i = 0; i < k_rounds; ++i) {
            total += co_await at_once(i);
            co_await nothing();
        }
        co_return total;
    }());
    CHECK(sum == std::int64_t{k_rounds} * (k_rounds - 1) / 2);
}

TEST_CASE("a million when_alls of one task that returns at once do not grow the stack") {
    weft::scheduler s(1);
    const std::int64_t sum = weft::sync_wait(s, []() -> weft::task<std::int64_t> {
        std::int64_t total = 0;
        for (int i = 0; i < k_rounds; ++i) {
            std::vector<weft::task<int>> one;
            one.push_back(at_once(i));
            total += (co_await weft::when_all(std::move(one)))[0];
        }
        co_return total;
    }());
    CHECK(sum == std::int64_t{k_rounds} * (k_rounds - 1) / 2);
}

TEST_CASE("a million async_selects on a ready channel do not grow the stack") {
    weft::scheduler s(1);
    weft::channel<int> ch(1);
    const std::int64_t sum =
        weft::sync_wait(s, [](weft::channel<int> c) -> weft::task<std::int64_t> {
            std::int64_t total = 0;
            int picked = 0;
            for (int i = 0; i < k_rounds; ++i) {
                (void)c.try_send(i);
                const auto r =
                    co_await weft::async_select(weft::on_recv(c, [&](int v) { total += v; }));
                picked += r.index == 0 && r.ok ? 1 : 0;
            }
            co_return picked == k_rounds ? total : -1;
        }(ch));
    CHECK(sum == std::int64_t{k_rounds} * (k_rounds - 1) / 2);
}

TEST_CASE("a million async_recv_fors with a value present do not grow the stack") {
    weft::scheduler s(1);
    weft::channel<int> ch(1);
    const std::int64_t sum =
        weft::sync_wait(s, [](weft::channel<int> c) -> weft::task<std::int64_t> {
            std::int64_t total = 0;
            for (int i = 0; i < k_rounds; ++i) {
                (void)c.try_send(i);
                auto r = co_await c.async_recv_for(10s);
                if (!r)
                    co_return -1;
                total += *r;
            }
            co_return total;
        }(ch));
    CHECK(sum == std::int64_t{k_rounds} * (k_rounds - 1) / 2);
}

TEST_CASE("a million async_sends and async_recvs with room do not grow the stack") {
    weft::scheduler s(1);
    weft::channel<int> ch(1);
    const std::int64_t sum =
        weft::sync_wait(s, [](weft::channel<int> c) -> weft::task<std::int64_t> {
            std::int64_t total = 0;
            for (int i = 0; i < k_rounds; ++i) {
                if (!co_await c.async_send(i))
                    co_return -1;
                auto v = co_await c.async_recv();
                if (!v)
                    co_return -1;
                total += *v;
            }
            co_return total;
        }(ch));
    CHECK(sum == std::int64_t{k_rounds} * (k_rounds - 1) / 2);
}

TEST_CASE("a million async_tells with room in the mailbox do not grow the stack") {
    weft::scheduler s(1);
    weft::actor_options unbounded;
    unbounded.mailbox_capacity = 0; // never full: every async_tell completes at once
    auto ref = weft::spawn_actor<tally>(s, unbounded);
    const std::int64_t sum =
        weft::sync_wait(s, [](weft::actor_ref<tally> a) -> weft::task<std::int64_t> {
            for (int i = 0; i < k_rounds; ++i)
                co_await a.async_tell(add{i});
            co_return co_await a.async_ask(total{}); // after every tell: one sender's order holds
        }(ref));
    CHECK(sum == std::int64_t{k_rounds} * (k_rounds - 1) / 2);
}

TEST_CASE("a million wait_group async_waits at zero do not grow the stack") {
    weft::scheduler s(1);
    weft::wait_group wg;
    const int waits = weft::sync_wait(s, [](weft::wait_group& g) -> weft::task<int> {
        int n = 0;
        for (int i = 0; i < k_rounds; ++i) {
            g.add(1);
            g.done();
            co_await g.async_wait();
            ++n;
        }
        co_return n;
    }(wg));
    CHECK(waits == k_rounds);
    CHECK(wg.count() == 0);
}

TEST_CASE("a million yields on one worker do not grow the stack") {
    weft::scheduler s(1);
    const int yields = weft::sync_wait(s, []() -> weft::task<int> {
        int n = 0;
        for (int i = 0; i < k_rounds; ++i) {
            co_await weft::yield();
            ++n;
        }
        co_return n;
    }());
    CHECK(yields == k_rounds);
}
