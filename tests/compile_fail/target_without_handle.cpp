// expect-error: weft::es: a projection target needs a member handle(const recorded_event&)
// A projection must do something with its events: a target with no handle is refused by add(),
// also when it has every other member (here, a checkpoint).
#include <weft/es/memory_store.hpp>
#include <weft/es/projection.hpp>

struct checkpoint_only {
    weft::es::log_position load_checkpoint() { return 0; }
};

void f(weft::es::projection_runner<weft::es::memory_store>& runner) {
    runner.add("p", checkpoint_only{});
}
