// weft::es::sqlite_store and sqlite_read_model on hostile files (issue 14): a truncated main file,
// with or without its -wal, is refused untouched or opens whole; a schema_version that is not
// a plain integer is refused; a process killed while creating a file leaves one that opens;
// many processes creating one new file at once all succeed; a file in rollback-journal mode
// (a VACUUM INTO backup) is switched to WAL, so readers never block an append.
#include "catch_compat.hpp"
#include "sqlite_test_support.hpp"
#include "test_support.hpp"

#include <weft/es/sqlite_read_model.hpp>
#include <weft/es/sqlite_store.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

extern char** environ;

using namespace std::chrono_literals;
using weft::es::event_data;
using weft::es::expected_version;
using weft::es::recorded_event;
using weft::es::sqlite_options;
using weft::es::sqlite_read_model;
using weft::es::sqlite_store;
using weft::es::store_error;
using weft_test::remove_db_files;
using weft_test::temp_db_file;

namespace {

std::string file_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_file(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << bytes;
}

// Runs SQL on a file with plain SQLite; returns the first column of the first row ("" if none).
std::string sql_value(const std::string& path, const char* sql) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    std::string value;
    int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW && sqlite3_column_text(stmt, 0))
            value = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    INFO(sqlite3_errmsg(db));
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    REQUIRE((rc == SQLITE_ROW || rc == SQLITE_DONE));
    return value;
}

event_data make_event(std::string id, std::string payload) {
    event_data e;
    e.type = "happened";
    e.payload = std::move(payload);
    e.event_id = std::move(id);
    return e;
}

std::vector<event_data> numbered_events(int from, int count) {
    std::vector<event_data> out;
    for (int i = from; i < from + count; ++i)
        out.push_back(make_event("ev-" + std::to_string(i),
                                 "payload-" + std::to_string(i) + std::string(200 + i % 50, 'p')));
    return out;
}

bool mentions_damage(const std::string& message) {
    for (const char* word : {"truncated", "corrupt", "not a SQLite database"})
        if (message.find(word) != std::string::npos)
            return true;
    return false;
}

// Opens the store image in `path` (a copy of a damaged store) and says what was wrong, or ""
// if it behaved: refused with a store_error naming the file and its damage and left every
// byte as it was, or opened with a prefix of `expected` at gapless positions, took an append,
// and passes integrity_check after closing.
std::string try_image(const std::string& path, const std::vector<event_data>& expected) {
    const std::string main_before = file_bytes(path);
    const bool had_wal = std::filesystem::exists(path + "-wal");
    const std::string wal_before = had_wal ? file_bytes(path + "-wal") : "";
    try {
        {
            sqlite_store store(path);
            const std::vector<recorded_event> all = store.read_all(1, SIZE_MAX);
            if (all.size() > expected.size())
                return "opened with more events than were written";
            for (std::size_t i = 0; i < all.size(); ++i)
                if (all[i].position != i + 1 || all[i].event_id != expected[i].event_id ||
                    all[i].payload != expected[i].payload)
                    return "opened, event " + std::to_string(i + 1) + " differs";
            if (store.head_position() != all.size())
                return "opened, head " + std::to_string(store.head_position()) + " but " +
                       std::to_string(all.size()) + " events";
            if (!store.append("after", expected_version::any(), {make_event("after", "x")}))
                return "opened, the append was refused";
        }
        const std::string check = sql_value(path, "PRAGMA integrity_check");
        if (check != "ok")
            return "opened and took an append, but integrity_check says " + check;
        return "";
    } catch (const store_error& e) {
        const std::string message = e.what();
        if (message.find(path) == std::string::npos || !mentions_damage(message))
            return "refused with an unclear message: " + message;
        if (file_bytes(path) != main_before)
            return "refused, but the main file was rewritten (" + message + ")";
        if (had_wal != std::filesystem::exists(path + "-wal") ||
            (had_wal && file_bytes(path + "-wal") != wal_before))
            return "refused, but the -wal was changed (" + message + ")";
        return "";
    }
}

// Page boundaries and an odd offset inside each page, from 0 up to `size`.
std::vector<std::size_t> cut_points(std::size_t size) {
    constexpr std::size_t page = 4096;
    std::vector<std::size_t> cuts;
    for (std::size_t k = 0; k * page < size; ++k) {
        cuts.push_back(k * page);
        cuts.push_back(k * page + 1 + (k * 977 + 99) % (page - 1));
    }
    cuts.push_back(size - 1);
    return cuts;
}

} // namespace

TEST_CASE("sqlite_store: a truncated main file, with or without its -wal, is refused untouched "
          "or opens whole") {
    temp_db_file base;
    const std::vector<event_data> first = numbered_events(0, 80);
    const std::vector<event_data> second = numbered_events(80, 80);
    std::vector<event_data> all = first;
    all.insert(all.end(), second.begin(), second.end());
    {
        sqlite_store store(base.path);
        REQUIRE(store.append("first", expected_version::no_stream(), first));
    }
    // A crash image: the main file as the last checkpoint left it and the -wal holding the
    // second batch (taken while the store is open, so nothing is checkpointed yet).
    std::string wal_main;
    std::string wal_log;
    {
        sqlite_store store(base.path);
        REQUIRE(store.append("second", expected_version::no_stream(), second));
        wal_main = file_bytes(base.path);
        wal_log = file_bytes(base.path + "-wal");
    }
    REQUIRE(wal_log.size() > 32);
    const std::string whole = file_bytes(base.path); // both batches, checkpointed
    REQUIRE_FALSE(std::filesystem::exists(base.path + "-wal"));
    REQUIRE(whole.size() >= 8 * 4096);

    temp_db_file image;
    std::vector<std::string> problems;
    int opened = 0;
    int refused = 0;
    auto run = [&](const std::string& main, const std::string* wal, const std::string& what) {
        image.remove_all();
        write_file(image.path, main);
        if (wal)
            write_file(image.path + "-wal", *wal);
        const std::string problem = try_image(image.path, all);
        if (!problem.empty())
            problems.push_back(what + ": " + problem);
        else if (std::filesystem::exists(image.path) && file_bytes(image.path) == main)
            ++refused;
        else
            ++opened;
    };
    for (std::size_t cut : cut_points(whole.size()))
        run(whole.substr(0, cut), nullptr, "main cut at " + std::to_string(cut) + ", no -wal");
    for (std::size_t cut : cut_points(wal_main.size()))
        run(wal_main.substr(0, cut), &wal_log,
            "main cut at " + std::to_string(cut) + " of " + std::to_string(wal_main.size()) +
                ", whole -wal");
    // The intact images open, so the sweep tells damage from health.
    run(whole, nullptr, "whole main, no -wal");
    run(wal_main, &wal_log, "whole main, whole -wal");

    std::string first_problems;
    for (std::size_t i = 0; i < problems.size() && i < 15; ++i)
        first_problems += "\n  " + problems[i];
    INFO(opened << " images opened, " << refused << " refused, " << problems.size()
                << " misbehaved; the first of those:" << first_problems);
    CHECK(problems.empty());
    CHECK(opened >= 2);
    CHECK(refused > 0);
}

TEST_CASE("sqlite_store: a schema_version that is not a plain integer is refused untouched") {
    for (const char* bad : {"1junk", "1.9", "", " 1", "01", "+1", "1e0", "-1", "0"}) {
        temp_db_file file;
        {
            sqlite_store store(file.path);
            store.append("s", expected_version::any(), {make_event("e", "x")});
        }
        const std::string sql =
            "UPDATE weft_meta SET value = '" + std::string(bad) + "' WHERE key = 'schema_version'";
        sql_value(file.path, sql.c_str());
        const std::string before = file_bytes(file.path);
        INFO("schema_version '" << bad << "'");
        try {
            sqlite_store store(file.path);
            FAIL_CHECK("opened a store with schema_version '" << bad << "'");
        } catch (const store_error& e) {
            const std::string message = e.what();
            CHECK(message.find(file.path) != std::string::npos);
            CHECK(message.find("schema_version") != std::string::npos);
        }
        CHECK(file_bytes(file.path) == before);
    }
}

// ---- child processes ----------------------------------------------------------------------

namespace {

struct child {
    pid_t pid = 0;
    int out = -1; // read end of its stdout
};

// Spawns the open child with `args`; its stdin is `in` (or the test's), its stdout a pipe.
child spawn_child(std::vector<std::string> args, int in = -1) {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0); // dup2 clears it on the child's stdout
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    if (in >= 0)
        posix_spawn_file_actions_adddup2(&actions, in, STDIN_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    posix_spawn_file_actions_addclose(&actions, fds[1]);
    std::string program = WEFT_SQLITE_OPEN_CHILD;
    std::vector<char*> argv{program.data()};
    for (std::string& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    child c;
    // posix_spawn, not fork alone: this process has threads, the child must exec at once.
    const int spawned =
        posix_spawn(&c.pid, program.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    REQUIRE(spawned == 0);
    c.out = fds[0];
    return c;
}

// Reads the child's stdout until `until` appears, EOF, or the deadline; returns what it read.
std::string read_output(const child& c, std::string_view until,
                        std::chrono::steady_clock::time_point deadline) {
    std::string text;
    while (std::chrono::steady_clock::now() < deadline &&
           (until.empty() || text.find(until) == std::string::npos)) {
        pollfd p{c.out, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0)
            continue;
        char buffer[256];
        const ssize_t n = ::read(c.out, buffer, sizeof buffer);
        if (n <= 0)
            break;
        text.append(buffer, static_cast<std::size_t>(n));
    }
    return text;
}

// Spawns a child that creates `what` (store or model) in `path` over and over, kills it
// `delay` after its first creation, and leaves the file as the kill found it.
void create_and_kill(const std::string& path, const char* what, std::chrono::microseconds delay) {
    child c = spawn_child({"create-loop", path, what});
    const std::string text = read_output(c, "created\n", std::chrono::steady_clock::now() + 60s);
    // The kill moment is the point of the test, not a synchronization: any moment must do.
    const auto kill_at = std::chrono::steady_clock::now() + delay;
    while (std::chrono::steady_clock::now() < kill_at) {
    }
    ::kill(c.pid, SIGKILL);
    int status = 0;
    ::waitpid(c.pid, &status, 0);
    ::close(c.out);
    INFO("child output: " << text);
    REQUIRE(text.find("created\n") != std::string::npos);
    REQUIRE(WIFSIGNALED(status));
}

} // namespace

TEST_CASE("sqlite_store: a store killed while being created opens again, empty") {
    const int rounds = 8 * weft_test::stress_rounds();
    for (int round = 0; round < rounds; ++round) {
        temp_db_file file;
        const auto delay = std::chrono::microseconds(round * 7919 % 12000);
        create_and_kill(file.path, "store", delay);
        const bool journal = std::filesystem::exists(file.path + "-journal");
        INFO("round " << round << ", killed " << delay.count() << " us after the first creation"
                      << (journal ? ", a -journal was left" : ""));
        try {
            sqlite_store store(file.path);
            CHECK(store.head_position() == 0);
            CHECK(store.append("s", expected_version::no_stream(), {make_event("e", "x")}));
        } catch (const store_error& e) {
            FAIL_CHECK("reopening failed: " << e.what());
        }
    }
}

TEST_CASE("sqlite_read_model: a model killed while being created opens again") {
    const int rounds = 4 * weft_test::stress_rounds();
    for (int round = 0; round < rounds; ++round) {
        temp_db_file file;
        const auto delay = std::chrono::microseconds(round * 7919 % 12000);
        create_and_kill(file.path, "model", delay);
        INFO("round " << round << ", killed " << delay.count() << " us after the first creation");
        try {
            sqlite_read_model model(file.path);
            CHECK(model.checkpoint("p") == 0);
        } catch (const store_error& e) {
            FAIL_CHECK("reopening failed: " << e.what());
        }
    }
}

TEST_CASE("sqlite_store: many processes creating one new file at once all append") {
    constexpr int processes = 16;
    const int rounds = weft_test::stress_rounds();
    for (int round = 0; round < rounds; ++round) {
        temp_db_file file;
        // Every child waits for EOF on this pipe, so they all start opening at once.
        int gate[2];
        REQUIRE(::pipe2(gate, O_CLOEXEC) == 0); // no child may hold the write end
        std::vector<child> children;
        for (int i = 0; i < processes; ++i)
            children.push_back(
                spawn_child({"append-one", file.path, "p-" + std::to_string(i)}, gate[0]));
        ::close(gate[0]);
        ::close(gate[1]);
        int succeeded = 0;
        std::set<std::string> positions;
        std::string failures;
        for (int i = 0; i < processes; ++i) {
            const std::string text =
                read_output(children[i], "", std::chrono::steady_clock::now() + 60s);
            int status = 0;
            ::waitpid(children[i].pid, &status, 0);
            ::close(children[i].out);
            if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && text.rfind("ok ", 0) == 0) {
                ++succeeded;
                positions.insert(text.substr(3));
            } else {
                failures += " child " + std::to_string(i) + " exited with status " +
                            std::to_string(status) + " (its stderr is above);";
            }
        }
        INFO("round " << round << failures);
        CHECK(succeeded == processes);
        CHECK(positions.size() == static_cast<std::size_t>(succeeded)); // each its own position
        sqlite_store store(file.path);
        CHECK(store.head_position() == static_cast<std::uint64_t>(succeeded));
        const auto events = store.read_all(1, SIZE_MAX);
        std::set<std::string> streams;
        for (const recorded_event& e : events) {
            streams.insert(e.stream);
            CHECK(e.version == 1);
        }
        CHECK(streams.size() == static_cast<std::size_t>(succeeded));
    }
}

namespace {

// A backup of `from` in `to` with VACUUM INTO: a new file in rollback-journal mode.
void vacuum_into(const std::string& from, const std::string& to) {
    const std::string sql = "VACUUM INTO '" + to + "'";
    sql_value(from, sql.c_str());
    REQUIRE(sql_value(to, "PRAGMA journal_mode") == "delete");
}

// A connection holding a read transaction (a snapshot) until it goes.
struct held_reader {
    sqlite3* db = nullptr;
    explicit held_reader(const std::string& path) {
        REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
        REQUIRE(sqlite3_exec(db, "BEGIN; SELECT count(*) FROM sqlite_master;", nullptr, nullptr,
                             nullptr) == SQLITE_OK);
    }
    held_reader(const held_reader&) = delete;
    held_reader& operator=(const held_reader&) = delete;
    ~held_reader() {
        sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
        sqlite3_close(db);
    }
};

} // namespace

TEST_CASE("sqlite_store: a store opened from a VACUUM INTO backup runs in WAL mode") {
    temp_db_file original;
    temp_db_file backup;
    {
        sqlite_store store(original.path);
        REQUIRE(store.append("s", expected_version::no_stream(), numbered_events(0, 10)));
    }
    vacuum_into(original.path, backup.path);
    sqlite_options options;
    options.busy_timeout = 1000ms; // what the append below would wait in rollback mode
    sqlite_store store(backup.path, options);
    CHECK(sql_value(backup.path, "PRAGMA journal_mode") == "wal");
    CHECK(store.head_position() == 10);
    held_reader reader(backup.path);
    const auto started = std::chrono::steady_clock::now();
    try {
        const auto r = store.append("s", expected_version::exactly(10), numbered_events(10, 1));
        CHECK(r.last_position == 11);
    } catch (const store_error& e) {
        FAIL_CHECK("append while a reader holds a snapshot failed: " << e.what());
    }
    // A WAL writer does not wait for readers at all; the busy timeout is 1 s.
    CHECK(std::chrono::steady_clock::now() - started < 900ms);
}

TEST_CASE("sqlite_read_model: a model opened from a VACUUM INTO backup runs in WAL mode") {
    temp_db_file original;
    temp_db_file backup;
    {
        sqlite_read_model model(original.path);
        model.write([](weft::es::sql_connection& db) {
            db.exec("CREATE TABLE t(x INTEGER)");
            db.exec("INSERT INTO t VALUES (1)");
        });
    }
    vacuum_into(original.path, backup.path);
    weft::es::sqlite_read_model_options options;
    options.busy_timeout = 1000ms;
    sqlite_read_model model(backup.path, options);
    CHECK(sql_value(backup.path, "PRAGMA journal_mode") == "wal");
    held_reader reader(backup.path);
    try {
        model.write([](weft::es::sql_connection& db) { db.exec("INSERT INTO t VALUES (2)"); });
    } catch (const store_error& e) {
        FAIL_CHECK("write while a reader holds a snapshot failed: " << e.what());
    }
    CHECK(model.read([](weft::es::sql_connection& db) {
        return db.query_value<std::int64_t>("SELECT count(*) FROM t");
    }) == 2);
}
