// expect: compiles
// The control for the target snippets: what add() takes (a class of one's own, by value or
// std::ref, a function_target spelled in place) compiles with the same includes.
#include <weft/es/memory_store.hpp>
#include <weft/es/projection.hpp>

#include <functional>

struct view {
    void handle(const weft::es::recorded_event&) {}
    void begin_batch() {}
    void commit_batch(weft::es::log_position) {}
    void rollback_batch() {}
    void reset(weft::es::log_position) {}
};

void f(weft::es::projection_runner<weft::es::memory_store>& runner, view& kept) {
    runner.add("by value", view{});
    runner.add("by reference", std::ref(kept));
    runner.add("functions", {.handle = [](const weft::es::recorded_event&) {}});
}
