// group_bench — what errgroup and when_any cost over the plain task_group, same workload, same
// process.
//
// Families (compare rows of one family, same workers):
//   spawn_join/<group>/workers:W   a task spawns 10k trivial members (each adds its index to a
//                                  sum) into one group and waits for all: task_group, errgroup
//                                  (a context child per group, one per member copied in),
//                                  errgroup_limit64 (set_limit(64): every member takes and
//                                  returns a token through the channel)
//   when_any/<n>/workers:W         when_any over n callables of which one returns at once and
//                                  the others wait on the context: the race, the cancel and the
//                                  join of the losers
// Counter: per_member, wall time per member (per racer for when_any).
//
//   group_bench --benchmark_filter=^spawn_join/
#include "bench_support.hpp"

#include <weft/channel.hpp>
#include <weft/context.hpp>
#include <weft/errgroup.hpp>
#include <weft/task.hpp>
#include <weft/task_group.hpp>
#include <weft/when_any.hpp>

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

namespace {

constexpr std::int64_t k_members = 10000;
constexpr std::int64_t k_sum = k_members * (k_members - 1) / 2;

void check(benchmark::State& state, std::int64_t got, std::int64_t want) {
    if (got != want)
        state.SkipWithError("wrong result");
}

void report_per_member(benchmark::State& state, std::int64_t members) {
    state.counters["per_member"] =
        benchmark::Counter(static_cast<double>(members) * static_cast<double>(state.iterations()),
                           benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// --- spawn_join ---------------------------------------------------------------------------

weft::task<std::int64_t> spawn_join_task_group() {
    std::atomic<std::int64_t> sum{0};
    weft::task_group g;
    for (std::int64_t i = 0; i < k_members; ++i)
        g.spawn([&sum, i] { sum.fetch_add(i, std::memory_order_relaxed); });
    co_await g.wait();
    co_return sum.load(std::memory_order_relaxed);
}

weft::task<std::int64_t> spawn_join_errgroup(std::ptrdiff_t limit) {
    std::atomic<std::int64_t> sum{0};
    weft::errgroup g;
    if (limit > 0)
        g.set_limit(limit);
    for (std::int64_t i = 0; i < k_members; ++i) {
        auto member = [&sum, i](weft::context) { sum.fetch_add(i, std::memory_order_relaxed); };
        if (limit > 0)
            co_await g.async_go(member);
        else
            g.go(member);
    }
    co_await g.wait();
    co_return sum.load(std::memory_order_relaxed);
}

void bm_spawn_join_task_group(benchmark::State& state) {
    weft::scheduler s(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state)
        check(state, weft::sync_wait(s, spawn_join_task_group()), k_sum);
    report_per_member(state, k_members);
}

void bm_spawn_join_errgroup(benchmark::State& state) {
    weft::scheduler s(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state)
        check(state, weft::sync_wait(s, spawn_join_errgroup(-1)), k_sum);
    report_per_member(state, k_members);
}

void bm_spawn_join_errgroup_limited(benchmark::State& state) {
    weft::scheduler s(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state)
        check(state, weft::sync_wait(s, spawn_join_errgroup(64)), k_sum);
    report_per_member(state, k_members);
}

// --- when_any -----------------------------------------------------------------------------

weft::task<int> wait_for_cancel(weft::context ctx, weft::channel<int> never) {
    (void)co_await never.async_recv(ctx);
    co_return -1;
}

void bm_when_any(benchmark::State& state) {
    const auto racers = static_cast<std::size_t>(state.range(0));
    weft::scheduler s(static_cast<std::size_t>(state.range(1)));
    weft::channel<int> never(0);
    for (auto _ : state) {
        std::vector<std::function<weft::task<int>(weft::context)>> fs;
        fs.reserve(racers);
        for (std::size_t i = 0; i + 1 < racers; ++i)
            fs.emplace_back([never](weft::context c) { return wait_for_cancel(c, never); });
        fs.emplace_back([](weft::context) -> weft::task<int> { co_return 7; });
        auto r = weft::sync_wait(s, weft::when_any(weft::background(), std::move(fs)));
        check(state, r.value, 7);
    }
    report_per_member(state, static_cast<std::int64_t>(racers));
}

void register_benchmarks() {
    auto add = [](const char* name, void (*fn)(benchmark::State&)) {
        return benchmark::RegisterBenchmark(name, fn)->UseRealTime()->Unit(benchmark::kMicrosecond);
    };
    for (auto [name, fn] :
         {std::pair{"spawn_join/task_group", &bm_spawn_join_task_group},
          std::pair{"spawn_join/errgroup", &bm_spawn_join_errgroup},
          std::pair{"spawn_join/errgroup_limit64", &bm_spawn_join_errgroup_limited}})
        add(name, fn)->ArgName("workers")->Arg(1)->Arg(2);
    add("when_any", bm_when_any)->ArgNames({"racers", "workers"})->Args({2, 2})->Args({16, 2});
}

} // namespace

int main(int argc, char** argv) {
    return weft_bench::run_benchmarks(argc, argv, register_benchmarks);
}
