// weft::es::projection_runner's control calls under hostile use: start, stop, rebuild,
// retry_dead_letters, wait_for, status and dead_letters from several threads at once, in any
// order, on projections that are handling appends and parking dead letters, must all return
// and lose nothing; and a wait_for (or async_wait_for) that overlaps a rebuild waits for the
// rebuilt run instead of returning false, while a stop still ends it with false.
//
// Handlers and control threads only record (atomics, maps under a mutex); every assertion
// runs on the test thread. A control call stuck past k_stuck makes the watchdog print which
// call is stuck and abort, so a hang fails the test instead of CI's timeout.
#include "catch_compat.hpp"
#include "test_support.hpp"

#include <weft/es/memory_store.hpp>
#include <weft/es/projection.hpp>
#include <weft/scheduler.hpp>
#include <weft/task.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using weft::es::event_data;
using weft::es::expected_version;
using weft::es::function_target;
using weft::es::log_position;
using weft::es::memory_store;
using weft::es::projection_options;
using weft::es::projection_state;
using weft::es::recorded_event;
using runner_type = weft::es::projection_runner<memory_store>;
using namespace std::chrono_literals;

namespace {

// A wait that only a bug makes this long.
constexpr auto k_patience = 60s;
// A control call that has not returned after this long is stuck.
constexpr auto k_stuck = 20s;

std::vector<event_data> one_event(std::int64_t value) {
    std::vector<event_data> out(1);
    out[0].type = "counted";
    out[0].payload = std::to_string(value);
    return out;
}

log_position fill(memory_store& store, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i)
        store.append("s-" + std::to_string(i % 8), expected_version::any(), one_event(i));
    return store.head_position();
}

// How many times each event took effect in a read model, with its reset.
struct applied_counts {
    std::mutex mutex;
    std::map<log_position, int> applied;

    void add(log_position p) {
        std::lock_guard lock(mutex);
        ++applied[p];
    }
    void clear() {
        std::lock_guard lock(mutex);
        applied.clear();
    }
    // Events 1..head that never took effect, and those that took effect more than once.
    std::pair<std::int64_t, std::int64_t> missing_and_repeated(log_position head) {
        std::lock_guard lock(mutex);
        std::int64_t missing = 0, repeated = 0;
        for (log_position p = 1; p <= head; ++p) {
            auto it = applied.find(p);
            if (it == applied.end())
                ++missing;
            else if (it->second > 1)
                ++repeated;
        }
        return {missing, repeated};
    }
};

// An in-memory read model with transactions, as sqlite_read_model has: a batch's changes are
// staged and take effect at commit_batch with its checkpoint, or vanish at rollback_batch.
// Outside a batch (retry_dead_letters) a change takes effect at once. It also counts what
// only two runs at once, or a reset under a running batch, can do.
struct transactional_model {
    std::mutex mutex;
    applied_counts committed;
    std::vector<log_position> staged;
    bool in_batch = false;
    std::int64_t overlapping_batches = 0; // begin_batch while a batch is open
    std::int64_t resets_in_batch = 0;     // reset while a batch is open

    function_target target(std::function<void(const recorded_event&)> check) {
        function_target t;
        t.handle = [this, check = std::move(check)](const recorded_event& e) {
            check(e); // may throw: nothing of e is staged then
            std::lock_guard lock(mutex);
            if (in_batch)
                staged.push_back(e.position);
            else
                committed.add(e.position);
        };
        t.begin_batch = [this] {
            std::lock_guard lock(mutex);
            if (in_batch)
                ++overlapping_batches;
            staged.clear();
            in_batch = true;
        };
        t.commit_batch = [this](log_position) {
            std::lock_guard lock(mutex);
            for (log_position p : staged)
                committed.add(p);
            staged.clear();
            in_batch = false;
        };
        t.rollback_batch = [this] {
            std::lock_guard lock(mutex);
            staged.clear();
            in_batch = false;
        };
        t.reset = [this](log_position) {
            std::lock_guard lock(mutex);
            if (in_batch)
                ++resets_in_batch;
            committed.clear();
        };
        return t;
    }
};

// What each control thread is doing, for the watchdog's report. The test's atomics are all
// seq_cst (the default): flags and counters read across threads, where speed does not matter.
constexpr std::array<const char*, 7> k_call_names = {
    "start", "stop", "rebuild", "retry_dead_letters", "wait_for", "status", "dead_letters"};

struct control_thread_state {
    std::atomic<int> call{-1};             // index into k_call_names; -1: between calls
    std::atomic<std::string*> on{nullptr}; // the projection it is called on
    std::atomic<std::int64_t> calls_done{0};
};

} // namespace

TEST_CASE("control calls from several threads in any order all return, and every event takes "
          "effect (exactly once with transactions) or is parked") {
    const int rounds = weft_test::stress_rounds();
    weft::scheduler sched(2);
    memory_store store;
    fill(store, 100); // something to catch up on from the start

    // Every 11th event fails until the cause is "fixed" at the end: dead letters exist.
    std::atomic<bool> healed{false};
    std::atomic<std::int64_t> poisoned_calls{0}; // seq_cst: a count read after the joins
    auto poison = [&](const recorded_event& e) {
        // relaxed: a plain flag; the test thread sets it before the final start and retry,
        // whose locks order it before the handler calls that must see it.
        if (e.position % 11 == 0 && !healed.load(std::memory_order_relaxed)) {
            poisoned_calls.fetch_add(1);
            throw std::runtime_error("poisoned event " + std::to_string(e.position));
        }
    };
    transactional_model tx;
    applied_counts mem;
    runner_type runner(sched, store);
    {
        projection_options o;
        o.batch = 16;
        o.max_attempts = 2; // one back-off: a stop may come while the handler waits to retry
        o.first_backoff = 1ms;
        o.max_backoff = 1ms;
        runner.add("tx", tx.target(poison), o);
    }
    {
        function_target t;
        t.handle = [&](const recorded_event& e) {
            poison(e);
            mem.add(e.position);
        };
        t.reset = [&](log_position) { mem.clear(); };
        projection_options o;
        o.partitioned = true;
        o.partitions = 4;
        o.batch = 16;
        o.max_attempts = 1;
        runner.add("mem", std::move(t), o);
    }
    std::array<std::string, 2> names = {"tx", "mem"};

    std::atomic<bool> writing{true};
    std::thread writer([&] {
        const std::int64_t total = 100 * rounds;
        for (std::int64_t i = 0; i < total; ++i)
            store.append("w-" + std::to_string(i % 8), expected_version::any(), one_event(i));
        writing.store(false);
    });

    constexpr int threads = 4;
    const int calls_per_thread = 30 * rounds;
    std::array<control_thread_state, threads> state;
    std::mutex errors_mutex;
    std::vector<std::string> errors; // exceptions from control calls (there should be none)
    std::atomic<int> finished{0};
    std::mutex finished_mutex;
    std::condition_variable finished_cv;
    std::vector<std::thread> controllers;
    for (int t = 0; t < threads; ++t)
        controllers.emplace_back([&, t] {
            std::mt19937 rng(static_cast<unsigned>(t * 7919 + rounds));
            for (int i = 0; i < calls_per_thread; ++i) {
                std::string& name = names[rng() % names.size()];
                const int call = static_cast<int>(rng() % k_call_names.size());
                state[t].on.store(&name);
                state[t].call.store(call);
                try {
                    switch (call) {
                    case 0:
                        runner.start(name);
                        break;
                    case 1:
                        runner.stop(name);
                        break;
                    case 2:
                        runner.rebuild(name);
                        break;
                    case 3:
                        runner.retry_dead_letters(name);
                        break;
                    case 4:
                        (void)runner.wait_for(name, store.head_position(), 2ms);
                        break;
                    case 5:
                        (void)runner.status(name);
                        break;
                    default:
                        (void)runner.dead_letters(name);
                        break;
                    }
                } catch (const std::exception& e) {
                    std::lock_guard lock(errors_mutex);
                    errors.push_back(std::string(k_call_names[static_cast<std::size_t>(call)]) +
                                     " on " + name + ": " + e.what());
                }
                state[t].call.store(-1);
                state[t].calls_done.fetch_add(1);
            }
            {
                std::lock_guard lock(finished_mutex);
                finished.fetch_add(1);
            }
            finished_cv.notify_all();
        });

    // Watchdog: fail loudly, naming the stuck calls, if no control call returns for k_stuck.
    {
        std::int64_t last_total = -1;
        auto last_change = std::chrono::steady_clock::now();
        std::unique_lock lock(finished_mutex);
        while (finished.load() < threads) {
            finished_cv.wait_for(lock, 100ms, [&] { return finished.load() == threads; });
            std::int64_t total = 0;
            for (auto& s : state)
                total += s.calls_done.load();
            const auto now = std::chrono::steady_clock::now();
            if (total != last_total) {
                last_total = total;
                last_change = now;
            } else if (now - last_change > k_stuck && finished.load() < threads) {
                std::fprintf(stderr, "control calls stuck for %lld s:\n",
                             static_cast<long long>(k_stuck / 1s));
                for (int t = 0; t < threads; ++t) {
                    const int call = state[t].call.load();
                    std::string* on = state[t].on.load();
                    std::fprintf(
                        stderr, "  thread %d: %s on %s (after %lld calls)\n", t,
                        call < 0 ? "(between calls)" : k_call_names[static_cast<std::size_t>(call)],
                        on ? on->c_str() : "-", static_cast<long long>(state[t].calls_done.load()));
                }
                std::fflush(stderr);
                std::abort();
            }
        }
    }
    for (auto& c : controllers)
        c.join();
    writer.join();
    CHECK_FALSE(writing.load());
    CHECK(poisoned_calls.load() > 0); // dead letters were made while the calls raced
    std::string error_list;
    for (const std::string& e : errors)
        error_list += e + "\n";
    INFO(error_list);
    CHECK(errors.empty());
    for (auto& s : state)
        CHECK(s.calls_done.load() == calls_per_thread);

    // The cause is fixed: both catch up, and the parked events are retried into the models.
    healed.store(true, std::memory_order_relaxed);
    const log_position head = store.head_position();
    REQUIRE(head == static_cast<log_position>(100 + 100 * rounds));
    for (const std::string& name : names) {
        runner.start(name);
        REQUIRE(runner.wait_for(name, head, k_patience));
        runner.retry_dead_letters(name);
        CHECK(runner.dead_letters(name).empty());
        const auto s = runner.status(name);
        CHECK(s.checkpoint == head);
        // Running (retry_dead_letters restarted it: it may not have looked at the head yet).
        CHECK((s.state == projection_state::live || s.state == projection_state::catching_up));
    }
    runner.stop_all();

    const auto [tx_missing, tx_repeated] = tx.committed.missing_and_repeated(head);
    CHECK(tx_missing == 0);
    CHECK(tx_repeated == 0); // exactly once
    CHECK(tx.overlapping_batches == 0);
    CHECK(tx.resets_in_batch == 0);
    const auto [mem_missing, mem_repeated] = mem.missing_and_repeated(head);
    CHECK(mem_missing == 0); // at least once
    (void)mem_repeated;
}

namespace {
// A projection over 100 events whose reset and handler the test can hold: `in_reset` is set
// while rebuild() sits in reset (the run stopped, the rebuilt one not started yet), and the
// handler holds at event 50 while `hold_at_50` is set.
struct held_rebuild {
    weft::scheduler sched{2};
    memory_store store;
    log_position head = fill(store, 100);
    std::atomic<bool> in_reset{false}, release_reset{false};
    std::atomic<bool> hold_at_50{false}, at_50{false};
    runner_type runner{sched, store};

    held_rebuild() {
        function_target t;
        t.handle = [this](const recorded_event& e) {
            if (e.position == 50 && hold_at_50.load()) {
                at_50.store(true);
                at_50.notify_all();
                hold_at_50.wait(true); // the rebuilt run is provably in progress, below head
            }
        };
        t.reset = [this](log_position) {
            in_reset.store(true);
            in_reset.notify_all();
            release_reset.wait(false);
        };
        projection_options o;
        o.batch = 10;
        runner.add("p", std::move(t), o);
    }
    ~held_rebuild() { let_go(); }

    void let_go() {
        release_reset.store(true);
        release_reset.notify_all();
        hold_at_50.store(false);
        hold_at_50.notify_all();
    }

    // Starts a rebuild on another thread and returns once it is in reset.
    std::thread start_rebuild() {
        hold_at_50.store(true);
        std::thread t([this] { runner.rebuild("p"); });
        in_reset.wait(false);
        return t;
    }

    // Lets the rebuild go on, up to the held event 50.
    void finish_reset() {
        at_50.store(false);
        release_reset.store(true);
        release_reset.notify_all();
        at_50.wait(false);
    }
    void release_50() {
        hold_at_50.store(false);
        hold_at_50.notify_all();
    }
};
} // namespace

TEST_CASE("wait_for during a rebuild waits for the rebuilt run and returns true when it reaches "
          "the position") {
    held_rebuild h;
    REQUIRE(h.runner.wait_for("p", h.head, k_patience));
    const log_position want = h.head + 1; // not stored yet: appended during the rebuild
    std::thread rebuild = h.start_rebuild();
    auto waiter =
        std::async(std::launch::async, [&] { return h.runner.wait_for("p", want, k_patience); });
    // While the rebuild sits in reset nothing runs; the wait must not end (it did, with false).
    CHECK(waiter.wait_for(300ms) == std::future_status::timeout);
    h.finish_reset();
    CHECK(h.runner.status("p").checkpoint < 50);
    h.store.append("late", expected_version::any(), one_event(0));
    CHECK(waiter.wait_for(0s) == std::future_status::timeout);
    h.release_50();
    CHECK(waiter.get());
    rebuild.join();
    CHECK(h.runner.status("p").checkpoint == want);
}

TEST_CASE("async_wait_for in a task during a rebuild waits for the rebuilt run and returns true") {
    held_rebuild h;
    REQUIRE(h.runner.wait_for("p", h.head, k_patience));
    const log_position want = h.head + 1;
    std::thread rebuild = h.start_rebuild();
    auto waiter = std::async(std::launch::async, [&] {
        return weft::sync_wait(h.sched, h.runner.async_wait_for("p", want, k_patience));
    });
    CHECK(waiter.wait_for(300ms) == std::future_status::timeout);
    h.finish_reset();
    h.store.append("late", expected_version::any(), one_event(0));
    CHECK(waiter.wait_for(0s) == std::future_status::timeout);
    h.release_50();
    CHECK(waiter.get());
    rebuild.join();
}

TEST_CASE("a stop still ends a wait_for with false, also one that began during a rebuild") {
    held_rebuild h;
    REQUIRE(h.runner.wait_for("p", h.head, k_patience));
    std::thread rebuild = h.start_rebuild();
    auto waiter = std::async(std::launch::async,
                             [&] { return h.runner.wait_for("p", h.head + 1, k_patience); });
    h.finish_reset();
    h.release_50();
    rebuild.join();
    // Caught up to head, waiting for an append that never comes, until the stop.
    REQUIRE(h.runner.wait_for("p", h.head, k_patience));
    h.runner.stop("p");
    CHECK(waiter.wait_for(k_patience) == std::future_status::ready);
    CHECK_FALSE(waiter.get());
    CHECK(h.runner.status("p").state == projection_state::stopped);
}

TEST_CASE("wait_for during retry_dead_letters waits for the restarted run and returns true") {
    weft::scheduler sched(2);
    memory_store store;
    const log_position head = fill(store, 10);
    std::atomic<bool> broken{true}, in_retry{false}, release_retry{false};
    function_target t;
    t.handle = [&](const recorded_event& e) {
        if (e.position != 5)
            return;
        if (broken.load())
            throw std::runtime_error("event 5 is broken");
        in_retry.store(true); // retry_dead_letters runs it on its own thread, the run stopped
        in_retry.notify_all();
        release_retry.wait(false);
    };
    projection_options o;
    o.max_attempts = 1;
    runner_type runner(sched, store);
    runner.add("p", std::move(t), o);
    REQUIRE(runner.wait_for("p", head, k_patience));
    REQUIRE(runner.dead_letters("p").size() == 1);

    broken.store(false);
    auto retry = std::async(std::launch::async, [&] { return runner.retry_dead_letters("p"); });
    in_retry.wait(false);
    auto waiter =
        std::async(std::launch::async, [&] { return runner.wait_for("p", head + 1, k_patience); });
    CHECK(waiter.wait_for(300ms) == std::future_status::timeout); // it returned false at once
    release_retry.store(true);
    release_retry.notify_all();
    CHECK(retry.get() == 1);
    store.append("late", expected_version::any(), one_event(0));
    CHECK(waiter.get());
    CHECK(runner.dead_letters("p").empty());
}
