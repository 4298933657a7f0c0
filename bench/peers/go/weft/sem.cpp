// sem: a counting semaphore under contention, on a 2-worker scheduler. n tasks each take a
// slot, add to a shared counter, give the slot back, `ops` times. Variants:
//   semaphore  weft::semaphore(limit): co_await sem.async_acquire() / sem.release()
//   chan       Go's idiom, a weft::channel<std::monostate>(limit): async_send takes a slot,
//              async_recv gives it back
// Check: the counter is n*ops and no more than `limit` were inside at once.
#include "common.hpp"

#include <weft/weft.hpp>

#include <atomic>
#include <cstdint>
#include <variant>

namespace {

struct inside_count {
    std::atomic<std::int64_t> inside{0}, most{0}, total{0};
    void enter() {
        const std::int64_t now = inside.fetch_add(1) + 1;
        std::int64_t m = most.load();
        while (now > m && !most.compare_exchange_weak(m, now)) {
        }
        total.fetch_add(1);
    }
    void leave() { inside.fetch_sub(1); }
};

} // namespace

int main(int argc, char** argv) {
    harness::flags f(argc, argv);
    const std::int64_t n = f.get("n", 1000);
    const std::int64_t ops = f.get("ops", 1000);
    const std::int64_t limit = f.get("limit", 4);
    const std::string variant = f.variant({"semaphore", "chan"});

    weft::scheduler s(2);
    weft::semaphore sem(limit);
    weft::channel<std::monostate> slots(static_cast<std::size_t>(limit));
    inside_count count;
    weft::wait_group wg;
    wg.add(static_cast<int>(n));
    const bool use_sem = variant == "semaphore";
    harness::timer t;
    for (std::int64_t i = 0; i < n; ++i) {
        s.spawn([&]() -> weft::task<void> {
            for (std::int64_t k = 0; k < ops; ++k) {
                if (use_sem)
                    co_await sem.async_acquire();
                else
                    co_await slots.async_send(std::monostate{});
                count.enter();
                count.leave();
                if (use_sem)
                    sem.release();
                else
                    (void)co_await slots.async_recv();
            }
            wg.done();
        });
    }
    wg.wait();
    t.stop();
    const bool ok = count.total.load() == n * ops && count.most.load() <= limit;
    return harness::report("sem", variant, 2, t, ok,
                           "total " + std::to_string(count.total.load()) + ", most inside " +
                               std::to_string(count.most.load()),
                           {{"n", n},
                            {"ops", ops},
                            {"limit", limit},
                            {"ns_per_op", t.wall_ms * 1e6 / static_cast<double>(n * ops)}});
}
