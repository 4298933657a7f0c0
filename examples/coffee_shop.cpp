// A coffee shop as a pipeline of channels, and what more baristas per station buy you.
//
//   take orders ─► accepted ─► grind ─► ground ─► brew ─► brewed ─► serve ─► served ─► till
//                              (N)                (N)               (N)
//
// Every station (grind, brew, serve) has N baristas, each a task that takes an order from the
// station's input channel, works on it (a few milliseconds of weft::sleep_for, which suspends
// the task and leaves its worker thread free for the other baristas) and passes it on. With one
// barista per station the shop makes one coffee per brewing time, however fast grinding is; with
// four, four brews run at once and throughput rises about fourfold.
//
// Shutting down is Go's way: the order taker closes `accepted` after the last order; a station's
// baristas then drain its input and stop, and when the last of them is done (a task_group's
// wait) the station closes its output, so the close flows down the pipeline to the till. The
// till counts every order it sees: each one must be served exactly once, none lost, none twice.
#include <weft/weft.hpp>

#include <fmt/core.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

struct order {
    int id;
};

// A station of the pipeline and how long one barista takes there per order.
struct station {
    const char* name;
    std::chrono::milliseconds work;
};

constexpr station k_grind{"grind", 3ms};
constexpr station k_brew{"brew", 6ms};
constexpr station k_serve{"serve", 2ms};

// The order taker: sends orders 1..count, then closes its output (no more orders today).
weft::task<void> accept_orders(int count, weft::sender<order> out) {
    for (int id = 1; id <= count; ++id) {
        order o{id};
        co_await out.async_send(std::move(o));
    }
    out.close();
}

// One barista: takes orders until the input is closed and drained, works on each, passes it on.
weft::task<void> barista(station s, weft::receiver<order> in, weft::sender<order> out) {
    while (auto o = co_await in.async_recv()) {
        co_await weft::sleep_for(s.work);
        co_await out.async_send(std::move(*o));
    }
}

// A station: `baristas` baristas share its input; when the last one is done, close the output.
weft::task<void> run_station(station s, int baristas, weft::receiver<order> in,
                             weft::sender<order> out) {
    weft::task_group crew;
    for (int b = 0; b < baristas; ++b)
        crew.spawn(barista(s, in, out));
    co_await crew.wait();
    out.close(); // every barista has stopped: nothing more will come from this station
}

struct day_result {
    double seconds;
    int served;       // orders that reached the till
    int served_twice; // orders seen more than once (must be 0)
    int never_served; // orders never seen (must be 0)
};

// Opens the shop with `baristas` per station, takes `count` orders, and counts at the till.
weft::task<day_result> run_shop(int count, int baristas) {
    const auto start = clock_type::now();
    weft::channel<order> accepted(4), ground(4), brewed(4), served(4);

    weft::task_group shop;
    shop.spawn(accept_orders(count, accepted));
    shop.spawn(run_station(k_grind, baristas, accepted, ground));
    shop.spawn(run_station(k_brew, baristas, ground, brewed));
    shop.spawn(run_station(k_serve, baristas, brewed, served));

    // The till: every served order once; stops when the serve station closes `served`.
    std::vector<int> times_served(static_cast<std::size_t>(count) + 1, 0);
    int total = 0;
    while (auto o = co_await served.async_recv()) {
        ++times_served[static_cast<std::size_t>(o->id)];
        ++total;
    }
    co_await shop.wait();

    day_result r{std::chrono::duration<double>(clock_type::now() - start).count(), total, 0, 0};
    for (int id = 1; id <= count; ++id) {
        const int n = times_served[static_cast<std::size_t>(id)];
        if (n == 0)
            ++r.never_served;
        if (n > 1)
            ++r.served_twice;
    }
    co_return r;
}

int main() {
    constexpr int orders = 60;
    weft::scheduler sched; // one worker per hardware thread

    fmt::print("{} orders; per order: grind {} ms, brew {} ms, serve {} ms\n", orders,
               k_grind.work.count(), k_brew.work.count(), k_serve.work.count());
    bool all_ok = true;
    double rate[2] = {0, 0};
    const int crews[2] = {1, 4};
    for (int i = 0; i < 2; ++i) {
        const day_result r = weft::sync_wait(sched, run_shop(orders, crews[i]));
        rate[i] = r.served / r.seconds;
        const bool exact = r.served == orders && r.served_twice == 0 && r.never_served == 0;
        all_ok = all_ok && exact;
        fmt::print("{} barista{} per station: {} orders served in {:.0f} ms, {:.0f} orders/s, "
                   "{}\n",
                   crews[i], crews[i] == 1 ? "" : "s", r.served, r.seconds * 1000, rate[i],
                   exact
                       ? "each exactly once"
                       : fmt::format("FAILED: {} twice, {} never", r.served_twice, r.never_served));
    }

    const double speedup = rate[1] / rate[0];
    if (speedup > 1.5) {
        fmt::print("speed-up with {} baristas per station: {:.1f}x (more than 1.5x)\n", crews[1],
                   speedup);
    } else {
        fmt::print("FAILED: speed-up with {} baristas per station only {:.1f}x\n", crews[1],
                   speedup);
        all_ok = false;
    }
    return all_ok ? 0 : 1;
}
