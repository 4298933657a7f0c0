// One event, three projections: publish it to each one after another, or to all at once.
//
// In an event-sourced system a new event ("order 42 placed") has to reach every read model
// that cares about it: the order list, the customer's statistics, the search index. Each of
// them takes its time (here 20 ms, a write to some store, simulated with weft::sleep_for, which
// suspends the task without holding a worker thread). They do not depend on each other, so
// there is no reason to wait for one before starting the next:
//
//   sequential:  order_list ──► customer_stats ──► search_index       ≈ 3 × 20 ms
//   fan-out:     order_list
//                customer_stats   (when_all: all three at once)       ≈ 20 ms
//                search_index
//
// Then the search index is down. A projection that fails must not take the others with it:
// each projection runs inside a small wrapper that catches and logs its exception, so when_all
// sees three tasks that all finish, two report success and one reports (and has logged) its
// failure.
#include <weft/weft.hpp>

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

// The event.
struct order_placed {
    int order_id;
    std::int64_t cents;
};

// A read model kept up to date from the events. `down` makes it fail, for the second act.
struct projection {
    std::string name;
    bool down = false;
};

constexpr auto k_projection_time = 20ms;

// Applies the event to one projection: 20 ms of (simulated) writing, or an error.
weft::task<void> apply(const projection& p, const order_placed& e) {
    co_await weft::sleep_for(k_projection_time);
    if (p.down)
        throw std::runtime_error(
            fmt::format("{} unavailable, order {} not applied", p.name, e.order_id));
}

// One projection after another: each waits for the one before.
weft::task<void> publish_sequential(const std::vector<projection>& projections,
                                    const order_placed& e) {
    for (const projection& p : projections)
        co_await apply(p, e);
}

// All projections at once: when_all starts every task and resumes us when the last is done.
weft::task<void> publish_fanout(const std::vector<projection>& projections, const order_placed& e) {
    std::vector<weft::task<void>> updates;
    for (const projection& p : projections)
        updates.push_back(apply(p, e));
    co_await weft::when_all(std::move(updates));
}

// The wrapper that keeps one failure from spoiling the rest: true if the projection applied
// the event, false if it failed (and then it has said why).
weft::task<bool> apply_and_log(const projection& p, const order_placed& e) {
    try {
        co_await apply(p, e);
        co_return true;
    } catch (const std::exception& error) {
        fmt::print("  projection '{}' failed: {}\n", p.name, error.what());
        co_return false;
    }
}

// Fan-out again, each projection behind the wrapper; returns how many succeeded.
weft::task<int> publish_fanout_isolated(const std::vector<projection>& projections,
                                        const order_placed& e) {
    std::vector<weft::task<bool>> updates;
    for (const projection& p : projections)
        updates.push_back(apply_and_log(p, e));
    const std::vector<bool> applied = co_await weft::when_all(std::move(updates));
    int succeeded = 0;
    for (std::size_t i = 0; i < applied.size(); ++i)
        if (applied[i]) {
            fmt::print("  projection '{}' updated\n", projections[i].name);
            ++succeeded;
        }
    co_return succeeded;
}

// Wall time of running `t` to the end on `sched`, in milliseconds.
double time_ms(weft::scheduler& sched, weft::task<void> t) {
    const auto start = clock_type::now();
    weft::sync_wait(sched, std::move(t));
    return std::chrono::duration<double, std::milli>(clock_type::now() - start).count();
}

int main() {
    weft::scheduler sched; // one worker per hardware thread
    const order_placed event{42, 129'90};
    std::vector<projection> projections{{"order_list"}, {"customer_stats"}, {"search_index"}};

    // --- 1. sequential against fan-out ------------------------------------------------------
    // Best of three runs each, so one unlucky pause of a busy machine does not decide.
    double sequential = 1e9, fanout = 1e9;
    for (int run = 0; run < 3; ++run) {
        sequential = std::min(sequential, time_ms(sched, publish_sequential(projections, event)));
        fanout = std::min(fanout, time_ms(sched, publish_fanout(projections, event)));
    }
    fmt::print("order {} placed; {} projections of {} ms each\n", event.order_id,
               projections.size(), k_projection_time.count());
    fmt::print("  sequential: {:.1f} ms\n", sequential);
    fmt::print("  fan-out:    {:.1f} ms\n", fanout);
    const bool faster = fanout < sequential * 0.75;
    if (faster)
        fmt::print("fan-out is {:.1f}x faster than one after another\n\n", sequential / fanout);
    else
        fmt::print("FAILED: fan-out is not clearly faster than one after another\n\n");

    // --- 2. one projection fails, the others complete --------------------------------------
    projections[2].down = true;
    fmt::print("order {} again, with '{}' down:\n", event.order_id, projections[2].name);
    const int succeeded = weft::sync_wait(sched, publish_fanout_isolated(projections, event));
    const int failed = static_cast<int>(projections.size()) - succeeded;
    fmt::print("{} of {} projections completed, {} failed (logged)\n", succeeded,
               projections.size(), failed);
    const bool isolated = succeeded == 2 && failed == 1;
    if (!isolated)
        fmt::print("FAILED: expected 2 completed and 1 failed\n");

    return faster && isolated ? 0 : 1;
}
