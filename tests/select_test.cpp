// Behaviours of weft::select, after Go's select semantics: which case may fire (nil, closed,
// default, timeout, the same channel twice), that the choice is fair, and that a losing case
// consumes nothing.
#include "catch_compat.hpp"

#include <weft/select.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

// Catch2's assertions are not thread-safe: worker threads record results and the test thread
// asserts after joining them.

TEST_CASE("select receives from the one ready channel and runs its handler") {
    weft::channel<int> a(1), b(1);
    b.send(2);
    int got = 0;
    auto r = weft::select(weft::on_recv(a, [&](int v) { got = v + 100; }),
                          weft::on_recv(b, [&](int v) { got = v; }));
    CHECK(r.index == 1);
    CHECK(r.ok);
    CHECK(got == 2);
}

TEST_CASE("select semantics table") {
    weft::channel<int> nil;
    weft::channel<int> closed(1);
    closed.close();
    weft::channel<int> empty(1);
    weft::channel<int> full(1);
    full.send(1);

    SECTION("nil channels are never picked; otherwise runs") {
        bool other = false;
        auto r = weft::select(weft::on_recv(nil), weft::on_send(nil, 1),
                              weft::otherwise([&] { other = true; }));
        CHECK(r.index == 2);
        CHECK(other);
    }
    SECTION("nil channels are never picked; the timeout fires") {
        bool timed_out = false;
        auto r = weft::select(weft::on_recv(nil), weft::on_timeout(5ms, [&] { timed_out = true; }));
        CHECK(r.index == 1);
        CHECK(timed_out);
    }
    SECTION("a closed channel is always ready to receive nullopt") {
        std::optional<int> seen = 42;
        auto r = weft::select(weft::on_recv(empty),
                              weft::on_recv(closed, [&](std::optional<int> v) { seen = v; }));
        CHECK(r.index == 1);
        CHECK_FALSE(r.ok);
        CHECK(seen == std::nullopt);
    }
    SECTION("a T handler is not called on close, but the result says the case fired") {
        bool called = false;
        auto r = weft::select(weft::on_recv(closed, [&](int) { called = true; }));
        CHECK(r.index == 0);
        CHECK_FALSE(r.ok);
        CHECK_FALSE(called);
    }
    SECTION("sending on a closed channel fires with sent == false and keeps the value") {
        auto value = std::make_unique<int>(3);
        weft::channel<std::unique_ptr<int>> gone(1);
        gone.close();
        std::optional<bool> sent;
        auto r = weft::select(weft::on_send(gone, value, [&](bool s) { sent = s; }));
        CHECK_FALSE(r.ok);
        CHECK(sent == false);
        REQUIRE(value);
        CHECK(*value == 3);
    }
    SECTION("otherwise runs when nothing is ready and consumes nothing") {
        int value = 5;
        auto r = weft::select(weft::on_recv(empty), weft::on_send(full, value), weft::otherwise());
        CHECK(r.index == 2);
        CHECK(full.size() == 1);
        CHECK(empty.size() == 0);
    }
    SECTION("otherwise does not run when a case is ready") {
        bool other = false;
        auto r = weft::select(weft::on_recv(full), weft::otherwise([&] { other = true; }));
        CHECK(r.index == 0);
        CHECK_FALSE(other);
        CHECK(full.size() == 0);
    }
    SECTION("the timeout fires after its duration when nothing is ready") {
        const auto start = std::chrono::steady_clock::now();
        auto r = weft::select(weft::on_recv(empty), weft::on_timeout(20ms));
        CHECK(r.index == 1);
        CHECK(std::chrono::steady_clock::now() - start >= 20ms);
    }
    SECTION("the same channel twice: one value fires exactly one case") {
        int fired = 0, total = 0;
        auto r = weft::select(weft::on_recv(full, [&](int v) { ++fired, total += v; }),
                              weft::on_recv(full, [&](int v) { ++fired, total += v; }));
        CHECK(r.ok);
        CHECK(fired == 1);
        CHECK(total == 1);
        CHECK(full.size() == 0);
    }
    SECTION("send and receive on the same buffered channel: the ready one fires") {
        int sent_value = 8;
        auto r = weft::select(weft::on_recv(empty), weft::on_send(empty, sent_value));
        CHECK(r.index == 1);
        CHECK(empty.recv() == 8);
    }
}

TEST_CASE("a blocked select wakes for a value sent later") {
    weft::channel<int> a(0), b(0);
    std::thread sender([&] { b.send(9); });
    int got = 0;
    auto r = weft::select(weft::on_recv(a, [&](int v) { got = v; }),
                          weft::on_recv(b, [&](int v) { got = v; }));
    sender.join();
    CHECK(r.index == 1);
    CHECK(got == 9);
}

TEST_CASE("a blocked select send completes when a receiver arrives") {
    weft::channel<int> a(0);
    auto value = 11;
    std::optional<int> received;
    std::thread receiver([&] { received = a.recv(); });
    bool sent = false;
    weft::select(weft::on_send(a, value, [&] { sent = true; }));
    receiver.join();
    CHECK(sent);
    CHECK(received == 11);
}

TEST_CASE("a blocked select wakes when a channel closes") {
    weft::channel<int> a(0);
    std::thread closer([&] {
        std::this_thread::sleep_for(5ms); // pressure only: let the select block first
        a.close();
    });
    auto r = weft::select(weft::on_recv(a));
    closer.join();
    CHECK_FALSE(r.ok);
}

TEST_CASE("the losing case of a select consumes nothing") {
    // Two blocked unbuffered senders race for one select; exactly one hands its value over
    // and the other is still blocked with its value, which a plain recv then receives.
    weft::channel<int> a(0), b(0);
    std::atomic<int> sent{0};
    std::thread sa([&] { sent += a.send(1); });
    std::thread sb([&] { sent += b.send(2); });
    std::this_thread::sleep_for(10ms); // pressure only: let both block first
    int first = 0;
    auto r = weft::select(weft::on_recv(a, [&](int v) { first = v; }),
                          weft::on_recv(b, [&](int v) { first = v; }));
    REQUIRE(r.ok);
    int second = r.index == 0 ? *b.recv() : *a.recv();
    sa.join();
    sb.join();
    CHECK(sent == 2);
    CHECK(first + second == 3);
    CHECK(first != second);
}

TEST_CASE("a select send case moves an lvalue only when the send happens") {
    weft::channel<std::unique_ptr<int>> full(1);
    full.send(std::make_unique<int>(0));
    auto value = std::make_unique<int>(1);
    weft::select(weft::on_send(full, value), weft::otherwise());
    REQUIRE(value); // not sent: still ours
    weft::channel<std::unique_ptr<int>> room(1);
    weft::select(weft::on_send(room, value), weft::otherwise());
    CHECK_FALSE(value); // sent: moved into the channel
    CHECK(*room.recv().value() == 1);
}

TEST_CASE("select picks uniformly among ready cases (within 10 sigma over 100k selects)") {
    constexpr int rounds = 100'000;
    weft::channel<int> a(1), b(1);
    a.send(0);
    b.send(1);
    int picked[2] = {0, 0};
    for (int i = 0; i < rounds; ++i) {
        weft::select(weft::on_recv(a, [&](int v) { ++picked[v], a.send(v); }),
                     weft::on_recv(b, [&](int v) { ++picked[v], b.send(v); }));
    }
    const double sigma = std::sqrt(rounds * 0.25);
    CHECK(std::abs(picked[0] - rounds / 2) < 10 * sigma);
    CHECK(picked[0] + picked[1] == rounds);
}

TEST_CASE("select is fair between a lock-free and a locked channel (within 10 sigma)") {
    // int moves nothrow (lock-free ring); throwing_move may throw (locked ring buffer). A
    // select over both kinds must not favour either.
    struct throwing_move {
        int v;
        explicit throwing_move(int value) : v(value) {}
        throwing_move(throwing_move&& other) noexcept(false) : v(other.v) {}
    };
    constexpr int rounds = 20'000;
    weft::channel<int> fast(1);
    weft::channel<throwing_move> locked(1);
    fast.send(0);
    locked.send(throwing_move(1));
    int picked[2] = {0, 0};
    for (int i = 0; i < rounds; ++i)
        weft::select(weft::on_recv(fast, [&](int v) { ++picked[v], fast.send(v); }),
                     weft::on_recv(locked, [&](throwing_move t) {
                         ++picked[t.v];
                         locked.send(std::move(t));
                     }));
    const double sigma = std::sqrt(rounds * 0.25);
    CHECK(std::abs(picked[0] - rounds / 2) < 10 * sigma);
    CHECK(picked[0] + picked[1] == rounds);
}

TEST_CASE("select over many channels receives each value exactly once") {
    constexpr int channels = 8;
    std::vector<weft::channel<int>> chans;
    for (int i = 0; i < channels; ++i)
        chans.emplace_back(0);
    std::vector<std::thread> senders;
    for (int i = 0; i < channels; ++i)
        senders.emplace_back([ch = chans[i], i]() mutable { ch.send(i); });
    std::vector<int> seen(channels, 0);
    auto record = [&](int v) { ++seen[v]; };
    for (int n = 0; n < channels; ++n)
        weft::select(weft::on_recv(chans[0], record), weft::on_recv(chans[1], record),
                     weft::on_recv(chans[2], record), weft::on_recv(chans[3], record),
                     weft::on_recv(chans[4], record), weft::on_recv(chans[5], record),
                     weft::on_recv(chans[6], record), weft::on_recv(chans[7], record));
    for (auto& t : senders)
        t.join();
    for (int i = 0; i < channels; ++i)
        CHECK(seen[i] == 1);
}

TEST_CASE("an exception from a handler propagates and leaves the channels usable") {
    weft::channel<int> a(2);
    a.send(1);
    a.send(2);
    CHECK_THROWS_AS(weft::select(weft::on_recv(a, [](int) { throw std::runtime_error("boom"); })),
                    std::runtime_error);
    CHECK(a.recv() == 2); // the first value was delivered to the handler; the rest remain
}

TEST_CASE("select with no cases but a timeout sleeps for the timeout") {
    const auto start = std::chrono::steady_clock::now();
    auto r = weft::select(weft::on_timeout(10ms));
    CHECK(r.index == 0);
    CHECK(std::chrono::steady_clock::now() - start >= 10ms);
}

TEST_CASE("select works through send-only and receive-only views") {
    weft::channel<int> ch(1);
    weft::sender<int> out = ch;
    weft::receiver<int> in = ch;
    weft::select(weft::on_send(out, 5));
    int got = 0;
    weft::select(weft::on_recv(in, [&](int v) { got = v; }));
    CHECK(got == 5);
}
