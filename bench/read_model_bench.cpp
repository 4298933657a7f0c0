// read_model_bench — weft::es read models next to one lock over one map: point lookups from
// reader threads while one writer updates, same workload, same process.
//
// Family (ratios read between rows of one readers:N):
//   read_model/<peer>/keys:K/readers:N
//       a map of K keys (10k, --keys=K), stream ids "account-<n>" (string keys, as a
//       projection keyed by stream has), every key present, value {balance, position}. The
//       benchmark's own thread is the writer: one iteration is one batch of 256 updates
//       (balance += 1, position = the update's number) to keys drawn from a fixed sequence.
//       N reader threads (1 and hardware threads - 1, or --readers=N) look up uniformly
//       drawn keys and copy the value out, from before the first iteration to after the last.
//       Google Benchmark picks the iteration count, so --benchmark_min_time bounds a row.
//   Counters: writer_updates_per_s (the writer's updates over the row's wall time) and
//   reader_lookups_per_s (all readers' lookups in the same window, summed).
// Peers:
//   keyed               weft::es::keyed_read_model, 64 shards of std::shared_mutex
//   snapshot            weft::es::snapshot_read_model over the same unordered_map: one copy of
//                       the whole map per batch of 256 updates; readers call current() for
//                       each lookup
//   snapshot_reader     the same, readers keep a snapshot_read_model::reader handle
//   shared_mutex_map    std::unordered_map under one std::shared_mutex
//   mutex_map           std::unordered_map under one std::mutex
//
// Every row checks its result: each lookup found its key, and the balances sum to the number
// of updates the writer made. A row that fails is skipped with the error.
//
//   read_model_bench --keys=100000 --readers=8
#include "bench_support.hpp"

#include <weft/es/read_model.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

constexpr std::int64_t k_batch = 256;

std::int64_t g_keys = 10'000; // --keys=N
std::int64_t g_readers = 0;   // --readers=N; 0: 1 and hardware threads - 1

struct view {
    std::int64_t balance = 0;
    std::int64_t position = 0;
};

using plain_map = std::unordered_map<std::string, view>;

// The key names, made once per row: lookups and updates index this, so no thread builds a
// string in the timed part.
std::vector<std::string> g_names;

void make_names(std::uint32_t keys) {
    g_names.clear();
    g_names.reserve(keys);
    for (std::uint32_t k = 0; k < keys; ++k)
        g_names.push_back("account-" + std::to_string(k));
}

plain_map filled_map() {
    plain_map m;
    m.reserve(g_names.size());
    for (const std::string& name : g_names)
        m.emplace(name, view{});
    return m;
}

// --- peers --------------------------------------------------------------------------------
//
// Each peer gives the workload one shape:
//   P p;                                // every key of g_names present, balance 0
//   p.write(keys, n, position);         // one batch: n updates, keys index g_names
//   typename P::reader r(p);            // one per reader thread
//   r.lookup(key, out);                 // false: key missing
//   p.balance_sum();                    // after the run, single-threaded

struct keyed_peer {
    weft::es::keyed_read_model<std::string, view> model;
    keyed_peer() {
        for (const std::string& name : g_names)
            model.update(name, [](view&) {});
    }
    void write(const std::uint32_t* keys, std::int64_t n, std::int64_t position) {
        for (std::int64_t i = 0; i < n; ++i)
            model.update(g_names[keys[i]], [&](view& v) {
                ++v.balance;
                v.position = position + i;
            });
    }
    struct reader {
        const keyed_peer& p;
        bool lookup(std::uint32_t key, view& out) {
            auto v = p.model.get(g_names[key]);
            if (v)
                out = *v;
            return v.has_value();
        }
    };
    std::int64_t balance_sum() const {
        std::int64_t sum = 0;
        model.for_each([&](const std::string&, const view& v) { sum += v.balance; });
        return sum;
    }
};

// One update per batch: the copy of the whole map is the price of lock-free readers.
struct snapshot_peer {
    weft::es::snapshot_read_model<plain_map> model;
    snapshot_peer() : model(filled_map()) {}
    void write(const std::uint32_t* keys, std::int64_t n, std::int64_t position) {
        model.update([&](plain_map& m) {
            for (std::int64_t i = 0; i < n; ++i) {
                view& v = m[g_names[keys[i]]];
                ++v.balance;
                v.position = position + i;
            }
        });
    }
    static bool find(const plain_map& m, std::uint32_t key, view& out) {
        auto it = m.find(g_names[key]);
        if (it == m.end())
            return false;
        out = it->second;
        return true;
    }
    struct reader {
        const snapshot_peer& p;
        bool lookup(std::uint32_t key, view& out) { return find(*p.model.current(), key, out); }
    };
    std::int64_t balance_sum() const {
        std::int64_t sum = 0;
        for (const auto& [k, v] : *model.current())
            sum += v.balance;
        return sum;
    }
};

struct snapshot_reader_peer : snapshot_peer {
    using snapshot_peer::snapshot_peer;
    struct reader {
        weft::es::snapshot_read_model<plain_map>::reader handle;
        explicit reader(const snapshot_reader_peer& p) : handle(p.model) {}
        bool lookup(std::uint32_t key, view& out) { return find(*handle, key, out); }
    };
};

template <class Mutex, template <class> class ReadLock>
struct locked_map_peer {
    mutable Mutex mutex;
    plain_map map;
    locked_map_peer() : map(filled_map()) {}
    void write(const std::uint32_t* keys, std::int64_t n, std::int64_t position) {
        // A lock per update, as a projection applying events one at a time would take it.
        for (std::int64_t i = 0; i < n; ++i) {
            std::unique_lock lock(mutex);
            view& v = map[g_names[keys[i]]];
            ++v.balance;
            v.position = position + i;
        }
    }
    struct reader {
        const locked_map_peer& p;
        bool lookup(std::uint32_t key, view& out) {
            ReadLock<Mutex> lock(p.mutex);
            auto it = p.map.find(g_names[key]);
            if (it == p.map.end())
                return false;
            out = it->second;
            return true;
        }
    };
    std::int64_t balance_sum() const {
        std::int64_t sum = 0;
        for (const auto& [k, v] : map)
            sum += v.balance;
        return sum;
    }
};
using shared_mutex_map_peer = locked_map_peer<std::shared_mutex, std::shared_lock>;
using mutex_map_peer = locked_map_peer<std::mutex, std::unique_lock>;

// --- the workload -------------------------------------------------------------------------

// A reader's tally, on its own cache line: the benchmark thread reads `lookups` at the start
// and end of its timed loop.
struct alignas(64) reader_slot {
    std::atomic<std::int64_t> lookups{0};
    std::int64_t missed = 0;
    std::int64_t sink = 0;
};

template <class Peer>
void bm_read_model(benchmark::State& state) {
    const auto keys = static_cast<std::uint32_t>(state.range(0));
    const auto readers = static_cast<std::size_t>(state.range(1));
    make_names(keys);
    Peer peer;

    // The writer's keys: a fixed sequence, walked a batch per iteration.
    constexpr std::size_t sequence = 1 << 16;
    std::vector<std::uint32_t> write_keys(sequence);
    std::mt19937 rng(20'240'611);
    std::uniform_int_distribution<std::uint32_t> draw(0, keys - 1);
    for (auto& k : write_keys)
        k = draw(rng);

    std::vector<reader_slot> slots(readers);
    std::atomic<bool> stop{false};
    std::atomic<std::size_t> started{0};
    std::vector<std::thread> pool;
    for (std::size_t t = 0; t < readers; ++t)
        pool.emplace_back([&, t] {
            reader_slot& slot = slots[t];
            typename Peer::reader r{peer};
            std::uint64_t x = 0x9E3779B97F4A7C15ull * (t + 1); // xorshift64 state
            std::int64_t n = 0;
            started.fetch_add(1, std::memory_order_relaxed); // relaxed: a start count only
            // relaxed: a stop request; nothing is read through it.
            while (!stop.load(std::memory_order_relaxed)) {
                for (int i = 0; i < 64; ++i) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    view v;
                    if (r.lookup(static_cast<std::uint32_t>(x % keys), v))
                        slot.sink += v.balance;
                    else
                        ++slot.missed;
                }
                n += 64;
                // relaxed: a progress count, read as a number by the benchmark thread.
                slot.lookups.store(n, std::memory_order_relaxed);
            }
            benchmark::DoNotOptimize(slot.sink);
        });
    // relaxed: only waits until every reader runs; no data passes through the count.
    while (started.load(std::memory_order_relaxed) < readers)
        std::this_thread::yield();

    auto total_lookups = [&] {
        std::int64_t n = 0;
        for (const reader_slot& s : slots)
            n += s.lookups.load(std::memory_order_relaxed); // relaxed: see the reader's store
        return n;
    };

    std::int64_t updates = 0;
    std::size_t at = 0;
    const std::int64_t lookups_before = total_lookups();
    for (auto _ : state) {
        peer.write(&write_keys[at], k_batch, updates);
        updates += k_batch;
        at = (at + k_batch) % sequence;
    }
    const std::int64_t lookups_after = total_lookups();
    stop.store(true, std::memory_order_relaxed); // relaxed: join() orders the rest
    for (auto& th : pool)
        th.join();

    std::int64_t missed = 0;
    for (const reader_slot& s : slots)
        missed += s.missed;
    if (missed != 0) {
        state.SkipWithError(("read_model: " + std::to_string(missed) + " lookups missed").c_str());
        return;
    }
    if (const std::int64_t sum = peer.balance_sum(); sum != updates) {
        state.SkipWithError(("read_model: balances sum to " + std::to_string(sum) + " after " +
                             std::to_string(updates) + " updates")
                                .c_str());
        return;
    }
    state.counters["writer_updates_per_s"] =
        benchmark::Counter(static_cast<double>(updates), benchmark::Counter::kIsRate);
    state.counters["reader_lookups_per_s"] = benchmark::Counter(
        static_cast<double>(lookups_after - lookups_before), benchmark::Counter::kIsRate);
}

// --- registration -------------------------------------------------------------------------

template <class Peer>
void add(const char* name, const std::vector<std::int64_t>& reader_counts) {
    auto* b = benchmark::RegisterBenchmark(name, bm_read_model<Peer>)
                  ->ArgNames({"keys", "readers"})
                  ->UseRealTime()
                  ->Unit(benchmark::kMicrosecond);
    for (std::int64_t readers : reader_counts)
        b->Args({g_keys, readers});
}

void register_benchmarks() {
    std::vector<std::int64_t> reader_counts;
    if (g_readers > 0) {
        reader_counts.push_back(g_readers);
    } else {
        const auto hw = static_cast<std::int64_t>(std::thread::hardware_concurrency());
        reader_counts.push_back(1);
        if (hw - 1 > 1)
            reader_counts.push_back(hw - 1);
    }
    add<keyed_peer>("read_model/keyed", reader_counts);
    add<snapshot_peer>("read_model/snapshot", reader_counts);
    add<snapshot_reader_peer>("read_model/snapshot_reader", reader_counts);
    add<shared_mutex_map_peer>("read_model/shared_mutex_map", reader_counts);
    add<mutex_map_peer>("read_model/mutex_map", reader_counts);
}

} // namespace

int main(int argc, char** argv) {
    if (!weft_bench::take_int_flags(
            "read_model_bench", argc, argv,
            {{"--keys=", &g_keys, 1, std::int64_t{1} << 24}, {"--readers=", &g_readers, 1, 256}}))
        return 1;
    return weft_bench::run_benchmarks(argc, argv, register_benchmarks);
}
