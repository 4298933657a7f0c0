// The bank account, the story weft is built for.
//
// An account is an actor: its balance is plain state that only the actor touches, and its
// commands (deposit, withdraw, balance) are messages handled one at a time. No mutex, and yet
// five withdrawals of 30 sent at the same moment from five threads cannot overdraw a balance
// of 100: the actor takes them one after another, so three succeed and two are refused.
//
// Then many accounts at once: 200 accounts, 4 threads making random transfers between them
// (withdraw from one, deposit into the other only if the withdrawal succeeded). Each account
// serializes its own commands while different accounts run in parallel on the scheduler's
// workers, and the total money in the bank never changes.
#include <weft/actor.hpp>

#include <fmt/core.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <random>
#include <string>
#include <thread>
#include <vector>

// Commands. Amounts are in cents, so sums are exact.
struct deposit {
    std::int64_t cents;
};
struct withdraw {
    std::int64_t cents;
};
struct balance {};

// What a withdrawal says: done, or refused and why.
struct outcome {
    bool ok;
    std::int64_t balance;
    std::string refusal; // empty when ok
};

std::string money(std::int64_t cents) {
    return fmt::format("{}.{:02}", cents / 100, cents % 100);
}

class account {
public:
    explicit account(std::int64_t opening) : balance_(opening) {}

    std::int64_t handle(deposit d) {
        balance_ += d.cents;
        return balance_;
    }
    outcome handle(withdraw w) {
        if (w.cents > balance_)
            return {false, balance_, fmt::format("insufficient balance ({})", money(balance_))};
        balance_ -= w.cents;
        return {true, balance_, {}};
    }
    std::int64_t handle(balance) const { return balance_; }

private:
    std::int64_t balance_; // only this actor's handlers touch it: no lock
};

int main() {
    weft::scheduler sched; // one worker per hardware thread

    // --- 1. five concurrent withdrawals of 30.00 from 100.00 -----------------------------------
    auto acc = weft::spawn_actor<account>(sched, 100'00);
    fmt::print("five withdrawals of 30.00 from a balance of 100.00, sent at once from five "
               "threads:\n");
    std::vector<outcome> results(5);
    {
        std::atomic<bool> go{false};
        std::vector<std::thread> tellers;
        for (std::size_t i = 0; i < results.size(); ++i)
            tellers.emplace_back([&, i] {
                while (!go.load())
                    std::this_thread::yield(); // line up, then all ask at once
                results[i] = acc.ask(withdraw{30'00}).get();
            });
        go = true;
        for (auto& t : tellers)
            t.join();
    }
    // The actor took them in some order; show them in the order it handled them.
    std::sort(results.begin(), results.end(), [](const outcome& a, const outcome& b) {
        return a.balance != b.balance ? a.balance > b.balance : a.ok > b.ok;
    });
    int accepted = 0, refused = 0;
    for (const outcome& r : results) {
        if (r.ok) {
            ++accepted;
            fmt::print("  withdraw 30.00: ok, balance {}\n", money(r.balance));
        } else {
            ++refused;
            fmt::print("  withdraw 30.00: refused: {}\n", r.refusal);
        }
    }
    fmt::print("{} succeeded, {} refused; balance {}\n", accepted, refused,
               money(acc.ask(balance{}).get()));
    fmt::print("deposit 50.00: balance {}\n\n", money(acc.ask(deposit{50'00}).get()));

    // --- 2. many accounts, concurrent transfers, the total preserved --------------------------
    constexpr int accounts = 200;
    constexpr int threads = 4;
    constexpr int transfers_per_thread = 5'000;
    std::vector<weft::actor_ref<account>> bank;
    for (int i = 0; i < accounts; ++i)
        bank.push_back(weft::spawn_actor<account>(sched, 1'000'00));
    const std::int64_t total_before = std::int64_t{accounts} * 1'000'00;

    std::atomic<int> done{0}, bounced{0};
    std::vector<std::thread> clerks;
    for (int t = 0; t < threads; ++t)
        clerks.emplace_back([&, t] {
            std::mt19937 rng(static_cast<unsigned>(t) + 1);
            std::uniform_int_distribution<int> pick(0, accounts - 1);
            std::uniform_int_distribution<std::int64_t> amount(1'00, 800'00);
            for (int i = 0; i < transfers_per_thread; ++i) {
                const int from = pick(rng);
                const int to = pick(rng);
                const std::int64_t cents = amount(rng);
                // Withdraw first; deposit only what was really taken out.
                if (bank[static_cast<std::size_t>(from)].ask(withdraw{cents}).get().ok) {
                    bank[static_cast<std::size_t>(to)].tell(deposit{cents});
                    ++done;
                } else {
                    ++bounced;
                }
            }
        });
    for (auto& c : clerks)
        c.join();

    // ask() is answered after every message queued before it, so these sums see every deposit.
    std::int64_t total_after = 0;
    for (auto& a : bank)
        total_after += a.ask(balance{}).get();
    fmt::print("{} accounts, {} threads, {} transfers made, {} refused for lack of funds\n",
               accounts, threads, done.load(), bounced.load());
    fmt::print("total before {}, after {}: {}\n", money(total_before), money(total_after),
               total_before == total_after ? "preserved" : "BROKEN");
    return total_before == total_after && accepted == 3 && refused == 2 ? 0 : 1;
}
