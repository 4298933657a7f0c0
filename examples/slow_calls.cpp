// 1000 slow calls: a thread each, or a few threads and a thousand tasks.
//
// Every call waits 200 ms for something (a remote service, a disk), doing nothing meanwhile.
// Made one after another they would take 1000 × 200 ms = 200 s, so we only estimate that.
//
// A thread per call gets them all done in about 200 ms, at the price of 1000 OS threads, each
// with its own stack and its own trip through the kernel's scheduler. That stops scaling long
// before a million calls.
//
// weft tasks wait differently: `co_await weft::sleep_for(200ms)` suspends the task and hands
// its worker thread to the next task, so two worker threads (and the shared timer thread) can
// keep hundreds of calls waiting at once. Real services want a limit on calls in flight, and
// Go's idiom for that is a buffered channel used as a counting semaphore:
//
//   sem := make(chan struct{}, 100)
//   for each call { sem <- struct{}{}; go func() { call(); <-sem }() }
//
// A send takes a slot (and waits, suspended, while all 100 are taken); the call gives its slot
// back with a receive when it is done. At most 100 calls wait at once, so 1000 calls take
// 1000 / 100 × 200 ms = 2 s.
//
// The realistic version adds what a third-party API imposes: a rate limit (at most 200 calls a
// second, a token bucket: weft::rate_limiter, Go's x/time/rate) and a timeout per call (300 ms,
// weft::with_timeout, Go's context.WithTimeout), with calls of uneven speed, some slower than
// the timeout. An errgroup (Go's errgroup.WithContext) bounds the calls in flight to 100 with
// set_limit and joins them all. A call that honours its context stops waiting when the timeout
// fires; the rate makes the wall time about 1000 / 200 per second = 5 s.
#include <weft/weft.hpp>

#include <fmt/core.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <system_error>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

constexpr int k_calls = 1000;
constexpr auto k_call_time = 200ms;
constexpr std::size_t k_limit = 100;

// How many calls are waiting right now, the most at any moment, and how many finished.
// relaxed: plain statistics, read only after every call was joined (thread join or sync_wait
// orders the calls before the read).
struct call_stats {
    std::atomic<int> in_flight{0};
    std::atomic<int> max_in_flight{0};
    std::atomic<int> finished{0};

    void begin() noexcept {
        const int now = in_flight.fetch_add(1, std::memory_order_relaxed) + 1;
        int seen = max_in_flight.load(std::memory_order_relaxed);
        while (now > seen &&
               !max_in_flight.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
        }
    }
    void end() noexcept {
        in_flight.fetch_sub(1, std::memory_order_relaxed);
        finished.fetch_add(1, std::memory_order_relaxed);
    }
};

double seconds_since(clock_type::time_point start) {
    return std::chrono::duration<double>(clock_type::now() - start).count();
}

// --- a thread per call --------------------------------------------------------------------

void slow_call_blocking(call_stats& stats) {
    stats.begin();
    std::this_thread::sleep_for(k_call_time);
    stats.end();
}

// --- weft tasks, at most k_limit at a time ------------------------------------------------

// Go's struct{}: a token that carries nothing but its presence.
struct slot {};

weft::task<void> slow_call(call_stats& stats) {
    stats.begin();
    co_await weft::sleep_for(k_call_time);
    stats.end();
}

// One call holding a semaphore slot (taken by the caller); gives it back when done.
weft::task<void> slow_call_holding(weft::channel<slot> semaphore, call_stats& stats) {
    co_await slow_call(stats);
    (void)co_await semaphore.async_recv(); // give the slot back
}

weft::task<void> slow_calls_limited(call_stats& stats) {
    weft::channel<slot> semaphore(k_limit); // 100 slots
    weft::task_group calls;
    for (int i = 0; i < k_calls; ++i) {
        co_await semaphore.async_send(slot{}); // take a slot; suspends while all 100 are taken
        calls.spawn(slow_call_holding(semaphore, stats));
    }
    co_await calls.wait();
}

// --- the realistic version: at most 100 in flight, 200 per second, 300 ms timeout each ------

constexpr std::size_t k_realistic_limit = 100;
constexpr double k_rate_per_second = 200;
constexpr std::int64_t k_burst = 10; // absorbs a late timer without losing the rate
constexpr auto k_timeout = 300ms;

// Call i's latency: 50..249 ms, except every tenth call, which takes 450 ms (slower than the
// timeout). Fixed, so the example's outcome is too: 100 time out.
std::chrono::milliseconds latency_of(int i) {
    if (i % 10 == 9)
        return 450ms;
    return std::chrono::milliseconds(50 + (i * 37) % 200);
}

struct realistic_stats : call_stats {
    std::atomic<int> succeeded{0};
    std::atomic<int> timed_out{0};
};

// A remote call that honours its context: it waits for the answer or for the context, whichever
// comes first (weft::sleep_for(ctx, d) stands in for a request on a network client that takes a
// context).
weft::task<void> remote_call(weft::context parent, int i, realistic_stats& stats) {
    auto [ctx, cancel] = weft::with_timeout(parent, k_timeout);
    stats.begin();
    const weft::status answered = co_await weft::sleep_for(ctx, latency_of(i));
    stats.end();
    if (answered == weft::status::ok)
        stats.succeeded.fetch_add(1, std::memory_order_relaxed); // relaxed: read after the join
    else if (ctx.err() == weft::context_errc::deadline_exceeded)
        stats.timed_out.fetch_add(1, std::memory_order_relaxed); // relaxed: as above
    cancel(); // releases the timeout's timer now rather than at its deadline
}

weft::task<void> slow_calls_realistic(realistic_stats& stats) {
    weft::rate_limiter rate(k_rate_per_second, k_burst);
    weft::errgroup calls;
    calls.set_limit(k_realistic_limit);
    for (int i = 0; i < k_calls; ++i) {
        // Both waits suspend this task, not a worker.
        if (co_await rate.async_wait(calls.context()) != weft::status::ok)
            break; // the group was cancelled: stop starting calls
        co_await calls.async_go(
            [i, &stats](weft::context ctx) { return remote_call(std::move(ctx), i, stats); });
    }
    co_await calls.wait();
}

int main() {
    bool ok = true;
    fmt::print("{} calls of {} ms each\n", k_calls, k_call_time.count());

    // --- 1. one after another: not run ----------------------------------------------------
    const double serial = k_calls * std::chrono::duration<double>(k_call_time).count();
    fmt::print("  serially (estimated, not run): {:.0f} s on 1 thread\n", serial);

    // --- 2. a thread per call ------------------------------------------------------------
    {
        call_stats stats;
        std::vector<std::thread> threads;
        threads.reserve(k_calls);
        const auto start = clock_type::now();
        try {
            for (int i = 0; i < k_calls; ++i)
                threads.emplace_back(slow_call_blocking, std::ref(stats));
        } catch (const std::system_error& e) {
            fmt::print("  FAILED: could not start thread {}: {}\n", threads.size() + 1, e.what());
            ok = false;
        }
        for (auto& t : threads)
            t.join();
        const double took = seconds_since(start);
        fmt::print("  a thread per call: {:.2f} s on {} threads, {} calls finished, at most {} "
                   "waiting at once\n",
                   took, threads.size(), stats.finished.load(), stats.max_in_flight.load());
        if (took >= 10.0 || stats.finished.load() != k_calls) {
            fmt::print("  FAILED: expected {} calls in under 10 s\n", k_calls);
            ok = false;
        }
    }

    // --- 3. weft tasks, at most 100 in flight ----------------------------------------------
    {
        weft::scheduler sched; // one worker per hardware thread
        call_stats stats;
        const auto start = clock_type::now();
        weft::sync_wait(sched, slow_calls_limited(stats));
        const double took = seconds_since(start);
        const double expected = static_cast<double>(k_calls) / k_limit *
                                std::chrono::duration<double>(k_call_time).count();
        fmt::print("  weft tasks, at most {} at a time: {:.2f} s on {} threads ({} workers + the "
                   "timer thread), {} calls finished, at most {} waiting at once\n",
                   k_limit, took, sched.size() + 1, sched.size(), stats.finished.load(),
                   stats.max_in_flight.load());
        const bool in_time = took >= expected * 0.95 && took <= 6.0;
        const bool limited = stats.max_in_flight.load() <= static_cast<int>(k_limit);
        if (in_time && limited && stats.finished.load() == k_calls) {
            fmt::print("limited tasks took about {} / {} x {} ms = {:.0f} s, never more than {} "
                       "in flight\n",
                       k_calls, k_limit, k_call_time.count(), expected, k_limit);
        } else {
            fmt::print("  FAILED: expected {} calls in {:.1f}..6 s with at most {} in flight\n",
                       k_calls, expected * 0.95, k_limit);
            ok = false;
        }
    }

    // --- 4. realistic: rate, timeout, limit -------------------------------------------------
    {
        weft::scheduler sched;
        realistic_stats stats;
        const auto start = clock_type::now();
        weft::sync_wait(sched, slow_calls_realistic(stats));
        const double took = seconds_since(start);
        int slow = 0;
        for (int i = 0; i < k_calls; ++i)
            slow += latency_of(i) > k_timeout ? 1 : 0;
        const double by_rate = (k_calls - k_burst) / k_rate_per_second;
        fmt::print("  realistic ({} in flight at most, {:.0f}/s, {} ms timeout): {} answered, {} "
                   "timed out, in {:.2f} s, at most {} in flight\n",
                   k_realistic_limit, k_rate_per_second, k_timeout.count(), stats.succeeded.load(),
                   stats.timed_out.load(), took, stats.max_in_flight.load());
        const bool counted = stats.succeeded.load() + stats.timed_out.load() == k_calls &&
                             stats.timed_out.load() == slow;
        const bool follows_rate = took >= by_rate * 0.95 && took <= by_rate + 3.0;
        const bool limited = stats.max_in_flight.load() <= static_cast<int>(k_realistic_limit);
        if (counted && follows_rate && limited) {
            fmt::print("the wall time follows the rate: ({} - burst {}) / {:.0f} per s = {:.2f} "
                       "s; the {} calls slower than {} ms timed out, none hung\n",
                       k_calls, k_burst, k_rate_per_second, by_rate, slow, k_timeout.count());
        } else {
            fmt::print("  FAILED: expected {} answered + {} timed out = {}, in {:.2f}..{:.2f} s, "
                       "at most {} in flight\n",
                       k_calls - slow, slow, k_calls, by_rate * 0.95, by_rate + 3.0,
                       k_realistic_limit);
            ok = false;
        }
    }
    return ok ? 0 : 1;
}
