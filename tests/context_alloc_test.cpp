// What a context costs in allocations (context.hpp's promise): a with_cancel child is one
// allocation, cancelling it none, and done() and stop_token() allocate only on first use. Its
// own executable, because it counts allocations (alloc_counter.hpp; not in TSan builds).
#include "alloc_counter.hpp"
#include "catch_compat.hpp"

#include <weft/context.hpp>

TEST_CASE("a with_cancel child is one allocation, and cancelling or dropping it none") {
    auto [root, cancel_root] = weft::with_cancel(weft::background());
    {
        // warm-up: anything made once per process or thread
        auto [warm, cancel_warm] = weft::with_cancel(root);
        cancel_warm();
    }
    for (int i = 0; i < 100; ++i) {
        const long before = allocations_so_far();
        auto [child, cancel_child] = weft::with_cancel(root);
        const long made = allocations_so_far();
        if (i % 2 == 0)
            cancel_child();
        const long after_cancel = allocations_so_far();
        CHECK(made - before == 1);
        CHECK(after_cancel == made);
        CHECK(child.cancelled() == (i % 2 == 0));
    }
    // done() makes its channel once; asking again reuses it. (Counted first, checked after:
    // a CHECK may allocate.)
    auto [ctx, cancel] = weft::with_cancel(root);
    const long before_done = allocations_so_far();
    weft::receiver<std::monostate> first = ctx.done();
    const long after_first = allocations_so_far();
    weft::receiver<std::monostate> second = ctx.done();
    const long after_second = allocations_so_far();
    CHECK(after_first > before_done);
    CHECK(after_second == after_first);
    cancel();
    CHECK_FALSE(second.recv());
    cancel_root();
}
