// weft::es::sqlite_read_model keeps a projection's dead letters in its file, committed with the
// checkpoint: a parked event is still a dead letter after a restart (also after kill -9), a
// rebuild clears the stored ones before it meets their events again, and a retry that succeeds
// forgets one in the transaction of its effects while one that fails again stays.
#include "catch_compat.hpp"
#include "sqlite_balances.hpp"
#include "sqlite_test_support.hpp"

#include <weft/es/memory_store.hpp>
#include <weft/es/projection.hpp>
#include <weft/es/sqlite_read_model.hpp>
#include <weft/es/sqlite_store.hpp>
#include <weft/scheduler.hpp>

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

extern char** environ;

using namespace std::chrono_literals;
using weft::es::event_data;
using weft::es::expected_version;
using weft::es::log_position;
using weft::es::memory_store;
using weft::es::projection_options;
using weft::es::projection_runner;
using weft::es::recorded_event;
using weft::es::sql_connection;
using weft::es::sqlite_read_model;
using weft_test::apply_deposit;
using weft_test::balances;
using weft_test::create_balances;
using weft_test::read_balances;
using weft_test::read_until;
using weft_test::temp_db_file;

namespace {

// 20 deposits, one per append, over 4 accounts; position n deposits n cents.
template <class Store>
void fill_20(Store& store) {
    for (int n = 1; n <= 20; ++n) {
        event_data e;
        e.type = "deposited";
        e.payload = std::to_string(n);
        REQUIRE(store.append("account-" + std::to_string(n % 4), expected_version::any(), {e}));
    }
}

// The balances after every event up to 20 but those in `missing`.
balances expected(std::vector<log_position> missing = {}) {
    balances out;
    for (log_position n = 1; n <= 20; ++n) {
        if (std::find(missing.begin(), missing.end(), n) != missing.end())
            continue;
        auto& [cents, events] = out["account-" + std::to_string(n % 4)];
        cents += static_cast<std::int64_t>(n);
        ++events;
    }
    return out;
}

// The target of a balances model whose handler throws on the event at `poison` while `broken`.
// Not idempotent: an event applied twice shows in `events`.
sqlite_read_model::projection<true> poisoned_target(sqlite_read_model& model, log_position poison,
                                                    std::shared_ptr<std::atomic<bool>> broken) {
    create_balances(model);
    return model.target(
        "balances",
        [poison, broken](sql_connection& db, const recorded_event& e) {
            apply_deposit(db, e);
            // acquire: pairs with the test thread's release store that fixes the cause.
            if (e.position == poison && broken->load(std::memory_order_acquire))
                throw std::runtime_error("poison at " + std::to_string(e.position));
        },
        [](sql_connection& db) { db.exec("DELETE FROM balances"); });
}

// A read model over `path` with poisoned_target.
struct model_with_poison {
    sqlite_read_model model;
    sqlite_read_model::projection<true> target;

    model_with_poison(const std::string& path, log_position poison,
                      std::shared_ptr<std::atomic<bool>> broken)
        : model(path), target(poisoned_target(model, poison, std::move(broken))) {}
};

projection_options no_retries() {
    projection_options o;
    o.batch = 4; // the checkpoint passes the parked event in a later batch
    o.max_attempts = 1;
    return o;
}

} // namespace

TEST_CASE("sqlite_read_model: a parked event is still a dead letter after a restart, and a "
          "retry that succeeds removes it for good") {
    temp_db_file file;
    memory_store store;
    fill_20(store);
    auto broken = std::make_shared<std::atomic<bool>>(true);
    weft::scheduler sched(2);
    {
        model_with_poison m(file.path, 5, broken);
        projection_runner<memory_store> runner(sched, store);
        runner.add("balances", m.target, no_retries());
        REQUIRE(runner.wait_for("balances", 20, 60s));
        REQUIRE(runner.dead_letters("balances").size() == 1);
        CHECK(m.model.checkpoint("balances") == 20);
    }
    {
        // Restart: the event at 5 is behind the checkpoint, so only the stored dead letter
        // remembers it.
        model_with_poison m(file.path, 5, broken);
        projection_runner<memory_store> runner(sched, store);
        runner.add("balances", m.target, no_retries());
        REQUIRE(runner.wait_for("balances", 20, 60s));
        const auto dead = runner.dead_letters("balances");
        REQUIRE(dead.size() == 1);
        CHECK(dead[0].event.position == 5);
        CHECK(dead[0].event.stream == "account-1");
        CHECK(dead[0].event.payload == "5");
        CHECK(dead[0].event.event_id == store.read_all(5, 1).at(0).event_id);
        CHECK(dead[0].event.recorded_at == store.read_all(5, 1).at(0).recorded_at);
        CHECK(dead[0].error == "poison at 5");
        CHECK(dead[0].attempts == 1);
        CHECK(runner.status("balances").dead_letters == 1);
        CHECK(read_balances(m.model) == expected({5}));

        broken->store(false, std::memory_order_release); // the cause is fixed
        CHECK(runner.retry_dead_letters("balances") == 1);
        CHECK(runner.dead_letters("balances").empty());
        CHECK(read_balances(m.model) == expected());
    }
    {
        // Restart again: the retried event is neither a dead letter nor applied twice.
        model_with_poison m(file.path, 5, broken);
        projection_runner<memory_store> runner(sched, store);
        runner.add("balances", m.target, no_retries());
        REQUIRE(runner.wait_for("balances", 20, 60s));
        CHECK(runner.dead_letters("balances").empty());
        CHECK(read_balances(m.model) == expected());
    }
}

TEST_CASE("sqlite_read_model: a retried dead letter that fails again stays stored with its "
          "tries counted") {
    temp_db_file file;
    memory_store store;
    fill_20(store);
    auto broken = std::make_shared<std::atomic<bool>>(true);
    weft::scheduler sched(2);
    {
        model_with_poison m(file.path, 7, broken);
        projection_runner<memory_store> runner(sched, store);
        runner.add("balances", m.target, no_retries());
        REQUIRE(runner.wait_for("balances", 20, 60s));
        CHECK(runner.retry_dead_letters("balances") == 0); // still broken
        REQUIRE(runner.dead_letters("balances").size() == 1);
        CHECK(runner.dead_letters("balances")[0].attempts == 2);
    }
    model_with_poison m(file.path, 7, broken);
    projection_runner<memory_store> runner(sched, store);
    runner.add("balances", m.target, no_retries());
    REQUIRE(runner.wait_for("balances", 20, 60s));
    const auto dead = runner.dead_letters("balances");
    REQUIRE(dead.size() == 1);
    CHECK(dead[0].event.position == 7);
    CHECK(dead[0].attempts == 2);
    CHECK(read_balances(m.model) == expected({7})); // the failed retry left no trace
}

TEST_CASE("sqlite_read_model: a rebuild clears the stored dead letters and meets their events "
          "again") {
    temp_db_file file;
    memory_store store;
    fill_20(store);
    auto broken = std::make_shared<std::atomic<bool>>(true);
    weft::scheduler sched(2);
    {
        model_with_poison m(file.path, 9, broken);
        projection_runner<memory_store> runner(sched, store);
        runner.add("balances", m.target, no_retries());
        REQUIRE(runner.wait_for("balances", 20, 60s));
        runner.rebuild("balances"); // still broken: parked again, once
        REQUIRE(runner.wait_for("balances", 20, 60s));
        CHECK(runner.dead_letters("balances").size() == 1);
    }
    {
        model_with_poison m(file.path, 9, broken);
        projection_runner<memory_store> runner(sched, store);
        runner.add("balances", m.target, no_retries());
        REQUIRE(runner.wait_for("balances", 20, 60s));
        REQUIRE(runner.dead_letters("balances").size() == 1); // not one per rebuild
        broken->store(false, std::memory_order_release);
        runner.rebuild("balances"); // fixed: the event is handled this time
        REQUIRE(runner.wait_for("balances", 20, 60s));
        CHECK(runner.dead_letters("balances").empty());
        CHECK(read_balances(m.model) == expected());
    }
    model_with_poison m(file.path, 9, broken);
    projection_runner<memory_store> runner(sched, store);
    runner.add("balances", m.target, no_retries());
    REQUIRE(runner.wait_for("balances", 20, 60s));
    CHECK(runner.dead_letters("balances").empty());
    CHECK(read_balances(m.model) == expected());
}

// ---- kill -9 -------------------------------------------------------------------------------

TEST_CASE("sqlite_read_model: a dead letter parked before kill -9 is there after it") {
    temp_db_file store_file;
    temp_db_file model_file;
    {
        weft::es::sqlite_store store(store_file.path);
        fill_20(store);
    }
    int out[2];
    int in[2];
    REQUIRE(::pipe(out) == 0);
    REQUIRE(::pipe(in) == 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
    for (int fd : {out[0], out[1], in[0], in[1]})
        posix_spawn_file_actions_addclose(&actions, fd);
    std::string child = WEFT_DEAD_LETTER_CHILD;
    std::string store_arg = store_file.path;
    std::string model_arg = model_file.path;
    std::string poison_arg = "6";
    char* argv[] = {child.data(), store_arg.data(), model_arg.data(), poison_arg.data(), nullptr};
    pid_t pid = 0;
    // posix_spawn, not fork alone: this process has threads, the child must exec at once.
    const int spawned = posix_spawn(&pid, child.c_str(), &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    ::close(in[0]);
    REQUIRE(spawned == 0);
    std::string text;
    const bool parked = read_until(out[0], text, "parked\n", 60s);
    // The child now waits for stdin to end, with the runner and the model open: kill it there.
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ::close(out[0]);
    ::close(in[1]);
    INFO("child output: " << text);
    REQUIRE(parked);
    REQUIRE(WIFSIGNALED(status));

    auto broken = std::make_shared<std::atomic<bool>>(true);
    weft::es::sqlite_store store(store_file.path);
    weft::scheduler sched(2);
    model_with_poison m(model_file.path, 6, broken);
    projection_runner<weft::es::sqlite_store> runner(sched, store);
    runner.add("balances", m.target, no_retries());
    REQUIRE(runner.wait_for("balances", 20, 60s));
    const auto dead = runner.dead_letters("balances");
    REQUIRE(dead.size() == 1);
    CHECK(dead[0].event.position == 6);
    CHECK(read_balances(m.model) == expected({6}));
}

TEST_CASE("sqlite_read_model: a file holding only its checkpoints and dead letters can still "
          "become a sqlite_store") {
    temp_db_file file;
    memory_store source;
    fill_20(source);
    weft::scheduler sched(2);
    {
        sqlite_read_model model(file.path);
        projection_runner<memory_store> runner(sched, source);
        runner.add("parker",
                   model.target("parker",
                                [](sql_connection&, const recorded_event& e) {
                                    if (e.position == 3)
                                        throw std::runtime_error("poison at 3");
                                }),
                   no_retries());
        REQUIRE(runner.wait_for("parker", 20, 60s));
        REQUIRE(runner.dead_letters("parker").size() == 1);
    }
    // Before: "is not a weft event store (no weft_meta table)", the dead-letter table counted
    // as someone else's schema.
    weft::es::sqlite_store store(file.path);
    event_data e;
    e.type = "deposited";
    e.payload = "1";
    CHECK(store.append("account-x", expected_version::no_stream(), {e}));
    CHECK(store.head_position() == 1);
}
