// Long races on channels and select: many producers and consumers, close while operations
// block, select racing close, deadline forms racing peers. Every test counts what went in and
// what came out: each value is received exactly once, or returned to its sender on close.
//
// Rounds come from WEFT_STRESS_ITERS (default 3, what CI runs under the sanitizers); a long
// local soak is `WEFT_STRESS_ITERS=1000 ./build/dev/tests/channel_stress_test`.
//
// Two element types cover both channel paths: `int` (nothrow move: a buffered channel keeps
// its values in the lock-free ring) and `locked_int` (a move that may throw: the locked ring
// buffer with direct hand-off). Capacity 0 is always the locked rendezvous.
#include "catch_compat.hpp"
#include "test_support.hpp"

#include <weft/channel.hpp>
#include <weft/select.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

using weft_test::stress_rounds;

// An int whose move constructor is not noexcept, so channels of it take the locked path.
struct locked_int {
    int v;
    locked_int(int value) : v(value) {}
    locked_int(const locked_int&) = default;
    locked_int(locked_int&& other) noexcept(false) : v(other.v) {}
    locked_int& operator=(const locked_int&) = default;
    locked_int& operator=(locked_int&&) = default;
};

int as_int(int v) {
    return v;
}
int as_int(const locked_int& v) {
    return v.v;
}

// One counter per value: a value received twice or never shows up in check_each_once.
class tally {
public:
    explicit tally(std::size_t n) : seen_(n) {}
    void record(int v) {
        // relaxed: counters are read only after every thread is joined.
        seen_[static_cast<std::size_t>(v)].fetch_add(1, std::memory_order_relaxed);
    }
    // How many values were seen other than exactly `expected[v]` times.
    template <class Expected>
    int mismatches(Expected expected) const {
        int bad = 0;
        for (std::size_t v = 0; v < seen_.size(); ++v)
            bad += seen_[v].load(std::memory_order_relaxed) != expected(static_cast<int>(v));
        return bad;
    }

private:
    std::vector<std::atomic<int>> seen_;
};

template <class T>
void many_producers_many_consumers(std::size_t capacity) {
    constexpr int producers = 4;
    constexpr int consumers = 4;
    constexpr int per_producer = 5000;
    constexpr int total = producers * per_producer;
    weft::channel<T> ch(capacity);
    tally got(total);
    std::atomic<int> failed_sends{0};
    std::vector<std::thread> threads;
    for (int c = 0; c < consumers; ++c)
        threads.emplace_back([&] {
            while (auto v = ch.recv())
                got.record(as_int(*v));
        });
    std::vector<std::thread> senders;
    for (int p = 0; p < producers; ++p)
        senders.emplace_back([&, p] {
            for (int i = p; i < total; i += producers)
                failed_sends += !ch.send(T(i));
        });
    for (auto& t : senders)
        t.join();
    ch.close();
    for (auto& t : threads)
        t.join();
    CHECK(failed_sends == 0);
    CHECK(got.mismatches([](int) { return 1; }) == 0);
}

// Producers send until close() refuses them; the refused value must still be theirs. Every
// value that was accepted is received exactly once.
template <class T>
void close_while_senders_block(std::size_t capacity, std::uint32_t seed) {
    constexpr int producers = 4;
    constexpr int per_producer = 4000;
    constexpr int total = producers * per_producer;
    weft::channel<T> ch(capacity);
    tally got(total);
    std::vector<std::atomic<int>> accepted(total);
    std::atomic<int> refused_but_lost{0};
    std::atomic<int> received{0};
    std::vector<std::thread> senders;
    for (int p = 0; p < producers; ++p)
        senders.emplace_back([&, p] {
            for (int i = p; i < total; i += producers) {
                T value(i);
                if (!ch.send(std::move(value))) {
                    // Nothing was moved out: the value is still i.
                    refused_but_lost += as_int(value) != i;
                    return;
                }
                accepted[static_cast<std::size_t>(i)] = 1;
            }
        });
    // A slow consumer, so senders pile up on the full channel, then close mid-stream.
    // Senders are refused only after close, so at least close_after values always arrive.
    const int close_after = 1 + static_cast<int>(seed % (total / 2));
    std::thread consumer([&] {
        while (auto v = ch.recv()) {
            got.record(as_int(*v));
            if (++received == close_after)
                ch.close();
        }
    });
    for (auto& t : senders)
        t.join();
    consumer.join();
    CHECK(refused_but_lost == 0);
    CHECK(got.mismatches([&](int v) { return accepted[static_cast<std::size_t>(v)].load(); }) == 0);
}

// Go's TestSelfSelect: selects that both send to and receive from one channel. On an
// unbuffered channel a select must never meet itself; on any channel each value sent is
// received once.
template <class T>
void self_select(std::size_t capacity) {
    // Unbuffered, each exchange uses one select of each of two threads, so two threads finish
    // together; a third could be left with nobody to pair with, blocked for ever.
    const int threads_n = capacity == 0 ? 2 : 4;
    constexpr int per_thread = 3000;
    weft::channel<T> ch(capacity);
    tally got(threads_n * per_thread);
    std::atomic<int> met_itself{0};
    // Thread t sends t * per_thread + 0, 1, 2, ...: sent_by[t] of them went out.
    std::vector<int> sent_by(threads_n, 0);
    std::vector<std::thread> threads;
    for (int t = 0; t < threads_n; ++t)
        threads.emplace_back([&, t] {
            int next = 0;
            for (int i = 0; i < per_thread; ++i) {
                const int mine = t * per_thread + next;
                T value(mine);
                weft::select(weft::on_send(ch, value, [&] { ++next; }), weft::on_recv(ch, [&](T v) {
                                 if (capacity == 0 && as_int(v) == mine)
                                     ++met_itself;
                                 got.record(as_int(v));
                             }));
            }
            sent_by[static_cast<std::size_t>(t)] = next;
        });
    for (auto& t : threads)
        t.join();
    // Whatever is still buffered was sent and not yet received.
    while (auto v = ch.try_recv())
        got.record(as_int(*v));
    CHECK(met_itself == 0);
    CHECK(got.mismatches([&](int v) {
        return v % per_thread < sent_by[static_cast<std::size_t>(v / per_thread)] ? 1 : 0;
    }) == 0);
}

} // namespace

TEST_CASE("many producers and consumers receive every value exactly once") {
    for (int round = 0; round < stress_rounds(); ++round) {
        for (std::size_t capacity : {0u, 1u, 3u, 64u}) {
            INFO("capacity " << capacity);
            many_producers_many_consumers<int>(capacity);
            many_producers_many_consumers<locked_int>(capacity);
        }
    }
}

TEST_CASE("close while senders block: accepted values arrive once, refused ones stay put") {
    std::mt19937 rng(12345);
    for (int round = 0; round < stress_rounds(); ++round) {
        for (std::size_t capacity : {0u, 1u, 16u}) {
            INFO("capacity " << capacity << ", round " << round);
            close_while_senders_block<int>(capacity, rng());
            close_while_senders_block<locked_int>(capacity, rng());
        }
    }
}

TEST_CASE("close wakes every blocked receiver, also those with deadlines") {
    for (int round = 0; round < stress_rounds() * 10; ++round) {
        for (std::size_t capacity : {0u, 4u}) {
            weft::channel<int> ch(capacity);
            std::atomic<int> woke_closed{0};
            std::atomic<int> got_value{0};
            std::vector<std::thread> receivers;
            for (int r = 0; r < 4; ++r)
                receivers.emplace_back([&, r] {
                    for (;;) {
                        if (r % 2 == 0) {
                            if (!ch.recv()) {
                                ++woke_closed;
                                return;
                            }
                            ++got_value;
                        } else {
                            auto v = ch.recv_for(200us);
                            if (v.status() == weft::status::closed) {
                                ++woke_closed;
                                return;
                            }
                            got_value += v.has_value();
                        }
                    }
                });
            for (int i = 0; i < 8; ++i)
                REQUIRE(ch.send(i));
            ch.close();
            for (auto& t : receivers)
                t.join();
            CHECK(woke_closed == 4);
            CHECK(got_value == 8);
        }
    }
}

TEST_CASE("a select racing close loses nothing and consumes nothing twice") {
    constexpr int per_channel = 5000;
    std::mt19937 rng(777);
    for (int round = 0; round < stress_rounds(); ++round) {
        for (std::size_t capacity : {0u, 2u, 32u}) {
            INFO("capacity " << capacity << ", round " << round);
            weft::channel<int> a(capacity), b(capacity);
            tally got(2 * per_channel);
            std::vector<std::atomic<int>> accepted(2 * per_channel);
            // Each producer stops at a random point by closing its own channel; the other
            // producer's sends race that close through the select.
            auto produce = [&](weft::channel<int> ch, int base, int stop_at) {
                for (int i = 0; i < per_channel; ++i) {
                    if (i == stop_at) {
                        ch.close();
                        return;
                    }
                    if (ch.send(base + i))
                        accepted[static_cast<std::size_t>(base + i)] = 1;
                }
                ch.close();
            };
            std::thread pa(produce, a, 0, static_cast<int>(rng() % per_channel));
            std::thread pb(produce, b, per_channel, static_cast<int>(rng() % per_channel));
            int closed_reports = 0;
            weft::channel<int> live[2] = {a, b};
            auto take = [&](std::optional<int> v) {
                if (v)
                    got.record(*v);
            };
            while (live[0] || live[1]) {
                auto r = weft::select(weft::on_recv(live[0], take), weft::on_recv(live[1], take));
                if (!r.ok) {
                    ++closed_reports;
                    live[r.index] = weft::channel<int>(); // nil: never picked again
                }
            }
            pa.join();
            pb.join();
            CHECK(closed_reports == 2);
            CHECK(got.mismatches(
                      [&](int v) { return accepted[static_cast<std::size_t>(v)].load(); }) == 0);
        }
    }
}

TEST_CASE("selects that send and receive on one channel never meet themselves or lose a value") {
    for (int round = 0; round < stress_rounds(); ++round) {
        for (std::size_t capacity : {0u, 1u, 8u}) {
            INFO("capacity " << capacity);
            self_select<int>(capacity);
            self_select<locked_int>(capacity);
        }
    }
}

TEST_CASE("a select blocked on many channels is woken by each and takes each value once") {
    // Receivers select over 3 channels, one of each kind (lock-free ring, rendezvous, locked
    // ring); senders use plain sends. Every kind of wake-up must reach a select asleep on it.
    constexpr int per_sender = 3000;
    for (int round = 0; round < stress_rounds(); ++round) {
        weft::channel<int> lock_free(4), rendezvous(0);
        weft::channel<locked_int> locked(2);
        tally got(3 * per_sender);
        std::atomic<int> received{0};
        std::vector<std::thread> receivers;
        for (int r = 0; r < 3; ++r)
            receivers.emplace_back([&] {
                auto take = [&](std::optional<int> v) {
                    if (v) {
                        got.record(*v);
                        ++received;
                    }
                };
                for (;;) {
                    auto res = weft::select(weft::on_recv(lock_free, take),
                                            weft::on_recv(rendezvous, take),
                                            weft::on_recv(locked, [&](std::optional<locked_int> v) {
                                                if (v)
                                                    take(v->v);
                                            }));
                    if (!res.ok)
                        return; // the senders closed `lock_free` after both finished
                }
            });
        std::thread s1([&] {
            for (int i = 0; i < per_sender; ++i)
                lock_free.send(int(i));
        });
        std::thread s2([&] {
            for (int i = 0; i < per_sender; ++i)
                rendezvous.send(per_sender + i);
        });
        std::thread s3([&] {
            for (int i = 0; i < per_sender; ++i)
                locked.send(locked_int(2 * per_sender + i));
        });
        s1.join();
        s2.join();
        s3.join();
        lock_free.close();
        for (auto& t : receivers)
            t.join();
        // A receiver may exit on close while values remain buffered: drain them here.
        while (auto v = lock_free.try_recv()) {
            got.record(*v);
            ++received;
        }
        while (auto v = locked.try_recv()) {
            got.record(v->v);
            ++received;
        }
        CHECK(received == 3 * per_sender);
        CHECK(got.mismatches([](int) { return 1; }) == 0);
    }
}

TEST_CASE("deadline sends and receives racing each other lose and duplicate nothing") {
    constexpr int producers = 3;
    constexpr int consumers = 3;
    constexpr int per_producer = 3000;
    constexpr int total = producers * per_producer;
    for (int round = 0; round < stress_rounds(); ++round) {
        for (std::size_t capacity : {0u, 1u, 8u}) {
            INFO("capacity " << capacity);
            weft::channel<int> ch(capacity);
            tally got(total);
            std::vector<std::thread> threads;
            for (int c = 0; c < consumers; ++c)
                threads.emplace_back([&] {
                    for (;;) {
                        auto v = ch.recv_for(50us);
                        if (v)
                            got.record(*v);
                        else if (v.status() == weft::status::closed)
                            return;
                    }
                });
            std::vector<std::thread> senders;
            for (int p = 0; p < producers; ++p)
                senders.emplace_back([&, p] {
                    for (int i = p; i < total; i += producers) {
                        // Retry on timeout: the value stays ours until a send succeeds.
                        int v = i;
                        while (ch.send_for(std::move(v), 50us) == weft::status::timeout) {
                        }
                    }
                });
            for (auto& t : senders)
                t.join();
            ch.close();
            for (auto& t : threads)
                t.join();
            CHECK(got.mismatches([](int) { return 1; }) == 0);
        }
    }
}
