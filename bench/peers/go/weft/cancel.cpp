// cancel: what a cancellation costs, on a 2-worker scheduler. Workloads:
//   cancel_many     n tasks each blocked in `co_await ch.async_recv(ctx)` on a channel nobody
//                   sends on (variant tasks), or in `co_await weft::async_select(on_recv(ch),
//                   on_recv(ctx.done()))`, Go's idiom (variant select_done); wall_ms = cancel()
//                   until the last one has resumed (a wait_group). Check: all n saw cancelled.
//   cancel_latency  one task blocked the same way (async_recv(ctx)), a fresh context each
//                   round; the main thread stamps the time and cancels; the task stamps when it
//                   runs. p50_us / p99_us over `rounds`; wall_ms = all rounds.
#include "common.hpp"

#include <weft/weft.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

int many(std::int64_t n, const std::string& variant) {
    weft::scheduler s(2);
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    weft::channel<int> never(0);
    std::atomic<std::int64_t> cancelled{0};
    weft::wait_group started, done;
    started.add(static_cast<int>(n));
    done.add(static_cast<int>(n));
    const bool select = variant == "select_done";
    for (std::int64_t i = 0; i < n; ++i) {
        s.spawn([&, ctx = ctx]() -> weft::task<void> {
            started.done();
            if (select) {
                weft::select_result r =
                    co_await weft::async_select(weft::on_recv(never), weft::on_recv(ctx.done()));
                if (r.index == 1)
                    cancelled.fetch_add(1, std::memory_order_relaxed);
            } else if ((co_await never.async_recv(ctx)).status() == weft::status::cancelled) {
                cancelled.fetch_add(1, std::memory_order_relaxed);
            }
            done.done();
        });
    }
    started.wait();
    std::this_thread::sleep_for(20ms); // the last ones reach their wait (not timed)
    harness::timer t;
    cancel();
    done.wait();
    t.stop();
    const std::int64_t got = cancelled.load();
    return harness::report("cancel_many", variant, 2, t, got == n,
                           std::to_string(got) + " cancelled of " + std::to_string(n), {{"n", n}});
}

int latency(std::int64_t rounds) {
    weft::scheduler s(2);
    weft::channel<int> never(0);
    std::vector<double> lat;
    lat.reserve(static_cast<std::size_t>(rounds));
    harness::timer t;
    for (std::int64_t i = 0; i < rounds; ++i) {
        auto [ctx, cancel] = weft::with_cancel(weft::background());
        std::atomic<bool> ready{false};
        weft::channel<harness::clk::time_point> woke(1);
        s.spawn([&, ctx = ctx]() -> weft::task<void> {
            ready.store(true);
            (void)co_await never.async_recv(ctx);
            (void)woke.try_send(harness::clk::now());
        });
        while (!ready.load())
            std::this_thread::yield();
        std::this_thread::sleep_for(50us); // let it block (timing only, as Go's twin)
        const auto at = harness::clk::now();
        cancel();
        lat.push_back(std::chrono::duration<double, std::micro>(*woke.recv() - at).count());
    }
    t.stop();
    std::sort(lat.begin(), lat.end());
    auto q = [&](double p) {
        return lat[static_cast<std::size_t>(p * static_cast<double>(lat.size() - 1))];
    };
    return harness::report("cancel_latency", "tasks", 2, t,
                           static_cast<std::int64_t>(lat.size()) == rounds, "rounds missing",
                           {{"rounds", rounds}, {"p50_us", q(0.5)}, {"p99_us", q(0.99)}});
}

} // namespace

int main(int argc, char** argv) {
    harness::flags f(argc, argv);
    const std::int64_t n = f.get("n", 100000);
    const std::int64_t rounds = f.get("rounds", 2000);
    const std::string workload = f.get("workload", "cancel_many");
    const std::string variant = f.variant({"tasks", "select_done"});
    if (workload == "cancel_latency")
        return latency(rounds);
    return many(n, variant);
}
