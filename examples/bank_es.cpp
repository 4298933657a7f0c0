// The bank account, event-sourced on a SQLite file.
//
// Every command goes to the actor of its account (weft::es::aggregate_service): commands to one
// account run one at a time, different accounts run in parallel on the scheduler. The actor
// decides with the bank decider (bank_domain.hpp), appends the events to the store with the
// version it read, and answers. Nothing but the events is stored; a balance is a replay.
//
// Three projections follow the log into read models: balances (queried below, right after a
// command, to read our own write), a history per account, and alerts for large withdrawals,
// whose alert service refuses one account: that event is retried, then dead-lettered, and the
// other projections never notice.
//
// Each command carries an id, so sending it again is answered from the stored history instead
// of being applied twice. Run the program twice: the second run finds the first run's events
// in the file, replays the balance from them, and every command it sends again is recognised.
//
//   ./bank_es            # uses $TMPDIR/weft_bank_es.db
//   ./bank_es --fresh    # deletes that file first
//   ./bank_es FILE [--fresh]
#include "bank_domain.hpp"

#include <weft/es/aggregate_service.hpp>
#include <weft/es/projection.hpp>
#include <weft/es/read_model.hpp>
#include <weft/es/sqlite_store.hpp>

#include <fmt/core.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using weft::es::command_result;
using service =
    weft::es::aggregate_service<bank::account, weft::es::sqlite_store, bank::account_codec>;

namespace {

int broken(const std::string& what) {
    fmt::print("BROKEN: {}\n", what);
    return 1;
}

// Sends `cmd` with `id` and says what happened.
template <class Cmd>
command_result send(service& bank, const std::string& account, const std::string& id,
                    const Cmd& cmd) {
    return bank.handle(account, cmd, {.command_id = id}).get();
}

std::string outcome(const command_result& r) {
    if (!r)
        return "refused: " + r.reason;
    return r.duplicate ? "ok (already done by an earlier run)" : "ok";
}

} // namespace

int main(int argc, char** argv) {
    std::filesystem::path file = std::filesystem::temp_directory_path() / "weft_bank_es.db";
    bool fresh = false;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--fresh")
            fresh = true;
        else
            file = arg;
    }
    if (fresh) {
        for (const char* suffix : {"", "-wal", "-shm"})
            std::filesystem::remove(file.string() + suffix);
    }

    weft::scheduler sched;
    weft::es::sqlite_store store(file.string()); // durable: an answered command is on disk
    const weft::es::log_position found = store.head_position();
    if (found == 0)
        fmt::print("new store {}\n", file.string());
    else
        fmt::print("store {} continues from {} stored events\n", file.string(), found);

    service bank(sched, store);

    // --- One account: five withdrawals of 30.00 from 100.00 -------------------------------
    if (found > 0) {
        auto replayed = bank.state_of("alice").get();
        fmt::print("replayed balance {} at version {} from the stored history\n",
                   bank::money(replayed.state.balance), replayed.version);
    }
    fmt::print("open alice: {}\n",
               outcome(send(bank, "alice", "alice-open", bank::open_account{"alice"})));
    fmt::print("deposit 100.00: {}\n",
               outcome(send(bank, "alice", "alice-deposit-1", bank::deposit{100'00})));
    int succeeded = 0, refused = 0;
    for (int i = 1; i <= 5; ++i) {
        command_result r =
            send(bank, "alice", "alice-withdraw-" + std::to_string(i), bank::withdraw{30'00});
        fmt::print("withdraw 30.00: {}, balance {}\n", outcome(r),
                   bank::money(bank.state_of("alice").get().state.balance));
        r ? ++succeeded : ++refused;
    }
    const auto alice = bank.state_of("alice").get();
    fmt::print("{} succeeded, {} refused; balance {}\n", succeeded, refused,
               bank::money(alice.state.balance));
    if (succeeded != 3 || alice.state.balance != 10'00 || alice.version != 5)
        return broken("alice should have 10.00 after three withdrawals, at version 5");

    // --- Many accounts at once: 1000 accounts, 10 transfers in each, from 4 threads ---------
    // A transfer here is a withdrawal from one account and a deposit into the next, each with
    // its own id; commands to different accounts run in parallel on the scheduler's workers.
    constexpr int accounts = 1000, rounds = 10, senders = 4;
    auto name = [](int i) { return "acct-" + std::to_string(i); };
    for (int i = 0; i < accounts; ++i) {
        (void)send(bank, name(i), name(i) + "-open", bank::open_account{name(i)});
        (void)send(bank, name(i), name(i) + "-seed", bank::deposit{100'00});
    }
    std::atomic<int> moved{0}, stopped{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < senders; ++t) {
        threads.emplace_back([&, t] {
            std::vector<std::pair<int, weft::future<command_result>>> pending;
            for (int round = 0; round < rounds; ++round) {
                for (int i = t; i < accounts; i += senders) {
                    const std::string id = name(i) + "-out-" + std::to_string(round);
                    pending.emplace_back(i, bank.handle(name(i), bank::withdraw{(i % 7 + 1) * 1'00},
                                                        {.command_id = id}));
                }
                std::vector<weft::future<command_result>> deposits;
                for (auto& [i, f] : pending) {
                    if (!f.get()) {
                        ++stopped;
                        continue;
                    }
                    const int to = (i + 1) % accounts;
                    const std::string id = name(i) + "-in-" + std::to_string(round);
                    deposits.push_back(bank.handle(name(to), bank::deposit{(i % 7 + 1) * 1'00},
                                                   {.command_id = id}));
                }
                for (auto& f : deposits)
                    f.get() ? ++moved : ++stopped;
                pending.clear();
            }
        });
    }
    for (auto& th : threads)
        th.join();

    // Check the invariant by replaying every stream from the file: money was only moved.
    const bank::account_codec codec;
    const bank::account decider;
    std::int64_t total = 0;
    for (int i = 0; i < accounts; ++i) {
        bank::account::state s = decider.initial();
        for (const auto& e :
             store.read_stream(name(i), 1, weft::es::read_direction::forward, 1'000'000))
            s = decider.evolve(s, codec.decode(e));
        if (s.balance < 0)
            return broken(name(i) + " is overdrawn");
        total += s.balance;
    }
    fmt::print("{} accounts, {} transfers ({} refused): total before {}, after {} (replayed "
               "from {} events)\n",
               accounts, moved.load(), stopped.load(), bank::money(accounts * 100'00),
               bank::money(total), store.head_position());
    if (total != accounts * 100'00)
        return broken("money was created or destroyed");
    fmt::print("money preserved\n");

    // --- Projections: read models that follow the log ----------------------------------------
    // In-memory read models start from position 1 on each run (catch-up over the whole file),
    // then follow new appends. Delivery to them is at least once, so each handler is
    // idempotent: it skips a version of a stream it has already applied.
    struct balance {
        weft::es::stream_version version = 0;
        std::int64_t cents = 0;
    };
    struct history {
        weft::es::stream_version version = 0;
        std::vector<std::string> lines;
    };
    weft::es::keyed_read_model<std::string, balance> balances;
    weft::es::keyed_read_model<std::string, history> histories;
    std::mutex alerts_mutex;
    std::vector<std::string> alerts;

    weft::es::projection_runner runner(sched, store);
    runner.add("balances",
               {.handle =
                    [&](const weft::es::recorded_event& e) {
                        const bank::account::event ev = codec.decode(e);
                        balances.update(e.stream, [&](balance& b) {
                            if (e.version <= b.version)
                                return; // seen before
                            if (const auto* d = std::get_if<bank::deposited>(&ev))
                                b.cents += d->cents;
                            else if (const auto* w = std::get_if<bank::withdrawn>(&ev))
                                b.cents -= w->cents;
                            b.version = e.version;
                        });
                    }},
               {.partitioned = true}); // accounts in parallel, each account's events in order
    runner.add("history", {.handle = [&](const weft::es::recorded_event& e) {
                   const bank::account::event ev = codec.decode(e);
                   std::string line = "opened";
                   if (const auto* d = std::get_if<bank::deposited>(&ev))
                       line = "+" + bank::money(d->cents);
                   else if (const auto* w = std::get_if<bank::withdrawn>(&ev))
                       line = "-" + bank::money(w->cents);
                   histories.update(e.stream, [&](history& h) {
                       if (e.version > h.version) {
                           h.lines.push_back(line);
                           h.version = e.version;
                       }
                   });
               }});
    runner.add("large_withdrawals",
               {.handle =
                    [&](const weft::es::recorded_event& e) {
                        const bank::account::event ev = codec.decode(e);
                        const auto* w = std::get_if<bank::withdrawn>(&ev);
                        if (!w || w->cents < 100'00)
                            return;
                        if (e.stream == "mallory") // the alert service refuses this account
                            throw std::runtime_error("alert service refused mallory");
                        std::lock_guard lock(alerts_mutex);
                        alerts.push_back(e.stream + " withdrew " + bank::money(w->cents));
                    }},
               {.max_attempts = 3, .first_backoff = std::chrono::milliseconds(5)});

    // New commands while the projections catch up; then read our own write.
    (void)send(bank, "bob", "bob-open", bank::open_account{"bob"});
    (void)send(bank, "bob", "bob-deposit", bank::deposit{500'00});
    const command_result bob = send(bank, "bob", "bob-withdraw", bank::withdraw{200'00});
    (void)send(bank, "mallory", "mallory-open", bank::open_account{"mallory"});
    (void)send(bank, "mallory", "mallory-deposit", bank::deposit{500'00});
    const command_result mallory =
        send(bank, "mallory", "mallory-withdraw", bank::withdraw{300'00});
    if (!bob || !mallory)
        return broken("bob's and mallory's withdrawals should succeed");
    runner.wait_for("balances", bob.position);
    const auto bob_balance = balances.get("bob");
    fmt::print("read your own write: bob withdrew 200.00 at position {}, the balances read model "
               "says {}\n",
               bob.position, bank::money(bob_balance ? bob_balance->cents : -1));
    if (!bob_balance || bob_balance->cents != 300'00)
        return broken("the balances read model missed bob's withdrawal");

    const weft::es::log_position head = store.head_position();
    for (const std::string name : {"balances", "history", "large_withdrawals"})
        if (!runner.wait_for(name, head, std::chrono::seconds(60)))
            return broken("projection " + name + " did not reach the head");
    for (const std::string name : {"balances", "history", "large_withdrawals"}) {
        const weft::es::projection_status st = runner.status(name);
        fmt::print("projection {}: {} at position {}, {} handled, {} retries, {} dead letters\n",
                   name, weft::es::to_string(st.state), st.checkpoint, st.handled, st.retries,
                   st.dead_letters);
    }
    std::string alice_history;
    for (const std::string& line : histories.get("alice").value_or(history{}).lines)
        alice_history += (alice_history.empty() ? "" : ", ") + line;
    fmt::print("alice's history: {}\n", alice_history);
    {
        std::lock_guard lock(alerts_mutex);
        for (const std::string& a : alerts)
            fmt::print("large withdrawal alert: {}\n", a);
    }
    for (const weft::es::dead_letter& d : runner.dead_letters("large_withdrawals"))
        fmt::print("dead letter in large_withdrawals: {} {}@{} after {} attempts: {}\n",
                   d.event.type, d.event.stream, d.event.version, d.attempts, d.error);
    if (runner.dead_letters("large_withdrawals").size() != 1)
        return broken("exactly mallory's withdrawal should be dead-lettered");

    // The read model agrees with a replay of every stream.
    std::int64_t read_model_total = 0;
    balances.for_each([&](const std::string&, const balance& b) { read_model_total += b.cents; });
    std::int64_t replayed_all = 0;
    for (const weft::es::recorded_event& e : store.read_all(1, head)) {
        const bank::account::event ev = codec.decode(e);
        if (const auto* d = std::get_if<bank::deposited>(&ev))
            replayed_all += d->cents;
        else if (const auto* w = std::get_if<bank::withdrawn>(&ev))
            replayed_all -= w->cents;
    }
    fmt::print("balances read model: {} accounts, total {}, replay total {}\n", balances.size(),
               bank::money(read_model_total), bank::money(replayed_all));
    if (read_model_total != replayed_all)
        return broken("the balances read model disagrees with the replay");
    fmt::print("read model matches the replay\n");
    return 0;
}
