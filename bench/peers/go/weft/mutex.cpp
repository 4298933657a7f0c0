// mutex: a lock held briefly by many tasks on a 2-worker scheduler. n tasks each lock,
// increment a plain counter, unlock, `ops` times. Variants:
//   weft_mutex  weft::mutex: co_await m.async_lock() suspends the task while another holds it
//   std_mutex   std::mutex: a waiting task blocks its worker thread
// Check: the counter is exactly n*ops.
#include "common.hpp"

#include <weft/weft.hpp>

#include <cstdint>
#include <mutex>

int main(int argc, char** argv) {
    harness::flags f(argc, argv);
    const std::int64_t n = f.get("n", 1000);
    const std::int64_t ops = f.get("ops", 1000);
    const std::string variant = f.variant({"weft_mutex", "std_mutex"});

    weft::scheduler s(2);
    weft::mutex wm;
    std::mutex sm;
    std::int64_t counter = 0;
    weft::wait_group wg;
    wg.add(static_cast<int>(n));
    const bool use_weft = variant == "weft_mutex";
    harness::timer t;
    for (std::int64_t i = 0; i < n; ++i) {
        s.spawn([&]() -> weft::task<void> {
            for (std::int64_t k = 0; k < ops; ++k) {
                if (use_weft) {
                    co_await wm.async_lock();
                    ++counter;
                    wm.unlock();
                } else {
                    std::lock_guard lock(sm);
                    ++counter;
                }
            }
            wg.done();
        });
    }
    wg.wait();
    t.stop();
    return harness::report(
        "mutex", variant, 2, t, counter == n * ops, "counter " + std::to_string(counter),
        {{"n", n}, {"ops", ops}, {"ns_per_op", t.wall_ms * 1e6 / static_cast<double>(n * ops)}});
}
