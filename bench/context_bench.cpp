// context_bench — what cancellation costs (weft::context, issue 16).
//
// Families:
//   cancelled_check/<kind>     one ctx.cancelled() call: the check a loop makes now and then
//                              (live: a with_cancel child not cancelled; background: no state;
//                              stop_token: std::stop_token::stop_requested(), for comparison)
//   cancel_to_resume           a task parked in `co_await ch.async_recv(ctx)` on a worker; a
//                              plain thread calls cancel(): the time until the task runs again
//                              (the stop callback claims the wait, the task is handed to the
//                              scheduler, an idle worker wakes and resumes it)
//   cancel_many/children:C     N tasks parked in async_recv under one parent (C=0: each waits
//                              on the parent itself; C=1: each on its own with_cancel child);
//                              the time from parent cancel() until the last task has resumed
//
// Counters besides time:
//   p50_us, p99_us, max_us     cancel_to_resume: percentiles of the samples, microseconds
//   per_task_ns                cancel_many: that time divided by N
//
//   context_bench --benchmark_filter=cancel_many --tasks=100000
#include "bench_support.hpp"

#include <weft/channel.hpp>
#include <weft/context.hpp>
#include <weft/scheduler.hpp>
#include <weft/task.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <stop_token>
#include <thread>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

std::int64_t g_tasks = 100'000; // --tasks=N: cancel_many's N

// Spins (no sleep: the point is that the workers go idle and park meanwhile) for `d`.
void spin_for(clock_type::duration d) {
    const auto until = clock_type::now() + d;
    while (clock_type::now() < until)
        std::this_thread::yield();
}

void bm_cancelled_live(benchmark::State& state) {
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    for (auto _ : state)
        benchmark::DoNotOptimize(ctx.cancelled());
    cancel();
}

void bm_cancelled_background(benchmark::State& state) {
    const weft::context ctx = weft::background();
    for (auto _ : state)
        benchmark::DoNotOptimize(ctx.cancelled());
}

void bm_stop_requested(benchmark::State& state) {
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    const std::stop_token token = ctx.stop_token();
    for (auto _ : state)
        benchmark::DoNotOptimize(token.stop_requested());
    cancel();
}

// One sample per iteration: a fresh context and a fresh task, parked (given 200 us to get
// there, so the workers are asleep too), then cancelled from this thread.
void bm_cancel_to_resume(benchmark::State& state) {
    weft::scheduler s(2);
    weft::channel<int> never(0);
    std::vector<double> samples_us;
    samples_us.reserve(static_cast<std::size_t>(state.max_iterations));
    for (auto _ : state) {
        const weft::cancellable_context made = weft::with_cancel(weft::background());
        const weft::context& ctx = made.ctx;
        std::atomic<bool> about_to_wait{false};
        std::atomic<std::int64_t> resumed_at{0}; // steady ticks; 0 until the task resumed
        bool cancelled = false;
        s.spawn([&]() -> weft::task<void> {
            about_to_wait.store(true, std::memory_order_release);
            weft::recv_result<int> r = co_await never.async_recv(ctx);
            const auto now = clock_type::now();
            cancelled = r.status() == weft::status::cancelled;
            // release: publishes `cancelled` to the acquire load that waits for it.
            resumed_at.store(now.time_since_epoch().count(), std::memory_order_release);
        });
        while (!about_to_wait.load(std::memory_order_acquire))
            std::this_thread::yield();
        spin_for(std::chrono::microseconds(200));
        const std::int64_t start = clock_type::now().time_since_epoch().count();
        made.cancel();
        std::int64_t end = 0;
        while ((end = resumed_at.load(std::memory_order_acquire)) == 0)
            std::this_thread::yield();
        if (!cancelled) {
            state.SkipWithError("the task was not cancelled");
            break;
        }
        state.SetIterationTime(static_cast<double>(clock_type::duration(end - start).count()) *
                               clock_type::period::num / clock_type::period::den);
        samples_us.push_back(
            std::chrono::duration<double, std::micro>(clock_type::duration(end - start)).count());
    }
    if (samples_us.empty())
        return;
    std::sort(samples_us.begin(), samples_us.end());
    auto at = [&](double q) {
        return samples_us[std::min(
            samples_us.size() - 1,
            static_cast<std::size_t>(q * static_cast<double>(samples_us.size())))];
    };
    state.counters["p50_us"] = at(0.50);
    state.counters["p99_us"] = at(0.99);
    state.counters["max_us"] = samples_us.back();
}

// N tasks park in async_recv, then one cancel(): until the last resumed.
void bm_cancel_many(benchmark::State& state) {
    const bool children = state.range(0) != 0;
    const auto n = static_cast<std::int64_t>(g_tasks);
    weft::scheduler s(2);
    weft::channel<int> never(0);
    double total_s = 0;
    for (auto _ : state) {
        const weft::cancellable_context root = weft::with_cancel(weft::background());
        const weft::context& parent = root.ctx;
        std::atomic<std::int64_t> parked{0};
        std::atomic<std::int64_t> remaining{n};
        std::atomic<std::int64_t> cancelled{0};
        std::atomic<std::int64_t> last_at{0};
        for (std::int64_t i = 0; i < n; ++i)
            s.spawn([&]() -> weft::task<void> {
                weft::cancellable_context child;
                if (children)
                    child = weft::with_cancel(parent);
                const weft::context& ctx = children ? child.ctx : parent;
                parked.fetch_add(1, std::memory_order_relaxed);
                weft::recv_result<int> r = co_await never.async_recv(ctx);
                if (r.status() == weft::status::cancelled)
                    cancelled.fetch_add(1, std::memory_order_relaxed);
                if (children)
                    child.cancel();
                // acq_rel: the last one reads its clock after every other task has counted.
                if (remaining.fetch_sub(1, std::memory_order_acq_rel) == 1)
                    last_at.store(clock_type::now().time_since_epoch().count(),
                                  std::memory_order_release);
            });
        while (parked.load(std::memory_order_relaxed) < n)
            std::this_thread::yield();
        spin_for(std::chrono::milliseconds(20)); // the last ones reach their co_await
        const std::int64_t start = clock_type::now().time_since_epoch().count();
        root.cancel();
        std::int64_t end = 0;
        while ((end = last_at.load(std::memory_order_acquire)) == 0)
            std::this_thread::yield();
        if (cancelled.load() != n) {
            state.SkipWithError("not every task was cancelled");
            break;
        }
        const double seconds = static_cast<double>(clock_type::duration(end - start).count()) *
                               clock_type::period::num / clock_type::period::den;
        state.SetIterationTime(seconds);
        total_s += seconds;
    }
    if (state.iterations() > 0)
        state.counters["per_task_ns"] =
            total_s * 1e9 / static_cast<double>(state.iterations()) / static_cast<double>(n);
    state.counters["tasks"] = static_cast<double>(n);
}

void register_benchmarks() {
    benchmark::RegisterBenchmark("cancelled_check/live", bm_cancelled_live);
    benchmark::RegisterBenchmark("cancelled_check/background", bm_cancelled_background);
    benchmark::RegisterBenchmark("cancelled_check/stop_token", bm_stop_requested);
    benchmark::RegisterBenchmark("cancel_to_resume", bm_cancel_to_resume)
        ->UseManualTime()
        ->Iterations(2000)
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("cancel_many", bm_cancel_many)
        ->ArgName("children")
        ->Arg(0)
        ->Arg(1)
        ->UseManualTime()
        ->Iterations(5)
        ->Unit(benchmark::kMillisecond);
}

} // namespace

int main(int argc, char** argv) {
    if (!weft_bench::take_int_flags("context_bench", argc, argv,
                                    {{"--tasks=", &g_tasks, 1, 10'000'000}}))
        return 1;
    return weft_bench::run_benchmarks(argc, argv, register_benchmarks);
}
