// scheduler_bench — weft's scheduler and tasks next to oneTBB, same workload, same process.
//
// Families (DESIGN.md's targets read as ratios between rows of one family):
//   fib/<peer>/workers:W     fork-join fib(n): every call above the cutoff forks two children
//   skynet/<peer>/workers:W  a tree of 1M tasks with 10 children each, summing the leaves
//   pingpong/tasks           two tasks on one worker bounce a value over two unbuffered
//                            channels (DESIGN.md: <= 150 ns a round trip)
// Peers: a plain recursive function (serial, the floor), oneTBB task_group in a task_arena of
// W threads (when CMake found oneTBB). Each result is checked: a wrong sum fails the row.
//
//   scheduler_bench --fib=30 --benchmark_filter=fib
#include <weft/channel.hpp>
#include <weft/task.hpp>

#include <benchmark/benchmark.h>

#if WEFT_HAVE_TBB
#include <tbb/task_arena.h>
#include <tbb/task_group.h>
#endif

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace {

int g_fib = 25; // --fib=N

long fib_serial(int n) {
    return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2);
}

weft::task<long> fib_weft(int n) {
    if (n < 2)
        co_return n;
    auto [a, b] = co_await weft::when_all(fib_weft(n - 1), fib_weft(n - 2));
    co_return a + b;
}

weft::task<long> skynet_weft(long num, long size) {
    if (size == 1)
        co_return num;
    std::vector<weft::task<long>> children;
    children.reserve(10);
    for (long i = 0; i < 10; ++i)
        children.push_back(skynet_weft(num + i * (size / 10), size / 10));
    long sum = 0;
    for (long v : co_await weft::when_all(std::move(children)))
        sum += v;
    co_return sum;
}

#if WEFT_HAVE_TBB
long fib_tbb(int n) {
    if (n < 2)
        return n;
    long a = 0, b = 0;
    tbb::task_group g;
    g.run([&] { a = fib_tbb(n - 1); });
    b = fib_tbb(n - 2);
    g.wait();
    return a + b;
}

long skynet_tbb(long num, long size) {
    if (size == 1)
        return num;
    long sums[10] = {};
    tbb::task_group g;
    for (long i = 0; i < 10; ++i)
        g.run([&, i] { sums[i] = skynet_tbb(num + i * (size / 10), size / 10); });
    g.wait();
    long sum = 0;
    for (long s : sums)
        sum += s;
    return sum;
}
#endif

constexpr long k_skynet_size = 1'000'000;
constexpr long k_skynet_sum = k_skynet_size * (k_skynet_size - 1) / 2;

void check(benchmark::State& state, long got, long want) {
    if (got != want)
        state.SkipWithError("wrong result");
}

void bm_fib_serial(benchmark::State& state) {
    const long want = fib_serial(g_fib);
    for (auto _ : state) {
        const long got = fib_serial(g_fib);
        benchmark::DoNotOptimize(got);
        check(state, got, want);
    }
}

void bm_fib_weft(benchmark::State& state) {
    const long want = fib_serial(g_fib);
    weft::scheduler s(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state)
        check(state, weft::sync_wait(s, fib_weft(g_fib)), want);
    // Tasks per second: fib(n) makes fib(n+1)*2-1 calls, each a task.
    state.counters["per_task"] =
        benchmark::Counter(static_cast<double>(state.iterations()) *
                               static_cast<double>(2 * fib_serial(g_fib + 1) - 1),
                           benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void bm_skynet_weft(benchmark::State& state) {
    weft::scheduler s(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state)
        check(state, weft::sync_wait(s, skynet_weft(0, k_skynet_size)), k_skynet_sum);
}

// Round trips between two tasks on a one-worker scheduler, each way a rendezvous.
void bm_pingpong_tasks(benchmark::State& state) {
    constexpr long trips = 100'000;
    weft::scheduler s(1);
    for (auto _ : state) {
        auto run = []() -> weft::task<long> {
            weft::channel<long> ping(0), pong(0);
            auto echo = [](weft::channel<long> in, weft::channel<long> out) -> weft::task<void> {
                while (auto v = co_await in.async_recv())
                    co_await out.async_send(long(*v));
            };
            auto client = [](weft::channel<long> out, weft::channel<long> in) -> weft::task<long> {
                long sum = 0;
                for (long i = 0; i < trips; ++i) {
                    co_await out.async_send(long(i));
                    sum += *(co_await in.async_recv());
                }
                out.close();
                co_return sum;
            };
            auto [none, sum] = co_await weft::when_all(echo(ping, pong), client(ping, pong));
            (void)none;
            co_return sum;
        };
        check(state, weft::sync_wait(s, run()), trips * (trips - 1) / 2);
    }
    state.counters["per_roundtrip"] =
        benchmark::Counter(static_cast<double>(state.iterations()) * trips,
                           benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

#if WEFT_HAVE_TBB
void bm_fib_tbb(benchmark::State& state) {
    const long want = fib_serial(g_fib);
    tbb::task_arena arena(static_cast<int>(state.range(0)));
    for (auto _ : state) {
        long got = 0;
        arena.execute([&] { got = fib_tbb(g_fib); });
        check(state, got, want);
    }
    state.counters["per_task"] =
        benchmark::Counter(static_cast<double>(state.iterations()) *
                               static_cast<double>(2 * fib_serial(g_fib + 1) - 1),
                           benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void bm_skynet_tbb(benchmark::State& state) {
    tbb::task_arena arena(static_cast<int>(state.range(0)));
    for (auto _ : state) {
        long got = 0;
        arena.execute([&] { got = skynet_tbb(0, k_skynet_size); });
        check(state, got, k_skynet_sum);
    }
}
#endif

void register_benchmarks() {
    auto add = [](const char* name, void (*fn)(benchmark::State&), bool per_worker) {
        auto* b =
            benchmark::RegisterBenchmark(name, fn)->UseRealTime()->Unit(benchmark::kMillisecond);
        if (per_worker)
            b->ArgName("workers")->Arg(1)->Arg(2);
    };
    add("fib/serial", bm_fib_serial, false);
    add("fib/weft", bm_fib_weft, true);
#if WEFT_HAVE_TBB
    add("fib/tbb", bm_fib_tbb, true);
#endif
    add("skynet/weft", bm_skynet_weft, true);
    add("pingpong/tasks", bm_pingpong_tasks, false);
#if WEFT_HAVE_TBB
    add("skynet/tbb", bm_skynet_tbb, true);
#endif
}

// Takes our own --fib=N out of argv. False on a malformed value.
bool parse_args(int& argc, char** argv) {
    int kept = 1;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (!arg.starts_with("--fib=")) {
            argv[kept++] = argv[i];
            continue;
        }
        const std::string_view value = arg.substr(6);
        const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), g_fib);
        if (error != std::errc() || end != value.data() + value.size() || g_fib < 2 || g_fib > 40) {
            std::fprintf(stderr, "scheduler_bench: bad value in %s (want 2..40)\n", argv[i]);
            return false;
        }
    }
    argc = kept;
    argv[argc] = nullptr;
    return true;
}

} // namespace

int main(int argc, char** argv) {
    if (!parse_args(argc, argv))
        return 1;
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;
    register_benchmarks();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
