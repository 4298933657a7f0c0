// The program that the consumer projects in tests/consumers build, each taking weft in its own
// way (installed + find_package, add_subdirectory, FetchContent). It uses the three things an
// application would: a producer task sends 1..n over a channel, a second task forwards each
// value to an actor that keeps the sum, and the main thread asks the actor for the sum.
//
// Prints "weft <version>: ok ..." and exits 0 when every value arrived once; prints what went
// wrong and exits 1 otherwise. When the consumer's CMake defines WEFT_CONSUMER_EXPECTED_VERSION
// (the version find_package found), the headers' WEFT_VERSION_STRING must equal it.
#include <weft/version.hpp>
#include <weft/weft.hpp>

#include <cstdio>
#include <optional>
#include <string_view>

namespace {

struct get_sum {};

// The actor's state needs no lock: its messages are handled one at a time.
struct summer {
    long sum = 0;
    long count = 0;
    void handle(long v) {
        sum += v;
        ++count;
    }
    long handle(get_sum) { return count == 0 ? -1 : sum; }
};

weft::task<void> produce(weft::sender<long> out, long n) {
    for (long i = 1; i <= n; ++i)
        co_await out.async_send(i);
    out.close();
}

weft::task<long> forward(weft::receiver<long> in, weft::actor_ref<summer> acc) {
    long forwarded = 0;
    while (std::optional<long> v = co_await in.async_recv()) {
        co_await acc.async_tell(*v);
        ++forwarded;
    }
    co_return forwarded;
}

} // namespace

int main() {
    constexpr long n = 1000;
    constexpr long expected_sum = n * (n + 1) / 2;

#ifdef WEFT_CONSUMER_EXPECTED_VERSION
    if (std::string_view(WEFT_VERSION_STRING) != WEFT_CONSUMER_EXPECTED_VERSION) {
        std::printf("FAILED: <weft/version.hpp> says %s, the CMake package says %s\n",
                    WEFT_VERSION_STRING, WEFT_CONSUMER_EXPECTED_VERSION);
        return 1;
    }
#endif

    weft::scheduler sched(2);
    weft::channel<long> numbers(16);
    weft::actor_ref<summer> acc = weft::spawn_actor<summer>(sched);

    sched.spawn(produce(numbers, n));
    const long forwarded = weft::sync_wait(sched, forward(numbers, acc));
    // The forwarder's tells are all in the mailbox before this ask: the sum is complete.
    const long sum = acc.ask(get_sum{}).get();

    if (forwarded != n || sum != expected_sum) {
        std::printf("FAILED: forwarded %ld of %ld values, sum %ld (expected %ld)\n", forwarded, n,
                    sum, expected_sum);
        return 1;
    }
    std::printf("weft %s: ok, %ld values through a channel, two tasks and an actor, sum %ld\n",
                WEFT_VERSION_STRING, forwarded, sum);
    return 0;
}
