// The get-or-create race, and how weft::registry removes it.
//
// A service keeps one actor per account id. The naive way to find it: look in a map under a
// lock, and if the id is missing, create the actor and put it in. Done in two steps (check
// under the lock, create and insert later), many threads asking for the same new id at once
// all see "missing", all create an actor, and all but one of those actors are lost: the
// messages sent to them vanish from the account.
//
// weft::registry::get_or_create checks again under the key's shard lock before it creates,
// so exactly one actor exists per id, however many threads ask at once.
#include <weft/actor.hpp>
#include <weft/registry.hpp>

#include <fmt/core.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

struct deposit {
    std::int64_t cents;
};
struct balance {};

struct account {
    std::int64_t cents = 0;
    void handle(deposit d) { cents += d.cents; }
    std::int64_t handle(balance) const { return cents; }
};

constexpr int threads = 16;

// Every thread deposits 1.00 into the account "acc-42", finding the actor first.
template <class Find>
std::int64_t deposit_from_all_threads(Find&& find) {
    std::atomic<bool> go{false};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&] {
            while (!go.load())
                std::this_thread::yield(); // line up, then all at once
            find("acc-42").tell(deposit{100});
        });
    go = true;
    for (auto& th : pool)
        th.join();
    return find("acc-42").ask(balance{}).get();
}

int main() {
    weft::scheduler sched;

    // --- the naive map: check, then create --------------------------------------------------
    std::mutex naive_mutex;
    std::map<std::string, weft::actor_ref<account>> naive;
    std::atomic<int> naive_created{0};
    auto naive_find = [&](const std::string& id) {
        {
            std::lock_guard lock(naive_mutex);
            if (auto it = naive.find(id); it != naive.end())
                return it->second;
        }
        // Missing: create it. Another thread may be doing the very same right now.
        auto created = weft::spawn_actor<account>(sched);
        ++naive_created;
        std::this_thread::yield(); // creating an actor takes a moment (loading state, ...)
        std::lock_guard lock(naive_mutex);
        naive[id] = created; // the last writer wins; the others' actors are orphaned
        return created;
    };
    const std::int64_t naive_balance = deposit_from_all_threads(naive_find);
    fmt::print("naive map:     {} actors created for one id, balance {}.{:02} after {} deposits "
               "of 1.00 (lost {})\n",
               naive_created.load(), naive_balance / 100, naive_balance % 100, threads,
               threads - naive_balance / 100);

    // --- the registry -----------------------------------------------------------------------
    std::atomic<int> registry_created{0};
    weft::registry<std::string, account> accounts(sched, [&](const std::string&) {
        ++registry_created;
        return account{};
    });
    auto registry_find = [&](const std::string& id) { return accounts.get_or_create(id); };
    const std::int64_t registry_balance = deposit_from_all_threads(registry_find);
    fmt::print("registry:      {} actor created for one id, balance {}.{:02} after {} deposits "
               "of 1.00 (lost {})\n",
               registry_created.load(), registry_balance / 100, registry_balance % 100, threads,
               threads - registry_balance / 100);

    const bool ok = registry_created == 1 && registry_balance == threads * 100;
    if (!ok)
        fmt::print("FAILED: the registry created {} actors\n", registry_created.load());
    return ok ? 0 : 1;
}
