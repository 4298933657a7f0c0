// Behaviours of weft::channel<T>, after Go's own channel tests (runtime/chan_test.go), written
// for weft: blocking and non-blocking forms, close semantics, nil channels, move-only and
// awkward element types, the send/recv views.
#include "catch_compat.hpp"
#include "test_support.hpp"

#include <weft/channel.hpp>
#include <weft/select.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <pthread.h>
#include <time.h>
#endif

using namespace std::chrono_literals;

// Catch2's assertions are not thread-safe: worker threads record into atomics and the test
// thread asserts.

TEST_CASE("unbuffered send completes only when a receiver takes the value") {
    weft::channel<int> ch(0);
    std::atomic<bool> sent{false};
    std::thread sender([&] { sent = ch.send(7); });
    // Give a broken (buffering) channel the chance to let send return early.
    std::this_thread::sleep_for(20ms);
    CHECK_FALSE(sent.load());
    CHECK(ch.size() == 0);
    CHECK(ch.recv() == 7);
    sender.join();
    CHECK(sent.load());
}

TEST_CASE("buffered channel delivers in FIFO order and reports size and capacity") {
    weft::channel<int> ch(3);
    CHECK(ch.capacity() == 3);
    for (int i = 1; i <= 3; ++i)
        REQUIRE(ch.send(i));
    CHECK(ch.size() == 3);
    for (int i = 1; i <= 3; ++i)
        CHECK(ch.recv() == i);
    CHECK(ch.size() == 0);
}

TEST_CASE("a sender blocked on a full buffer keeps FIFO order when it is let in") {
    weft::channel<int> ch(1);
    REQUIRE(ch.send(1));
    std::atomic<bool> sent{false};
    std::thread sender([&] { sent = ch.send(2); });
    std::this_thread::sleep_for(10ms); // pressure only: let the sender block on the full buffer
    CHECK(ch.recv() == 1);
    CHECK(ch.recv() == 2);
    sender.join();
    CHECK(sent);
}

TEST_CASE("many senders each keep their own order (FIFO per sender)") {
    constexpr int senders = 4;
    constexpr int per_sender = 5000;
    for (std::size_t capacity : {0u, 1u, 16u}) {
        weft::channel<std::pair<int, int>> ch(capacity);
        std::atomic<int> failed_sends{0};
        std::vector<std::thread> threads;
        for (int s = 0; s < senders; ++s)
            threads.emplace_back([&, s] {
                for (int i = 0; i < per_sender; ++i)
                    failed_sends += !ch.send({s, i});
            });
        std::vector<int> next(senders, 0);
        for (int n = 0; n < senders * per_sender; ++n) {
            auto [s, i] = *ch.recv();
            REQUIRE(i == next[s]);
            ++next[s];
        }
        for (auto& t : threads)
            t.join();
        CHECK(failed_sends == 0);
        for (int s = 0; s < senders; ++s)
            CHECK(next[s] == per_sender);
    }
}

TEST_CASE("a value passes through a chain of 1000 threads and unbuffered channels") {
    constexpr int links = 1000;
    std::vector<weft::channel<int>> chain;
    for (int i = 0; i <= links; ++i)
        chain.emplace_back(0);
    std::vector<std::thread> threads;
    for (int i = 0; i < links; ++i)
        threads.emplace_back(
            [left = chain[i], right = chain[i + 1]]() mutable { right.send(*left.recv() + 1); });
    chain.front().send(0);
    CHECK(chain.back().recv() == links);
    for (auto& t : threads)
        t.join();
}

TEST_CASE("prime sieve of daisy-chained filter threads yields the first 50 primes") {
    // Go's classic: a generator feeds a chain of filters, each dropping multiples of its prime.
    weft::channel<int> numbers(0);
    std::vector<std::thread> threads;
    threads.emplace_back([numbers]() mutable {
        for (int i = 2;; ++i)
            if (!numbers.send(i))
                return; // closed: the sieve is done
    });
    std::vector<weft::channel<int>> stages{numbers};
    std::vector<int> primes;
    for (int n = 0; n < 50; ++n) {
        int prime = *stages.back().recv();
        primes.push_back(prime);
        weft::channel<int> out(0);
        threads.emplace_back([in = stages.back(), out, prime]() mutable {
            while (auto v = in.recv())
                if (*v % prime != 0 && !out.send(*v))
                    return;
            out.close();
        });
        stages.push_back(out);
    }
    // Shut down from the front: the generator sees its channel closed and stops, each filter
    // drains its input and closes its output in turn; we drain the last one.
    numbers.close();
    for ([[maybe_unused]] int v : stages.back()) {
    }
    for (auto& t : threads)
        t.join();

    CHECK(primes == weft_test::first_primes(50));
}

TEST_CASE("non-blocking send and receive on every capacity from 0 to 64") {
    for (std::size_t capacity = 0; capacity <= 64; ++capacity) {
        weft::channel<int> ch(capacity);
        auto empty = ch.try_recv();
        REQUIRE_FALSE(empty);
        REQUIRE(empty.status() == weft::status::not_ready);
        for (std::size_t i = 0; i < capacity; ++i)
            REQUIRE(ch.try_send(static_cast<int>(i)) == weft::status::ok);
        REQUIRE(ch.try_send(-1) == weft::status::not_ready);
        REQUIRE(ch.size() == capacity);
        for (std::size_t i = 0; i < capacity; ++i) {
            auto v = ch.try_recv();
            REQUIRE(v);
            REQUIRE(*v == static_cast<int>(i));
        }
        REQUIRE(ch.try_recv().status() == weft::status::not_ready);
        ch.close();
        REQUIRE(ch.try_recv().status() == weft::status::closed);
        REQUIRE(ch.try_send(1) == weft::status::closed);
    }
}

TEST_CASE("try_send to an unbuffered channel succeeds only with a receiver waiting") {
    weft::channel<int> ch(0);
    REQUIRE(ch.try_send(1) == weft::status::not_ready);
    std::atomic<int> got{0};
    std::thread receiver([&] { got = *ch.recv(); });
    // Retry until the receiver is parked in the channel; each miss must leave nothing behind.
    while (ch.try_send(42) != weft::status::ok)
        std::this_thread::yield();
    receiver.join();
    CHECK(got == 42);
    CHECK(ch.size() == 0);
}

TEST_CASE("recv on closed channel drains buffered values, then reports closed") {
    weft::channel<std::string> ch(4);
    ch.send("a");
    ch.send("b");
    ch.close();
    CHECK(ch.recv() == "a");
    CHECK(ch.try_recv().value() == "b");
    CHECK(ch.recv() == std::nullopt);
    CHECK(ch.try_recv().status() == weft::status::closed);
    CHECK(ch.recv_for(1ms).status() == weft::status::closed);
}

TEST_CASE("send on closed channel reports closure and leaves the value with the caller") {
    weft::channel<std::unique_ptr<int>> ch(1);
    ch.close();
    auto value = std::make_unique<int>(5);
    CHECK_FALSE(ch.send(std::move(value)));
    REQUIRE(value);
    CHECK(*value == 5);
    CHECK(ch.try_send(std::move(value)) == weft::status::closed);
    REQUIRE(value);
    CHECK(ch.send_for(std::move(value), 1ms) == weft::status::closed);
    REQUIRE(value);
}

TEST_CASE("close wakes every blocked receiver with nullopt") {
    weft::channel<int> ch(0);
    std::atomic<int> woke_closed{0};
    std::vector<std::thread> receivers;
    for (int i = 0; i < 4; ++i)
        receivers.emplace_back([&] {
            if (!ch.recv())
                ++woke_closed;
        });
    std::this_thread::sleep_for(10ms); // pressure only: let them block first
    ch.close();
    for (auto& t : receivers)
        t.join();
    CHECK(woke_closed == 4);
}

TEST_CASE("close wakes every blocked sender, which keeps its value") {
    weft::channel<std::unique_ptr<int>> ch(0);
    std::atomic<int> kept{0};
    std::vector<std::thread> senders;
    for (int i = 0; i < 4; ++i)
        senders.emplace_back([&, i] {
            auto value = std::make_unique<int>(i);
            if (!ch.send(std::move(value)) && value && *value == i)
                ++kept;
        });
    std::this_thread::sleep_for(10ms); // pressure only: let them block first
    ch.close();
    for (auto& t : senders)
        t.join();
    CHECK(kept == 4);
}

TEST_CASE("closing twice or closing a nil channel throws channel_error naming the misuse") {
    weft::channel<int> ch(1);
    ch.close();
    REQUIRE_THROWS_AS(ch.close(), weft::channel_error);
    REQUIRE_THROWS_WITH(ch.close(), "weft: close of closed channel");
    weft::channel<int> nil;
    REQUIRE_THROWS_WITH(nil.close(), "weft: close of nil channel");
}

TEST_CASE("a nil channel never becomes ready") {
    weft::channel<int> nil;
    CHECK_FALSE(nil);
    CHECK(nil.capacity() == 0);
    CHECK(nil.try_send(1) == weft::status::not_ready);
    CHECK(nil.try_recv().status() == weft::status::not_ready);
    CHECK(nil.send_for(1, 5ms) == weft::status::timeout);
    CHECK(nil.recv_for(5ms).status() == weft::status::timeout);
}

TEST_CASE("deadline forms time out on an open channel and never lose the value") {
    weft::channel<std::unique_ptr<int>> ch(1);
    REQUIRE(ch.send(std::make_unique<int>(1)));
    auto value = std::make_unique<int>(2);
    const auto start = std::chrono::steady_clock::now();
    CHECK(ch.send_for(std::move(value), 20ms) == weft::status::timeout);
    CHECK(std::chrono::steady_clock::now() - start >= 20ms);
    REQUIRE(value);
    CHECK(*ch.recv_for(1s).value() == 1);
    CHECK(ch.recv_until(std::chrono::system_clock::now() + 5ms).status() == weft::status::timeout);
    CHECK(ch.send_until(std::move(value), std::chrono::steady_clock::now() + 1s) ==
          weft::status::ok);
    CHECK(*ch.recv().value() == 2);
}

TEST_CASE("range-for receives every value until the channel is closed and drained") {
    weft::channel<int> ch(2);
    std::thread producer([&] {
        for (int i = 1; i <= 100; ++i)
            ch.send(i);
        ch.close();
    });
    int sum = 0, count = 0;
    for (int& v : ch) {
        sum += v;
        ++count;
    }
    producer.join();
    CHECK(count == 100);
    CHECK(sum == 5050);
}

TEST_CASE("move-only values travel through buffered and unbuffered channels") {
    for (std::size_t capacity : {0u, 2u}) {
        weft::channel<std::unique_ptr<int>> ch(capacity);
        std::thread producer([&] {
            for (int i = 0; i < 10; ++i)
                ch.send(std::make_unique<int>(i));
            ch.close();
        });
        int expected = 0;
        for (auto& p : ch)
            CHECK(*p == expected++);
        producer.join();
        CHECK(expected == 10);
    }
}

namespace {
struct no_default {
    explicit no_default(int v) : value(v) {}
    int value;
};

// Throws on move when `fail` is set; a failed move leaves the source intact.
struct fragile {
    static inline bool fail = false;
    explicit fragile(int v) : value(v) {}
    fragile(fragile&& other) : value(other.value) {
        if (fail)
            throw std::runtime_error("fragile move");
        other.value = -1;
    }
    fragile& operator=(fragile&&) = delete;
    int value;
};
} // namespace

TEST_CASE("element types without a default constructor work") {
    weft::channel<no_default> ch(1);
    REQUIRE(ch.send(no_default(3)));
    CHECK(ch.recv()->value == 3);
}

TEST_CASE("a move that throws leaves the channel consistent and the value with its owner") {
    weft::channel<fragile> ch(2);
    REQUIRE(ch.send(fragile(1)));
    fragile value(2);
    fragile::fail = true;
    CHECK_THROWS_AS(ch.send(std::move(value)), std::runtime_error);
    CHECK(value.value == 2);
    CHECK(ch.size() == 1);
    CHECK_THROWS_AS(ch.recv(), std::runtime_error);
    CHECK(ch.size() == 1); // the buffered value is still there
    fragile::fail = false;
    CHECK(ch.recv()->value == 1);
    REQUIRE(ch.send(std::move(value)));
    CHECK(ch.recv()->value == 2);
}

TEST_CASE("handles are shared: copies are the same channel, distinct channels differ") {
    weft::channel<int> a(1);
    weft::channel<int> b = a;
    weft::channel<int> c(1);
    CHECK(a == b);
    CHECK_FALSE(a == c);
    b.send(9);
    CHECK(a.recv() == 9);
}

// sender<T> has no receive operations and receiver<T> no send or close: checked at compile
// time, as Go checks chan<- and <-chan.
template <class S>
concept can_recv = requires(S s) {
    s.recv();
};
template <class S>
concept can_send = requires(S s) {
    s.send(1);
};
template <class S>
concept can_close = requires(S s) {
    s.close();
};
static_assert(can_send<weft::sender<int>> && !can_recv<weft::sender<int>>);
static_assert(can_close<weft::sender<int>>);
static_assert(can_recv<weft::receiver<int>> && !can_send<weft::receiver<int>>);
static_assert(!can_close<weft::receiver<int>>);
static_assert(can_send<weft::channel<int>> && can_recv<weft::channel<int>>);

TEST_CASE("send-only and receive-only views talk to the same channel") {
    weft::channel<int> ch(1);
    weft::sender<int> out = ch;
    weft::receiver<int> in = ch;
    REQUIRE(out.send(4));
    CHECK(in.recv() == 4);
    out.close();
    CHECK(in.recv() == std::nullopt);
    int received = 0;
    for (int v : in)
        received += v;
    CHECK(received == 0);
}

#if defined(__linux__)
namespace {
// CPU time the thread has used so far, from its POSIX per-thread CPU clock.
std::chrono::nanoseconds cpu_time_of(std::thread& t) {
    clockid_t clock{};
    REQUIRE(pthread_getcpuclockid(t.native_handle(), &clock) == 0);
    timespec ts{};
    REQUIRE(clock_gettime(clock, &ts) == 0);
    return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

// Starts `wait` on a thread, lets it settle into its wait, and measures the CPU it burns over
// the next 200 ms of wall time: a parked thread uses next to none, a spinning one ~200 ms.
template <class Wait, class Release>
std::chrono::nanoseconds cpu_while_blocked(Wait wait, Release release) {
    std::thread t(wait);
    std::this_thread::sleep_for(50ms); // the window starts after the brief spin phase
    const auto before = cpu_time_of(t);
    std::this_thread::sleep_for(200ms); // the measured window, not synchronization
    const auto used = cpu_time_of(t) - before;
    release();
    t.join();
    return used;
}
} // namespace

TEST_CASE("threads blocked on channels park and use no CPU while they wait") {
    constexpr auto budget = 20ms; // a tenth of the window: generous for a loaded CI machine
    SECTION("a receiver on an empty unbuffered channel") {
        weft::channel<int> ch(0);
        CHECK(cpu_while_blocked([&] { ch.recv(); }, [&] { ch.send(1); }) < budget);
    }
    SECTION("a receiver on an empty buffered channel") {
        weft::channel<int> ch(8);
        CHECK(cpu_while_blocked([&] { ch.recv(); }, [&] { ch.send(1); }) < budget);
    }
    SECTION("a sender on a full buffered channel") {
        weft::channel<int> ch(1);
        ch.send(0);
        CHECK(cpu_while_blocked([&] { ch.send(1); }, [&] { ch.recv(); }) < budget);
    }
    SECTION("a select over a buffered and an unbuffered channel") {
        weft::channel<int> a(4), b(0);
        CHECK(cpu_while_blocked([&] { weft::select(weft::on_recv(a), weft::on_recv(b)); },
                                [&] { a.send(1); }) < budget);
    }
}
#endif
