// select allocates nothing per call in the steady state. Its own executable, because it
// replaces the global operator new to count allocations, which ThreadSanitizer's runtime also
// defines (tests/CMakeLists.txt leaves it out of TSan builds; it runs under ASan and plain).
#include "catch_compat.hpp"

#include <weft/select.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>
#include <thread>

using namespace std::chrono_literals;

#if defined(__SANITIZE_ADDRESS__)
// AddressSanitizer's own operator new still serves some of the runtime's allocations, which our
// operator delete then frees with free(): a mismatch by design here, not a bug in weft.
extern "C" const char* __asan_default_options() {
    return "alloc_dealloc_mismatch=0";
}
#endif

// GCC 14 inlines our operator delete into weft's `new timer_service` (and the like) and then
// warns that free() releases what operator new returned: it does not see that this operator
// new is the malloc below. The pairing is right by construction, so the warning is off here.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

// Every allocation in this program is counted, so a test can assert that a stretch of code
// made none. The replacement forwards to malloc, which the sanitizers still intercept.
namespace {
std::atomic<long> g_allocations{0};
}
void* operator new(std::size_t size) {
    // relaxed: a counter read after the counted code has run on this or a joined thread.
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(size == 0 ? 1 : size))
        return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}

TEST_CASE("select allocates nothing in the steady state, ready or blocking") {
    weft::channel<int> buffered(1);
    weft::channel<int> rendezvous(0);
    weft::channel<int> nil;
    constexpr int rounds = 1000;
    // The partner's sends pair with the blocking selects below.
    std::thread partner([&] {
        for (int i = 0; i < rounds + 1; ++i)
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
    };
    one_round(); // warm-up: thread-local parker and random state
    // relaxed: read on the thread that did the counted work.
    const long before = g_allocations.load(std::memory_order_relaxed);
    for (int i = 0; i < rounds; ++i)
        one_round();
    const long after = g_allocations.load(std::memory_order_relaxed);
    partner.join();
    CHECK(after - before == 0);
    CHECK(received == 2 * (rounds + 1));
}
