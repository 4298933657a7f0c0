// projection_bench — weft::es::projection_runner: three CPU-bound projections run side by side
// on the scheduler (fan-out) next to running them one after another, catch-up throughput, and
// the latency from an append to its event being visible in a read model.
//
// Families (each row runs its workload once, timed by hand; setup and checks are not timed):
//   fanout/<peer>/projections:3/events:E
//       a memory_store holding E events (--events=E, default 200000) of k_streams streams,
//       filled once before the first row; three projections, each over every event: a count,
//       a sum of the payloads and the last version, per stream. Every handler call first burns
//       ~H ns of CPU (--handler_ns=H, default 2000) in a busy loop calibrated at start-up (not a
//       sleep: it is the projection's work). events_per_second counts the events the three
//       projections handled together (3 E) over the row's wall time.
//   catchup/<store>/events:N
//       one projection with a trivial handler (a count) from position 0 to the head of a store
//       holding N events: memory (E events, the store above) and sqlite (--sqlite_events=N,
//       default 100000; a sqlite_store in a temp file, filled before the timing with
//       durability off; only when CMake found SQLite3). events_per_second is the catch-up rate.
//   catchup/memory_class/events:E
//       catchup/memory with the counting handler in a class of its own (a projection_target
//       that add() erases) instead of a function_target: the same work, so the two rows show
//       what the erasure costs per event (nothing, it should be).
//   latency/memory/rate:R/events:N
//       a writer appends N events (--latency_events=N, default 40000), one per append, at a
//       steady R per second (--rate=R, default 20000) to k_streams streams while a projection
//       sets a map's entry (under a mutex) from each event. For each event: the time from its
//       append() returning to the handler having applied it (0 when the handler was first);
//       p50_us, p99_us and max_us report the spread, achieved_rate what the writer managed.
// Peers (fanout/):
//   sequential          the three projections one after another on this thread, each a plain
//                       loop over the log (read_all in pages of k_page) calling its handler:
//                       the sum of their times; the slowest of them is printed too
//   weft                one projection_runner on a weft::scheduler with every hardware thread
//                       (WEFT_WORKERS to change), the three projections added together
//   weft_partitioned    the same, each projection partitioned (partitions = 16): a
//                       projection's streams are handled in parallel too
// The table at the end puts the fan-out walls next to the sum and the slowest projection.
// DESIGN.md target: fan-out wall ≈ the slowest projection, not the sum (with at least as many
// workers as projections; with fewer, the bound is sum / workers).
//
// Every row checks its read models: each count, sum and last version equals what the store
// holds. A row that fails its check is skipped with the error.
//
//   projection_bench --events=1000000 --handler_ns=1000
//   projection_bench --benchmark_filter=^latency/ --rate=50000 --latency_events=200000
#include "bench_support.hpp"

#include <weft/es/memory_store.hpp>
#include <weft/es/projection.hpp>
#include <weft/scheduler.hpp>

#if WEFT_HAVE_SQLITE
#include <weft/es/sqlite_store.hpp>
#endif

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace {

using weft::es::event_data;
using weft::es::expected_version;
using weft::es::function_target;
using weft::es::log_position;
using weft::es::memory_store;
using weft::es::projection_options;
using weft::es::recorded_event;
using clock_type = std::chrono::steady_clock;

std::int64_t g_events = 200'000;        // --events=E
std::int64_t g_handler_ns = 2'000;      // --handler_ns=H
std::int64_t g_sqlite_events = 100'000; // --sqlite_events=N
std::int64_t g_latency_events = 40'000; // --latency_events=N
std::int64_t g_rate = 20'000;           // --rate=R

constexpr std::int64_t k_streams = 1'000;
constexpr std::int64_t k_fill_chunk = 20; // events per append when filling
constexpr std::size_t k_page = 512;       // sequential: events per read_all (the runner's batch)
constexpr std::size_t k_partitions = 16;
constexpr int k_projections = 3;
constexpr auto k_patience = std::chrono::minutes(10); // a wait only a bug makes this long

double seconds_since(clock_type::time_point t) {
    return std::chrono::duration<double>(clock_type::now() - t).count();
}

// --- the handlers' work -------------------------------------------------------------------

// A dependent chain of xorshift steps: the compiler can neither skip nor vectorize it.
std::uint64_t burn_steps(std::uint64_t steps) {
    std::uint64_t x = 88172645463325252ULL;
    for (std::uint64_t i = 0; i < steps; ++i) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return x;
}

// Steps of burn_steps per nanosecond on this machine, measured once (>= 50 ms of burning).
double steps_per_ns() {
    static const double rate = [] {
        for (std::uint64_t steps = 1 << 16;; steps *= 2) {
            const auto begin = clock_type::now();
            benchmark::DoNotOptimize(burn_steps(steps));
            const double ns =
                std::chrono::duration<double, std::nano>(clock_type::now() - begin).count();
            if (ns >= 50e6)
                return static_cast<double>(steps) / ns;
        }
    }();
    return rate;
}

// About g_handler_ns of CPU.
void burn() {
    static const auto steps =
        static_cast<std::uint64_t>(steps_per_ns() * static_cast<double>(g_handler_ns));
    benchmark::DoNotOptimize(burn_steps(steps));
}

std::string stream_name(std::int64_t i) {
    return "acc-" + std::to_string(i);
}
std::size_t stream_index(const recorded_event& e) {
    std::size_t i = 0;
    const std::string_view digits = std::string_view(e.stream).substr(4);
    std::from_chars(digits.data(), digits.data() + digits.size(), i);
    return i;
}
std::int64_t cents_of(const recorded_event& e) {
    std::int64_t v = 0;
    std::from_chars(e.payload.data(), e.payload.data() + e.payload.size(), v);
    return v;
}

// Appends `events` events round robin over k_streams streams, k_fill_chunk per append (all
// queued before the first is awaited); payload: cents 1..500. Returns the payloads' sum.
template <class Store>
std::int64_t fill(Store& store, std::int64_t events) {
    std::int64_t sum = 0, appended = 0;
    std::vector<weft::future<weft::es::append_result>> appends;
    for (std::int64_t s = 0; appended < events; s = (s + 1) % k_streams) {
        const std::int64_t n = std::min(k_fill_chunk, events - appended);
        std::vector<event_data> batch(static_cast<std::size_t>(n));
        for (auto& d : batch) {
            const std::int64_t cents = 1 + appended++ % 500;
            sum += cents;
            d.type = "money_deposited";
            d.payload = std::to_string(cents);
        }
        appends.push_back(
            store.async_append(stream_name(s), expected_version::any(), std::move(batch)));
    }
    for (auto& a : appends)
        if (!a.get())
            throw std::runtime_error("fill: an append failed");
    return sum;
}

// The three read models, one per projection: per stream a count, a sum and the last version.
// Atomics (relaxed: each slot has one writer at a time, and the check runs after wait_for or
// a join), so a partitioned projection may update different streams at once.
struct read_models {
    std::vector<std::atomic<std::int64_t>> count, sum, last_version;
    read_models()
        : count(static_cast<std::size_t>(k_streams)), sum(static_cast<std::size_t>(k_streams)),
          last_version(static_cast<std::size_t>(k_streams)) {}

    // Handler k of the three.
    std::function<void(const recorded_event&)> handler(int k) {
        switch (k) {
        case 0:
            return [this](const recorded_event& e) {
                burn();
                count[stream_index(e)].fetch_add(1, std::memory_order_relaxed);
            };
        case 1:
            return [this](const recorded_event& e) {
                burn();
                sum[stream_index(e)].fetch_add(cents_of(e), std::memory_order_relaxed);
            };
        default:
            return [this](const recorded_event& e) {
                burn();
                last_version[stream_index(e)].store(static_cast<std::int64_t>(e.version),
                                                    std::memory_order_relaxed);
            };
        }
    }

    // Empty when the models match the store (count, payload sum, each stream's version).
    std::string check(const memory_store& store, std::int64_t events, std::int64_t want_sum) {
        std::int64_t total = 0, total_sum = 0;
        for (std::size_t s = 0; s < count.size(); ++s) {
            total += count[s].load(std::memory_order_relaxed);
            total_sum += sum[s].load(std::memory_order_relaxed);
            const auto v = static_cast<std::uint64_t>(last_version[s].load());
            if (v != store.version_of(stream_name(static_cast<std::int64_t>(s))))
                return stream_name(static_cast<std::int64_t>(s)) + ": last version " +
                       std::to_string(v) + " is not the stream's";
        }
        if (total != events)
            return "counted " + std::to_string(total) + " events of " + std::to_string(events);
        if (total_sum != want_sum)
            return "sum " + std::to_string(total_sum) + ", want " + std::to_string(want_sum);
        return {};
    }
};

// The store every fanout/ and catchup/memory row reads, filled on first use (not timed).
struct shared_store {
    memory_store store;
    std::int64_t sum = 0;
};
std::unique_ptr<shared_store>& shared_slot() {
    static std::unique_ptr<shared_store> slot;
    return slot;
}
shared_store& fanout_store() {
    auto& slot = shared_slot();
    if (!slot) {
        slot = std::make_unique<shared_store>();
        slot->sum = fill(slot->store, g_events);
    }
    return *slot;
}

// What the table at the end prints (seconds; 0: the row did not run).
struct results {
    double sequential_sum = 0, slowest = 0, fanout = 0, partitioned = 0;
    std::size_t workers = 0;
};
results g_results;

// --- fanout/ ------------------------------------------------------------------------------

void bm_fanout_sequential(benchmark::State& state) {
    shared_store* shared = nullptr;
    try {
        shared = &fanout_store();
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
        return;
    }
    for (auto _ : state) {
        read_models models;
        double total = 0, slowest = 0;
        for (int k = 0; k < k_projections; ++k) {
            const auto handle = models.handler(k);
            const auto begin = clock_type::now();
            for (log_position next = 1;;) {
                const std::vector<recorded_event> page = shared->store.read_all(next, k_page);
                if (page.empty())
                    break;
                for (const recorded_event& e : page)
                    handle(e);
                next = page.back().position + 1;
            }
            const double took = seconds_since(begin);
            total += took;
            slowest = std::max(slowest, took);
        }
        if (const std::string error = models.check(shared->store, g_events, shared->sum);
            !error.empty()) {
            state.SkipWithError(error.c_str());
            return;
        }
        state.SetIterationTime(total);
        g_results.sequential_sum = total;
        g_results.slowest = slowest;
        state.counters["slowest_ms"] = slowest * 1e3;
    }
    state.counters["events_per_second"] =
        static_cast<double>(k_projections * g_events) / g_results.sequential_sum;
    state.counters["handler_ns"] = static_cast<double>(g_handler_ns);
}

void bm_fanout_weft(benchmark::State& state, bool partitioned) {
    shared_store* shared = nullptr;
    try {
        shared = &fanout_store();
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
        return;
    }
    double seconds = 0;
    std::size_t workers = 0;
    for (auto _ : state) {
        read_models models;
        weft::scheduler sched; // all hardware threads (WEFT_WORKERS)
        workers = sched.size();
        std::string error;
        {
            weft::es::projection_runner runner(sched, shared->store);
            const log_position head = shared->store.head_position();
            projection_options o;
            o.partitioned = partitioned;
            o.partitions = k_partitions;
            const auto begin = clock_type::now();
            for (int k = 0; k < k_projections; ++k) {
                function_target t;
                t.handle = models.handler(k);
                runner.add("p" + std::to_string(k), std::move(t), o);
            }
            for (int k = 0; k < k_projections; ++k)
                if (!runner.wait_for("p" + std::to_string(k), head, k_patience))
                    error = "p" + std::to_string(k) + " did not reach the head: " +
                            runner.status("p" + std::to_string(k)).error;
            seconds = seconds_since(begin);
        }
        if (error.empty())
            error = models.check(shared->store, g_events, shared->sum);
        if (!error.empty()) {
            state.SkipWithError(error.c_str());
            return;
        }
        state.SetIterationTime(seconds);
    }
    (partitioned ? g_results.partitioned : g_results.fanout) = seconds;
    g_results.workers = workers;
    state.counters["events_per_second"] = static_cast<double>(k_projections * g_events) / seconds;
    state.counters["workers"] = static_cast<double>(workers);
}

// --- catchup/ -----------------------------------------------------------------------------

// The counting handler as a class: a projection_target with handle alone.
struct counting_target {
    std::atomic<std::int64_t>* handled;
    void handle(const recorded_event&) { handled->fetch_add(1, std::memory_order_relaxed); }
};

// One projection with a counting handler from 0 to the head of `store` (a function_target, or
// with `as_class` a counting_target); the seconds it took.
template <class Store>
double catch_up(Store& store, std::string& error, bool as_class = false) {
    weft::scheduler sched;
    std::atomic<std::int64_t> handled{0};
    weft::es::projection_runner runner(sched, store);
    const log_position head = store.head_position();
    function_target t;
    t.handle = [&](const recorded_event&) { handled.fetch_add(1, std::memory_order_relaxed); };
    const auto begin = clock_type::now();
    if (as_class)
        runner.add("count", counting_target{&handled});
    else
        runner.add("count", std::move(t));
    if (!runner.wait_for("count", head, k_patience))
        error = "did not reach the head: " + runner.status("count").error;
    const double seconds = seconds_since(begin);
    if (error.empty() && handled.load() != static_cast<std::int64_t>(head))
        error = "handled " + std::to_string(handled.load()) + " of " + std::to_string(head);
    return seconds;
}

void bm_catchup_memory(benchmark::State& state, bool as_class) {
    std::string error;
    double seconds = 0;
    try {
        shared_store& shared = fanout_store();
        for (auto _ : state) {
            seconds = catch_up(shared.store, error, as_class);
            state.SetIterationTime(seconds);
        }
    } catch (const std::exception& e) {
        error = e.what();
    }
    if (!error.empty()) {
        state.SkipWithError(error.c_str());
        return;
    }
    state.counters["events_per_second"] = static_cast<double>(g_events) / seconds;
}

#if WEFT_HAVE_SQLITE
void bm_catchup_sqlite(benchmark::State& state) {
    std::string error;
    double seconds = 0;
    try {
        weft_bench::temp_db file;
        weft::es::sqlite_options o;
        o.durability = weft::es::durability::off; // the fill is not what is measured
        weft::es::sqlite_store store(file.path(), o);
        fill(store, g_sqlite_events);
        for (auto _ : state) {
            seconds = catch_up(store, error);
            state.SetIterationTime(seconds);
        }
    } catch (const std::exception& e) {
        error = e.what();
    }
    if (!error.empty()) {
        state.SkipWithError(error.c_str());
        return;
    }
    state.counters["events_per_second"] = static_cast<double>(g_sqlite_events) / seconds;
}
#endif

// --- latency/ -----------------------------------------------------------------------------

void bm_latency(benchmark::State& state) {
    const auto events = static_cast<std::size_t>(g_latency_events);
    const auto interval = std::chrono::nanoseconds(1'000'000'000 / g_rate);
    std::vector<double> latency_us;
    double writer_seconds = 0;
    std::string error;
    for (auto _ : state) {
        memory_store store;
        weft::scheduler sched;
        // Nanoseconds since `zero`, by position (relaxed: read after wait_for, which orders).
        std::vector<std::atomic<std::int64_t>> returned(events + 1), applied(events + 1);
        std::mutex mutex;
        std::unordered_map<std::string, std::uint64_t> balances;
        const auto zero = clock_type::now();
        auto since_zero = [zero] {
            return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - zero)
                .count();
        };
        weft::es::projection_runner runner(sched, store);
        function_target t;
        t.handle = [&](const recorded_event& e) {
            {
                std::lock_guard lock(mutex);
                balances[e.stream] = e.version;
            }
            if (e.position <= events)
                applied[e.position].store(since_zero(), std::memory_order_relaxed);
        };
        runner.add("balances", std::move(t));

        const auto begin = clock_type::now();
        for (std::size_t i = 0; i < events; ++i) {
            // Steady rate: sleep while the next append is far off, spin when it is near.
            const auto due = begin + interval * static_cast<std::int64_t>(i);
            for (auto now = clock_type::now(); now < due; now = clock_type::now())
                if (due - now > std::chrono::microseconds(300))
                    std::this_thread::sleep_for(due - now - std::chrono::microseconds(200));
            std::vector<event_data> one(1);
            one[0].type = "money_deposited";
            one[0].payload = "1";
            const auto r = store.append(stream_name(static_cast<std::int64_t>(i) % k_streams),
                                        expected_version::any(), std::move(one));
            returned[r.last_position].store(since_zero(), std::memory_order_relaxed);
        }
        writer_seconds = seconds_since(begin);
        if (!runner.wait_for("balances", events, k_patience)) {
            error = "the projection did not reach the head";
            break;
        }
        latency_us.clear();
        for (std::size_t p = 1; p <= events; ++p) {
            const std::int64_t ns = applied[p].load(std::memory_order_relaxed) -
                                    returned[p].load(std::memory_order_relaxed);
            latency_us.push_back(static_cast<double>(std::max<std::int64_t>(ns, 0)) / 1e3);
        }
        std::lock_guard lock(mutex);
        if (balances.size() != static_cast<std::size_t>(std::min<std::int64_t>(
                                   k_streams, static_cast<std::int64_t>(events))))
            error = "the read model holds " + std::to_string(balances.size()) + " streams";
        state.SetIterationTime(writer_seconds);
    }
    if (!error.empty() || latency_us.empty()) {
        state.SkipWithError(error.empty() ? "no events" : error.c_str());
        return;
    }
    std::sort(latency_us.begin(), latency_us.end());
    auto at = [&](double q) {
        return latency_us[std::min(
            latency_us.size() - 1,
            static_cast<std::size_t>(q * static_cast<double>(latency_us.size())))];
    };
    state.counters["p50_us"] = at(0.50);
    state.counters["p99_us"] = at(0.99);
    state.counters["max_us"] = latency_us.back();
    state.counters["achieved_rate"] = static_cast<double>(events) / writer_seconds;
}

// --- the table ----------------------------------------------------------------------------

void print_fanout_table() {
    const results& r = g_results;
    if (r.sequential_sum <= 0)
        return;
    const double ms = 1e3;
    std::printf("\nprojection fan-out: %d projections x %lld events, ~%lld ns of CPU per handler "
                "call, %zu workers\n",
                k_projections, static_cast<long long>(g_events),
                static_cast<long long>(g_handler_ns), r.workers);
    std::printf("  %-44s %10.1f ms\n", "sum of projections (one after another)",
                r.sequential_sum * ms);
    std::printf("  %-44s %10.1f ms\n", "slowest single projection", r.slowest * ms);
    if (r.workers > 0)
        std::printf("  %-44s %10.1f ms\n", "bound: max(slowest, sum / workers)",
                    std::max(r.slowest, r.sequential_sum / static_cast<double>(r.workers)) * ms);
    auto row = [&](const char* name, double wall) {
        if (wall <= 0)
            return;
        std::printf("  %-44s %10.1f ms   sum/wall %.2fx   wall/slowest %.2fx\n", name, wall * ms,
                    r.sequential_sum / wall, wall / r.slowest);
    };
    row("fan-out wall (weft)", r.fanout);
    row("fan-out + partitioned (16) wall", r.partitioned);
    if (r.fanout > 0)
        std::printf("DESIGN.md target, fan-out wall ~ slowest projection (not the sum): "
                    "wall/slowest %.2fx with %zu workers for %d projections%s\n",
                    r.fanout / r.slowest, r.workers, k_projections,
                    r.workers < static_cast<std::size_t>(k_projections)
                        ? " (fewer workers than projections: the bound is sum / workers)"
                        : "");
}

// --- registration -------------------------------------------------------------------------

// Every row runs its workload once, timed by hand (setup and checks left out).
template <class Fn>
benchmark::internal::Benchmark* add_once(const std::string& name, Fn fn) {
    return benchmark::RegisterBenchmark(name.c_str(), fn)
        ->Iterations(1)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
}

void register_benchmarks() {
    steps_per_ns(); // calibrate before any row is timed
    add_once("fanout/sequential", bm_fanout_sequential)
        ->ArgNames({"projections", "events"})
        ->Args({k_projections, g_events});
    add_once("fanout/weft", [](benchmark::State& s) { bm_fanout_weft(s, false); })
        ->ArgNames({"projections", "events"})
        ->Args({k_projections, g_events});
    add_once("fanout/weft_partitioned", [](benchmark::State& s) { bm_fanout_weft(s, true); })
        ->ArgNames({"projections", "partitions", "events"})
        ->Args({k_projections, static_cast<std::int64_t>(k_partitions), g_events});
    add_once("catchup/memory", [](benchmark::State& s) { bm_catchup_memory(s, false); })
        ->ArgName("events")
        ->Arg(g_events);
    add_once("catchup/memory_class", [](benchmark::State& s) { bm_catchup_memory(s, true); })
        ->ArgName("events")
        ->Arg(g_events);
#if WEFT_HAVE_SQLITE
    add_once("catchup/sqlite", bm_catchup_sqlite)->ArgName("events")->Arg(g_sqlite_events);
#endif
    add_once("latency/memory", bm_latency)
        ->ArgNames({"rate", "events"})
        ->Args({g_rate, g_latency_events});
}

} // namespace

int main(int argc, char** argv) {
    constexpr std::int64_t most = std::numeric_limits<std::int32_t>::max();
    if (!weft_bench::take_int_flags("projection_bench", argc, argv,
                                    {{"--events=", &g_events, 1, most},
                                     {"--handler_ns=", &g_handler_ns, 0, 1'000'000},
                                     {"--sqlite_events=", &g_sqlite_events, 1, most},
                                     {"--latency_events=", &g_latency_events, 1, most},
                                     {"--rate=", &g_rate, 1, 10'000'000}}))
        return 1;
    return weft_bench::run_benchmarks(argc, argv, register_benchmarks, [] {
        shared_slot().reset();
        print_fanout_table();
    });
}
