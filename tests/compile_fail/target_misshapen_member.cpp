// expect-error: member named like one of projection_target's that cannot be called
// A reset that forgot its `from` is not one the runner can call: refused, not silently unused
// (rebuild would then refuse the projection at run time).
#include <weft/es/memory_store.hpp>
#include <weft/es/projection.hpp>

struct reset_without_from {
    void handle(const weft::es::recorded_event&) {}
    void reset() {}
};

void f(weft::es::projection_runner<weft::es::memory_store>& runner) {
    runner.add("p", reset_without_from{});
}
