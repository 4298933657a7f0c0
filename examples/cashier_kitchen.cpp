// The cashier and the kitchen: an unbuffered channel is a hand-over, not a mailbox.
//
// A weft::channel<order>(0) has no room to leave anything in. The cashier's send completes only
// when the kitchen's receive takes the order from its hand (Go's unbuffered channel, a
// rendezvous). So the cashier cannot run ahead of the kitchen: however many customers queue,
// an order is handed over only when a cook has come to the pass for it.
//
// First, before the kitchen has opened: try_send finds nobody to take the order and returns
// not_ready; the order stays with the cashier (nothing is lost, nothing is queued).
//
// Then the kitchen opens, and cooks slowly (20 ms an order). Both sides write to one shared
// log, under a mutex, so each line gets a place in a single sequence:
//
//   kitchen: ready for an order       (the kitchen is at the pass, inside recv)
//   cashier: handed over order N      (the cashier's send returned)
//
// The rendezvous promises that the cashier's N-th "handed over" comes after the kitchen's N-th
// "ready", and hence after the kitchen has finished cooking order N-1. The program checks that
// on the sequence of log lines, not on timestamps. (The kitchen's "took order N" and the
// cashier's "handed over order N" both follow the same instant of hand-over, so which of those
// two is written first is up to the OS; we print it, but do not check it.)
#include <weft/weft.hpp>

#include <fmt/core.h>

#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

struct order {
    int number;
    std::string item;
};

// One line of the shared log: who, what, which order, and when (for the reader only).
struct log_entry {
    enum kind { cashier_waiting, cashier_handed_over, kitchen_ready, kitchen_took } what;
    int order_number; // 0 for kitchen_ready
    double ms;        // since the kitchen opened
};

class shared_log {
public:
    explicit shared_log(clock_type::time_point start) : start_(start) {}

    void add(log_entry::kind what, int order_number) {
        const double ms =
            std::chrono::duration<double, std::milli>(clock_type::now() - start_).count();
        std::lock_guard lock(mutex_); // the order of add() calls is the log's sequence
        entries_.push_back({what, order_number, ms});
    }
    // After both sides are done (joined).
    const std::vector<log_entry>& entries() const { return entries_; }

private:
    clock_type::time_point start_;
    std::mutex mutex_;
    std::vector<log_entry> entries_;
};

std::string describe(const log_entry& e) {
    switch (e.what) {
    case log_entry::cashier_waiting:
        return fmt::format("cashier: order {} ready to hand over, waiting for the kitchen",
                           e.order_number);
    case log_entry::cashier_handed_over:
        return fmt::format("cashier: handed over order {}", e.order_number);
    case log_entry::kitchen_ready:
        return "kitchen: ready for an order";
    case log_entry::kitchen_took:
        return fmt::format("kitchen: took order {}, cooking", e.order_number);
    }
    return "?";
}

constexpr auto k_cooking = 20ms; // per order, in the kitchen

int main() {
    constexpr int orders = 4;
    const char* items[orders] = {"soup", "noodles", "dumplings", "tea"};
    bool ok = true;

    weft::channel<order> pass(0); // unbuffered: the counter between cashier and kitchen

    // --- 1. the kitchen is closed: nobody to hand an order to --------------------------------
    order first{1, items[0]};
    const weft::status s = pass.try_send(std::move(first)); // moves from `first` only if sent
    const bool kept = s == weft::status::not_ready && first.item == items[0];
    fmt::print("before the kitchen opens: try_send says {}, the cashier still holds order {} "
               "({})\n",
               s == weft::status::not_ready ? "not_ready" : "something else", first.number,
               first.item);
    if (!kept) {
        fmt::print("FAILED: an unbuffered send with no receiver must not complete\n");
        ok = false;
    }

    // --- 2. the kitchen opens and cooks slowly; the cashier hands over as it can -----------
    shared_log log(clock_type::now());
    std::thread kitchen([&log, in = weft::receiver<order>(pass)]() mutable {
        for (;;) {
            log.add(log_entry::kitchen_ready, 0);
            std::optional<order> o = in.recv(); // the hand-over happens here
            if (!o)
                break; // the cashier closed the counter
            log.add(log_entry::kitchen_took, o->number);
            std::this_thread::sleep_for(k_cooking);
        }
    });

    for (int n = 1; n <= orders; ++n) {
        order o = n == 1 ? std::move(first) : order{n, items[n - 1]};
        log.add(log_entry::cashier_waiting, n);
        pass.send(std::move(o)); // returns only once the kitchen has taken it
        log.add(log_entry::cashier_handed_over, n);
    }
    pass.close(); // closing time: the kitchen's recv returns nullopt
    kitchen.join();

    for (const log_entry& e : log.entries())
        fmt::print("  {:6.1f} ms  {}\n", e.ms, describe(e));

    // --- 3. check the interleaving, by sequence ---------------------------------------------
    // For each order N: the position of the kitchen's N-th "ready" and of the cashier's
    // "handed over N".
    std::vector<std::size_t> ready_at, handed_at(orders + 1, 0);
    std::vector<int> took;
    const auto& entries = log.entries();
    for (std::size_t i = 0; i < entries.size(); ++i) {
        switch (entries[i].what) {
        case log_entry::kitchen_ready:
            ready_at.push_back(i);
            break;
        case log_entry::cashier_handed_over:
            handed_at[static_cast<std::size_t>(entries[i].order_number)] = i;
            break;
        case log_entry::kitchen_took:
            took.push_back(entries[i].order_number);
            break;
        case log_entry::cashier_waiting:
            break;
        }
    }
    int in_step = 0;
    for (int n = 1; n <= orders; ++n) {
        const auto k = static_cast<std::size_t>(n);
        if (ready_at.size() >= k && ready_at[k - 1] < handed_at[k])
            ++in_step;
    }
    bool in_order = static_cast<int>(took.size()) == orders;
    for (std::size_t i = 0; in_order && i < took.size(); ++i)
        in_order = took[i] == static_cast<int>(i) + 1;

    if (in_step == orders && in_order) {
        fmt::print("{} of {} orders handed over only after the kitchen came for them; the kitchen "
                   "took them in order 1..{}\n",
                   in_step, orders, orders);
    } else {
        fmt::print("FAILED: {} of {} hand-overs waited for the kitchen, kitchen order {}\n",
                   in_step, orders, in_order ? "right" : "wrong");
        ok = false;
    }
    return ok ? 0 : 1;
}
