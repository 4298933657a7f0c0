// errgroup: n trivial members in a group, on a 2-worker scheduler; each adds its index to a
// sum. Variants:
//   errgroup    weft::errgroup (Go's errgroup.WithContext): members get the group's context
//   task_group  weft::task_group: the same without a context
// Check: wait() did not throw and the sum is n(n-1)/2.
#include "common.hpp"

#include <weft/weft.hpp>

#include <atomic>
#include <cstdint>

int main(int argc, char** argv) {
    harness::flags f(argc, argv);
    const std::int64_t n = f.get("n", 10000);
    const std::string variant = f.variant({"errgroup", "task_group"});

    weft::scheduler s(2);
    std::atomic<std::int64_t> sum{0};
    harness::timer t;
    if (variant == "errgroup") {
        weft::sync_wait(s, [&]() -> weft::task<void> {
            weft::errgroup g(weft::background(), s);
            for (std::int64_t i = 0; i < n; ++i)
                g.go([&sum, i](weft::context ctx) -> weft::task<void> {
                    if (!ctx.cancelled())
                        sum.fetch_add(i, std::memory_order_relaxed);
                    co_return;
                });
            co_await g.wait();
        }());
    } else {
        weft::sync_wait(s, [&]() -> weft::task<void> {
            weft::task_group g(s);
            for (std::int64_t i = 0; i < n; ++i)
                g.spawn([&sum, i]() -> weft::task<void> {
                    sum.fetch_add(i, std::memory_order_relaxed);
                    co_return;
                });
            co_await g.wait();
        }());
    }
    t.stop();
    const std::int64_t want = n * (n - 1) / 2;
    return harness::report("errgroup", variant, 2, t, sum.load() == want,
                           "sum " + std::to_string(sum.load()) + " want " + std::to_string(want),
                           {{"n", n}});
}
