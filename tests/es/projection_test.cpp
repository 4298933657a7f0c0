// weft::es::projection_runner over memory_store: per-stream order under partitioned parallelism
// (and proof that partitions overlap), fan-out of three projections over 100k events, a
// throwing handler isolated by its dead letters or stopped by failure_policy::stop and resumed,
// retry_dead_letters, wait_for/async_wait_for as read-your-write, rebuild while a writer
// appends (and wait_for sleeping, not spinning, while a rebuild catches up), stop/start and
// shutdown with events in flight (nothing lost, nothing applied twice where the runner promises
// exactly once), status (lag, states) and misuse errors.
//
// Handlers run on the scheduler's workers: they only count (atomics, or maps under a mutex);
// every assertion runs on the test thread after wait_for, stop or join. Waits that could hang
// on a bug carry a timeout, and the test then fails instead.
#include "catch_compat.hpp"

#include <weft/es/memory_store.hpp>
#include <weft/es/projection.hpp>
#include <weft/scheduler.hpp>
#include <weft/task.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <time.h>
#endif

using weft::es::dead_letter;
using weft::es::event_data;
using weft::es::expected_version;
using weft::es::failure_policy;
using weft::es::function_target;
using weft::es::log_position;
using weft::es::memory_store;
using weft::es::projection_error;
using weft::es::projection_options;
using weft::es::projection_state;
using weft::es::recorded_event;
using runner_type = weft::es::projection_runner<memory_store>;
using namespace std::chrono_literals;

namespace {

// A wait that only a bug makes this long.
constexpr auto k_patience = 60s;

std::string stream_name(std::int64_t i) {
    return "s-" + std::to_string(i);
}
std::int64_t stream_index(const recorded_event& e) {
    return std::stoll(e.stream.substr(2));
}
std::int64_t value_of(const recorded_event& e) {
    return std::stoll(e.payload);
}

// `n` events whose payloads are first, first + 1, ... (a stream's versions when first is its
// next version).
std::vector<event_data> numbered(std::int64_t first, std::int64_t n) {
    std::vector<event_data> out(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) {
        out[static_cast<std::size_t>(i)].type = "counted";
        out[static_cast<std::size_t>(i)].payload = std::to_string(first + i);
    }
    return out;
}

// Appends versions first..last to each of `streams` streams, `chunk` per append, round robin
// (so streams interleave in the log); each payload is the event's version. Returns the head.
log_position fill(memory_store& store, std::int64_t streams, std::int64_t first, std::int64_t last,
                  std::int64_t chunk) {
    for (std::int64_t v = first; v <= last; v += chunk)
        for (std::int64_t s = 0; s < streams; ++s)
            store.append(stream_name(s), expected_version::any(),
                         numbered(v, std::min(chunk, last - v + 1)));
    return store.head_position();
}

// The sum of the payloads fill() writes.
std::int64_t fill_sum(std::int64_t streams, std::int64_t per_stream) {
    return streams * per_stream * (per_stream + 1) / 2;
}

// A thread that appends `total` events, `chunk` at a time, round robin over `streams` streams
// named prefix-<i> (payload: the version), counting them in `appended`.
class writer {
public:
    writer(memory_store& store, std::string prefix, std::int64_t streams, std::int64_t total,
           std::int64_t chunk)
        : thread_([this, &store, prefix = std::move(prefix), streams, total, chunk] {
              std::vector<std::int64_t> version(static_cast<std::size_t>(streams), 0);
              for (std::int64_t done = 0, s = 0; done < total && !stop_.load();
                   done += chunk, s = (s + 1) % streams) {
                  const std::int64_t n = std::min(chunk, total - done);
                  auto& v = version[static_cast<std::size_t>(s)];
                  store.append(prefix + std::to_string(s), expected_version::any(),
                               numbered(v + 1, n));
                  v += n;
                  appended.fetch_add(n);
              }
              finished_.store(true);
          }) {}
    writer(const writer&) = delete;
    writer& operator=(const writer&) = delete;
    ~writer() { join(); }

    void stop() { stop_.store(true); }
    void join() {
        if (thread_.joinable())
            thread_.join();
    }
    // Spins until at least `n` events are appended (or the writer is done).
    void wait_appended(std::int64_t n) const {
        while (appended.load() < n && !done())
            std::this_thread::yield();
    }
    bool done() const { return finished_.load(); }

    std::atomic<std::int64_t> appended{0};

private:
    std::atomic<bool> stop_{false};
    std::atomic<bool> finished_{false};
    std::thread thread_;
};

function_target target_of(std::function<void(const recorded_event&)> handle) {
    function_target t;
    t.handle = std::move(handle);
    return t;
}

projection_options options(bool partitioned, std::size_t batch = 512) {
    projection_options o;
    o.partitioned = partitioned;
    o.partitions = 8;
    o.batch = batch;
    o.first_backoff = 1ms;
    o.max_backoff = 2ms;
    return o;
}

// Every (stream, version) a handler saw, and how often one came again.
struct seen_set {
    std::mutex mutex;
    std::set<std::pair<std::string, std::uint64_t>> seen;
    std::int64_t repeats = 0;

    void add(const recorded_event& e) {
        std::lock_guard lock(mutex);
        if (!seen.emplace(e.stream, e.version).second)
            ++repeats;
    }
    std::size_t size() {
        std::lock_guard lock(mutex);
        return seen.size();
    }
    std::int64_t repeated() {
        std::lock_guard lock(mutex);
        return repeats;
    }
};

// A read model: per stream, how many events, their payload sum and the last version.
struct stream_stats {
    std::int64_t count = 0;
    std::int64_t sum = 0;
    std::uint64_t last_version = 0;
    friend bool operator==(const stream_stats&, const stream_stats&) = default;
};
struct stats_model {
    std::mutex mutex;
    std::map<std::string, stream_stats> streams;
    std::int64_t out_of_order = 0; // an event whose version is not last_version + 1

    std::int64_t disorder() {
        std::lock_guard lock(mutex);
        return out_of_order;
    }

    void apply(const recorded_event& e) {
        std::lock_guard lock(mutex);
        stream_stats& s = streams[e.stream];
        if (e.version != s.last_version + 1)
            ++out_of_order;
        ++s.count;
        s.sum += value_of(e);
        s.last_version = e.version;
    }
    void clear() {
        std::lock_guard lock(mutex);
        streams.clear();
        out_of_order = 0;
    }
    std::map<std::string, stream_stats> copy() {
        std::lock_guard lock(mutex);
        return streams;
    }
};

} // namespace

TEST_CASE("a partitioned projection keeps each stream in order while partitions overlap") {
    weft::scheduler sched(2);
    memory_store store;
    constexpr std::int64_t streams = 64, per_stream = 100;
    fill(store, streams, 1, per_stream / 2, 5); // half stored before add (catch-up), half live

    std::vector<std::int64_t> last(streams, 0); // plain: the runner must order a stream's calls
    std::vector<std::atomic<int>> busy(streams);
    std::atomic<std::int64_t> calls{0}, out_of_order{0}, same_stream_overlap{0};
    std::atomic<int> in_flight{0}, max_in_flight{0};
    // Once, for all calls: if partitions never overlap, the test fails in seconds, not hours.
    const auto give_up = std::chrono::steady_clock::now() + 5s;
    auto handle = [&](const recorded_event& e) {
        const auto i = static_cast<std::size_t>(stream_index(e));
        if (busy[i].exchange(1) != 0)
            ++same_stream_overlap;
        const int now = in_flight.fetch_add(1) + 1;
        int seen = max_in_flight.load();
        while (now > seen && !max_in_flight.compare_exchange_weak(seen, now)) {
        }
        // Until two calls have been seen at once, hold this one (bounded) so that another
        // worker can pick up another partition: proves parallelism without timing luck.
        while (max_in_flight.load() < 2 && std::chrono::steady_clock::now() < give_up)
            std::this_thread::yield();
        const std::int64_t seq = value_of(e);
        if (seq != last[i] + 1)
            ++out_of_order;
        last[i] = seq;
        ++calls;
        in_flight.fetch_sub(1);
        busy[i].store(0);
    };
    runner_type runner(sched, store);
    projection_options o = options(true, 256);
    runner.add("ordered", target_of(handle), o);
    const log_position head = fill(store, streams, per_stream / 2 + 1, per_stream, 5);
    REQUIRE(runner.wait_for("ordered", head, k_patience));

    CHECK(calls.load() == static_cast<std::int64_t>(head));
    CHECK(same_stream_overlap.load() == 0);
    CHECK(max_in_flight.load() == 2); // two workers: at most two at once, and it happened
    CHECK(out_of_order.load() == 0);
    for (std::int64_t s = 0; s < streams; ++s)
        CHECK(last[static_cast<std::size_t>(s)] == per_stream);
}

TEST_CASE("three projections fan out over 100k events and each ends with exact counts and sums") {
    weft::scheduler sched(2);
    memory_store store;
    constexpr std::int64_t streams = 200, per_stream = 500; // 100k events
    struct tally {
        std::atomic<std::int64_t> count{0}, sum{0};
    };
    tally sequential, partitioned;
    stats_model per_stream_model;
    runner_type runner(sched, store);
    runner.add("sequential", target_of([&](const recorded_event& e) {
                   ++sequential.count;
                   sequential.sum += value_of(e);
               }),
               options(false));
    runner.add("partitioned", target_of([&](const recorded_event& e) {
                   ++partitioned.count;
                   partitioned.sum += value_of(e);
               }),
               options(true));
    runner.add("per_stream", target_of([&](const recorded_event& e) { per_stream_model.apply(e); }),
               options(true, 1000));
    const log_position head = fill(store, streams, 1, per_stream, 100);
    REQUIRE(head == static_cast<log_position>(streams * per_stream));

    for (const std::string name : {"sequential", "partitioned", "per_stream"})
        REQUIRE(runner.wait_for(name, head, k_patience));
    const std::int64_t want_sum = fill_sum(streams, per_stream);
    CHECK(sequential.count.load() == streams * per_stream);
    CHECK(sequential.sum.load() == want_sum);
    CHECK(partitioned.count.load() == streams * per_stream);
    CHECK(partitioned.sum.load() == want_sum);
    const auto model = per_stream_model.copy();
    CHECK(model.size() == static_cast<std::size_t>(streams));
    for (const auto& [stream, st] : model) {
        INFO(stream);
        CHECK(st.count == per_stream);
        CHECK(st.sum == per_stream * (per_stream + 1) / 2);
        CHECK(st.last_version == static_cast<std::uint64_t>(per_stream));
    }
    CHECK(per_stream_model.disorder() == 0);
    for (const std::string name : {"sequential", "partitioned", "per_stream"}) {
        INFO(name);
        const auto st = runner.status(name);
        CHECK(st.checkpoint == head);
        CHECK(st.handled == head);
        CHECK(st.lag_events == 0);
        CHECK(st.retries == 0);
        CHECK(st.dead_letters == 0);
        CHECK(st.state == projection_state::live);
    }
}

TEST_CASE("a throwing handler parks its event as a dead letter while the others go on") {
    for (const bool partitioned : {false, true}) {
        INFO("partitioned: " << partitioned);
        weft::scheduler sched(2);
        memory_store store;
        const log_position head = fill(store, 20, 1, 50, 5); // 1000 events
        const log_position poisoned = 437;
        const recorded_event bad = store.read_all(poisoned, 1).at(0);

        std::atomic<std::int64_t> fragile_ok{0}, fragile_throws{0}, steady_a{0}, steady_b{0};
        runner_type runner(sched, store);
        runner.add("steady_a", target_of([&](const recorded_event&) { ++steady_a; }),
                   options(false, 64));
        projection_options o = options(partitioned, 64);
        o.max_attempts = 4;
        runner.add("fragile", target_of([&](const recorded_event& e) {
                       if (e.position == poisoned) {
                           ++fragile_throws;
                           throw std::runtime_error("poisoned event at " +
                                                    std::to_string(e.position));
                       }
                       ++fragile_ok;
                   }),
                   o);
        runner.add("steady_b", target_of([&](const recorded_event&) { ++steady_b; }),
                   options(true, 64));

        for (const std::string name : {"steady_a", "fragile", "steady_b"})
            REQUIRE(runner.wait_for(name, head, k_patience));
        CHECK(steady_a.load() == static_cast<std::int64_t>(head));
        CHECK(steady_b.load() == static_cast<std::int64_t>(head));
        CHECK(fragile_ok.load() == static_cast<std::int64_t>(head) - 1);
        CHECK(fragile_throws.load() == 4);

        const auto st = runner.status("fragile");
        CHECK(st.retries == 3); // max_attempts - 1
        CHECK(st.handled == head - 1);
        CHECK(st.dead_letters == 1);
        CHECK(st.checkpoint == head); // past the poisoned event
        CHECK(st.state == projection_state::live);
        CHECK(st.error.empty());
        const std::vector<dead_letter> dead = runner.dead_letters("fragile");
        REQUIRE(dead.size() == 1);
        CHECK(dead[0].error == "poisoned event at 437");
        CHECK(dead[0].attempts == 4);
        CHECK(dead[0].event.position == poisoned);
        CHECK(dead[0].event.stream == bad.stream);
        CHECK(dead[0].event.version == bad.version);
        CHECK(dead[0].event.event_id == bad.event_id);
        CHECK(dead[0].event.payload == bad.payload);
        CHECK(runner.dead_letters("steady_a").empty());
        CHECK(runner.status("steady_a").retries == 0);
    }
}

TEST_CASE("failure_policy::stop halts just before the poisoned event and start() resumes") {
    for (const bool partitioned : {false, true}) {
        INFO("partitioned: " << partitioned);
        weft::scheduler sched(2);
        memory_store store;
        const log_position head = fill(store, 20, 1, 50, 5); // 1000 events
        const log_position poisoned = 437;
        const recorded_event bad = store.read_all(poisoned, 1).at(0);

        std::atomic<bool> broken{true};
        std::atomic<std::int64_t> ok{0}, throws{0};
        seen_set seen;
        runner_type runner(sched, store);
        projection_options o = options(partitioned, 64);
        o.max_attempts = 3;
        o.on_failure = failure_policy::stop;
        runner.add("p", target_of([&](const recorded_event& e) {
                       if (e.position == poisoned && broken.load()) {
                           ++throws;
                           throw std::runtime_error("cannot apply");
                       }
                       ++ok;
                       seen.add(e);
                   }),
                   o);

        // Returns false once the projection has failed: it will not get there (no hang).
        CHECK_FALSE(runner.wait_for("p", poisoned, k_patience));
        CHECK(runner.wait_for("p", poisoned - 1, 0s));
        CHECK_FALSE(runner.wait_for("p", head, k_patience));
        auto st = runner.status("p");
        CHECK(st.state == projection_state::failed);
        CHECK(st.checkpoint == poisoned - 1);
        CHECK(st.lag_events == head - poisoned + 1);
        CHECK(st.retries == 2);
        CHECK(throws.load() == 3);
        INFO(st.error);
        CHECK(st.error.find("position 437") != std::string::npos);
        CHECK(st.error.find(bad.stream + "@" + std::to_string(bad.version)) != std::string::npos);
        CHECK(st.error.find("counted") != std::string::npos);
        CHECK(st.error.find("cannot apply") != std::string::npos);
        CHECK(runner.dead_letters("p").empty());
        if (!partitioned)
            CHECK(ok.load() == static_cast<std::int64_t>(poisoned) - 1);

        broken.store(false);
        runner.start("p");
        REQUIRE(runner.wait_for("p", head, k_patience));
        st = runner.status("p");
        CHECK(st.state == projection_state::live);
        CHECK(st.error.empty());
        CHECK(st.checkpoint == head);
        CHECK(seen.size() == head);
        if (!partitioned) { // sequential: each event applied exactly once, across the failure
            CHECK(ok.load() == static_cast<std::int64_t>(head));
            CHECK(seen.repeated() == 0);
        }
    }
}

TEST_CASE("retry_dead_letters re-runs parked events and empties the list once the cause is fixed") {
    weft::scheduler sched(2);
    memory_store store;
    const log_position head = fill(store, 10, 1, 20, 4); // 200 events
    const std::set<log_position> poisoned{50, 150};
    std::atomic<bool> broken{true};
    stats_model model;
    runner_type runner(sched, store);
    projection_options o = options(true, 32);
    o.max_attempts = 2;
    runner.add("p", target_of([&](const recorded_event& e) {
                   if (broken.load() && poisoned.count(e.position) != 0)
                       throw std::runtime_error("not yet");
                   model.apply(e);
               }),
               o);
    REQUIRE(runner.wait_for("p", head, k_patience));
    REQUIRE(runner.dead_letters("p").size() == 2);

    CHECK(runner.retry_dead_letters("p") == 0); // still broken: they stay, one try more each
    auto dead = runner.dead_letters("p");
    REQUIRE(dead.size() == 2);
    CHECK(std::set<log_position>{dead[0].event.position, dead[1].event.position} == poisoned);
    CHECK(dead[0].attempts == 3);
    CHECK(dead[1].attempts == 3);
    CHECK(dead[0].error == "not yet");

    broken.store(false);
    CHECK(runner.retry_dead_letters("p") == 2);
    CHECK(runner.dead_letters("p").empty());
    CHECK(runner.status("p").dead_letters == 0);
    CHECK(runner.retry_dead_letters("p") == 0);
    std::int64_t count = 0, sum = 0;
    for (const auto& [stream, st] : model.copy()) {
        count += st.count;
        sum += st.sum;
    }
    CHECK(count == static_cast<std::int64_t>(head));
    CHECK(sum == fill_sum(10, 20));
}

TEST_CASE("wait_for returns only once the event is visible in the read model") {
    weft::scheduler sched(2);
    memory_store store;
    struct map_model {
        std::mutex mutex;
        std::map<std::string, std::string> values;
    };
    map_model sequential, partitioned;
    auto writes_to = [](map_model& m) {
        return target_of([&m](const recorded_event& e) {
            std::lock_guard lock(m.mutex);
            m.values[e.stream] = e.payload;
        });
    };
    runner_type runner(sched, store);
    runner.add("sequential", writes_to(sequential), options(false, 64));
    runner.add("partitioned", writes_to(partitioned), options(true, 64));
    writer noise(store, "noise-", 16, 20'000, 4);

    constexpr int rounds = 300;
    int timeouts = 0, stale = 0;
    for (int i = 0; i < rounds; ++i) {
        const std::string key = "probe-" + std::to_string(i % 7);
        const auto r = store.append(key, expected_version::any(), numbered(i, 1));
        for (auto* m : {&sequential, &partitioned}) {
            if (!runner.wait_for(m == &sequential ? "sequential" : "partitioned", r.last_position,
                                 k_patience)) {
                ++timeouts;
                continue;
            }
            std::lock_guard lock(m->mutex);
            auto it = m->values.find(key);
            if (it == m->values.end() || it->second != std::to_string(i))
                ++stale;
        }
    }
    noise.stop();
    noise.join();
    CHECK(timeouts == 0);
    CHECK(stale == 0);
    // A position past the head is not reached: wait_for times out with false.
    CHECK_FALSE(runner.wait_for("sequential", store.head_position() + 1, 5ms));
}

TEST_CASE("async_wait_for in a task resumes only once the event is visible") {
    weft::scheduler sched(2);
    memory_store store;
    std::mutex mutex;
    std::map<std::string, std::string> values;
    runner_type runner(sched, store);
    runner.add("p", target_of([&](const recorded_event& e) {
                   std::lock_guard lock(mutex);
                   values[e.stream] = e.payload;
               }),
               options(true, 64));
    writer noise(store, "noise-", 16, 10'000, 4);

    struct outcome {
        int timeouts = 0, stale = 0;
        bool timed_out_past_head = false;
    };
    auto probe = [&]() -> weft::task<outcome> {
        outcome out;
        for (int i = 0; i < 200; ++i) {
            const std::string key = "probe-" + std::to_string(i % 5);
            const auto r = store.append(key, expected_version::any(), numbered(i, 1));
            const bool reached = co_await runner.async_wait_for("p", r.last_position, k_patience);
            if (!reached) {
                ++out.timeouts;
                continue;
            }
            std::lock_guard lock(mutex);
            auto it = values.find(key);
            if (it == values.end() || it->second != std::to_string(i))
                ++out.stale;
        }
        const bool past =
            co_await runner.async_wait_for("p", store.head_position() + 1'000'000, 5ms);
        out.timed_out_past_head = !past;
        co_return out;
    };
    const outcome out = weft::sync_wait(sched, probe());
    noise.stop();
    noise.join();
    CHECK(out.timeouts == 0);
    CHECK(out.stale == 0);
    CHECK(out.timed_out_past_head);
}

TEST_CASE("rebuild while a writer appends ends with the same read model as live processing") {
    weft::scheduler sched(2);
    memory_store store;
    fill(store, 50, 1, 100, 10); // 5000 events
    stats_model live, rebuilt;
    std::atomic<int> resets{0};
    std::atomic<std::int64_t> calls_since_reset{0};
    runner_type runner(sched, store);
    runner.add("live", target_of([&](const recorded_event& e) { live.apply(e); }),
               options(true, 128));
    function_target t = target_of([&](const recorded_event& e) {
        rebuilt.apply(e);
        ++calls_since_reset;
    });
    t.reset = [&](log_position from) {
        ++resets;
        if (from == 0) {
            rebuilt.clear();
            calls_since_reset.store(0);
        }
    };
    runner.add("rebuilt", std::move(t), options(false, 128));
    REQUIRE(runner.wait_for("rebuilt", store.head_position(), k_patience));

    // The writer appends to streams the log already has (s-<i>), so the rebuild meets them
    // both in the stored part and live.
    {
        writer w(store, "s-", 20, 5'000, 5);
        w.wait_appended(500);
        runner.rebuild("rebuilt");
        w.join();
        CHECK(w.appended.load() == 5'000);
    }
    const log_position head = store.head_position();
    REQUIRE(head == 10'000);
    REQUIRE(runner.wait_for("live", head, k_patience));
    REQUIRE(runner.wait_for("rebuilt", head, k_patience));
    CHECK(resets.load() == 1);
    CHECK(calls_since_reset.load() == static_cast<std::int64_t>(head));

    // What replaying the log by hand gives.
    stats_model replayed;
    for (const recorded_event& e : store.read_all(1, head))
        replayed.apply(e);
    const auto want = replayed.copy();
    CHECK(want.size() == 50);
    CHECK(live.copy() == want);
    CHECK(rebuilt.copy() == want);
    CHECK(live.disorder() == 0);
    CHECK(rebuilt.disorder() == 0);
    CHECK(runner.status("rebuilt").checkpoint == head);
}

#if defined(__unix__) || defined(__APPLE__)
namespace {
// CPU time of the calling thread.
std::chrono::nanoseconds thread_cpu_time() {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return std::chrono::seconds(t.tv_sec) + std::chrono::nanoseconds(t.tv_nsec);
}
} // namespace

TEST_CASE("after a rebuild, wait_for a position below the old checkpoint blocks instead of "
          "spinning") {
    weft::scheduler sched(2);
    memory_store store;
    const log_position head = fill(store, 4, 1, 25, 5); // 100 events
    std::atomic<bool> hold{false}, entered{false};
    function_target t = target_of([&](const recorded_event& e) {
        if (e.position == 50 && hold.load()) {
            entered.store(true);
            entered.notify_all();
            hold.wait(true); // blocks this worker until the test lets go
        }
    });
    t.reset = [](log_position) {};
    runner_type runner(sched, store);
    runner.add("p", std::move(t), options(false, 10));
    REQUIRE(runner.wait_for("p", head, k_patience));

    hold.store(true);
    runner.rebuild("p");
    entered.wait(false);
    CHECK(runner.wait_for("p", 40, 0s)); // the batches before the held one
    const auto cpu_before = thread_cpu_time();
    CHECK_FALSE(runner.wait_for("p", 60, 300ms)); // held at 50: times out
    const auto cpu = thread_cpu_time() - cpu_before;
    CHECK(cpu < 100ms); // asleep, not polling (it spun when the rebuild took the checkpoint back)
    hold.store(false);
    hold.notify_all();
    CHECK(runner.wait_for("p", head, k_patience));
}
#endif

TEST_CASE("stop and start resume from the checkpoint: nothing lost, nothing applied twice in "
          "sequence") {
    weft::scheduler sched(2);
    memory_store store;
    // Idempotent partitioned model: per stream, the highest version applied.
    std::mutex mutex;
    std::map<std::string, std::uint64_t> last_version;
    seen_set idem_seen, exact_seen;
    std::atomic<std::int64_t> exact_calls{0};
    runner_type runner(sched, store);
    runner.add("idempotent", target_of([&](const recorded_event& e) {
                   {
                       std::lock_guard lock(mutex);
                       auto& v = last_version[e.stream];
                       v = std::max<std::uint64_t>(v, e.version);
                   }
                   idem_seen.add(e);
               }),
               options(true, 64));
    runner.add("exact", target_of([&](const recorded_event& e) {
                   ++exact_calls;
                   exact_seen.add(e);
               }),
               options(false, 64));

    int cycles = 0, not_stopped = 0, waits_past_stop = 0;
    {
        writer w(store, "s-", 40, 10'000, 5);
        while (cycles < 10 || (!w.done() && cycles < 200)) {
            for (const std::string name : {"idempotent", "exact"}) {
                runner.stop(name);
                if (runner.status(name).state != projection_state::stopped)
                    ++not_stopped;
                // A stopped projection will not get anywhere: false at once, no hang.
                if (runner.wait_for(name, store.head_position() + 1, k_patience))
                    ++waits_past_stop;
                runner.start(name);
            }
            ++cycles;
        }
    }
    const log_position head = store.head_position();
    REQUIRE(head == 10'000);
    REQUIRE(runner.wait_for("idempotent", head, k_patience));
    REQUIRE(runner.wait_for("exact", head, k_patience));
    INFO("stop/start cycles: " << cycles);
    CHECK(not_stopped == 0);
    CHECK(waits_past_stop == 0);
    CHECK(idem_seen.size() == head);
    {
        std::lock_guard lock(mutex);
        CHECK(last_version.size() == 40);
        for (const auto& [stream, v] : last_version)
            CHECK(v == store.version_of(stream));
    }
    CHECK(exact_calls.load() == static_cast<std::int64_t>(head));
    CHECK(exact_seen.repeated() == 0);
    CHECK(exact_seen.size() == head);
}

TEST_CASE("a runner destroyed with events in flight loses none: a new one resumes from the saved "
          "checkpoint") {
    for (const bool partitioned : {false, true}) {
        INFO("partitioned: " << partitioned);
        weft::scheduler sched(2);
        memory_store store;
        std::atomic<log_position> saved{0};
        std::atomic<std::int64_t> calls{0};
        seen_set seen;
        auto make_target = [&] {
            function_target t = target_of([&](const recorded_event& e) {
                ++calls;
                seen.add(e);
            });
            t.load_checkpoint = [&] { return saved.load(); };
            t.save_checkpoint = [&](log_position p) { saved.store(p); };
            return t;
        };
        writer w(store, "s-", 30, 10'000, 5);
        auto first = std::make_unique<runner_type>(sched, store);
        first->add("p", make_target(), options(partitioned, 64));
        while (calls.load() < 1'000 && !w.done())
            std::this_thread::yield();
        first.reset(); // mid-stream: the writer goes on
        const std::int64_t calls_at_shutdown = calls.load();
        const log_position saved_at_shutdown = saved.load();
        // The batch in hand was finished and checkpointed: the checkpoint covers every call.
        if (!partitioned)
            CHECK(static_cast<std::int64_t>(saved_at_shutdown) == calls_at_shutdown);
        CHECK(seen.size() == saved_at_shutdown);

        runner_type second(sched, store);
        second.add("p", make_target(), options(partitioned, 64));
        CHECK(second.status("p").checkpoint >= saved_at_shutdown); // resumed, not from 0
        w.join();
        const log_position head = store.head_position();
        REQUIRE(head == 10'000);
        REQUIRE(second.wait_for("p", head, k_patience));
        CHECK(seen.size() == head);
        CHECK(saved.load() == head);
        if (!partitioned) {
            CHECK(calls.load() == static_cast<std::int64_t>(head));
            CHECK(seen.repeated() == 0);
        }
    }
}

TEST_CASE("status reports lag and the catching up, live and stopped states") {
    weft::scheduler sched(2);
    memory_store store;
    runner_type runner(sched, store);

    // Nothing to read: live, no lag.
    std::atomic<std::int64_t> idle_calls{0};
    runner.add("idle", target_of([&](const recorded_event&) { ++idle_calls; }));
    auto st = runner.status("idle");
    CHECK(st.name == "idle");
    CHECK(st.lag_events == 0);
    CHECK(st.lag_time == 0ms);
    // (run() may not have reached its first read yet: wait for the state to settle)
    for (auto give_up = std::chrono::steady_clock::now() + 5s;
         st.state != projection_state::live && std::chrono::steady_clock::now() < give_up;
         st = runner.status("idle"))
        std::this_thread::yield();
    CHECK(st.state == projection_state::live);
    runner.stop("idle");

    const log_position head = fill(store, 2, 1, 5, 5); // 10 events
    const auto appended_at = std::chrono::system_clock::now();
    std::atomic<bool> entered{false}, gate{false};
    projection_options o;
    o.batch = 1;
    runner.add("gated", target_of([&](const recorded_event& e) {
                   if (e.position != 1)
                       return;
                   entered.store(true);
                   const auto give_up = std::chrono::steady_clock::now() + k_patience;
                   while (!gate.load() && std::chrono::steady_clock::now() < give_up)
                       std::this_thread::yield();
               }),
               o);
    while (!entered.load())
        std::this_thread::yield();
    // Let the stored events age (not synchronization: lag_time measures their age).
    while (std::chrono::system_clock::now() < appended_at + 25ms)
        std::this_thread::yield();
    st = runner.status("gated");
    CHECK(st.state == projection_state::catching_up);
    CHECK(st.checkpoint == 0);
    CHECK(st.lag_events == 10);
    CHECK(st.lag_time >= 25ms);
    CHECK(st.handled == 0);

    gate.store(true);
    REQUIRE(runner.wait_for("gated", head, k_patience));
    st = runner.status("gated");
    CHECK(st.state == projection_state::live);
    CHECK(st.checkpoint == head);
    CHECK(st.lag_events == 0);
    CHECK(st.lag_time == 0ms);
    CHECK(st.handled == 10);

    runner.stop("gated");
    fill(store, 1, 6, 8, 3);
    st = runner.status("gated");
    CHECK(st.state == projection_state::stopped);
    CHECK(st.checkpoint == head);
    CHECK(st.lag_events == 3);
    CHECK(idle_calls.load() == 0); // stopped before the appends
    runner.start("gated");
    REQUIRE(runner.wait_for("gated", head + 3, k_patience));
    CHECK(runner.status("gated").handled == 13);
}

TEST_CASE("misuse is a projection_error: a name added twice, an unknown name, rebuild without "
          "reset, no handler") {
    weft::scheduler sched(2);
    memory_store store;
    runner_type runner(sched, store);
    runner.add("p", target_of([](const recorded_event&) {}));
    REQUIRE_THROWS_AS(runner.add("p", target_of([](const recorded_event&) {})), projection_error);
    REQUIRE_THROWS_WITH(runner.add("p", target_of([](const recorded_event&) {})),
                        "weft::es: projection p added twice");
    REQUIRE_THROWS_AS(runner.add("q", function_target{}), projection_error);
    REQUIRE_THROWS_AS(runner.status("nope"), projection_error);
    REQUIRE_THROWS_WITH(runner.status("nope"), "weft::es: no projection named nope");
    REQUIRE_THROWS_AS(runner.start("nope"), projection_error);
    REQUIRE_THROWS_AS(runner.stop("nope"), projection_error);
    REQUIRE_THROWS_AS(runner.wait_for("nope", 1, 1ms), projection_error);
    REQUIRE_THROWS_AS(runner.dead_letters("nope"), projection_error);
    REQUIRE_THROWS_AS(runner.retry_dead_letters("nope"), projection_error);
    REQUIRE_THROWS_AS(runner.rebuild("nope"), projection_error);
    REQUIRE_THROWS_AS(runner.rebuild("p"), projection_error);
    CHECK(runner.names() == std::vector<std::string>{"p"});
    CHECK(runner.status("p").state != projection_state::failed); // the failed add left it be
}
