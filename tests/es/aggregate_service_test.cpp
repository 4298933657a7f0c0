// weft::es::aggregate_service on memory_store with the bank account decider: the five
// withdrawals story, commands from threads and tasks, 10k accounts under concurrent commands
// checked by replaying every stream, idempotent command ids (in memory, after reload, after a
// snapshot), snapshots (taken, used, ignored when their schema is old), version conflicts from
// a second service on the same store, passivation, and errors that fail one command only.
#include "bank_domain.hpp"
#include "catch_compat.hpp"
#include "test_support.hpp"

#include <weft/es/aggregate_service.hpp>
#include <weft/es/memory_store.hpp>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

using bank::account;
using weft::es::command_result;
using weft::es::command_status;
using bank_service =
    weft::es::aggregate_service<account, weft::es::memory_store, bank::account_codec>;

namespace {

account::state replay(const weft::es::memory_store& store, const std::string& stream) {
    const bank::account_codec codec;
    const account a;
    account::state s = a.initial();
    for (const auto& e : store.read_stream(stream, 1, weft::es::read_direction::forward, 1'000'000))
        s = a.evolve(s, codec.decode(e));
    return s;
}

void open_with(bank_service& svc, const std::string& id, std::int64_t cents) {
    REQUIRE(svc.handle(id, bank::open_account{id}).get());
    REQUIRE(svc.handle(id, bank::deposit{cents}).get());
}

weft::es::aggregate_options<account::state> snapshots_every(std::size_t n, int schema = 1) {
    weft::es::aggregate_options<account::state> o;
    o.snapshot.every = n;
    o.snapshot.schema_version = schema;
    o.snapshot.encode = bank::encode_state;
    o.snapshot.decode = bank::decode_state;
    return o;
}

} // namespace

TEST_CASE("five withdrawals of 30 from 100 through the service: three stored, two refused") {
    weft::scheduler s(2);
    weft::es::memory_store store;
    bank_service svc(s, store);
    open_with(svc, "acc-1", 100'00);
    std::vector<command_result> results;
    for (int i = 0; i < 5; ++i)
        results.push_back(svc.handle("acc-1", bank::withdraw{30'00}).get());
    for (int i = 0; i < 3; ++i) {
        CHECK(results[i].status == command_status::accepted);
        CHECK(results[i].version == static_cast<std::uint64_t>(3 + i));
        CHECK(results[i].events == 1);
        CHECK(results[i].position == static_cast<std::uint64_t>(3 + i));
    }
    for (int i = 3; i < 5; ++i) {
        CHECK(results[i].status == command_status::rejected);
        CHECK(results[i].reason == "insufficient balance (10.00)");
        CHECK(results[i].version == 5);
    }
    CHECK(store.version_of("acc-1") == 5);
    CHECK(replay(store, "acc-1").balance == 10'00);
    auto st = svc.state_of("acc-1").get();
    CHECK(st.state.balance == 10'00);
    CHECK(st.version == 5);
}

TEST_CASE("commands can be awaited in tasks") {
    weft::scheduler s(2);
    weft::es::memory_store store;
    bank_service svc(s, store);
    const std::string id = "t-1";
    auto run = [&]() -> weft::task<std::int64_t> {
        command_result opened = co_await svc.handle(id, bank::open_account{"t"});
        command_result paid = co_await svc.handle(id, bank::deposit{7'00});
        command_result taken = co_await svc.handle(id, bank::withdraw{2'00});
        auto st = co_await svc.state_of(id);
        co_return opened&& paid&& taken ? st.state.balance : -1;
    };
    CHECK(weft::sync_wait(s, run()) == 5'00);
}

TEST_CASE("10k accounts under concurrent commands keep every balance equal to its replay") {
    weft::scheduler s(2);
    weft::es::memory_store store;
    bank_service svc(s, store);
    constexpr int accounts = 10'000, threads = 4, per_thread = 10'000;
    for (int i = 0; i < accounts; ++i)
        REQUIRE(svc.handle("acc-" + std::to_string(i), bank::open_account{"x"}).get());

    // Each thread sends deposits and withdrawals to random accounts, keeping the futures, then
    // counts what was accepted.
    std::vector<std::int64_t> moved(threads, 0);
    std::vector<int> accepted(threads, 0), refused(threads, 0), other(threads, 0);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            std::uint64_t x = 88172645463325252ULL + static_cast<std::uint64_t>(t);
            std::vector<std::pair<std::int64_t, weft::future<command_result>>> sent;
            sent.reserve(per_thread);
            for (int i = 0; i < per_thread; ++i) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                const std::string id = "acc-" + std::to_string(x % accounts);
                const std::int64_t cents = static_cast<std::int64_t>(x % 500) + 1;
                if (x % 3 == 0)
                    sent.emplace_back(-cents, svc.handle(id, bank::withdraw{cents}));
                else
                    sent.emplace_back(cents, svc.handle(id, bank::deposit{cents}));
            }
            for (auto& [delta, f] : sent) {
                command_result r = f.get();
                if (r) {
                    ++accepted[t];
                    moved[t] += delta;
                } else if (r.status == command_status::rejected) {
                    ++refused[t];
                } else {
                    ++other[t];
                }
            }
        });
    }
    for (auto& th : pool)
        th.join();

    std::int64_t expected_total = 0;
    int total_accepted = 0, total_refused = 0, total_other = 0;
    for (int t = 0; t < threads; ++t) {
        expected_total += moved[t];
        total_accepted += accepted[t];
        total_refused += refused[t];
        total_other += other[t];
    }
    CHECK(total_other == 0);
    CHECK(total_accepted + total_refused == threads * per_thread);
    CHECK(store.head_position() ==
          static_cast<std::uint64_t>(accounts + total_accepted)); // one event per success

    std::int64_t replayed_total = 0;
    int mismatches = 0, negative = 0;
    for (int i = 0; i < accounts; ++i) {
        const std::string id = "acc-" + std::to_string(i);
        account::state replayed = replay(store, id);
        replayed_total += replayed.balance;
        negative += replayed.balance < 0;
        mismatches += svc.state_of(id).get().state.balance != replayed.balance;
    }
    CHECK(negative == 0);
    CHECK(mismatches == 0);
    CHECK(replayed_total == expected_total);
}

TEST_CASE("a retried command id returns the first result and stores nothing twice") {
    weft::scheduler s(2);
    weft::es::memory_store store;
    bank_service svc(s, store);
    open_with(svc, "acc-1", 100'00);
    weft::es::command_options once{.command_id = "cmd-1"};
    command_result first = svc.handle("acc-1", bank::withdraw{60'00}, once).get();
    command_result again = svc.handle("acc-1", bank::withdraw{60'00}, once).get();
    REQUIRE(first);
    CHECK_FALSE(first.duplicate);
    CHECK(again.status == command_status::accepted);
    CHECK(again.duplicate);
    CHECK(again.version == first.version);
    CHECK(again.position == first.position);
    CHECK(store.version_of("acc-1") == 3);

    // The events carry the command id as event id and causation id.
    auto stored = store.find_event("cmd-1#0");
    REQUIRE(stored);
    CHECK(stored->causation_id == "cmd-1");

    // A rejected command is answered the same way while it is remembered.
    weft::es::command_options twice{.command_id = "cmd-2"};
    command_result refused = svc.handle("acc-1", bank::withdraw{60'00}, twice).get();
    CHECK(refused.reason == "insufficient balance (40.00)");
    CHECK(svc.handle("acc-1", bank::withdraw{60'00}, twice).get().duplicate);

    // After the aggregate is dropped from memory, the replay remembers the accepted command.
    CHECK(weft_test::passivate_until(svc, 1) == 1);
    CHECK(svc.loaded() == 0);
    command_result after_reload = svc.handle("acc-1", bank::withdraw{60'00}, once).get();
    CHECK(after_reload.duplicate);
    CHECK(after_reload.position == first.position);
    CHECK(store.version_of("acc-1") == 3);
}

TEST_CASE("a command id from before a snapshot is found in the store") {
    weft::scheduler s(2);
    weft::es::memory_store store;
    {
        bank_service svc(s, store, {}, {}, snapshots_every(2));
        open_with(svc, "acc-1", 100'00);
        REQUIRE(svc.handle("acc-1", bank::withdraw{10'00}, {.command_id = "old"}).get());
        REQUIRE(svc.handle("acc-1", bank::deposit{1'00}).get()); // snapshot at version 4
    }
    REQUIRE(store.load_snapshot("acc-1"));
    CHECK(store.load_snapshot("acc-1")->version == 4);
    bank_service fresh(s, store, {}, {}, snapshots_every(2));
    command_result r = fresh.handle("acc-1", bank::withdraw{10'00}, {.command_id = "old"}).get();
    CHECK(r.duplicate);
    CHECK(r.version == 3);
    CHECK(store.version_of("acc-1") == 4);
}

TEST_CASE("state from a snapshot plus replay equals the full replay") {
    weft::scheduler s(2);
    weft::es::memory_store store;
    int decoded = 0;
    {
        bank_service svc(s, store, {}, {}, snapshots_every(10));
        open_with(svc, "acc-1", 1'000'00);
        for (int i = 0; i < 93; ++i) {
            if (i % 4 == 3)
                REQUIRE(svc.handle("acc-1", bank::deposit{i + 1}).get());
            else
                REQUIRE(svc.handle("acc-1", bank::withdraw{i + 1}).get());
        }
    }
    REQUIRE(store.version_of("acc-1") == 95);
    auto snap = store.load_snapshot("acc-1");
    REQUIRE(snap);
    CHECK(snap->version == 90);
    const account::state full = replay(store, "acc-1");

    auto options = snapshots_every(10);
    options.snapshot.decode = [&](std::string_view text) {
        ++decoded;
        return bank::decode_state(text);
    };
    bank_service from_snapshot(s, store, {}, {}, options);
    auto st = from_snapshot.state_of("acc-1").get();
    CHECK(decoded == 1);
    CHECK(st.version == 95);
    CHECK(st.state.balance == full.balance);
    CHECK(st.state.open == full.open);

    // A service whose state shape moved on (schema 2) ignores the old snapshot and replays.
    auto newer = snapshots_every(10, 2);
    newer.snapshot.decode = options.snapshot.decode;
    bank_service upgraded(s, store, {}, {}, newer);
    auto st2 = upgraded.state_of("acc-1").get();
    CHECK(decoded == 1);
    CHECK(st2.state.balance == full.balance);
    CHECK(st2.version == 95);
}

TEST_CASE("a version conflict from another writer reloads and retries the command") {
    weft::scheduler s(2);
    weft::es::memory_store store;
    bank_service a(s, store);
    bank_service b(s, store); // another process, in effect
    open_with(a, "acc-1", 100'00);
    REQUIRE(a.state_of("acc-1").get().version == 2);         // a has it loaded at version 2
    REQUIRE(b.handle("acc-1", bank::withdraw{80'00}).get()); // b writes version 3
    // a decides against its stale state (100.00), conflicts, reloads (20.00) and decides again.
    command_result r = a.handle("acc-1", bank::withdraw{50'00}).get();
    CHECK(r.status == command_status::rejected);
    CHECK(r.reason == "insufficient balance (20.00)");
    command_result ok = a.handle("acc-1", bank::withdraw{5'00}).get();
    CHECK(ok);
    CHECK(ok.version == 4);
    CHECK(replay(store, "acc-1").balance == 15'00);
}

TEST_CASE("conflicts beyond max_conflict_retries are answered as conflict") {
    weft::scheduler s(2);
    weft::es::memory_store store;
    weft::es::aggregate_options<account::state> no_retries;
    no_retries.max_conflict_retries = 0;
    bank_service a(s, store, {}, {}, no_retries);
    bank_service b(s, store);
    open_with(a, "acc-1", 100'00);
    REQUIRE(a.state_of("acc-1").get().version == 2);
    REQUIRE(b.handle("acc-1", bank::deposit{1'00}).get());
    command_result r = a.handle("acc-1", bank::deposit{1'00}).get();
    CHECK(r.status == command_status::conflict);
    CHECK(r.reason.find("stream acc-1 changed") != std::string::npos);
    CHECK(r.version == 3); // it did read the other writer's event
    CHECK(a.handle("acc-1", bank::deposit{1'00}).get().version == 4);
}

TEST_CASE("passivated aggregates are reloaded transparently") {
    weft::scheduler s(2);
    weft::es::memory_store store;
    bank_service svc(s, store);
    for (int i = 0; i < 50; ++i)
        open_with(svc, "acc-" + std::to_string(i), 10'00 + i);
    CHECK(svc.loaded() == 50);
    CHECK(weft_test::passivate_until(svc, 50) == 50);
    CHECK(svc.loaded() == 0);
    int right = 0;
    for (int i = 0; i < 50; ++i) {
        command_result r = svc.handle("acc-" + std::to_string(i), bank::withdraw{10'00}).get();
        right += r && r.version == 3 &&
                 svc.state_of("acc-" + std::to_string(i)).get().state.balance == i;
    }
    CHECK(right == 50);
}

TEST_CASE("an event the codec cannot read fails that aggregate's commands only") {
    weft::scheduler s(2);
    weft::es::memory_store store;
    bank_service svc(s, store);
    open_with(svc, "good", 5'00);
    std::vector<weft::es::event_data> bad(1);
    bad[0].type = "account_frozen";
    bad[0].payload = "{}";
    REQUIRE(store.append("bad", weft::es::expected_version::any(), bad));
    auto f = svc.handle("bad", bank::deposit{1'00});
    CHECK_THROWS_AS(f.get(), weft::es::decode_error);
    CHECK(svc.handle("good", bank::deposit{1'00}).get().version == 3);
}
