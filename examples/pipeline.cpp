// A pipeline in the Go style, read top to bottom:
//
//   generate ──► numbers ──► 4 square workers (fan-out) ──► squares ──► sum (fan-in)
//
// Each stage owns the channel it writes and closes it when done; closing is how "no more
// values" flows downstream. A wait_group tells when every worker has finished, so the last
// one out can close the shared output. The consumer uses select with a ticker to report
// progress while it sums, and a deadline so a stuck pipeline could never hang it.
#include <weft/weft.hpp>

#include <fmt/core.h>

#include <chrono>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

int main() {
    constexpr long count = 100'000;
    constexpr int workers = 4;

    // Stage 1: the generator writes 1..count, then closes `numbers`.
    weft::channel<long> numbers(64);
    std::thread generator([out = weft::sender<long>(numbers)]() mutable {
        for (long i = 1; i <= count; ++i)
            out.send(i);
        out.close();
    });

    // Stage 2: workers share `numbers` (each value goes to exactly one of them) and all
    // write to `squares`. The wait_group closes `squares` after the last worker is done.
    weft::channel<long> squares(64);
    weft::wait_group running;
    running.add(workers);
    std::vector<std::thread> pool;
    for (int w = 0; w < workers; ++w)
        pool.emplace_back([in = weft::receiver<long>(numbers), out = squares, &running]() mutable {
            for (long n : in)
                out.send(n * n);
            running.done();
        });
    std::thread closer([&] {
        running.wait();
        squares.close();
    });

    // Stage 3: sum everything, reporting progress on a ticker, with a deadline for safety.
    weft::ticker progress(20ms);
    long sum = 0, received = 0;
    bool open = true;
    while (open) {
        weft::select(weft::on_recv(squares,
                                   [&](std::optional<long> v) {
                                       if (!v) {
                                           open =
                                               false; // closed and drained: every worker finished
                                           return;
                                       }
                                       sum += *v;
                                       ++received;
                                   }),
                     weft::on_recv(progress.channel(),
                                   [&](weft::time_point) {
                                       fmt::print("  ... {} squares so far\n", received);
                                   }),
                     weft::on_timeout(10s, [&] {
                         fmt::print("pipeline stalled\n");
                         open = false;
                     }));
    }
    progress.stop();

    generator.join();
    for (auto& t : pool)
        t.join();
    closer.join();

    const long expected = count * (count + 1) * (2 * count + 1) / 6;
    fmt::print("sum of squares 1..{} = {} ({} values through {} workers)\n", count, sum, received,
               workers);
    if (sum != expected || received != count) {
        fmt::print("wrong: expected {}\n", expected);
        return 1;
    }
    return 0;
}
