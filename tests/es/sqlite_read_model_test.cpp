// weft::es::sqlite_read_model: a projection_runner fills tables and commits the checkpoint with
// them; a restart resumes with nothing applied twice; a throwing handler leaves no trace;
// rebuild gives the live table; wait_for means a reader sees the row; the SQL helper binds and
// reads its types and reports errors with the file; the file may be a sqlite_store's; and after
// kill -9 at random moments every event has taken effect exactly once.
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
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
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
using weft::es::sqlite_store;
using weft::es::store_error;

namespace {

using weft_test::apply_deposit;
using weft_test::balances;
using weft_test::create_balances;
using weft_test::expected_balances;
using weft_test::read_balances;
using weft_test::read_until;
using weft_test::remove_db_files;
using weft_test::temp_db_file;

std::string file_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

event_data deposit(std::int64_t cents, std::string type = "deposited") {
    event_data e;
    e.type = std::move(type);
    e.payload = std::to_string(cents);
    return e;
}

void clear_balances(sql_connection& db) {
    db.exec("DELETE FROM balances");
}

sqlite_read_model::projection<true> balances_target(sqlite_read_model& model,
                                                    const std::string& name = "balances") {
    return model.target(name, apply_deposit, clear_balances);
}

// `count` deposits over `accounts` accounts, in batches of up to 3; returns the head.
template <class Store>
log_position fill(Store& store, int count, int accounts, std::uint32_t seed) {
    std::mt19937 rng(seed);
    log_position head = 0;
    for (int done = 0; done < count;) {
        std::vector<event_data> batch;
        const int n = std::min(count - done, 1 + static_cast<int>(rng() % 3));
        for (int i = 0; i < n; ++i)
            batch.push_back(deposit(1 + static_cast<std::int64_t>(rng() % 10'000)));
        const auto r = store.append("account-" + std::to_string(rng() % accounts),
                                    expected_version::any(), std::move(batch));
        REQUIRE(r);
        head = r.last_position;
        done += n;
    }
    return head;
}

projection_options small_batches(std::size_t batch) {
    projection_options o;
    o.batch = batch;
    return o;
}

} // namespace

TEST_CASE("sqlite_read_model: a projection fills a table and commits its checkpoint with it") {
    temp_db_file file;
    weft::scheduler sched(2);
    memory_store store;
    sqlite_read_model model(file.path);
    create_balances(model);
    const log_position head = fill(store, 400, 20, 1);

    projection_runner<memory_store> runner(sched, store);
    runner.add("balances", balances_target(model), small_batches(64));
    REQUIRE(runner.wait_for("balances", head, 60s));
    CHECK(read_balances(model) == expected_balances(store, head));
    CHECK(model.checkpoint("balances") == head);
    CHECK(runner.status("balances").checkpoint == head);
    CHECK(runner.status("balances").handled == head);

    // Live: new appends land in the table, and the checkpoint follows.
    const log_position head2 = fill(store, 50, 20, 2);
    REQUIRE(runner.wait_for("balances", head2, 60s));
    CHECK(read_balances(model) == expected_balances(store, head2));
    CHECK(model.checkpoint("balances") == head2);
    CHECK(runner.status("balances").checkpoint == head2);
    CHECK(model.checkpoint("no such projection") == 0);
}

TEST_CASE("sqlite_read_model: a restarted projection resumes from its checkpoint and applies "
          "nothing twice") {
    temp_db_file store_file;
    temp_db_file model_file;
    weft::scheduler sched(2);
    sqlite_store store(store_file.path);
    const log_position head1 = fill(store, 600, 15, 3);

    // Stopped at once: somewhere in the catch-up, after a whole batch (or none).
    log_position stopped_at = 0;
    {
        sqlite_read_model model(model_file.path);
        create_balances(model);
        projection_runner<sqlite_store> runner(sched, store);
        runner.add("balances", balances_target(model), small_batches(16));
        runner.stop("balances");
        stopped_at = runner.status("balances").checkpoint;
        CHECK(model.checkpoint("balances") == stopped_at);
        CHECK(read_balances(model) == expected_balances(store, stopped_at));
    }
    INFO("stopped at " << stopped_at << " of " << head1);

    // A new model and runner on the same file go on from there.
    {
        sqlite_read_model model(model_file.path);
        REQUIRE(model.checkpoint("balances") == stopped_at);
        projection_runner<sqlite_store> runner(sched, store);
        runner.add("balances", balances_target(model), small_batches(16));
        REQUIRE(runner.wait_for("balances", head1, 60s));
        CHECK(runner.status("balances").handled == head1 - stopped_at);
        CHECK(read_balances(model) == expected_balances(store, head1));
    }

    // Once more, with appends made while nothing ran.
    const log_position head2 = fill(store, 200, 15, 4);
    {
        sqlite_read_model model(model_file.path);
        projection_runner<sqlite_store> runner(sched, store);
        runner.add("balances", balances_target(model), small_batches(16));
        REQUIRE(runner.wait_for("balances", head2, 60s));
        CHECK(runner.status("balances").handled == head2 - head1);
        CHECK(read_balances(model) == expected_balances(store, head2));
        CHECK(model.checkpoint("balances") == head2);
    }
}

TEST_CASE("sqlite_read_model: a throwing handler's writes are rolled back") {
    temp_db_file file;
    weft::scheduler sched(2);
    memory_store store;
    sqlite_read_model model(file.path);
    model.write([](sql_connection& db) {
        db.exec_script("CREATE TABLE seen(position INTEGER PRIMARY KEY, stream TEXT NOT NULL);"
                       "CREATE TABLE balances(account TEXT PRIMARY KEY, cents INTEGER NOT NULL, "
                       "events INTEGER NOT NULL);");
    });
    fill(store, 40, 3, 5);
    const log_position poison =
        store.append("account-0", expected_version::any(), {deposit(1, "poisoned")}).last_position;
    const log_position head = fill(store, 40, 3, 6);

    // Writes two rows, then throws for the poisoned event: neither row may stay.
    auto handle = [](sql_connection& db, const recorded_event& e) {
        db.exec("INSERT INTO seen(position, stream) VALUES (?1, ?2)", e.position, e.stream);
        apply_deposit(db, e);
        if (e.type == "poisoned")
            throw std::runtime_error("poisoned event " + std::to_string(e.position));
    };
    auto seen = [&] {
        return model.read([](sql_connection& db) {
            std::vector<log_position> out;
            for (auto& [p] : db.query<log_position>("SELECT position FROM seen ORDER BY position"))
                out.push_back(p);
            return out;
        });
    };
    auto positions = [](log_position from, log_position to) {
        std::vector<log_position> out;
        for (log_position p = from; p <= to; ++p)
            out.push_back(p);
        return out;
    };

    projection_options options;
    options.max_attempts = 3;
    options.first_backoff = 1ms;
    options.max_backoff = 2ms;
    projection_runner<memory_store> runner(sched, store);

    SECTION("dead-lettered: the event leaves no row, the others commit around it") {
        runner.add("seen", model.target("seen", handle), options);
        REQUIRE(runner.wait_for("seen", head, 60s));
        const auto dead = runner.dead_letters("seen");
        REQUIRE(dead.size() == 1);
        CHECK(dead[0].event.position == poison);
        CHECK(dead[0].attempts == 3);
        CHECK(dead[0].error == "poisoned event " + std::to_string(poison));
        const auto s = runner.status("seen");
        CHECK(s.retries == 2);
        CHECK(s.handled == head - 1);
        CHECK(s.checkpoint == head);
        CHECK(model.checkpoint("seen") == head);
        std::vector<log_position> want = positions(1, head);
        want.erase(want.begin() + static_cast<std::ptrdiff_t>(poison - 1));
        CHECK(seen() == want);
        balances b = expected_balances(store, head);
        b["account-0"].first -= 1;
        b["account-0"].second -= 1;
        CHECK(read_balances(model) == b);
    }
    SECTION("policy stop: the batch commits up to the event before, nothing of it") {
        options.on_failure = weft::es::failure_policy::stop;
        runner.add("seen", model.target("seen", handle), options);
        CHECK_FALSE(runner.wait_for("seen", head, 60s));
        const auto s = runner.status("seen");
        CHECK(s.state == weft::es::projection_state::failed);
        CHECK(s.error.find("poisoned event") != std::string::npos);
        CHECK(s.retries == 2);
        CHECK(s.checkpoint == poison - 1);
        CHECK(model.checkpoint("seen") == poison - 1);
        CHECK(seen() == positions(1, poison - 1));
        CHECK(read_balances(model) == expected_balances(store, poison - 1));
    }
}

TEST_CASE("sqlite_read_model: rebuild yields the same table as live processing") {
    temp_db_file file;
    weft::scheduler sched(2);
    memory_store store;
    sqlite_read_model model(file.path);
    create_balances(model);
    const log_position head = fill(store, 500, 25, 7);

    projection_runner<memory_store> runner(sched, store);
    runner.add("balances", balances_target(model), small_batches(50));
    REQUIRE(runner.wait_for("balances", head, 60s));
    const balances live = read_balances(model);
    REQUIRE(live == expected_balances(store, head));

    runner.rebuild("balances");
    REQUIRE(runner.wait_for("balances", head, 60s));
    CHECK(read_balances(model) == live);
    CHECK(model.checkpoint("balances") == head);
    CHECK(runner.status("balances").handled == 2 * head);

    // From a position: clear_balances empties the table whatever `from` is, so after a
    // rebuild from head - 10 it holds the last 10 events only, and the checkpoint row agrees.
    runner.rebuild("balances", head - 10);
    REQUIRE(runner.wait_for("balances", head, 60s));
    balances tail;
    for (const recorded_event& e : store.read_all(head - 9, 10)) {
        tail[e.stream].first += std::stoll(e.payload);
        ++tail[e.stream].second;
    }
    CHECK(read_balances(model) == tail);
    CHECK(model.checkpoint("balances") == head);

    // A target without reset cannot be rebuilt: that would apply every event twice.
    runner.add("no reset", model.target("no reset", [](sql_connection&, const recorded_event&) {}));
    REQUIRE_THROWS_AS(runner.rebuild("no reset"), weft::es::projection_error);
    // A reset passed but empty is a mistake, not a target without reset.
    REQUIRE_THROWS_WITH(model.target("empty reset", apply_deposit, sqlite_read_model::resetter{}),
                        "weft::es: projection empty reset has an empty reset (leave it out for a "
                        "projection that cannot be rebuilt)");
}

// What target() returns is a projection_target with every member, reset only when rebuildable.
template <class T>
constexpr bool has_reset = requires(T& t) {
    t.reset(log_position{});
};
static_assert(weft::es::projection_target<sqlite_read_model::projection<true>>);
static_assert(weft::es::projection_target<sqlite_read_model::projection<false>>);
static_assert(has_reset<sqlite_read_model::projection<true>>);
static_assert(!has_reset<sqlite_read_model::projection<false>>);

TEST_CASE("sqlite_read_model: after wait_for(position) a reader sees that position's row") {
    temp_db_file file;
    weft::scheduler sched(2);
    memory_store store;
    sqlite_read_model model(file.path);
    create_balances(model);
    projection_runner<memory_store> runner(sched, store);
    runner.add("balances", balances_target(model));
    // Another stream keeps the projection busy meanwhile (a bounded amount).
    std::atomic<bool> stop{false};
    std::thread noise([&] {
        // relaxed: a stop flag; the join below orders everything else.
        for (int i = 0; i < 5000 && !stop.load(std::memory_order_relaxed); ++i)
            store.append("noise", expected_version::any(), {deposit(1)});
    });
    std::int64_t total = 0;
    bool all_seen = true;
    for (int i = 1; i <= 100 && all_seen; ++i) {
        total += i;
        const auto r = store.append("mine", expected_version::any(), {deposit(i)});
        all_seen = runner.wait_for("balances", r.last_position, 60s);
        const auto row = model.read([](sql_connection& db) {
            return db.query<std::int64_t, std::int64_t>(
                "SELECT cents, events FROM balances WHERE account = 'mine'");
        });
        all_seen = all_seen && row.size() == 1 && std::get<0>(row[0]) == total &&
                   std::get<1>(row[0]) == i && model.checkpoint("balances") >= r.last_position;
    }
    // relaxed: see above.
    stop.store(true, std::memory_order_relaxed);
    noise.join();
    CHECK(all_seen);
}

TEST_CASE("sqlite_read_model: a partitioned projection takes turns and stays exact") {
    temp_db_file file;
    weft::scheduler sched(4);
    memory_store store;
    sqlite_read_model model(file.path);
    create_balances(model);
    const log_position head = fill(store, 800, 40, 8);

    std::atomic<int> in_handler{0};
    std::atomic<int> most_at_once{0};
    auto handle = [&](sql_connection& db, const recorded_event& e) {
        // relaxed: counts only; the handler's mutex orders the calls, these observe it.
        const int now = in_handler.fetch_add(1, std::memory_order_relaxed) + 1;
        int most = most_at_once.load(std::memory_order_relaxed);
        while (now > most &&
               !most_at_once.compare_exchange_weak(most, now, std::memory_order_relaxed))
            ;
        apply_deposit(db, e);
        in_handler.fetch_sub(1, std::memory_order_relaxed);
    };
    projection_options options;
    options.partitioned = true;
    options.partitions = 8;
    options.batch = 100;
    projection_runner<memory_store> runner(sched, store);
    runner.add("balances", model.target("balances", handle, clear_balances), options);
    REQUIRE(runner.wait_for("balances", head, 60s));
    CHECK(read_balances(model) == expected_balances(store, head));
    // relaxed: the wait_for above already ordered every handler call before this.
    CHECK(most_at_once.load(std::memory_order_relaxed) == 1);
    CHECK(model.checkpoint("balances") == head);
}

TEST_CASE("sqlite_read_model: sql_connection binds and reads its types") {
    temp_db_file file;
    sqlite_read_model model(file.path);
    model.write([](sql_connection& db) {
        db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, i INTEGER, d REAL, s TEXT, n TEXT)");
        const std::string s = "from std::string";
        const std::string_view v = "from string_view";
        const char* null_text = nullptr;
        db.exec("INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5)", 1, std::int64_t{1} << 40, 2.5, s,
                nullptr);
        db.exec("INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5)", std::uint64_t{2}, -7, 0.25, v,
                std::optional<std::string>("some"));
        db.exec("INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5)", 3, true, 1.0, "literal", null_text);
        db.exec("INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5)", 4, std::optional<int>(), -1.5,
                std::string(), std::nullopt);
        CHECK(db.changes() == 1);
    });
    const auto rows = model.read([](sql_connection& db) {
        return db.query<int, std::optional<std::int64_t>, double, std::string,
                        std::optional<std::string>>("SELECT id, i, d, s, n FROM t ORDER BY id");
    });
    REQUIRE(rows.size() == 4);
    CHECK(rows[0] == std::make_tuple(1, std::optional<std::int64_t>(std::int64_t{1} << 40), 2.5,
                                     std::string("from std::string"),
                                     std::optional<std::string>()));
    CHECK(rows[1] == std::make_tuple(2, std::optional<std::int64_t>(-7), 0.25,
                                     std::string("from string_view"),
                                     std::optional<std::string>("some")));
    CHECK(rows[2] == std::make_tuple(3, std::optional<std::int64_t>(1), 1.0, std::string("literal"),
                                     std::optional<std::string>()));
    CHECK(rows[3] == std::make_tuple(4, std::optional<std::int64_t>(), -1.5, std::string(),
                                     std::optional<std::string>()));
    model.read([](sql_connection& db) {
        CHECK(db.query_value<std::string>("SELECT s FROM t WHERE id = ?1", 3) == "literal");
        CHECK_FALSE(db.query_value<std::string>("SELECT s FROM t WHERE id = ?1", 99));
        CHECK(db.query_value<bool>("SELECT i FROM t WHERE id = 3") == true);
        // The same statement again, from its cache, with new arguments.
        CHECK(db.query_value<std::string>("SELECT s FROM t WHERE id = ?1", 1) ==
              "from std::string");
    });
}

TEST_CASE("sqlite_read_model: SQL errors name the file and SQLite's reason, bugs are "
          "logic errors") {
    temp_db_file file;
    sqlite_read_model model(file.path);
    model.write([](sql_connection& db) { db.exec("CREATE TABLE t(x INTEGER)"); });

    // A failing write() rolls back what it did before the error.
    try {
        model.write([](sql_connection& db) {
            db.exec("INSERT INTO t VALUES (1)");
            db.exec("INSERT INTO nope VALUES (1)");
        });
        FAIL("no error for a missing table");
    } catch (const store_error& e) {
        const std::string message = e.what();
        CHECK(message.find(file.path) != std::string::npos);
        CHECK(message.find("no such table: nope") != std::string::npos);
        CHECK(message.find("INSERT INTO nope") != std::string::npos);
    }
    CHECK(model.read([](sql_connection& db) {
        return db.query_value<std::int64_t>("SELECT count(*) FROM t");
    }) == 0);

    // Readers cannot write.
    REQUIRE_THROWS_AS(model.read([](sql_connection& db) { db.exec("INSERT INTO t VALUES (2)"); }),
                      store_error);

    model.write([](sql_connection& db) {
        REQUIRE_THROWS_AS(db.exec("INSERT INTO t VALUES (?1)"), std::invalid_argument);
        REQUIRE_THROWS_AS(db.exec("INSERT INTO t VALUES (?1)", 1, 2), std::invalid_argument);
        REQUIRE_THROWS_AS(db.exec("INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)"),
                          std::invalid_argument);
        REQUIRE_THROWS_AS(db.exec("INSERT INTO t VALUES (?1)", ~std::uint64_t{0}),
                          std::out_of_range);
        db.exec_script("INSERT INTO t VALUES (1); INSERT INTO t VALUES (2);");
        db.exec("INSERT INTO t VALUES (3);  -- a comment is not a statement");
        db.exec("INSERT INTO t VALUES (?1)", std::string_view()); // '' (0), not NULL
    });
    CHECK(model.read([](sql_connection& db) {
        return db.query<std::int64_t, std::int64_t>("SELECT sum(x), count(x) FROM t");
    }) == std::vector{std::tuple<std::int64_t, std::int64_t>(6, 4)});
    REQUIRE_THROWS_AS(model.target("x", {}), weft::es::projection_error);
}

TEST_CASE("sqlite_read_model: a file that is not a SQLite database is refused and left "
          "unchanged") {
    temp_db_file file;
    std::string garbage = "this is not a database, it is a shopping list: eggs, milk\n";
    for (int i = 0; i < 200; ++i)
        garbage += static_cast<char>(i * 37);
    {
        std::ofstream out(file.path, std::ios::binary);
        out << garbage;
    }
    try {
        sqlite_read_model model(file.path);
        FAIL("opened a file that is not a database");
    } catch (const store_error& e) {
        const std::string message = e.what();
        CHECK(message.find(file.path) != std::string::npos);
        CHECK(message.find("not a SQLite database") != std::string::npos);
    }
    CHECK(file_bytes(file.path) == garbage);
    CHECK_FALSE(std::filesystem::exists(file.path + "-wal"));
}

TEST_CASE("sqlite_read_model: a sqlite_store can still be created in a file that holds only "
          "its checkpoints") {
    temp_db_file file;
    {
        sqlite_read_model model(file.path); // creates weft_checkpoints in a new file
    }
    sqlite_store store(file.path);
    const auto r = store.append("s", weft::es::expected_version::no_stream(),
                                std::vector<weft::es::event_data>(2));
    CHECK(r.last_position == 2);
    sqlite_read_model model(file.path);
    CHECK(model.checkpoint("nobody") == 0);
}

TEST_CASE("sqlite_read_model: shares a file with the sqlite_store it projects, leaving the "
          "store's tables alone") {
    temp_db_file file;
    weft::scheduler sched(2);
    log_position head = 0;
    std::vector<recorded_event> before;
    {
        sqlite_store store(file.path); // first: a store refuses a file with other tables
        fill(store, 300, 10, 9);
        sqlite_read_model model(file.path);
        create_balances(model);
        projection_runner<sqlite_store> runner(sched, store);
        runner.add("balances", balances_target(model), small_batches(32));
        // Appends and the projection's batches take turns at the file's write lock.
        head = fill(store, 300, 10, 10);
        REQUIRE(runner.wait_for("balances", head, 60s));
        CHECK(read_balances(model) == expected_balances(store, head));
        runner.rebuild("balances");
        REQUIRE(runner.wait_for("balances", head, 60s));
        CHECK(read_balances(model) == expected_balances(store, head));
        before = store.read_all(1, head);
    }
    sqlite_store store(file.path); // still a store, with every event
    CHECK(store.head_position() == head);
    const auto after = store.read_all(1, head);
    REQUIRE(after.size() == before.size());
    for (std::size_t i = 0; i < after.size(); ++i) {
        CHECK(after[i].event_id == before[i].event_id);
        CHECK(after[i].payload == before[i].payload);
    }
    sqlite_read_model model(file.path);
    CHECK(model.checkpoint("balances") == head);
    CHECK(read_balances(model) == expected_balances(store, head));
}

// ---- kill -9 -------------------------------------------------------------------------------

namespace {

struct child_process {
    pid_t pid = 0;
    int out = -1; // its stdout
};

child_process spawn_crash_child(const std::string& store_path, const std::string& model_path,
                                int batch) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    posix_spawn_file_actions_addclose(&actions, fds[1]);
    std::string child = WEFT_PROJECTION_CRASH_CHILD;
    std::string store_arg = store_path;
    std::string model_arg = model_path;
    std::string batch_arg = std::to_string(batch);
    char* argv[] = {child.data(), store_arg.data(), model_arg.data(), batch_arg.data(), nullptr};
    child_process c;
    // posix_spawn, not fork alone: this process has threads, the child must exec at once.
    const int spawned = posix_spawn(&c.pid, child.c_str(), &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    REQUIRE(spawned == 0);
    c.out = fds[0];
    return c;
}

// stream -> (events, total), and the checkpoint, as the crash child's read model holds them.
struct per_stream_model {
    std::map<std::string, std::pair<std::int64_t, std::int64_t>> rows;
    log_position checkpoint = 0;
};

per_stream_model read_per_stream(const std::string& path) {
    sqlite_read_model model(path);
    per_stream_model m;
    m.checkpoint = model.checkpoint("per_stream");
    model.read([&](sql_connection& db) {
        const bool has_table =
            db.query_value<std::int64_t>("SELECT count(*) FROM sqlite_master WHERE name = ?1",
                                         "per_stream") == 1;
        if (!has_table)
            return;
        for (auto& [stream, events, total] : db.query<std::string, std::int64_t, std::int64_t>(
                 "SELECT stream, events, total FROM per_stream"))
            m.rows[stream] = {events, total};
    });
    return m;
}

// The rows a correct projection of the events up to `up_to` holds, from the log itself.
std::map<std::string, std::pair<std::int64_t, std::int64_t>>
rebuild_per_stream(const std::vector<recorded_event>& log, log_position up_to) {
    std::map<std::string, std::pair<std::int64_t, std::int64_t>> rows;
    for (const recorded_event& e : log) {
        if (e.position > up_to)
            break;
        auto& [events, total] = rows[e.stream];
        ++events;
        total += std::stoll(e.payload);
    }
    return rows;
}

} // namespace

TEST_CASE("sqlite_read_model: after kill -9 at random moments every event takes effect "
          "exactly once") {
    temp_db_file store_file;
    temp_db_file model_file;
    const std::uint32_t seed = std::random_device{}();
    INFO("seed " << seed);
    std::mt19937 rng(seed);

    // 20,000 events over 100 streams, interleaved in the log.
    constexpr log_position k_events = 20'000;
    std::vector<recorded_event> log;
    {
        weft::es::sqlite_options options;
        options.durability = weft::es::durability::off; // closing checkpoints it anyway
        sqlite_store store(store_file.path, options);
        std::vector<weft::future<weft::es::append_result>> pending;
        for (int round = 0; round < 20; ++round) {
            for (int s = 0; s < 100; ++s) {
                std::vector<event_data> batch;
                for (int i = 0; i < 10; ++i)
                    batch.push_back(deposit(1 + static_cast<std::int64_t>(rng() % 1000)));
                pending.push_back(store.async_append("stream-" + std::to_string(s),
                                                     expected_version::any(), std::move(batch)));
            }
        }
        for (auto& f : pending)
            REQUIRE(f.get());
        REQUIRE(store.head_position() == k_events);
        log = store.read_all(1, k_events);
    }

    const int batches[] = {16, 64, 200};
    log_position last_checkpoint = 0;
    int kills = 0;
    bool finished = false;
    // Kill moments are drawn from [0, max_delay). A child that catches up before its kill
    // (a fast machine, no sanitizer) proves nothing about crashes: the model is then thrown
    // away and the rounds start over with a range a quarter as long, down to killing right
    // after "ready", which no machine outruns by 20,000 events.
    auto max_delay = std::chrono::milliseconds(150);
    for (int round = 0; round < 12 && !finished; ++round) {
        const int batch = batches[rng() % 3];
        const auto delay = std::chrono::milliseconds(
            max_delay.count() > 0 ? static_cast<long>(rng() % max_delay.count()) : 0);
        INFO("round " << round << ": batch " << batch << ", kill " << delay.count()
                      << " ms after ready");
        child_process c = spawn_crash_child(store_file.path, model_file.path, batch);
        std::string text;
        const bool ready = read_until(c.out, text, "ready\n", 60s);
        if (ready)
            std::this_thread::sleep_for(delay); // a random moment, not a synchronization
        ::kill(c.pid, SIGKILL);
        int status = 0;
        ::waitpid(c.pid, &status, 0);
        read_until(c.out, text, "never written", 2000ms); // the rest, up to EOF
        ::close(c.out);
        INFO("child output: " << text);
        REQUIRE(ready);
        if (WIFEXITED(status)) {
            REQUIRE(WEXITSTATUS(status) == 0); // it finished before the kill
            finished = true;
        } else {
            REQUIRE(WIFSIGNALED(status));
            REQUIRE(WTERMSIG(status) == SIGKILL);
            ++kills;
        }

        // Whatever the moment: the rows are exactly the events up to the checkpoint.
        const per_stream_model m = read_per_stream(model_file.path);
        INFO("checkpoint " << m.checkpoint);
        REQUIRE(m.checkpoint >= last_checkpoint);
        REQUIRE(m.checkpoint <= k_events);
        REQUIRE(m.rows == rebuild_per_stream(log, m.checkpoint));
        last_checkpoint = m.checkpoint;
        if (finished && kills == 0) {
            model_file.remove_all();
            last_checkpoint = 0;
            max_delay /= 4;
            finished = false;
        }
    }
    REQUIRE(kills > 0);

    // Let it finish.
    if (!finished) {
        child_process c = spawn_crash_child(store_file.path, model_file.path, 64);
        std::string text;
        const bool done = read_until(c.out, text, "done\n", 120s);
        if (!done)
            ::kill(c.pid, SIGKILL);
        int status = 0;
        ::waitpid(c.pid, &status, 0);
        ::close(c.out);
        INFO("child output: " << text);
        REQUIRE(done);
        REQUIRE(WIFEXITED(status));
        REQUIRE(WEXITSTATUS(status) == 0);
    }
    const per_stream_model m = read_per_stream(model_file.path);
    CHECK(m.checkpoint == k_events);
    CHECK(m.rows.size() == 100);
    CHECK(m.rows == rebuild_per_stream(log, k_events));
}
