// channel_bench — weft::channel next to its peers, same workload, same process.
//
// Families (DESIGN.md's performance targets read as ratios between rows of one family):
//   spsc/<peer>      1 producer, 1 consumer, capacity 1024
//   pingpong/<peer>  round trips between two threads over a rendezvous each way
//   mpmc/<peer>      2 producers, 2 consumers, capacity 1024
//   select/<peer>    2 producers on 2 channels, 1 consumer in weft::select
// Peers: mutex_queue (textbook mutex + condvars, bench/peers/), Boost.Fiber channels, oneTBB
// concurrent_bounded_queue, moodycamel::BlockingConcurrentQueue; each only when CMake found
// it. Every workload runs on real std::threads (no task scheduler yet), created and joined in
// each iteration, and counts what it moved: a wrong item sum fails the benchmark.
//
// The argument is the number of items (round trips for pingpong) per iteration, small by
// default for CI's smoke run; the figure is 10M items:
//   channel_bench --items=10000000 --benchmark_filter=spsc
#include "bench_support.hpp"
#include "peers/mutex_queue.hpp"

#include <weft/weft.hpp>

#include <benchmark/benchmark.h>

#if WEFT_HAVE_BOOST_FIBER
#include <boost/fiber/buffered_channel.hpp>
#include <boost/fiber/channel_op_status.hpp>
#include <boost/fiber/unbuffered_channel.hpp>
#endif
#if WEFT_HAVE_TBB
#include <tbb/concurrent_queue.h>
#endif
#if WEFT_HAVE_MOODYCAMEL
#include <blockingconcurrentqueue.h>
#endif

#include <algorithm>
#include <atomic>
#include <bit>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <numeric>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace {

// --- adapters -----------------------------------------------------------------------------
//
// One adapter per peer gives every workload the same shape:
//   Q q(capacity, items, consumers);   // items, consumers: only for peers that cannot close
//   typename Q::producer out(q);       // one per sending thread
//   out.send(v);                       // blocks while full
//   typename Q::consumer in(q);        // one per receiving thread
//   in.recv();                         // blocks; nullopt once closed and drained
//   q.close();                         // once, after every producer has finished
// Capacity 0 asks for a rendezvous; peers without one use their smallest buffer instead.
// Values are >= 0 (the sentinel peers rely on it).

struct weft_adapter {
    weft::channel<int> ch;

    weft_adapter(std::size_t capacity, std::int64_t, int) : ch(capacity) {}
    void close() { ch.close(); }

    struct producer {
        explicit producer(weft_adapter& q) : q(q) {}
        void send(int v) { q.ch.send(std::move(v)); }
        weft_adapter& q;
    };
    struct consumer {
        explicit consumer(weft_adapter& q) : q(q) {}
        std::optional<int> recv() { return q.ch.recv(); }
        weft_adapter& q;
    };
};

struct mutex_queue_adapter {
    weft_bench::mutex_queue<int> mq;

    // No rendezvous: capacity 0 becomes 1.
    mutex_queue_adapter(std::size_t capacity, std::int64_t, int)
        : mq(std::max<std::size_t>(capacity, 1)) {}
    void close() { mq.close(); }

    struct producer {
        explicit producer(mutex_queue_adapter& q) : q(q) {}
        void send(int v) { q.mq.send(std::move(v)); }
        mutex_queue_adapter& q;
    };
    struct consumer {
        explicit consumer(mutex_queue_adapter& q) : q(q) {}
        std::optional<int> recv() { return q.mq.recv(); }
        mutex_queue_adapter& q;
    };
};

#if WEFT_HAVE_BOOST_FIBER
// Boost.Fiber channels work from plain threads: each thread gets a main fiber context and a
// round-robin scheduler that parks the thread on a condvar when nothing is ready.
template <class Channel>
struct boost_fiber_adapter_of {
    Channel ch;

    template <class... Args>
    explicit boost_fiber_adapter_of(Args... args) : ch(args...) {}
    void close() { ch.close(); }

    struct producer {
        explicit producer(boost_fiber_adapter_of& q) : q(q) {}
        void send(int v) { q.ch.push(v); }
        boost_fiber_adapter_of& q;
    };
    struct consumer {
        explicit consumer(boost_fiber_adapter_of& q) : q(q) {}
        // pop() reports closed only once the channel is also empty.
        std::optional<int> recv() {
            int v = 0;
            if (q.ch.pop(v) != boost::fibers::channel_op_status::success)
                return std::nullopt;
            return v;
        }
        boost_fiber_adapter_of& q;
    };
};

// buffered_channel wants a power of two >= 2 and holds one value less than that, so capacity
// 1024 buffers 1023: the nearest it gets.
struct boost_fiber_adapter : boost_fiber_adapter_of<boost::fibers::buffered_channel<int>> {
    boost_fiber_adapter(std::size_t capacity, std::int64_t, int)
        : boost_fiber_adapter_of(std::bit_ceil(std::max<std::size_t>(capacity, 2))) {}
};

// unbuffered_channel is Boost.Fiber's rendezvous, the exact peer of weft::channel(0).
struct boost_fiber_rendezvous_adapter
    : boost_fiber_adapter_of<boost::fibers::unbuffered_channel<int>> {
    boost_fiber_rendezvous_adapter(std::size_t, std::int64_t, int) {}
};
#endif

#if WEFT_HAVE_TBB
// concurrent_bounded_queue has no close: abort() only wakes pops already waiting (a pop that
// starts after it blocks for ever), so close() pushes one stop value per consumer instead. The
// queue is FIFO by ticket and close() runs after every producer finished, so each stop value
// comes after every item.
struct tbb_adapter {
    static constexpr int k_stop = -1;
    tbb::concurrent_bounded_queue<int> tq;
    int consumers;

    // No rendezvous (set_capacity(0) makes push block for ever): capacity 0 becomes 1.
    tbb_adapter(std::size_t capacity, std::int64_t, int consumers) : consumers(consumers) {
        tq.set_capacity(static_cast<std::ptrdiff_t>(std::max<std::size_t>(capacity, 1)));
    }
    void close() {
        for (int i = 0; i < consumers; ++i)
            tq.push(k_stop);
    }

    struct producer {
        explicit producer(tbb_adapter& q) : q(q) {}
        void send(int v) { q.tq.push(v); }
        tbb_adapter& q;
    };
    struct consumer {
        explicit consumer(tbb_adapter& q) : q(q) {}
        std::optional<int> recv() {
            int v = 0;
            q.tq.pop(v);
            if (v == k_stop)
                return std::nullopt;
            return v;
        }
        tbb_adapter& q;
    };
};
#endif

#if WEFT_HAVE_MOODYCAMEL
// BlockingConcurrentQueue is unbounded (producers never wait; capacity is ignored) and has no
// close. It is not FIFO across producers, so stop values could overtake items; consumers
// instead claim items from a shared count before dequeuing, and stop when none are left.
// Tokens are the library's fast path, so each thread uses one.
struct moodycamel_adapter {
    moodycamel::BlockingConcurrentQueue<int> mq;
    std::atomic<std::int64_t> unclaimed;

    moodycamel_adapter(std::size_t, std::int64_t items, int) : unclaimed(items) {}
    void close() {}

    struct producer {
        explicit producer(moodycamel_adapter& q) : q(q), token(q.mq) {}
        void send(int v) { q.mq.enqueue(token, v); }
        moodycamel_adapter& q;
        moodycamel::ProducerToken token;
    };
    struct consumer {
        explicit consumer(moodycamel_adapter& q) : q(q), token(q.mq) {}
        std::optional<int> recv() {
            // relaxed: the count only hands out the right to one dequeue; the item itself is
            // published by the queue's own release/acquire.
            if (q.unclaimed.fetch_sub(1, std::memory_order_relaxed) <= 0)
                return std::nullopt;
            int v = 0;
            q.mq.wait_dequeue(token, v);
            return v;
        }
        moodycamel_adapter& q;
        moodycamel::ConsumerToken token;
    };
};
#endif

// --- workloads ----------------------------------------------------------------------------

// items/s plus its inverse, so a row reads as "per_item=52ns" and families compare directly.
void report_items(benchmark::State& state, std::int64_t items_per_iteration, const char* name) {
    const auto total = static_cast<double>(state.iterations() * items_per_iteration);
    state.SetItemsProcessed(state.iterations() * items_per_iteration);
    state.counters[name] =
        benchmark::Counter(total, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// Producer p of `producers` sends p, p + producers, ...: every value in [0, items) once, so
// the received sum is items * (items - 1) / 2 exactly when nothing was lost or duplicated.
bool sum_matches(std::int64_t items, std::int64_t received, std::int64_t sum) {
    return received == items && sum == items * (items - 1) / 2;
}

// `producers` threads send range(0) items in all through one queue of `capacity` to
// `consumers` threads. spsc, mpmc, and the select baselines.
template <class Q>
void transfer(benchmark::State& state, int producers, int consumers, std::size_t capacity) {
    const std::int64_t items = state.range(0) / producers * producers;
    for (auto _ : state) {
        Q q(capacity, items, consumers);
        // Each consumer writes its slot once, when it is done: no sharing while running.
        std::vector<std::int64_t> sums(static_cast<std::size_t>(consumers));
        std::vector<std::int64_t> counts(static_cast<std::size_t>(consumers));
        std::vector<std::thread> receivers;
        for (int c = 0; c < consumers; ++c)
            receivers.emplace_back([&, c] {
                typename Q::consumer in(q);
                std::int64_t sum = 0, count = 0;
                while (auto v = in.recv()) {
                    sum += *v;
                    ++count;
                }
                sums[static_cast<std::size_t>(c)] = sum;
                counts[static_cast<std::size_t>(c)] = count;
            });
        std::vector<std::thread> senders;
        for (int p = 0; p < producers; ++p)
            senders.emplace_back([&, p] {
                typename Q::producer out(q);
                for (std::int64_t i = p; i < items; i += producers)
                    out.send(static_cast<int>(i));
            });
        for (auto& t : senders)
            t.join();
        q.close();
        for (auto& t : receivers)
            t.join();

        const auto sum = std::accumulate(sums.begin(), sums.end(), std::int64_t{0});
        const auto count = std::accumulate(counts.begin(), counts.end(), std::int64_t{0});
        if (!sum_matches(items, count, sum)) {
            state.SkipWithError("wrong item count or sum");
            break;
        }
    }
    report_items(state, items, "per_item");
}

// One thread sends i and waits for it to come back on a second queue; the other echoes.
// Capacity 0 each way: a rendezvous where the peer has one.
template <class Q>
void pingpong(benchmark::State& state) {
    const std::int64_t trips = state.range(0);
    for (auto _ : state) {
        Q ping(0, trips, 1);
        Q pong(0, trips, 1);
        std::int64_t sum = 0, count = 0;
        std::thread echo([&] {
            typename Q::consumer in(ping);
            typename Q::producer out(pong);
            while (auto v = in.recv())
                out.send(*v);
        });
        std::thread client([&] {
            typename Q::producer out(ping);
            typename Q::consumer in(pong);
            for (std::int64_t i = 0; i < trips; ++i) {
                out.send(static_cast<int>(i));
                auto v = in.recv();
                if (!v)
                    break; // a bug: pong is never closed; the check below reports it
                sum += *v;
                ++count;
            }
            ping.close();
        });
        client.join();
        echo.join();
        if (!sum_matches(trips, count, sum)) {
            state.SkipWithError("wrong round-trip count or sum");
            break;
        }
    }
    report_items(state, trips, "per_roundtrip");
}

// Two producers each feed their own channel and close it; one consumer selects over both,
// dropping a channel (nil: never picked again) once it is closed and drained, as in Go.
void select_weft(benchmark::State& state) {
    constexpr int producers = 2;
    const std::int64_t items = state.range(0) / producers * producers;
    for (auto _ : state) {
        weft::channel<int> a(1024);
        weft::channel<int> b(1024);
        std::int64_t sum = 0, count = 0;
        std::thread consumer([&] {
            weft::channel<int> live[producers] = {a, b};
            auto take = [&](std::optional<int> v) {
                if (!v)
                    return;
                sum += *v;
                ++count;
            };
            while (live[0] || live[1]) {
                const auto r =
                    weft::select(weft::on_recv(live[0], take), weft::on_recv(live[1], take));
                if (!r.ok)
                    live[r.index] = weft::channel<int>();
            }
        });
        std::vector<std::thread> senders;
        for (int p = 0; p < producers; ++p)
            senders.emplace_back([&, p] {
                weft::channel<int>& out = p == 0 ? a : b;
                for (std::int64_t i = p; i < items; i += producers)
                    out.send(static_cast<int>(i));
                out.close();
            });
        for (auto& t : senders)
            t.join();
        consumer.join();
        if (!sum_matches(items, count, sum)) {
            state.SkipWithError("wrong item count or sum");
            break;
        }
    }
    report_items(state, items, "per_item");
}

// --- registration -------------------------------------------------------------------------

constexpr std::size_t k_capacity = 1024;

// Items (round trips for pingpong) per iteration. Small by default so a
// --benchmark_min_time=0.01 smoke run stays short; --items=N / --trips=N override them.
struct sizes {
    std::int64_t items = 1 << 20;
    std::int64_t trips = 1 << 14;
};

template <class Fn>
void add(const std::string& name, const char* arg_name, std::int64_t arg, Fn fn) {
    benchmark::RegisterBenchmark(name.c_str(), std::move(fn))
        ->Arg(arg)
        ->ArgName(arg_name)
        ->UseRealTime() // the work happens in threads we start, not in the timed one
        ->Unit(benchmark::kMillisecond);
}

template <class Q>
void add_transfer(const std::string& name, const sizes& n, int producers, int consumers) {
    add(name, "items", n.items,
        [=](benchmark::State& state) { transfer<Q>(state, producers, consumers, k_capacity); });
}

template <class Q>
void add_pingpong(const std::string& name, const sizes& n) {
    add(name, "trips", n.trips, [](benchmark::State& state) { pingpong<Q>(state); });
}

// Grouped by family, so each peer's row sits right under weft's.
void register_benchmarks(const sizes& n) {
    add_transfer<weft_adapter>("spsc/weft", n, 1, 1);
    add_transfer<mutex_queue_adapter>("spsc/mutex_queue", n, 1, 1);
#if WEFT_HAVE_BOOST_FIBER
    add_transfer<boost_fiber_adapter>("spsc/boost_fiber", n, 1, 1);
#endif
#if WEFT_HAVE_TBB
    add_transfer<tbb_adapter>("spsc/tbb", n, 1, 1);
#endif
#if WEFT_HAVE_MOODYCAMEL
    add_transfer<moodycamel_adapter>("spsc/moodycamel", n, 1, 1);
#endif

    add_pingpong<weft_adapter>("pingpong/weft", n);
    add_pingpong<mutex_queue_adapter>("pingpong/mutex_queue", n);
#if WEFT_HAVE_BOOST_FIBER
    add_pingpong<boost_fiber_rendezvous_adapter>("pingpong/boost_fiber", n);
#endif
#if WEFT_HAVE_TBB
    add_pingpong<tbb_adapter>("pingpong/tbb", n);
#endif
#if WEFT_HAVE_MOODYCAMEL
    add_pingpong<moodycamel_adapter>("pingpong/moodycamel", n);
#endif

    add_transfer<weft_adapter>("mpmc/weft", n, 2, 2);
    add_transfer<mutex_queue_adapter>("mpmc/mutex_queue", n, 2, 2);
#if WEFT_HAVE_BOOST_FIBER
    add_transfer<boost_fiber_adapter>("mpmc/boost_fiber", n, 2, 2);
#endif
#if WEFT_HAVE_TBB
    add_transfer<tbb_adapter>("mpmc/tbb", n, 2, 2);
#endif
#if WEFT_HAVE_MOODYCAMEL
    add_transfer<moodycamel_adapter>("mpmc/moodycamel", n, 2, 2);
#endif

    // No peer has select over two queues; the nearest equivalent is one queue fed by both
    // producers (2 producers, 1 consumer), which is what each baseline runs. Boost.Fiber's
    // channels have no select either; it is left out here.
    add("select/weft", "items", n.items, select_weft);
    add_transfer<mutex_queue_adapter>("select/mutex_queue", n, 2, 1);
#if WEFT_HAVE_TBB
    add_transfer<tbb_adapter>("select/tbb", n, 2, 1);
#endif
#if WEFT_HAVE_MOODYCAMEL
    add_transfer<moodycamel_adapter>("select/moodycamel", n, 2, 1);
#endif
}

} // namespace

int main(int argc, char** argv) {
    sizes n;
    constexpr std::int64_t most = std::numeric_limits<int>::max();
    if (!weft_bench::take_int_flags(
            "channel_bench", argc, argv,
            {{"--items=", &n.items, 2, most}, {"--trips=", &n.trips, 2, most}}))
        return 1;
    return weft_bench::run_benchmarks(argc, argv, [&] { register_benchmarks(n); });
}
