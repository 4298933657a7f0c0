// scheduler_bench — weft's scheduler and tasks next to their peers, same workload, same process.
//
// Families (DESIGN.md's targets read as ratios between rows of one family):
//   fib/<peer>/workers:W     fork-join fib(n): every call above the cutoff forks two children
//   fib/std_async/n:N        the same with a thread per fork (std::async), at a smaller n
//   skynet/<peer>/workers:W  a tree of 1M tasks with 10 children each, summing the leaves
//   pingpong/tasks           two tasks on one worker bounce a value over two unbuffered
//                            channels (DESIGN.md: <= 150 ns a round trip)
//   slow_calls/<peer>/...    1000 calls that each wait 200 ms: weft tasks in sleep_for (all at
//                            once, or at most 100 at a time through a channel used as a
//                            semaphore, Go's idiom; or blocking sleeps on spawn_blocking's
//                            elastic pool), a std::thread per call, and oneTBB tasks
//                            that block in the wait (20 calls only: TBB runs W at a time, so
//                            1000 would take 1000/W * 200 ms; the row's label extrapolates)
//   idle/<peer>/workers:W    a started pool (all hardware threads) left idle for 1 s
// Peers, each where CMake found it: a plain recursive function (serial, the floor); oneTBB
// task_group in a task_arena of W threads; Boost.Fiber on W threads (workers:1 is one thread
// with Boost's default round_robin; W > 1 is algo::work_stealing, which Boost sets up only
// once per process, so that pool lives until exit); std::async and std::thread where a thread
// per call is the point. Each result is checked: a wrong sum fails the row.
//
// Counters besides time:
//   per_task       fib: wall time per call of the fib tree (2*fib(n+1)-1 calls, each a task)
//   rss_peak_MB    skynet: peak RSS growth (MiB) of one run in a fresh process, this binary
//                  with --skynet_rss_only=<peer>:<W> (VmHWM after minus before). Not measured
//                  in-process: allocator caches (weft's frame pool, tbbmalloc, glibc) carry
//                  memory from row to row, and VmHWM and ru_maxrss only ever rise.
//   threads        slow_calls: OS threads that run the calls, counted by construction (weft:
//                  W workers + its one timer thread; oneTBB: the W arena threads, the caller
//                  included; std::thread: one a call).
//   max_in_flight  slow_calls: most calls waiting at once, measured.
//   cpu_ms         idle: CPU time of the whole process (CLOCK_PROCESS_CPUTIME_ID) over the
//                  idle second; every other thread of the process is parked by then.
//
//   scheduler_bench --fib=30 --benchmark_filter=^fib/
//   scheduler_bench --skynet_rss_only=boost_fiber:2
#include "bench_support.hpp"

#include <weft/channel.hpp>
#include <weft/spawn_blocking.hpp>
#include <weft/task.hpp>
#include <weft/task_group.hpp>
#include <weft/time.hpp>

#include <benchmark/benchmark.h>

#if WEFT_HAVE_TBB
#include <tbb/task_arena.h>
#include <tbb/task_group.h>
#endif

#if WEFT_HAVE_BOOST_FIBER
#include <boost/fiber/algo/work_stealing.hpp>
#include <boost/fiber/condition_variable.hpp>
#include <boost/fiber/fiber.hpp>
#include <boost/fiber/fixedsize_stack.hpp>
#include <boost/fiber/future.hpp>
#include <boost/fiber/mutex.hpp>
#include <boost/fiber/operations.hpp>
#endif

#if defined(__linux__)
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#endif

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;

int g_fib = 25;                     // --fib=N
std::string_view g_skynet_rss_only; // --skynet_rss_only=<peer>[:<W>]
constexpr int k_std_async_fib = 18; // fib(18) forks 4180 threads; fib(25) would fork 75k
constexpr long k_skynet_size = 1'000'000;
constexpr long k_skynet_sum = k_skynet_size * (k_skynet_size - 1) / 2;
constexpr auto k_slow_call = 200ms;
constexpr long k_slow_calls = 1000;
constexpr long k_slow_call_limit = 100;
constexpr long k_slow_calls_tbb = 20; // blocking, W at a time: 1000 would take minutes
constexpr auto k_idle = 1s;

void check(benchmark::State& state, long got, long want) {
    if (got != want)
        state.SkipWithError("wrong result");
}

// --- fib --------------------------------------------------------------------------------------

long fib_serial(int n) {
    return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2);
}

// Calls in the tree of fib(n): 2*fib(n+1) - 1.
double fib_calls(int n) {
    long a = 0, b = 1;
    for (int i = 0; i <= n; ++i)
        a = std::exchange(b, a + b);
    return 2.0 * static_cast<double>(a) - 1.0;
}

// per_task: wall time per call of the fib tree, so rows of any peer and n compare.
void report_per_task(benchmark::State& state, int n) {
    state.counters["per_task"] =
        benchmark::Counter(static_cast<double>(state.iterations()) * fib_calls(n),
                           benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

weft::task<long> fib_weft(int n) {
    if (n < 2)
        co_return n;
    auto [a, b] = co_await weft::when_all(fib_weft(n - 1), fib_weft(n - 2));
    co_return a + b;
}

long fib_std_async(int n) {
    if (n < 2)
        return n;
    auto a = std::async(std::launch::async, fib_std_async, n - 1);
    const long b = fib_std_async(n - 2);
    return a.get() + b;
}

// --- skynet -----------------------------------------------------------------------------------

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

#if WEFT_HAVE_BOOST_FIBER
// Fibers get a 16 KiB fixedsize_stack (malloc'd, so any thread may free it): small, like the
// stacks Boost's own skynet benchmarks pass (one page there; fib recursing inside a fiber wants
// more). The 128 KiB default measured the same here and only costs address space.
boost::fibers::fixedsize_stack fiber_stack() {
    return boost::fibers::fixedsize_stack(16 * 1024);
}

// launch::dispatch, as in Boost's skynet benchmarks: the child runs at once, the parent waits in
// the ready queue (stealable). Boost's ready queues are FIFO, so a finished child resumes the
// oldest waiting parent and a tree unfolds breadth first: many fibers live at once.
long fib_fiber(int n) {
    if (n < 2)
        return n;
    auto a = boost::fibers::async(boost::fibers::launch::dispatch, std::allocator_arg,
                                  fiber_stack(), fib_fiber, n - 1);
    const long b = fib_fiber(n - 2);
    return a.get() + b;
}

long skynet_fiber(long num, long size) {
    if (size == 1)
        return num;
    std::array<boost::fibers::future<long>, 10> children;
    for (long i = 0; i < 10; ++i)
        children[static_cast<std::size_t>(i)] =
            boost::fibers::async(boost::fibers::launch::dispatch, std::allocator_arg, fiber_stack(),
                                 skynet_fiber, num + i * (size / 10), size / 10);
    long sum = 0;
    for (auto& child : children)
        sum += child.get();
    return sum;
}

// W threads that run Boost.Fiber jobs, one at a time. workers == 1: one thread with Boost's
// default round_robin scheduler (nobody to steal from). workers > 1: algo::work_stealing, whose
// registry of threads is static and set up once per process, so such a pool is made once and kept
// (see fiber_pool_for). Between jobs every thread blocks on a std::condition_variable, so an idle
// pool uses no CPU; inside a job the helpers spin looking for fibers to steal (Boost's design).
class fiber_pool {
public:
    explicit fiber_pool(std::uint32_t workers) : workers_(std::max<std::uint32_t>(workers, 1)) {
        for (std::uint32_t i = 0; i < workers_; ++i)
            threads_.emplace_back([this, i] { run_thread(i); });
    }
    fiber_pool(const fiber_pool&) = delete;
    fiber_pool& operator=(const fiber_pool&) = delete;
    ~fiber_pool() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        started_.notify_all();
        for (auto& t : threads_)
            t.join();
    }

    std::uint32_t size() const noexcept { return workers_; }

    // Runs `job` in a fiber on the pool and blocks the calling thread (never one of the pool's)
    // until it returns; returns its result.
    long run(std::function<long()> job) {
        std::unique_lock lock(mutex_);
        job_ = std::move(job);
        ++generation_;
        started_.notify_all();
        finished_.wait(lock, [&] { return finished_generation_ == generation_; });
        return result_;
    }

private:
    void run_thread(std::uint32_t index) {
        if (workers_ > 1)
            boost::fibers::use_scheduling_algorithm<boost::fibers::algo::work_stealing>(workers_);
        std::uint64_t seen = 0;
        for (;;) {
            std::function<long()> job;
            {
                std::unique_lock lock(mutex_);
                started_.wait(lock, [&] { return stopping_ || generation_ != seen; });
                if (stopping_)
                    return;
                seen = generation_;
                if (index == 0)
                    job = job_;
            }
            if (index == 0)
                lead(job, seen);
            else
                help(seen);
        }
    }

    // Thread 0 runs the job's root fiber, then releases the helpers and the caller.
    void lead(const std::function<long()>& job, std::uint64_t generation) {
        long result = 0;
        boost::fibers::fiber root([&] { result = job(); });
        root.join();
        {
            std::lock_guard lock(done_mutex_);
            done_generation_ = generation;
        }
        done_.notify_all();
        {
            std::lock_guard lock(mutex_);
            result_ = result;
            finished_generation_ = generation;
        }
        finished_.notify_all();
    }

    // The other threads wait on a fiber condition variable, so their dispatchers keep running
    // (and stealing) the job's fibers until the job is done.
    void help(std::uint64_t generation) {
        std::unique_lock lock(done_mutex_);
        done_.wait(lock, [&] { return done_generation_ >= generation; });
    }

    const std::uint32_t workers_;
    std::vector<std::thread> threads_;
    // Caller and pool, plain threads: a new job (generation_), its result (finished_).
    std::mutex mutex_;
    std::condition_variable started_;
    std::condition_variable finished_;
    std::function<long()> job_;
    std::uint64_t generation_ = 0;
    std::uint64_t finished_generation_ = 0;
    long result_ = 0;
    bool stopping_ = false;
    // Thread 0 and the helpers, fiber-aware: the job is done.
    boost::fibers::mutex done_mutex_;
    boost::fibers::condition_variable done_;
    std::uint64_t done_generation_ = 0;
};

std::unique_ptr<fiber_pool> g_stealing_fiber_pool; // the process's one work_stealing pool

// A pool of `workers` threads: a fresh one in `own` for one worker, else the process's
// work_stealing pool (made on first use). Null if that pool was made with another size.
fiber_pool* fiber_pool_for(std::uint32_t workers, std::unique_ptr<fiber_pool>& own) {
    if (workers <= 1) {
        own = std::make_unique<fiber_pool>(1);
        return own.get();
    }
    if (!g_stealing_fiber_pool)
        g_stealing_fiber_pool = std::make_unique<fiber_pool>(workers);
    return g_stealing_fiber_pool->size() == workers ? g_stealing_fiber_pool.get() : nullptr;
}
#endif

// One skynet on `peer` with `workers` threads, pool made and torn down around it; nullopt for a
// peer this build does not have.
std::optional<long> skynet_once(std::string_view peer, int workers) {
    if (peer == "weft") {
        weft::scheduler s(static_cast<std::size_t>(workers));
        return weft::sync_wait(s, skynet_weft(0, k_skynet_size));
    }
#if WEFT_HAVE_TBB
    if (peer == "tbb") {
        tbb::task_arena arena(workers);
        long got = 0;
        arena.execute([&] { got = skynet_tbb(0, k_skynet_size); });
        return got;
    }
#endif
#if WEFT_HAVE_BOOST_FIBER
    if (peer == "boost_fiber") {
        std::unique_ptr<fiber_pool> own;
        if (fiber_pool* pool = fiber_pool_for(static_cast<std::uint32_t>(workers), own))
            return pool->run([] { return skynet_fiber(0, k_skynet_size); });
    }
#endif
    return std::nullopt;
}

// --- process probes (Linux) -------------------------------------------------------------------

#if defined(__linux__)
// A "<name>:   <n> kB" line of /proc/self/status, in kB; -1 if missing.
long proc_status_kb(std::string_view name) {
    std::FILE* f = std::fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    long kb = -1;
    char line[256];
    while (kb < 0 && std::fgets(line, sizeof line, f)) {
        const std::string_view text = line;
        if (text.starts_with(name) && text.substr(name.size()).starts_with(":"))
            std::sscanf(line + name.size() + 1, "%ld", &kb);
    }
    std::fclose(f);
    return kb;
}

double process_cpu_ms() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// The value after `key` in `text` (e.g. "vm_hwm_after_kb="), or nullopt.
std::optional<long> field(std::string_view text, std::string_view key) {
    const auto at = text.find(key);
    if (at == std::string_view::npos)
        return std::nullopt;
    const char* first = text.data() + at + key.size();
    long value = 0;
    const auto [end, error] = std::from_chars(first, text.data() + text.size(), value);
    if (error != std::errc() || end == first)
        return std::nullopt;
    return value;
}

// Runs this binary with --skynet_rss_only=<peer>:<workers> and returns the growth of peak RSS
// it reports, in MiB; nullopt if it could not run or its sum was wrong.
std::optional<double> skynet_rss_peak_mb(std::string_view peer, int workers) {
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0)
        return std::nullopt;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO); // dup2 clears CLOEXEC
    std::string name = "scheduler_bench";
    std::string flag = "--skynet_rss_only=" + std::string(peer) + ":" + std::to_string(workers);
    char* args[] = {name.data(), flag.data(), nullptr};
    pid_t pid = 0;
    const int spawned = posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, args, environ);
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    std::string text;
    char buffer[256];
    for (ssize_t n; spawned == 0 && (n = read(out[0], buffer, sizeof buffer)) > 0;)
        text.append(buffer, static_cast<std::size_t>(n));
    close(out[0]);
    if (spawned != 0)
        return std::nullopt;
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return std::nullopt;
    const auto before = field(text, "vm_hwm_before_kb=");
    const auto after = field(text, "vm_hwm_after_kb=");
    if (!before || !after)
        return std::nullopt;
    return static_cast<double>(*after - *before) / 1024.0;
}

// --skynet_rss_only=<peer>[:<W>]: one skynet in this fresh process, then one line with the peak
// RSS (VmHWM) before and after. Not ru_maxrss: Linux carries the spawning process's peak over
// exec into it. Exits 0 only if the sum was right.
int run_skynet_rss_only(std::string_view spec) {
    std::string_view peer = spec;
    int workers = 1;
    if (const auto colon = spec.find(':'); colon != std::string_view::npos) {
        peer = spec.substr(0, colon);
        const std::string_view count = spec.substr(colon + 1);
        const auto [end, error] =
            std::from_chars(count.data(), count.data() + count.size(), workers);
        if (error != std::errc() || end != count.data() + count.size() || workers < 1 ||
            workers > 1024) {
            std::fprintf(stderr, "scheduler_bench: bad worker count in --skynet_rss_only=%.*s\n",
                         static_cast<int>(spec.size()), spec.data());
            return 2;
        }
    }
    const long before_kb = proc_status_kb("VmHWM");
    const std::optional<long> sum = skynet_once(peer, workers);
    const long after_kb = proc_status_kb("VmHWM");
    if (!sum) {
        std::fprintf(stderr,
                     "scheduler_bench: no skynet peer '%.*s' in this build (weft, tbb, "
                     "boost_fiber)\n",
                     static_cast<int>(peer.size()), peer.data());
        return 2;
    }
    std::printf("skynet/%.*s/workers:%d sum_ok=%d vm_hwm_before_kb=%ld vm_hwm_after_kb=%ld "
                "rss_peak_MB=%.1f\n",
                static_cast<int>(peer.size()), peer.data(), workers, *sum == k_skynet_sum ? 1 : 0,
                before_kb, after_kb, static_cast<double>(after_kb - before_kb) / 1024.0);
    return *sum == k_skynet_sum ? 0 : 1;
}
#endif

void report_skynet_rss(benchmark::State& state, std::string_view peer) {
#if defined(__linux__)
    if (const auto mb = skynet_rss_peak_mb(peer, static_cast<int>(state.range(0))))
        state.counters["rss_peak_MB"] = *mb;
    else
        state.SkipWithError("the --skynet_rss_only child process failed");
#else
    (void)state;
    (void)peer;
#endif
}

// --- slow calls -------------------------------------------------------------------------------

// How many slow calls wait at once, and how many finished.
struct call_stats {
    std::atomic<long> waiting{0};
    std::atomic<long> max_waiting{0};
    std::atomic<long> finished{0};

    // relaxed, all three: statistics, read only after every call was joined (thread join,
    // sync_wait, task_group::wait, tbb::task_group::wait order the calls before the read).
    void begin() noexcept {
        const long now = waiting.fetch_add(1, std::memory_order_relaxed) + 1;
        long seen = max_waiting.load(std::memory_order_relaxed);
        while (now > seen &&
               !max_waiting.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
        }
    }
    void end() noexcept {
        waiting.fetch_sub(1, std::memory_order_relaxed);
        finished.fetch_add(1, std::memory_order_relaxed);
    }
};

void report_slow_calls(benchmark::State& state, const call_stats& stats, long calls, long threads) {
    check(state, stats.finished.load(std::memory_order_relaxed), calls);
    state.counters["threads"] = static_cast<double>(threads);
    state.counters["max_in_flight"] =
        static_cast<double>(stats.max_waiting.load(std::memory_order_relaxed));
}

void slow_call_blocking(call_stats& stats) {
    stats.begin();
    std::this_thread::sleep_for(k_slow_call);
    stats.end();
}

weft::task<void> slow_call(call_stats& stats) {
    stats.begin();
    co_await weft::sleep_for(k_slow_call);
    stats.end();
}

weft::task<void> slow_calls_all_at_once(long calls, call_stats& stats) {
    std::vector<weft::task<void>> tasks;
    tasks.reserve(static_cast<std::size_t>(calls));
    for (long i = 0; i < calls; ++i)
        tasks.push_back(slow_call(stats));
    co_await weft::when_all(std::move(tasks));
}

// Holds one of the semaphore's slots (a value in `slots`) for the call, then gives it back.
weft::task<void> slow_call_holding(weft::channel<int> slots, call_stats& stats) {
    co_await slow_call(stats);
    (void)co_await slots.async_recv();
}

// Go's counting semaphore: a buffered channel of `limit` slots; a send takes one (suspending
// while all are taken), a receive gives one back.
weft::task<void> slow_calls_limited(long calls, std::size_t limit, call_stats& stats) {
    weft::channel<int> slots(limit);
    weft::task_group group;
    for (long i = 0; i < calls; ++i) {
        co_await slots.async_send(0);
        group.spawn(slow_call_holding(slots, stats));
    }
    co_await group.wait();
}

// --- benchmarks -------------------------------------------------------------------------------

void bm_fib_serial(benchmark::State& state) {
    const long want = fib_serial(g_fib);
    for (auto _ : state) {
        const long got = fib_serial(g_fib);
        benchmark::DoNotOptimize(got);
        check(state, got, want);
    }
    report_per_task(state, g_fib);
}

void bm_fib_weft(benchmark::State& state) {
    const long want = fib_serial(g_fib);
    weft::scheduler s(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state)
        check(state, weft::sync_wait(s, fib_weft(g_fib)), want);
    report_per_task(state, g_fib);
}

// A thread per fork: the cost of a task that is an OS thread. n is the row's argument.
void bm_fib_std_async(benchmark::State& state) {
    const int n = static_cast<int>(state.range(0));
    const long want = fib_serial(n);
    for (auto _ : state) {
        try {
            check(state, fib_std_async(n), want);
        } catch (const std::system_error&) {
            state.SkipWithError("std::async could not start a thread");
            break;
        }
    }
    report_per_task(state, n);
}

void bm_skynet_weft(benchmark::State& state) {
    weft::scheduler s(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state)
        check(state, weft::sync_wait(s, skynet_weft(0, k_skynet_size)), k_skynet_sum);
    report_skynet_rss(state, "weft");
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

// Every call a task waiting in sleep_for: none holds a worker while it waits.
void bm_slow_calls_weft(benchmark::State& state) {
    const long calls = state.range(0);
    const long workers = state.range(1);
    weft::scheduler s(static_cast<std::size_t>(workers));
    for (auto _ : state) {
        call_stats stats;
        weft::sync_wait(s, slow_calls_all_at_once(calls, stats));
        report_slow_calls(state, stats, calls, workers + 1); // + the shared timer thread
    }
}

// As above, at most `limit` calls at a time through a channel semaphore.
void bm_slow_calls_weft_limited(benchmark::State& state) {
    const long calls = state.range(0);
    const auto limit = static_cast<std::size_t>(state.range(1));
    const long workers = state.range(2);
    weft::scheduler s(static_cast<std::size_t>(workers));
    for (auto _ : state) {
        call_stats stats;
        weft::sync_wait(s, slow_calls_limited(calls, limit, stats));
        report_slow_calls(state, stats, calls, workers + 1); // + the shared timer thread
    }
}

// Every call a blocking sleep handed to spawn_blocking: the elastic pool grows a thread per
// waiting call (up to its cap of 512), the tasks awaiting them hold no worker.
weft::task<void> slow_calls_spawn_blocking(long calls, call_stats& stats) {
    std::vector<weft::blocking_call<void>> pending;
    pending.reserve(static_cast<std::size_t>(calls));
    for (long i = 0; i < calls; ++i)
        pending.push_back(weft::spawn_blocking([&stats] { slow_call_blocking(stats); }));
    for (auto& call : pending)
        co_await std::move(call);
}

void bm_slow_calls_spawn_blocking(benchmark::State& state) {
    const long calls = state.range(0);
    const long workers = state.range(1);
    weft::scheduler s(static_cast<std::size_t>(workers));
    for (auto _ : state) {
        call_stats stats;
        weft::sync_wait(s, slow_calls_spawn_blocking(calls, stats));
        // The pool's threads at their peak are the calls in flight (one thread each).
        report_slow_calls(state, stats, calls,
                          workers + stats.max_waiting.load(std::memory_order_relaxed));
    }
}

void bm_slow_calls_std_thread(benchmark::State& state) {
    const long calls = state.range(0);
    for (auto _ : state) {
        call_stats stats;
        std::vector<std::thread> threads;
        threads.reserve(static_cast<std::size_t>(calls));
        bool started = true;
        try {
            for (long i = 0; i < calls; ++i)
                threads.emplace_back(slow_call_blocking, std::ref(stats));
        } catch (const std::system_error&) {
            started = false;
        }
        for (auto& t : threads)
            t.join();
        if (!started) {
            state.SkipWithError("could not start a thread per call");
            break;
        }
        report_slow_calls(state, stats, calls, calls);
    }
}

#if defined(__linux__)
// The process's CPU time over k_idle of sleeping, while the pool under test sits idle.
void measure_idle(benchmark::State& state) {
    double cpu_ms = 0;
    for (auto _ : state) {
        const double before = process_cpu_ms();
        std::this_thread::sleep_for(k_idle);
        cpu_ms = process_cpu_ms() - before;
    }
    state.counters["cpu_ms"] = cpu_ms;
}

// A started scheduler with nothing to do: what its parked workers cost.
void bm_idle_weft(benchmark::State& state) {
    weft::scheduler s(static_cast<std::size_t>(state.range(0)));
    // Some work first, so every worker has started, run out of work and gone to park.
    check(state, weft::sync_wait(s, fib_weft(15)), fib_serial(15));
    measure_idle(state);
}
#endif

#if WEFT_HAVE_TBB
void bm_fib_tbb(benchmark::State& state) {
    const long want = fib_serial(g_fib);
    tbb::task_arena arena(static_cast<int>(state.range(0)));
    for (auto _ : state) {
        long got = 0;
        arena.execute([&] { got = fib_tbb(g_fib); });
        check(state, got, want);
    }
    report_per_task(state, g_fib);
}

void bm_skynet_tbb(benchmark::State& state) {
    tbb::task_arena arena(static_cast<int>(state.range(0)));
    for (auto _ : state) {
        long got = 0;
        arena.execute([&] { got = skynet_tbb(0, k_skynet_size); });
        check(state, got, k_skynet_sum);
    }
    report_skynet_rss(state, "tbb");
}

// Every call a TBB task that blocks its thread in the wait: W calls at a time.
void bm_slow_calls_tbb(benchmark::State& state) {
    const long calls = state.range(0);
    const long workers = state.range(1);
    tbb::task_arena arena(static_cast<int>(workers));
    const auto start = std::chrono::steady_clock::now();
    for (auto _ : state) {
        call_stats stats;
        arena.execute([&] {
            tbb::task_group g;
            for (long i = 0; i < calls; ++i)
                g.run([&stats] { slow_call_blocking(stats); });
            g.wait();
        });
        report_slow_calls(state, stats, calls, workers);
    }
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    const double per_run = took.count() / static_cast<double>(state.iterations());
    char label[96];
    std::snprintf(label, sizeof label, "%ld of %ld calls; all %ld: ~%.0f s", calls, k_slow_calls,
                  k_slow_calls, per_run * static_cast<double>(k_slow_calls) / calls);
    state.SetLabel(label);
}

#if defined(__linux__)
// A task_arena kept alive with nothing to do (its workers park too, after spinning a while).
void bm_idle_tbb(benchmark::State& state) {
    tbb::task_arena arena(static_cast<int>(state.range(0)));
    long got = 0;
    arena.execute([&] { got = fib_tbb(15); });
    check(state, got, fib_serial(15));
    measure_idle(state);
}
#endif
#endif

#if WEFT_HAVE_BOOST_FIBER
void bm_fib_boost_fiber(benchmark::State& state) {
    const long want = fib_serial(g_fib);
    std::unique_ptr<fiber_pool> own;
    fiber_pool* pool = fiber_pool_for(static_cast<std::uint32_t>(state.range(0)), own);
    if (!pool) {
        state.SkipWithError("Boost.Fiber work_stealing is set up once per process, other size");
        return;
    }
    for (auto _ : state)
        check(state, pool->run([] { return fib_fiber(g_fib); }), want);
    report_per_task(state, g_fib);
}

void bm_skynet_boost_fiber(benchmark::State& state) {
    std::unique_ptr<fiber_pool> own;
    fiber_pool* pool = fiber_pool_for(static_cast<std::uint32_t>(state.range(0)), own);
    if (!pool) {
        state.SkipWithError("Boost.Fiber work_stealing is set up once per process, other size");
        return;
    }
    for (auto _ : state)
        check(state, pool->run([] { return skynet_fiber(0, k_skynet_size); }), k_skynet_sum);
    report_skynet_rss(state, "boost_fiber");
}
#endif

void register_benchmarks() {
    const auto all_workers = static_cast<long>(weft::scheduler::default_worker_count());
    auto add = [](const char* name, void (*fn)(benchmark::State&)) {
        return benchmark::RegisterBenchmark(name, fn)->UseRealTime()->Unit(benchmark::kMillisecond);
    };
    auto per_worker = [&](const char* name, void (*fn)(benchmark::State&)) {
        add(name, fn)->ArgName("workers")->Arg(1)->Arg(2);
    };
    // Rows that take 0.2 s and more by design: one run says it all.
    auto once = [&](const char* name, void (*fn)(benchmark::State&)) {
        return add(name, fn)->Iterations(1);
    };

    add("fib/serial", bm_fib_serial);
    per_worker("fib/weft", bm_fib_weft);
#if WEFT_HAVE_TBB
    per_worker("fib/tbb", bm_fib_tbb);
#endif
#if WEFT_HAVE_BOOST_FIBER
    per_worker("fib/boost_fiber", bm_fib_boost_fiber);
#endif
    add("fib/std_async", bm_fib_std_async)->ArgName("n")->Arg(std::min(g_fib, k_std_async_fib));

    per_worker("skynet/weft", bm_skynet_weft);
#if WEFT_HAVE_TBB
    per_worker("skynet/tbb", bm_skynet_tbb);
#endif
#if WEFT_HAVE_BOOST_FIBER
    per_worker("skynet/boost_fiber", bm_skynet_boost_fiber);
#endif

    add("pingpong/tasks", bm_pingpong_tasks);

    once("slow_calls/weft", bm_slow_calls_weft)
        ->ArgNames({"calls", "workers"})
        ->Args({k_slow_calls, all_workers});
    once("slow_calls/weft_limited", bm_slow_calls_weft_limited)
        ->ArgNames({"calls", "limit", "workers"})
        ->Args({k_slow_calls, k_slow_call_limit, all_workers});
    once("slow_calls/weft_spawn_blocking", bm_slow_calls_spawn_blocking)
        ->ArgNames({"calls", "workers"})
        ->Args({k_slow_calls, all_workers});
    once("slow_calls/std_thread", bm_slow_calls_std_thread)->ArgName("calls")->Arg(k_slow_calls);
#if WEFT_HAVE_TBB
    once("slow_calls/tbb_blocking", bm_slow_calls_tbb)
        ->ArgNames({"calls", "workers"})
        ->Args({k_slow_calls_tbb, all_workers});
#endif

#if defined(__linux__)
    once("idle/weft", bm_idle_weft)->ArgName("workers")->Arg(all_workers);
#if WEFT_HAVE_TBB
    once("idle/tbb", bm_idle_tbb)->ArgName("workers")->Arg(all_workers);
#endif
#endif
}

// Takes our own flags (--fib=N, --skynet_rss_only=...) out of argv. False on a malformed value.
bool parse_args(int& argc, char** argv) {
    int kept = 1;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg.starts_with("--skynet_rss_only="))
            g_skynet_rss_only = arg.substr(18);
        else
            argv[kept++] = argv[i];
    }
    argc = kept;
    argv[argc] = nullptr;
    std::int64_t fib = g_fib;
    if (!weft_bench::take_int_flags("scheduler_bench", argc, argv, {{"--fib=", &fib, 2, 40}}))
        return false;
    g_fib = static_cast<int>(fib);
    return true;
}

// Joins the pools that live for the whole process before static destruction begins.
void release_shared_pools() {
#if WEFT_HAVE_BOOST_FIBER
    g_stealing_fiber_pool.reset();
#endif
}

} // namespace

int main(int argc, char** argv) {
    if (!parse_args(argc, argv))
        return 1;
    if (!g_skynet_rss_only.empty()) {
#if defined(__linux__)
        const int status = run_skynet_rss_only(g_skynet_rss_only);
        release_shared_pools();
        return status;
#else
        std::fprintf(stderr, "scheduler_bench: --skynet_rss_only needs Linux (/proc)\n");
        return 1;
#endif
    }
    const int status = weft_bench::run_benchmarks(argc, argv, register_benchmarks);
    release_shared_pools();
    return status;
}
