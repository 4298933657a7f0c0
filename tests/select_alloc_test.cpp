// select allocates nothing per call in the steady state. Its own executable, because it
// counts allocations (alloc_counter.hpp replaces operator new; not in TSan builds).
#include "alloc_counter.hpp"
#include "catch_compat.hpp"

#include <weft/context.hpp>
#include <weft/select.hpp>

#include <atomic>
#include <chrono>
#include <thread>

using namespace std::chrono_literals;

TEST_CASE("select allocates nothing in the steady state, ready or blocking") {
    weft::channel<int> buffered(1);
    weft::channel<int> rendezvous(0);
    weft::channel<int> nil;
    constexpr int rounds = 1000;
    // on_done: of a live context (its stop token armed while the select sleeps) and of a
    // cancelled one. A context makes its std::stop_source once, on the first stop_token().
    auto [live, cancel_live] = weft::with_cancel(weft::background());
    auto [gone, cancel_gone] = weft::with_cancel(weft::background());
    cancel_gone();
    (void)live.stop_token();
    // The partner's sends pair with the blocking selects below.
    std::thread partner([&] {
        for (int i = 0; i < 2 * (rounds + 1); ++i)
            rendezvous.send(int(i));
    });
    long received = 0;
    auto one_round = [&] {
        // Ready: a buffered value. Non-blocking: otherwise. Timeout: nothing ready.
        weft::select(weft::on_send(buffered, 1), weft::on_recv(nil), weft::otherwise());
        weft::select(weft::on_recv(buffered, [&](int v) { received += v; }), weft::on_timeout(1s));
        weft::select(weft::on_recv(buffered), weft::on_timeout(0ms));
        // Blocking until the partner's send arrives (or finding it already waiting).
        weft::select(weft::on_recv(rendezvous, [&](int) { ++received; }), weft::on_recv(nil));
        weft::select(weft::on_recv(rendezvous, [&](int) { ++received; }), weft::on_done(live));
        weft::select(weft::on_recv(buffered), weft::on_done(gone));
    };
    one_round(); // warm-up: thread-local parker and random state
    const long before = allocations_so_far();
    for (int i = 0; i < rounds; ++i)
        one_round();
    const long after = allocations_so_far();
    partner.join();
    CHECK(after - before == 0);
    CHECK(received == 3 * (rounds + 1));
    cancel_live();
}
