// expect-error: commit_batch(log_position), rollback_batch() needs all three
// A begin_batch with no commit_batch would open every batch and commit none: add() refuses it
// at compile time instead of leaving the runner to find out.
#include <weft/es/memory_store.hpp>
#include <weft/es/projection.hpp>

struct begins_but_never_commits {
    void handle(const weft::es::recorded_event&) {}
    void begin_batch() {}
    void rollback_batch() {}
};

void f(weft::es::projection_runner<weft::es::memory_store>& runner) {
    runner.add("p", begins_but_never_commits{});
}
