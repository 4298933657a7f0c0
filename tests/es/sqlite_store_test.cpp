// weft::es::sqlite_store: the store conformance suite (store_conformance.hpp), then what the file
// adds: gives the same results as memory_store for the same random calls; reopening
// keeps everything; concurrent appends share commits and keep positions gapless; a file that is
// not a weft store (or is newer, or corrupt) is refused and left untouched; two stores on one
// file keep one gapless log; every acknowledged append survives kill -9.
#include "catch_compat.hpp"
#include "sqlite_test_support.hpp"
#include "store_conformance.hpp"

#include <weft/es/memory_store.hpp>
#include <weft/es/sqlite_store.hpp>

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

extern char** environ;

using namespace std::chrono_literals;
using weft::es::append_result;
using weft::es::append_status;
using weft::es::event_data;
using weft::es::expected_version;
using weft::es::log_position;
using weft::es::read_direction;
using weft::es::recorded_event;
using weft::es::sqlite_options;
using weft::es::sqlite_store;
using weft::es::store_error;
using weft::es::stream_version;

namespace {

using temp_store_file = weft_test::temp_db_file;
using weft_test::new_temp_db_path;
using weft_test::remove_db_files;

// For the conformance suite: a store in a new temp file, which goes when the store does.
struct delete_store_and_file {
    std::string path;
    void operator()(sqlite_store* store) const {
        delete store;
        remove_db_files(path);
    }
};
std::unique_ptr<sqlite_store, delete_store_and_file> open_in_temp_file() {
    std::string path = new_temp_db_path();
    return std::unique_ptr<sqlite_store, delete_store_and_file>(new sqlite_store(path),
                                                                delete_store_and_file{path});
}

std::string file_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_file(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << bytes;
}

// Runs SQL on a file with plain SQLite (another application, or a test editing the store).
void run_sql(const std::string& path, const char* sql) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    char* error = nullptr;
    const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &error);
    INFO((error ? error : ""));
    sqlite3_free(error);
    sqlite3_close(db);
    REQUIRE(rc == SQLITE_OK);
}

event_data make_event(std::string id, std::string payload, std::string type = "happened") {
    event_data e;
    e.type = std::move(type);
    e.payload = std::move(payload);
    e.event_id = std::move(id);
    return e;
}

void require_same_event(const recorded_event& a, const recorded_event& b) {
    CHECK(a.stream == b.stream);
    CHECK(a.version == b.version);
    CHECK(a.position == b.position);
    CHECK(a.event_id == b.event_id);
    CHECK(a.type == b.type);
    CHECK(a.schema_version == b.schema_version);
    CHECK(a.payload == b.payload);
    CHECK(a.correlation_id == b.correlation_id);
    CHECK(a.causation_id == b.causation_id);
    CHECK(a.metadata == b.metadata);
}

void require_same_events(const std::vector<recorded_event>& a,
                         const std::vector<recorded_event>& b) {
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i)
        require_same_event(a[i], b[i]);
}

void require_same_result(const append_result& a, const append_result& b) {
    CHECK(a.status == b.status);
    CHECK(a.version == b.version);
    CHECK(a.first_position == b.first_position);
    CHECK(a.last_position == b.last_position);
    CHECK(a.duplicate == b.duplicate);
}

// The whole log is positions 1..head with no gap, each stream's versions are 1..n, and
// version_of agrees.
void require_consistent_log(const sqlite_store& store) {
    const log_position head = store.head_position();
    const std::vector<recorded_event> all = store.read_all(1, SIZE_MAX);
    REQUIRE(all.size() == head);
    std::map<std::string, stream_version> versions;
    for (std::size_t i = 0; i < all.size(); ++i) {
        REQUIRE(all[i].position == i + 1);
        stream_version& v = versions[all[i].stream];
        REQUIRE(all[i].version == v + 1);
        v = all[i].version;
    }
    for (const auto& [stream, version] : versions)
        REQUIRE(store.version_of(stream) == version);
}

} // namespace

WEFT_STORE_CONFORMANCE_TESTS("sqlite_store", open_in_temp_file())

TEST_CASE("sqlite_store: a new file gets a weft schema and starts empty") {
    temp_store_file file;
    {
        sqlite_store store(file.path);
        CHECK(store.head_position() == 0);
        CHECK(store.version_of("nothing") == 0);
        CHECK(store.read_all(1, 10).empty());
        CHECK(store.path() == file.path);
    }
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(file.path.c_str(), &db) == SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, "SELECT key, value FROM weft_meta ORDER BY key", -1, &stmt,
                               nullptr) == SQLITE_OK);
    std::map<std::string, std::string> meta;
    while (sqlite3_step(stmt) == SQLITE_ROW)
        meta[reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0))] =
            reinterpret_cast<const char*>(sqlite3_column_text(stmt, 1));
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    CHECK(meta["format"] == "weft-event-store");
    CHECK(meta["schema_version"] == "1");
}

TEST_CASE("sqlite_store: reopening keeps positions, versions, ids, metadata and timestamps") {
    temp_store_file file;
    std::vector<recorded_event> before;
    {
        sqlite_store store(file.path);
        event_data a = make_event("id-a", std::string("bin\0ary", 7), "opened");
        a.schema_version = 3;
        a.correlation_id = "corr-1";
        a.causation_id = "cause-1";
        a.metadata = R"({"user":"ann"})";
        event_data b = make_event("", "", "deposited"); // id made by the store, empty payload
        REQUIRE(store.append("acct-1", expected_version::no_stream(), {a, b}).last_position == 2);
        REQUIRE(store.append("acct-2", expected_version::any(), {make_event("id-c", "c")}));
        REQUIRE(store.append("acct-1", expected_version::exactly(2), {make_event("id-d", "d")}));
        store.set_stream_metadata("acct-2", {std::chrono::hours(24), stream_version{1}});
        store.save_snapshot({"acct-1", 3, 2, "state@3"});
        before = store.read_all(1, 100);
        REQUIRE(before.size() == 4);
        CHECK(before[1].event_id.size() == 36);
        CHECK(before[1].payload.empty());
    }
    sqlite_store store(file.path);
    const std::vector<recorded_event> after = store.read_all(1, 100);
    require_same_events(before, after);
    for (std::size_t i = 0; i < before.size(); ++i)
        CHECK(before[i].recorded_at == after[i].recorded_at);
    CHECK(after[0].payload == std::string("bin\0ary", 7));
    CHECK(after[0].schema_version == 3);
    CHECK(after[0].metadata == R"({"user":"ann"})");
    CHECK(store.head_position() == 4);
    CHECK(store.version_of("acct-1") == 3);
    CHECK(store.version_of("acct-2") == 1);
    CHECK(store.stream_metadata_of("acct-2") ==
          weft::es::stream_metadata{std::chrono::hours(24), stream_version{1}});
    const auto snap = store.load_snapshot("acct-1");
    REQUIRE(snap);
    CHECK(snap->version == 3);
    CHECK(snap->schema_version == 2);
    CHECK(snap->payload == "state@3");
    // Appending after a reopen continues the log where it was.
    const append_result r =
        store.append("acct-1", expected_version::exactly(3), {make_event("id-e", "e")});
    CHECK(r.version == 4);
    CHECK(r.first_position == 5);
    // A retry of a batch stored before the reopen is still recognised.
    const append_result again =
        store.append("acct-1", expected_version::any(), {make_event("id-d", "d")});
    CHECK(again.duplicate);
    CHECK(again.first_position == 4);
    CHECK(again.version == 3);
}

TEST_CASE("sqlite_store: gives memory_store's results for the same random calls") {
    temp_store_file file;
    weft::es::memory_store memory;
    sqlite_store sql(file.path);
    std::mt19937 rng(20240611);
    auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
    const std::vector<std::string> streams{"s-0", "s-1", "s-2", "s-3"};
    std::map<std::string, std::vector<std::vector<event_data>>> stored_batches;
    int next_id = 0;
    auto new_batch = [&](int n) {
        std::vector<event_data> batch;
        for (int i = 0; i < n; ++i) {
            event_data e =
                make_event("id-" + std::to_string(next_id), "p" + std::to_string(next_id));
            ++next_id;
            e.correlation_id = "c" + std::to_string(pick(3));
            batch.push_back(e);
        }
        return batch;
    };

    // Both stores take the call; both return the same result or throw the same message.
    auto append_both = [&](const std::string& stream, expected_version expected,
                           const std::vector<event_data>& batch) {
        append_result from_memory;
        append_result from_sql;
        std::string memory_error = "none";
        std::string sql_error = "none";
        try {
            from_memory = memory.append(stream, expected, batch);
        } catch (const weft::es::invalid_append& e) {
            memory_error = e.what();
        }
        try {
            from_sql = sql.append(stream, expected, batch);
        } catch (const weft::es::invalid_append& e) {
            sql_error = e.what();
        }
        REQUIRE(memory_error == sql_error);
        require_same_result(from_memory, from_sql);
        if (from_memory && !from_memory.duplicate && !batch.empty() && memory_error == "none")
            stored_batches[stream].push_back(batch);
    };

    for (int step = 0; step < 600; ++step) {
        const std::string& stream = streams[static_cast<std::size_t>(pick(4))];
        const stream_version current = memory.version_of(stream);
        const int kind = pick(12);
        const auto& past = stored_batches[stream];
        if (kind <= 4) {
            const expected_version choices[] = {
                expected_version::any(),
                expected_version::no_stream(),
                expected_version::stream_exists(),
                expected_version::exactly(current),
                expected_version::exactly(current + 1),
                expected_version::exactly(current == 0 ? 0 : current - 1),
            };
            append_both(stream, choices[pick(6)], new_batch(pick(4)));
        } else if (kind == 5 && !past.empty()) {
            append_both(stream, expected_version::any(),
                        past[static_cast<std::size_t>(pick(static_cast<int>(past.size())))]);
        } else if (kind == 6 && !past.empty()) {
            auto batch = past[static_cast<std::size_t>(pick(static_cast<int>(past.size())))];
            batch.push_back(new_batch(1).front()); // part stored, part new
            append_both(stream, expected_version::any(), batch);
        } else if (kind == 7) {
            auto batch = new_batch(2);
            batch[1].event_id = batch[0].event_id; // one id twice
            append_both(stream, expected_version::any(), batch);
        } else if (kind == 8 && !past.empty()) {
            // A stored batch, retried on the wrong stream.
            const std::string& other = streams[(static_cast<std::size_t>(pick(3)) + 1 +
                                                static_cast<std::size_t>(&stream - &streams[0])) %
                                               streams.size()];
            append_both(other, expected_version::any(), past.front());
        } else if (kind == 9) {
            weft::es::stream_metadata meta;
            if (pick(2) == 0)
                meta.truncate_before = static_cast<stream_version>(pick(6));
            if (pick(3) == 0)
                meta.max_age = std::chrono::hours(1); // nothing here is that old
            memory.set_stream_metadata(stream, meta);
            sql.set_stream_metadata(stream, meta);
        } else if (kind == 10) {
            REQUIRE_THROWS_AS(memory.append("", expected_version::any(), new_batch(1)),
                              weft::es::invalid_append);
            REQUIRE_THROWS_AS(sql.append("", expected_version::any(), new_batch(1)),
                              weft::es::invalid_append);
        }

        // Reads agree after every call.
        const stream_version from_choices[] = {
            0, 1, 2, current, current + 1, current + 3, weft::es::stream_end};
        const stream_version from = from_choices[pick(7)];
        const auto direction = pick(2) == 0 ? read_direction::forward : read_direction::backward;
        const std::size_t max = static_cast<std::size_t>(pick(6));
        INFO("step " << step << " read_stream " << stream << " from " << from << " max " << max);
        require_same_events(memory.read_stream(stream, from, direction, max),
                            sql.read_stream(stream, from, direction, max));
        const log_position head = memory.head_position();
        REQUIRE(sql.head_position() == head);
        const log_position all_from = static_cast<log_position>(pick(static_cast<int>(head) + 3));
        require_same_events(memory.read_all(all_from, max), sql.read_all(all_from, max));
        REQUIRE(sql.version_of(stream) == memory.version_of(stream));
        REQUIRE(sql.stream_metadata_of(stream) == memory.stream_metadata_of(stream));
        const std::string id = "id-" + std::to_string(pick(next_id + 2));
        const auto a = memory.find_event(id);
        const auto b = sql.find_event(id);
        REQUIRE(a.has_value() == b.has_value());
        if (a)
            require_same_event(*a, *b);
    }
    require_same_events(memory.read_all(1, SIZE_MAX), sql.read_all(1, SIZE_MAX));
    CHECK(memory.head_position() > 100);
}

TEST_CASE("sqlite_store: max_age hides events older than the age from read_stream only") {
    temp_store_file file;
    sqlite_store store(file.path);
    store.append("old", expected_version::any(), {make_event("o1", "1"), make_event("o2", "2")});
    const weft::es::timestamp recorded = store.read_all(1, 1).front().recorded_at;
    // Wait for the clock (not for another thread) to pass the commit time.
    while (weft::es::now_utc() <= recorded)
        std::this_thread::yield();
    store.set_stream_metadata("old", {std::chrono::milliseconds(0), std::nullopt});
    CHECK(store.read_stream("old", 1, read_direction::forward, 10).empty());
    CHECK(store.read_all(1, 10).size() == 2); // still in the global log
    store.set_stream_metadata("old", {std::chrono::hours(1), std::nullopt});
    CHECK(store.read_stream("old", 1, read_direction::forward, 10).size() == 2);
}

TEST_CASE("sqlite_store: concurrent appends share commits, positions gapless, versions "
          "contiguous") {
    temp_store_file file;
    sqlite_store store(file.path);
    constexpr int threads = 8;
    constexpr int per_thread = 150;
    std::vector<std::vector<append_result>> results(threads);
    std::vector<std::thread> appenders;
    for (int t = 0; t < threads; ++t)
        appenders.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i) {
                // Two threads share each stream, so versions interleave.
                const std::string stream = "shared-" + std::to_string(t / 2);
                results[static_cast<std::size_t>(t)].push_back(store.append(
                    stream, expected_version::any(),
                    {make_event("t" + std::to_string(t) + "-" + std::to_string(i), "x")}));
            }
        });
    for (auto& a : appenders)
        a.join();

    std::set<log_position> positions;
    for (const auto& rs : results)
        for (const append_result& r : rs) {
            REQUIRE(r);
            REQUIRE(!r.duplicate);
            REQUIRE(r.first_position == r.last_position);
            positions.insert(r.first_position);
        }
    REQUIRE(positions.size() == threads * per_thread);
    CHECK(*positions.begin() == 1);
    CHECK(*positions.rbegin() == threads * per_thread);
    require_consistent_log(store);
    for (int s = 0; s < threads / 2; ++s)
        CHECK(store.version_of("shared-" + std::to_string(s)) == 2 * per_thread);
    INFO("commits: " << store.commits() << " for " << threads * per_thread << " appends");
    CHECK(store.commits() < static_cast<std::uint64_t>(threads * per_thread));
}

TEST_CASE("sqlite_store: queued appends to one stream see each other within a group") {
    temp_store_file file;
    sqlite_store store(file.path);
    std::vector<weft::future<append_result>> pending;
    // Each expects the version the one before it makes: right only if a group's requests see
    // the earlier requests' effects.
    for (stream_version v = 0; v < 300; ++v)
        pending.push_back(store.async_append("chain", expected_version::exactly(v),
                                             {make_event("chain-" + std::to_string(v), "x")}));
    for (stream_version v = 0; v < 300; ++v) {
        const append_result r = pending[v].get();
        REQUIRE(r);
        REQUIRE(r.version == v + 1);
        REQUIRE(r.first_position == v + 1);
    }
    INFO("commits: " << store.commits());
    CHECK(store.version_of("chain") == 300);
}

TEST_CASE("sqlite_store: readers share a bounded pool and never see a partial log") {
    temp_store_file file;
    sqlite_options options;
    options.reader_connections = 2; // fewer than the reading threads: some wait for a connection
    sqlite_store store(file.path, options);
    std::atomic<bool> done{false};
    std::atomic<int> bad{0};
    std::vector<std::thread> readers;
    for (int r = 0; r < 4; ++r)
        readers.emplace_back([&] {
            log_position last_head = 0;
            // acquire: pairs with the release store after the last append.
            while (!done.load(std::memory_order_acquire)) {
                const log_position head = store.head_position();
                const auto all = store.read_all(1, SIZE_MAX);
                bool ok = head >= last_head && all.size() >= head && all.size() % 2 == 0;
                for (std::size_t i = 0; i < all.size(); ++i)
                    ok = ok && all[i].position == i + 1;
                if (!ok)
                    bad.fetch_add(1, std::memory_order_relaxed); // relaxed: read after join
                last_head = head;
            }
        });
    for (int i = 0; i < 100; ++i) // batches of two: a reader sees both or neither
        store.append("pairs", expected_version::any(),
                     {make_event("p" + std::to_string(i) + "a", "a"),
                      make_event("p" + std::to_string(i) + "b", "b")});
    done.store(true, std::memory_order_release);
    for (auto& r : readers)
        r.join();
    CHECK(bad.load(std::memory_order_relaxed) == 0);
    CHECK(store.head_position() == 200);
}

TEST_CASE("sqlite_store: async appends are all completed before the destructor returns") {
    temp_store_file file;
    std::vector<weft::future<append_result>> pending;
    {
        sqlite_store store(file.path);
        for (int i = 0; i < 500; ++i)
            pending.push_back(store.async_append("s-" + std::to_string(i % 5),
                                                 expected_version::any(),
                                                 {make_event("a" + std::to_string(i), "x")}));
    }
    std::set<log_position> positions;
    for (auto& f : pending) {
        REQUIRE(f.ready());
        positions.insert(f.get().first_position);
    }
    CHECK(positions.size() == 500);
    sqlite_store store(file.path);
    CHECK(store.head_position() == 500);
    require_consistent_log(store);
}

TEST_CASE("sqlite_store: an append in a group that fails alone leaves the others stored") {
    temp_store_file file;
    sqlite_store store(file.path);
    store.append("s", expected_version::any(), {make_event("stored", "x")});
    std::vector<weft::future<append_result>> futures;
    futures.push_back(store.async_append("s", expected_version::any(), {make_event("n1", "1")}));
    // Partly stored: invalid_append for this one caller only.
    futures.push_back(store.async_append("s", expected_version::any(),
                                         {make_event("stored", "x"), make_event("n2", "2")}));
    futures.push_back(store.async_append("s", expected_version::exactly(99), {}));
    futures.push_back(store.async_append("s", expected_version::any(), {make_event("n3", "3")}));
    CHECK(futures[0].get().last_position == 2);
    REQUIRE_THROWS_AS(futures[1].get(), weft::es::invalid_append);
    const append_result wrong = futures[2].get();
    CHECK(wrong.status == append_status::wrong_expected_version);
    CHECK(wrong.version == 2);
    CHECK(futures[3].get().last_position == 3);
    require_consistent_log(store);
    CHECK_FALSE(store.find_event("n2"));
}

TEST_CASE("sqlite_store: snapshots keep the latest per stream and survive a reopen") {
    temp_store_file file;
    {
        sqlite_store store(file.path);
        CHECK_FALSE(store.load_snapshot("a"));
        store.save_snapshot({"a", 1, 1, "one"});
        store.save_snapshot({"a", 5, 1, "five"});
        store.save_snapshot({"b", 2, 1, "two"});
        REQUIRE(store.load_snapshot("a"));
        CHECK(store.load_snapshot("a")->payload == "five"); // seen at once, before its commit
    }
    sqlite_store store(file.path);
    CHECK(store.load_snapshot("a")->version == 5);
    CHECK(store.load_snapshot("b")->payload == "two");
    CHECK_FALSE(store.load_snapshot("c"));
}

TEST_CASE("sqlite_store: a subscription catches up, then sees new commits live") {
    temp_store_file file;
    sqlite_store store(file.path);
    for (int i = 0; i < 10; ++i)
        store.append("s", expected_version::any(), {make_event("e" + std::to_string(i), "x")});
    weft::es::subscription sub = store.subscribe_all(4);
    std::vector<log_position> seen;
    while (seen.size() < 7)
        for (const recorded_event& e : sub.next(3))
            seen.push_back(e.position);
    std::thread writer([&] {
        for (int i = 10; i < 30; ++i)
            store.append("s", expected_version::any(), {make_event("e" + std::to_string(i), "x")});
    });
    while (seen.size() < 27)
        for (const recorded_event& e : sub.next())
            seen.push_back(e.position);
    writer.join();
    for (std::size_t i = 0; i < seen.size(); ++i)
        REQUIRE(seen[i] == i + 4);
}

TEST_CASE("sqlite_store: a subscription outlives its store and ends empty") {
    temp_store_file file;
    std::optional<weft::es::subscription> sub;
    {
        sqlite_store store(file.path);
        store.append("s", expected_version::any(), {make_event("e", "x")});
        sub.emplace(store.subscribe_all(1));
        CHECK(sub->next().size() == 1);
    }
    CHECK(sub->next().empty());
    CHECK(sub->closed());
}

TEST_CASE("sqlite_store: two stores on one file keep one gapless log and see each other") {
    temp_store_file file;
    sqlite_options fast_poll;
    fast_poll.poll_interval = 5ms;
    sqlite_store first(file.path, fast_poll);
    sqlite_store second(file.path, fast_poll);
    weft::es::subscription sub = first.subscribe_all(1);
    constexpr int per_thread = 60;
    std::atomic<int> failed{0}; // Catch2 assertions are for the test's own thread
    std::vector<std::thread> appenders;
    for (int t = 0; t < 4; ++t)
        appenders.emplace_back([&, t] {
            sqlite_store& store = t % 2 == 0 ? first : second;
            for (int i = 0; i < per_thread; ++i) {
                const auto id = "t" + std::to_string(t) + "-" + std::to_string(i);
                if (!store.append("both", expected_version::any(), {make_event(id, "x")}))
                    failed.fetch_add(1, std::memory_order_relaxed); // relaxed: read after join
            }
        });
    // The subscription on `first` sees `second`'s commits too (by polling the file).
    log_position next = 1;
    while (next <= 4 * per_thread)
        for (const recorded_event& e : sub.next()) {
            REQUIRE(e.position == next);
            ++next;
        }
    for (auto& a : appenders)
        a.join();
    CHECK(failed.load(std::memory_order_relaxed) == 0);
    require_consistent_log(first);
    require_consistent_log(second);
    CHECK(second.version_of("both") == 4 * per_thread);
}

TEST_CASE("sqlite_store: every durability setting stores and reopens") {
    for (const auto level :
         {weft::es::durability::full, weft::es::durability::normal, weft::es::durability::off}) {
        temp_store_file file;
        sqlite_options options;
        options.durability = level;
        options.max_batch = 3;
        options.reader_connections = 1;
        {
            sqlite_store store(file.path, options);
            std::vector<weft::future<append_result>> pending;
            for (int i = 0; i < 20; ++i)
                pending.push_back(store.async_append("s", expected_version::any(),
                                                     {make_event("d" + std::to_string(i), "x")}));
            for (auto& f : pending)
                REQUIRE(f.get());
        }
        sqlite_store store(file.path, options);
        CHECK(store.head_position() == 20);
        require_consistent_log(store);
    }
}

TEST_CASE("sqlite_store: a file that is not a SQLite database is refused and left unchanged") {
    temp_store_file file;
    std::string garbage = "this is not a database, it is a shopping list: eggs, milk\n";
    for (int i = 0; i < 200; ++i)
        garbage += static_cast<char>(i * 37);
    write_file(file.path, garbage);
    REQUIRE_THROWS_AS(sqlite_store(file.path), store_error);
    try {
        sqlite_store store(file.path);
    } catch (const store_error& e) {
        const std::string message = e.what();
        CHECK(message.find(file.path) != std::string::npos);
        CHECK(message.find("not a SQLite database") != std::string::npos);
    }
    CHECK(file_bytes(file.path) == garbage);
    CHECK_FALSE(std::filesystem::exists(file.path + "-wal"));
}

TEST_CASE("sqlite_store: another application's database is refused and left unchanged") {
    temp_store_file file;
    run_sql(file.path, "CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT);"
                       "INSERT INTO customers(name) VALUES ('ann'), ('bob');");
    const std::string before = file_bytes(file.path);
    try {
        sqlite_store store(file.path);
        FAIL("opened another application's database");
    } catch (const store_error& e) {
        const std::string message = e.what();
        CHECK(message.find(file.path) != std::string::npos);
        CHECK(message.find("not a weft event store (no weft_meta table)") != std::string::npos);
    }
    CHECK(file_bytes(file.path) == before);
}

TEST_CASE("sqlite_store: a store from a newer weft (schema_version 2) is refused") {
    temp_store_file file;
    {
        sqlite_store store(file.path);
        store.append("s", expected_version::any(), {make_event("e", "x")});
    }
    run_sql(file.path, "UPDATE weft_meta SET value = '2' WHERE key = 'schema_version'");
    const std::string before = file_bytes(file.path);
    try {
        sqlite_store store(file.path);
        FAIL("opened a newer store");
    } catch (const store_error& e) {
        const std::string message = e.what();
        CHECK(message.find(file.path) != std::string::npos);
        CHECK(message.find("schema_version 2") != std::string::npos);
    }
    CHECK(file_bytes(file.path) == before);
}

TEST_CASE("sqlite_store: a truncated or corrupted store is refused, not a crash") {
    temp_store_file file;
    {
        sqlite_store store(file.path);
        std::vector<event_data> batch;
        for (int i = 0; i < 3000; ++i)
            batch.push_back(make_event("c" + std::to_string(i), std::string(200, 'p')));
        store.append("big", expected_version::any(), batch);
    }
    REQUIRE_FALSE(std::filesystem::exists(file.path + "-wal")); // checkpointed at close
    const std::string whole = file_bytes(file.path);
    REQUIRE(whole.size() > 400000);

    SECTION("truncated to half") {
        write_file(file.path, whole.substr(0, whole.size() / 2));
        try {
            sqlite_store store(file.path);
            FAIL("opened a truncated store");
        } catch (const store_error& e) {
            CHECK(std::string(e.what()).find(file.path) != std::string::npos);
        }
    }
    SECTION("garbage in the middle, found by check_on_open") {
        std::string damaged = whole;
        for (std::size_t i = whole.size() / 2; i < whole.size() / 2 + 5000; ++i)
            damaged[i] = static_cast<char>(i * 131);
        write_file(file.path, damaged);
        sqlite_options options;
        options.check_on_open = true;
        try {
            sqlite_store store(file.path, options);
            FAIL("opened a corrupted store");
        } catch (const store_error& e) {
            const std::string message = e.what();
            CHECK(message.find(file.path) != std::string::npos);
            CHECK(message.find("corrupt") != std::string::npos);
        }
    }
    SECTION("header overwritten") {
        std::string damaged = whole;
        for (std::size_t i = 0; i < 100; ++i)
            damaged[i] = 'z';
        write_file(file.path, damaged);
        REQUIRE_THROWS_AS(sqlite_store(file.path), store_error);
    }
}

// ---- kill -9 -------------------------------------------------------------------------------

namespace {

struct acknowledged {
    log_position position;
    std::string stream;
    stream_version version;
};

// Spawns the crash child on `path`, reads its acknowledgements, kills it `delay` after the
// first one and returns every acknowledgement it wrote (event id -> where it was stored).
std::unordered_map<std::string, acknowledged> run_and_kill(const std::string& path,
                                                           std::chrono::milliseconds delay) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    posix_spawn_file_actions_addclose(&actions, fds[1]);
    std::string child = WEFT_SQLITE_CRASH_CHILD;
    std::string file = path;
    std::string threads = "4";
    char* argv[] = {child.data(), file.data(), threads.data(), nullptr};
    pid_t pid = 0;
    // posix_spawn, not fork alone: this process has threads, the child must exec at once.
    const int spawned = posix_spawn(&pid, child.c_str(), &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    REQUIRE(spawned == 0);

    std::string text;
    auto read_some = [&](int timeout_ms) {
        pollfd p{fds[0], POLLIN, 0};
        if (::poll(&p, 1, timeout_ms) <= 0)
            return true; // nothing yet
        char buffer[4096];
        const ssize_t n = ::read(fds[0], buffer, sizeof buffer);
        if (n <= 0)
            return false; // EOF: the child is gone
        text.append(buffer, static_cast<std::size_t>(n));
        return true;
    };
    const auto give_up = std::chrono::steady_clock::now() + 60s;
    bool alive = true;
    while (alive && text.find('\n') == std::string::npos &&
           std::chrono::steady_clock::now() < give_up)
        alive = read_some(50);
    // The kill moment: `delay` after the first acknowledgement, reading all the while so the
    // child never waits on a full pipe.
    const auto kill_at = std::chrono::steady_clock::now() + delay;
    while (alive && std::chrono::steady_clock::now() < kill_at) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            kill_at - std::chrono::steady_clock::now());
        alive = read_some(static_cast<int>(std::max<std::int64_t>(left.count(), 0)));
    }
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    while (read_some(1000))
        ; // the rest of what it wrote, up to EOF
    ::close(fds[0]);
    INFO("crash child output: " << text.substr(0, 500));
    REQUIRE(WIFSIGNALED(status));
    REQUIRE(WTERMSIG(status) == SIGKILL);

    std::unordered_map<std::string, acknowledged> acks;
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        if (lines.eof())
            break; // no newline: not a whole acknowledgement (cannot happen, writes are atomic)
        std::istringstream fields(line);
        acknowledged a{};
        std::string id;
        fields >> a.position >> id >> a.stream >> a.version;
        REQUIRE(!id.empty());
        acks.emplace(id, a);
    }
    return acks;
}

} // namespace

TEST_CASE("sqlite_store: every acknowledged append survives kill -9") {
    temp_store_file file;
    std::unordered_map<std::string, acknowledged> all_acks;
    std::mt19937 rng(std::random_device{}());
    const int delays_ms[] = {0, 40, 90, 160, 280};
    for (int round = 0; round < 5; ++round) {
        const auto delay =
            std::chrono::milliseconds(delays_ms[round] + static_cast<int>(rng() % 20));
        const auto acks = run_and_kill(file.path, delay);
        INFO("round " << round << ", killed " << delay.count() << " ms after the first ack, "
                      << acks.size() << " acknowledged");
        REQUIRE(!acks.empty());
        all_acks.insert(acks.begin(), acks.end());

        sqlite_store store(file.path);
        require_consistent_log(store);
        for (const auto& [id, ack] : all_acks) {
            const auto e = store.find_event(id);
            REQUIRE(e);
            REQUIRE(e->position == ack.position);
            REQUIRE(e->stream == ack.stream);
            REQUIRE(e->version == ack.version);
        }
        // Nothing torn: every stored payload is whole and names its own event.
        for (const recorded_event& e : store.read_all(1, SIZE_MAX)) {
            const std::string prefix = "payload-of-" + e.event_id;
            REQUIRE(e.payload.compare(0, prefix.size(), prefix) == 0);
            REQUIRE(e.payload.find_first_not_of('x', prefix.size()) == std::string::npos);
            REQUIRE(e.payload.size() >= prefix.size() + 100);
        }
    }
}
