// sync_bench — weft's semaphore and mutex next to the idioms they replace, same process.
//
// Families (read as ratios between rows of one family; items/s counts acquire+release pairs,
// over wall time: the task rows' caller only waits):
//   sem_uncontended/<impl>   one thread (or one task) acquires and releases 1 of 4 permits in a
//                            loop; nobody else: the fast path alone
//   sem_contended/<impl>     2 workers x 1000 tasks, each acquiring 1 of 4 permits 100 times,
//                            yielding once while it holds it, so tasks queue and are woken
//   mutex/<impl>             2 workers x 1000 tasks, each locking 100 times to increment a plain
//                            int (held briefly); the count is checked
// Impls: weft::semaphore; weft::channel<std::monostate>(4) used as a semaphore (Go's idiom: a
// send takes a slot, a receive gives it back); weft::mutex; std::mutex (blocks the worker thread
// while it waits, which a brief hold makes cheap).
//
//   sync_bench --benchmark_filter=^mutex/
#include "bench_support.hpp"

#include <weft/channel.hpp>
#include <weft/mutex.hpp>
#include <weft/scheduler.hpp>
#include <weft/semaphore.hpp>
#include <weft/sync.hpp>
#include <weft/task.hpp>

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <variant>

namespace {

constexpr std::int64_t k_permits = 4;
constexpr int k_tasks = 1000;
constexpr int k_per_task = 100;
constexpr int k_loop = 100'000; // uncontended rounds per iteration

// The two semaphores behind one interface.
struct weft_sem {
    weft::semaphore sem{k_permits};
    void acquire() { sem.acquire(); }
    auto async_acquire() { return sem.async_acquire(); }
    void release() { sem.release(); }
};
struct chan_sem {
    weft::channel<std::monostate> ch{k_permits};
    void acquire() { (void)ch.send(std::monostate{}); }
    auto async_acquire() { return ch.async_send(std::monostate{}); }
    void release() { (void)ch.try_recv(); }
};

template <class Sem>
void bm_sem_uncontended_thread(benchmark::State& state) {
    Sem sem;
    for (auto _ : state) {
        for (int i = 0; i < k_loop; ++i) {
            sem.acquire();
            sem.release();
        }
    }
    state.SetItemsProcessed(state.iterations() * k_loop);
}

template <class Sem>
void bm_sem_uncontended_task(benchmark::State& state) {
    weft::scheduler s(1);
    Sem sem;
    for (auto _ : state) {
        weft::sync_wait(s, [](Sem& sm) -> weft::task<void> {
            for (int i = 0; i < k_loop; ++i) {
                co_await sm.async_acquire();
                sm.release();
            }
        }(sem));
    }
    state.SetItemsProcessed(state.iterations() * k_loop);
}

template <class Sem>
void bm_sem_contended(benchmark::State& state) {
    weft::scheduler s(2);
    Sem sem;
    std::atomic<std::int64_t> in_use{0};
    std::atomic<bool> overdrawn{false};
    for (auto _ : state) {
        weft::wait_group wg;
        wg.add(k_tasks);
        for (int t = 0; t < k_tasks; ++t) {
            s.spawn([&]() -> weft::task<void> {
                for (int i = 0; i < k_per_task; ++i) {
                    co_await sem.async_acquire();
                    if (in_use.fetch_add(1, std::memory_order_relaxed) >= k_permits)
                        overdrawn.store(true, std::memory_order_relaxed);
                    co_await weft::yield();
                    in_use.fetch_sub(1, std::memory_order_relaxed);
                    sem.release();
                }
                wg.done();
            });
        }
        wg.wait();
    }
    if (overdrawn)
        state.SkipWithError("more holders than permits");
    state.SetItemsProcessed(state.iterations() * k_tasks * k_per_task);
}

// A mutex held briefly: weft::mutex suspends a waiting task, std::mutex blocks its worker.
template <class Mutex>
void bm_mutex(benchmark::State& state) {
    weft::scheduler s(2);
    Mutex m;
    long counter = 0;
    long expected = 0;
    for (auto _ : state) {
        weft::wait_group wg;
        wg.add(k_tasks);
        for (int t = 0; t < k_tasks; ++t) {
            s.spawn([&]() -> weft::task<void> {
                for (int i = 0; i < k_per_task; ++i) {
                    if constexpr (std::is_same_v<Mutex, weft::mutex>)
                        co_await m.async_lock();
                    else
                        m.lock();
                    ++counter;
                    m.unlock();
                }
                wg.done();
            });
        }
        wg.wait();
        expected += long{k_tasks} * k_per_task;
    }
    std::lock_guard lock(m);
    if (counter != expected)
        state.SkipWithError("lost increments");
    state.SetItemsProcessed(state.iterations() * k_tasks * k_per_task);
}

void register_benchmarks() {
    benchmark::RegisterBenchmark("sem_uncontended/weft_semaphore/thread",
                                 bm_sem_uncontended_thread<weft_sem>)
        ->UseRealTime();
    benchmark::RegisterBenchmark("sem_uncontended/channel/thread",
                                 bm_sem_uncontended_thread<chan_sem>)
        ->UseRealTime();
    benchmark::RegisterBenchmark("sem_uncontended/weft_semaphore/task",
                                 bm_sem_uncontended_task<weft_sem>)
        ->UseRealTime();
    benchmark::RegisterBenchmark("sem_uncontended/channel/task", bm_sem_uncontended_task<chan_sem>)
        ->UseRealTime();
    benchmark::RegisterBenchmark("sem_contended/weft_semaphore", bm_sem_contended<weft_sem>)
        ->UseRealTime();
    benchmark::RegisterBenchmark("sem_contended/channel", bm_sem_contended<chan_sem>)
        ->UseRealTime();
    benchmark::RegisterBenchmark("mutex/weft_mutex", bm_mutex<weft::mutex>)->UseRealTime();
    benchmark::RegisterBenchmark("mutex/std_mutex", bm_mutex<std::mutex>)->UseRealTime();
}

} // namespace

int main(int argc, char** argv) {
    return weft_bench::run_benchmarks(argc, argv, register_benchmarks);
}
