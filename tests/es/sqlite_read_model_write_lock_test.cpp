// A sqlite_read_model projection on its sqlite_store's own file shares SQLite's one write lock
// with the store's appends. It must not keep them out: not while a handler waits to be retried
// (the part of the batch before the failing event commits, and the lock is free during the
// back-off), nor through a batch of slow handlers (it commits by time as well as by count).
// Each case counts that every event took effect exactly once.
#include "catch_compat.hpp"
#include "sqlite_balances.hpp"
#include "sqlite_test_support.hpp"
#include "test_support.hpp"

#include <weft/es/projection.hpp>
#include <weft/es/sqlite_read_model.hpp>
#include <weft/es/sqlite_store.hpp>
#include <weft/scheduler.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using weft::es::event_data;
using weft::es::expected_version;
using weft::es::log_position;
using weft::es::projection_options;
using weft::es::projection_runner;
using weft::es::recorded_event;
using weft::es::sql_connection;
using weft::es::sqlite_read_model;
using weft::es::sqlite_store;
using weft_test::apply_deposit;
using weft_test::balances;
using weft_test::create_balances;
using weft_test::expected_balances;
using weft_test::read_balances;
using weft_test::temp_db_file;

namespace {

event_data deposit(std::int64_t cents) {
    event_data e;
    e.type = "deposited";
    e.payload = std::to_string(cents);
    return e;
}

// One deposit per append, over 5 accounts; returns the head.
log_position fill(sqlite_store& store, int from, int count) {
    log_position head = 0;
    for (int n = from; n < from + count; ++n) {
        const auto r =
            store.append("account-" + std::to_string(n % 5), expected_version::any(), {deposit(n)});
        REQUIRE(r);
        head = r.last_position;
    }
    return head;
}

// `count` appends from this thread, each while the projection is busy; how many succeeded
// (an append kept out past the store's busy_timeout throws store_error).
int append_meanwhile(sqlite_store& store, int from, int count, std::string& first_error) {
    int ok = 0;
    for (int n = from; n < from + count; ++n) {
        try {
            if (store.append("account-" + std::to_string(n % 5), expected_version::any(),
                             {deposit(n)}))
                ++ok;
        } catch (const std::exception& e) {
            if (first_error.empty())
                first_error = e.what();
        }
    }
    return ok;
}

} // namespace

TEST_CASE("sqlite_read_model on the store's file: appends go on while a handler backs off "
          "between retries") {
    temp_db_file file;
    weft::es::sqlite_options store_options;
    store_options.durability = weft::es::durability::off; // no fsync per append: a short test
    store_options.busy_timeout = 100ms; // far below the back-off: the lock must be free then
    sqlite_store store(file.path, store_options);
    const log_position poison = 25;
    log_position head = fill(store, 1, 50);
    sqlite_read_model model(file.path);
    create_balances(model);

    std::atomic<int> poison_tries{0};
    auto target = model.target("balances", [&](sql_connection& db, const recorded_event& e) {
        apply_deposit(db, e);
        if (e.position != poison)
            return;
        // acq_rel: the count is the test thread's signal (its acquire wait below).
        const int tries = poison_tries.fetch_add(1, std::memory_order_acq_rel) + 1;
        poison_tries.notify_all();
        if (tries < 3)
            throw std::runtime_error("not yet");
    });
    projection_options options;
    options.max_attempts = 5;
    options.first_backoff = 300ms; // then 600 ms: the store's appends wait at most 100 ms
    weft::scheduler sched(2);
    projection_runner<sqlite_store> runner(sched, store);
    runner.add("balances", target, options);

    poison_tries.wait(0, std::memory_order_acquire); // the first try has failed
    std::string error;
    const int appends = 5 * weft_test::stress_rounds();
    CHECK(append_meanwhile(store, 51, appends, error) == appends);
    CHECK(error == "");
    head = store.head_position();
    REQUIRE(head == static_cast<log_position>(50 + appends));
    REQUIRE(runner.wait_for("balances", head, 60s));
    // acquire: pairs with the handler's acq_rel increments.
    CHECK(poison_tries.load(std::memory_order_acquire) == 3);
    CHECK(runner.dead_letters("balances").empty());
    CHECK(runner.status("balances").retries == 2);
    CHECK(model.checkpoint("balances") == head);
    CHECK(read_balances(model) == expected_balances(store, head)); // each event exactly once
}

TEST_CASE("sqlite_read_model on the store's file: appends go on through a batch of slow "
          "handlers") {
    temp_db_file file;
    weft::es::sqlite_options store_options;
    store_options.durability = weft::es::durability::off; // no fsync per append: a short test
    store_options.busy_timeout = 250ms; // below the one batch's 400+ ms, above max_batch_time
    sqlite_store store(file.path, store_options);
    log_position head = fill(store, 1, 200);
    sqlite_read_model model(file.path);
    create_balances(model);

    std::atomic<int> handled{0};
    auto target = model.target("balances", [&](sql_connection& db, const recorded_event& e) {
        apply_deposit(db, e);
        // The slow work being modelled (a remote call, a heavy query); not a synchronization.
        std::this_thread::sleep_for(2ms);
        // release: the test thread's acquire wait below only needs to see that one ran.
        handled.fetch_add(1, std::memory_order_release);
        handled.notify_all();
    });
    weft::scheduler sched(2);
    projection_runner<sqlite_store> runner(sched, store);
    projection_options options;    // one batch of 512 would hold the lock for all 200 events
    options.max_batch_time = 50ms; // a waiting append's busy handler tries every <= 25 ms then
    runner.add("balances", target, options);

    handled.wait(0, std::memory_order_acquire); // the batch is under way
    std::string error;
    const int appends = 5 * weft_test::stress_rounds();
    CHECK(append_meanwhile(store, 201, appends, error) == appends);
    CHECK(error == "");
    head = store.head_position();
    REQUIRE(head == static_cast<log_position>(200 + appends));
    REQUIRE(runner.wait_for("balances", head, 60s));
    CHECK(handled.load(std::memory_order_acquire) == static_cast<int>(head));
    CHECK(model.checkpoint("balances") == head);
    CHECK(read_balances(model) == expected_balances(store, head)); // each event exactly once
}
