// weft::es::sqlite_store — a durable event store in one SQLite file (WAL mode). It keeps every
// guarantee of event_store (store.hpp) with the same results as memory_store for the same calls,
// and reopening the file gives back every acknowledged event at the same position.
//
//   weft::es::sqlite_store store("/var/lib/bank/events.db");
//   store.append("account-42", expected_version::no_stream(), {opened, deposited});
//
// One writer thread commits whatever appends are queued as one transaction (group commit): many
// concurrent appends cost one fsync, and each is still atomic and checked on its own. Reads use a
// small pool of connections and never wait for the writer (WAL readers see the last commit).
// Several processes may share the file: each transaction reads the head under SQLite's write
// lock, so positions stay gapless, and subscriptions see the other's appends within
// poll_interval. Link weft::sqlite (CMake) to use this header.
#pragma once

#include "detail/append_rules.hpp"
#include "detail/read_rules.hpp"
#include "detail/sqlite.hpp"
#include "durability.hpp"
#include "store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace weft::es {

struct sqlite_options {
    // What an append has survived when append() returns (durability.hpp).
    weft::es::durability durability = weft::es::durability::full;
    // At most this many events per group commit; a single bigger batch still commits alone.
    std::size_t max_batch = 4096;
    // At most this many connections for reads, opened on demand; a read waits for a free one.
    std::size_t reader_connections = 4;
    // How often a waiting subscription re-reads the file, to see another process's appends
    // (this process's appends wake it at once).
    std::chrono::milliseconds poll_interval{100};
    // How long a write or read waits for another process's lock before failing (store_error).
    std::chrono::milliseconds busy_timeout{5000};
    // Run PRAGMA quick_check when opening an existing store: finds corruption anywhere, but
    // reads the whole file. Without it, opening checks the file's shape (its header and size
    // against its -wal: a truncated file), the schema and the ends of each table.
    bool check_on_open = false;
};

class sqlite_store {
public:
    // Opens the store in `path`, creating the file and its schema if there is no file or it is
    // an empty database. Throws store_error, leaving the file untouched, if the file is not a
    // SQLite database, is another application's database, comes from a newer weft, or is corrupt.
    explicit sqlite_store(std::string path, sqlite_options options = {})
        : options_(options),
          shared_(std::make_shared<shared_state>(std::move(path), options.reader_connections,
                                                 options.busy_timeout)) {
        if (options_.max_batch == 0)
            options_.max_batch = 1;
        writer_db_ = open_writer(shared_->pool.path(), options_);
        writer_ = std::thread([this] { write_loop(); });
    }
    sqlite_store(const sqlite_store&) = delete;
    sqlite_store& operator=(const sqlite_store&) = delete;
    // Completes every queued write, then closes the file and ends every subscription (a
    // waiting next() returns empty).
    ~sqlite_store() {
        {
            std::lock_guard lock(queue_mutex_);
            stopping_ = true;
        }
        queue_ready_.notify_one();
        writer_.join();
        writer_db_.reset();
        shared_->signal().close();
    }

    // Blocks until the batch is committed (durable per options.durability). Throws
    // invalid_append for a bad batch, store_error when SQLite fails.
    append_result append(const std::string& stream, expected_version expected,
                         std::vector<event_data> events) {
        return async_append(stream, expected, std::move(events)).get();
    }
    // append that waits only until `ctx` is done: cancelled (nothing stored) if it was done
    // before the batch was queued; in_doubt if it was done while the writer had the batch (it
    // may still commit; give events ids to retry, see append_status). Throws as append().
    append_result append(const context& ctx, const std::string& stream, expected_version expected,
                         std::vector<event_data> events) {
        if (ctx.cancelled())
            return append_result{.status = append_status::cancelled};
        future<append_result> result = async_append(stream, expected, std::move(events));
        if (result.wait(ctx) == weft::status::cancelled)
            return append_result{.status = append_status::in_doubt};
        return result.get();
    }
    // Queues the batch for the writer; the future completes after the commit that holds it.
    future<append_result> async_append(const std::string& stream, expected_version expected,
                                       std::vector<event_data> events) {
        promise<append_result> done;
        future<append_result> result = done.get_future();
        std::exception_ptr error;
        try {
            detail::check_request(stream, events);
            assign_ids(events);
            enqueue(append_request{stream, expected, std::move(events), std::move(done)});
        } catch (...) {
            error = std::current_exception();
        }
        if (error) // after the catch block, so only the future refers to it (see weft::future)
            return make_exceptional_future<append_result>(std::move(error));
        return result;
    }

    std::vector<recorded_event> read_stream(const std::string& stream, stream_version from,
                                            read_direction direction, std::size_t max) const {
        std::vector<recorded_event> out;
        if (max == 0)
            return out;
        auto lease = shared_->pool.borrow();
        detail::sqlite_connection& db = lease.db();
        detail::sqlite_read_transaction snapshot_of_both(db); // metadata and events agree
        std::optional<stream_metadata> meta = read_metadata(db, stream);
        if (!meta)
            return out;
        const timestamp now = now_utc();
        // The SQL filter is detail::visible's test, so `max` counts visible events only;
        // visible() below re-checks with the same `now`.
        const std::int64_t min_version =
            detail::sqlite_clamp(meta->truncate_before ? *meta->truncate_before : 0);
        const std::int64_t min_recorded_at = meta->max_age
                                                 ? (now - *meta->max_age).time_since_epoch().count()
                                                 : std::numeric_limits<std::int64_t>::min();
        const bool forward = direction == read_direction::forward;
        detail::sqlite_statement q(db, forward ? std::string_view(k_read_stream_forward)
                                               : k_read_stream_backward);
        q.bind(1, stream).bind(2, detail::sqlite_clamp(from)).bind(3, min_version);
        q.bind(4, min_recorded_at);
        while (out.size() < max && q.step()) {
            recorded_event e = detail::sqlite_event_from_row(q);
            if (detail::visible(*meta, e, now))
                out.push_back(std::move(e));
        }
        return out;
    }

    std::vector<recorded_event> read_all(log_position from, std::size_t max) const {
        return shared_->read_all(from, max);
    }

    log_position head_position() const {
        auto lease = shared_->pool.borrow();
        return read_head(lease.db());
    }

    stream_version version_of(const std::string& stream) const {
        auto lease = shared_->pool.borrow();
        return read_version(lease.db(), stream);
    }

    // Reads from `from` on; wakes at once for this store's commits, polls for other processes'.
    subscription subscribe_all(log_position from) {
        return subscription(shared_, from, options_.poll_interval);
    }

    std::optional<recorded_event> find_event(const std::string& event_id) const {
        auto lease = shared_->pool.borrow();
        detail::sqlite_statement q(lease.db(), k_find_event);
        q.bind(1, event_id);
        if (!q.step())
            return std::nullopt;
        return detail::sqlite_event_from_row(q);
    }

    // Blocks until the metadata is committed, in order with the appends queued before it.
    void set_stream_metadata(const std::string& stream, stream_metadata meta) {
        promise<void> done;
        future<void> result = done.get_future();
        enqueue(metadata_request{stream, meta, std::move(done)});
        result.get();
    }
    stream_metadata stream_metadata_of(const std::string& stream) const {
        auto lease = shared_->pool.borrow();
        return read_metadata(lease.db(), stream).value_or(stream_metadata{});
    }

    // Queued behind the appends before it and committed like them; returns without waiting.
    // load_snapshot sees it at once (a save that SQLite refuses is dropped: snapshots are a
    // cache, the events are the truth).
    void save_snapshot(snapshot snap) {
        std::uint64_t seq = 0;
        {
            std::lock_guard lock(pending_mutex_);
            seq = ++snapshot_seq_;
            pending_snapshots_.insert_or_assign(snap.stream, pending_snapshot{seq, snap});
        }
        enqueue(snapshot_request{std::move(snap), seq});
    }
    std::optional<snapshot> load_snapshot(const std::string& stream) const {
        {
            std::lock_guard lock(pending_mutex_);
            if (auto it = pending_snapshots_.find(stream); it != pending_snapshots_.end())
                return it->second.snap;
        }
        auto lease = shared_->pool.borrow();
        detail::sqlite_statement q(lease.db(), k_load_snapshot);
        q.bind(1, stream);
        if (!q.step())
            return std::nullopt;
        return snapshot{stream, static_cast<stream_version>(q.int64(0)),
                        static_cast<int>(q.int64(1)), q.blob(2)};
    }

    const std::string& path() const noexcept { return shared_->pool.path(); }
    // Write transactions committed so far by this store (appends share them: group commit).
    std::uint64_t commits() const noexcept {
        // relaxed: a statistic; it orders nothing.
        return commits_.load(std::memory_order_relaxed);
    }

private:
    struct append_request {
        std::string stream;
        expected_version expected;
        std::vector<event_data> events;
        promise<append_result> done;
    };
    struct metadata_request {
        std::string stream;
        stream_metadata meta;
        promise<void> done;
    };
    struct snapshot_request {
        snapshot snap;
        std::uint64_t seq; // which save_snapshot call; a later one replaces the pending entry
    };
    using write_request = std::variant<append_request, metadata_request, snapshot_request>;

    struct pending_snapshot {
        std::uint64_t seq;
        snapshot snap;
    };

    // The reader pool and the commit signal: shared with subscriptions, which may outlive the
    // store (they keep reading the file; the closed signal ends them).
    struct shared_state final : detail::log_source {
        shared_state(std::string path, std::size_t readers, std::chrono::milliseconds busy)
            : pool(std::move(path), readers, busy) {}

        std::vector<recorded_event> read_all(log_position from, std::size_t max) const override {
            std::vector<recorded_event> out;
            auto lease = pool.borrow();
            detail::sqlite_statement q(lease.db(), k_read_all);
            q.bind(1, detail::sqlite_clamp(from)).bind(2, detail::sqlite_clamp(max));
            while (q.step())
                out.push_back(detail::sqlite_event_from_row(q));
            return out;
        }

        detail::sqlite_reader_pool pool;
    };

    static constexpr const char* k_schema = R"sql(
CREATE TABLE weft_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO weft_meta(key, value) VALUES ('format', 'weft-event-store'), ('schema_version', '1');
CREATE TABLE events(
    position INTEGER PRIMARY KEY,
    stream TEXT NOT NULL,
    version INTEGER NOT NULL,
    event_id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    payload BLOB NOT NULL,
    correlation_id TEXT NOT NULL,
    causation_id TEXT NOT NULL,
    metadata TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    UNIQUE(stream, version));
CREATE TABLE streams(
    stream TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    max_age_ms INTEGER,
    truncate_before INTEGER);
CREATE TABLE snapshots(
    stream TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    schema_version INTEGER NOT NULL,
    payload BLOB NOT NULL);
)sql";
    static constexpr int k_schema_version = 1;

    static constexpr auto k_read_all =
        detail::sqlite_sql("SELECT ", detail::sqlite_event_columns,
                           " FROM events WHERE position >= ?1 ORDER BY position LIMIT ?2");
    static constexpr auto k_read_stream_forward =
        detail::sqlite_sql("SELECT ", detail::sqlite_event_columns,
                           " FROM events WHERE stream = ?1 AND version >= ?2 AND version >= ?3 "
                           "AND recorded_at >= ?4 ORDER BY version");
    static constexpr auto k_read_stream_backward =
        detail::sqlite_sql("SELECT ", detail::sqlite_event_columns,
                           " FROM events WHERE stream = ?1 AND version <= ?2 AND version >= ?3 "
                           "AND recorded_at >= ?4 ORDER BY version DESC");
    static constexpr auto k_find_event = detail::sqlite_sql("SELECT ", detail::sqlite_event_columns,
                                                            " FROM events WHERE event_id = ?1");
    static constexpr auto k_last_event = detail::sqlite_sql(
        "SELECT ", detail::sqlite_event_columns, " FROM events ORDER BY position DESC LIMIT 1");
    static constexpr std::string_view k_head = "SELECT max(position) FROM events";
    static constexpr std::string_view k_version = "SELECT version FROM streams WHERE stream = ?1";
    static constexpr std::string_view k_metadata =
        "SELECT max_age_ms, truncate_before FROM streams WHERE stream = ?1";
    static constexpr std::string_view k_load_snapshot =
        "SELECT version, schema_version, payload FROM snapshots WHERE stream = ?1";
    static constexpr std::string_view k_find_id =
        "SELECT stream, version, position FROM events WHERE event_id = ?1";
    static constexpr auto k_insert_event =
        detail::sqlite_sql("INSERT INTO events(", detail::sqlite_event_columns,
                           ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
    static constexpr std::string_view k_set_version =
        "INSERT INTO streams(stream, version) VALUES (?1, ?2) "
        "ON CONFLICT(stream) DO UPDATE SET version = excluded.version";
    static constexpr std::string_view k_set_metadata =
        "INSERT INTO streams(stream, version, max_age_ms, truncate_before) VALUES (?1, 0, ?2, ?3) "
        "ON CONFLICT(stream) DO UPDATE SET max_age_ms = excluded.max_age_ms, "
        "truncate_before = excluded.truncate_before";
    static constexpr std::string_view k_save_snapshot =
        "INSERT INTO snapshots(stream, version, schema_version, payload) VALUES (?1, ?2, ?3, ?4) "
        "ON CONFLICT(stream) DO UPDATE SET version = excluded.version, "
        "schema_version = excluded.schema_version, payload = excluded.payload";

    // ---- opening ----------------------------------------------------------------------------

    static std::int64_t read_int(detail::sqlite_connection& db, std::string_view sql) {
        detail::sqlite_statement q(db, sql);
        return q.step() ? q.int64(0) : 0;
    }

    // Checks that `db` holds a weft store this weft can read; false if it holds nothing at all
    // (no schema objects: a new file). Only reads.
    static bool check_store(detail::sqlite_connection& db, bool full_check) {
        const std::string& path = db.path();
        // Nothing there yet but (possibly) a sqlite_read_model's checkpoints and dead letters:
        // a new store.
        if (read_int(db, "SELECT count(*) FROM sqlite_master WHERE tbl_name NOT IN "
                         "('weft_checkpoints', 'weft_dead_letters')") == 0)
            return false;
        if (read_int(db, "SELECT count(*) FROM sqlite_master "
                         "WHERE type = 'table' AND name = 'weft_meta'") == 0)
            throw store_error("weft::es: " + path +
                              " is not a weft event store (no weft_meta table)");
        std::optional<std::string> format;
        std::optional<std::string> version;
        {
            detail::sqlite_statement q(db, "SELECT key, value FROM weft_meta");
            while (q.step()) {
                if (q.text(0) == "format")
                    format = q.text(1);
                else if (q.text(0) == "schema_version")
                    version = q.text(1);
            }
        }
        if (format != "weft-event-store")
            throw store_error("weft::es: " + path +
                              " is not a weft event store (weft_meta format is '" +
                              format.value_or("") + "')");
        // Strictly a plain decimal integer: '1junk' or '1.9' is damage, not version 1.
        const bool plain = version && !version->empty() && version->size() <= 9 &&
                           version->find_first_not_of("0123456789") == std::string::npos &&
                           (*version)[0] != '0';
        const long long schema = plain ? std::stoll(*version) : 0;
        if (schema > k_schema_version)
            throw store_error("weft::es: " + path + " has schema_version " + *version +
                              ", newer than this weft reads (" + std::to_string(k_schema_version) +
                              ")");
        if (schema < 1)
            throw store_error("weft::es: " + path + " is corrupt: an invalid schema_version '" +
                              version.value_or("") + "'");
        // The cheap probe: walk to the end of each table and index (where a truncated file
        // loses pages first) and read the last event whole.
        read_int(db, "SELECT max(event_id) FROM events");
        read_int(db, "SELECT max(stream) FROM events");
        read_int(db, "SELECT max(stream) FROM streams");
        read_int(db, "SELECT max(stream) FROM snapshots");
        {
            detail::sqlite_statement q(db, k_last_event);
            if (q.step())
                (void)detail::sqlite_event_from_row(q);
        }
        if (full_check) {
            detail::sqlite_statement q(db, "PRAGMA quick_check(1)");
            if (q.step() && q.text(0) != "ok")
                throw store_error("weft::es: " + path + " is corrupt (" + q.text(0) + ")");
        }
        return true;
    }

    // Looks before it writes: an existing file's shape (header, size, -wal) is checked, then
    // it is inspected through a read-only connection, and the schema is created only in a
    // database with nothing in it. Every store runs in WAL mode (a backup made by VACUUM INTO
    // is in rollback mode and is switched); a file that cannot switch is refused.
    static std::unique_ptr<detail::sqlite_connection> open_writer(const std::string& path,
                                                                  const sqlite_options& options) {
        return detail::sqlite_retry_while_busy(options.busy_timeout,
                                               [&] { return open_writer_once(path, options); });
    }
    static std::unique_ptr<detail::sqlite_connection>
    open_writer_once(const std::string& path, const sqlite_options& options) {
        bool is_store = false;
        detail::sqlite_probe_file(path, options.busy_timeout,
                                  [&](detail::sqlite_connection& probe) {
                                      is_store = check_store(probe, options.check_on_open);
                                  });
        auto db = std::make_unique<detail::sqlite_connection>(path, SQLITE_OPEN_READWRITE |
                                                                        SQLITE_OPEN_CREATE);
        db->set_busy_timeout(options.busy_timeout);
        {
            detail::sqlite_statement q(*db, "PRAGMA journal_mode = WAL");
            const std::string mode = q.step() ? q.text(0) : "";
            if (mode != "wal")
                throw store_error("weft::es: " + path + " cannot use WAL mode (journal_mode " +
                                  "stays '" + mode + "'; is its directory writable?)");
        }
        if (!is_store) {
            db->exec("BEGIN IMMEDIATE");
            try {
                // Another process may have created it (or something else) since we looked.
                if (!check_store(*db, false))
                    db->exec(k_schema);
                db->exec("COMMIT");
            } catch (...) {
                db->exec_quietly("ROLLBACK");
                throw;
            }
            check_store(*db, false);
        }
        db->exec(detail::sqlite_synchronous_pragma(options.durability));
        return db;
    }

    // ---- reads shared by the reader and writer connections ---------------------------------

    static log_position read_head(detail::sqlite_connection& db) {
        return static_cast<log_position>(read_int(db, k_head));
    }
    static stream_version read_version(detail::sqlite_connection& db, const std::string& stream) {
        detail::sqlite_statement q(db, k_version);
        q.bind(1, stream);
        return q.step() ? static_cast<stream_version>(q.int64(0)) : 0;
    }
    // Nothing if the stream has neither events nor metadata.
    static std::optional<stream_metadata> read_metadata(detail::sqlite_connection& db,
                                                        const std::string& stream) {
        detail::sqlite_statement q(db, k_metadata);
        q.bind(1, stream);
        if (!q.step())
            return std::nullopt;
        stream_metadata meta;
        if (!q.is_null(0))
            meta.max_age = std::chrono::milliseconds(q.int64(0));
        if (!q.is_null(1))
            meta.truncate_before = static_cast<stream_version>(q.int64(1));
        return meta;
    }

    // ---- the writer -------------------------------------------------------------------------

    // Every event of a checked batch gets an id (the writer looks repeats up by id).
    static void assign_ids(std::vector<event_data>& batch) {
        for (event_data& d : batch)
            if (d.event_id.empty())
                d.event_id = new_event_id();
    }

    void enqueue(write_request request) {
        {
            std::lock_guard lock(queue_mutex_);
            if (stopping_)
                throw store_error("weft::es: " + shared_->pool.path() + " is closing");
            queue_.push_back(std::move(request));
        }
        queue_ready_.notify_one();
    }

    static std::size_t weight(const write_request& r) {
        if (const auto* a = std::get_if<append_request>(&r))
            return std::max<std::size_t>(a->events.size(), 1);
        return 1;
    }

    // Takes everything queued (up to max_batch events) and commits it as one transaction.
    // Returns when the store is closing and the queue is drained.
    void write_loop() {
        for (;;) {
            std::vector<write_request> group;
            {
                std::unique_lock lock(queue_mutex_);
                queue_ready_.wait(lock, [&] { return !queue_.empty() || stopping_; });
                if (queue_.empty())
                    return;
                std::size_t events = 0;
                while (!queue_.empty() &&
                       (group.empty() || events + weight(queue_.front()) <= options_.max_batch)) {
                    events += weight(queue_.front());
                    group.push_back(std::move(queue_.front()));
                    queue_.pop_front();
                }
            }
            write_group(group);
        }
    }

    // What one request of a group came to; delivered only after the group's COMMIT.
    struct outcome {
        append_result result{};
        std::exception_ptr error;
    };

    void write_group(std::vector<write_request>& group) noexcept {
        detail::sqlite_connection& db = *writer_db_;
        std::vector<outcome> outcomes(group.size());
        log_position head = 0;
        std::exception_ptr group_error;
        try {
            db.exec("BEGIN IMMEDIATE");
            // Read under the write lock: another process sharing the file may have appended.
            head = read_head(db);
            // A group of one needs no savepoint: its failure rolls back the transaction.
            if (group.size() == 1)
                apply(db, group[0], head, outcomes[0]);
            for (std::size_t i = 0; group.size() > 1 && i < group.size(); ++i) {
                const log_position head_before = head;
                db.exec("SAVEPOINT request");
                try {
                    apply(db, group[i], head, outcomes[i]);
                    db.exec("RELEASE request");
                } catch (...) {
                    outcomes[i].error = std::current_exception();
                    head = head_before;
                    // Some errors (I/O, full disk) roll back the whole transaction: then the
                    // requests before this one are lost too, and the group fails below.
                    if (!db.in_transaction())
                        throw;
                    db.exec("ROLLBACK TO request");
                    db.exec("RELEASE request");
                }
            }
            db.exec("COMMIT");
        } catch (...) {
            group_error = std::current_exception();
        }
        if (group_error) {
            if (db.in_transaction())
                db.exec_quietly("ROLLBACK");
            // Nothing of the group is stored: every request fails (one rejected on its own
            // keeps its own reason). Each caller gets an exception object of its own, so none
            // is shared between threads (see weft::future).
            for (std::size_t i = 0; i < group.size(); ++i)
                outcomes[i].error = own_copy(outcomes[i].error ? outcomes[i].error : group_error);
            group_error = nullptr;
            deliver(group, outcomes);
            return;
        }
        // relaxed: a statistic; it orders nothing.
        commits_.fetch_add(1, std::memory_order_relaxed);
        deliver(group, outcomes);
        shared_->signal().publish(head);
    }

    // A new exception object with the type and message of `e` (for the types callers catch).
    static std::exception_ptr own_copy(const std::exception_ptr& e) noexcept {
        try {
            std::rethrow_exception(e);
        } catch (const invalid_append& x) {
            return std::make_exception_ptr(invalid_append(x.what()));
        } catch (const store_error& x) {
            return std::make_exception_ptr(store_error(x.what()));
        } catch (const std::exception& x) {
            return std::make_exception_ptr(store_error(x.what()));
        } catch (...) {
            return std::make_exception_ptr(store_error("weft::es: unknown error"));
        }
    }

    void apply(detail::sqlite_connection& db, write_request& request, log_position& head,
               outcome& out) {
        if (auto* a = std::get_if<append_request>(&request)) {
            out.result = apply_append(db, *a, head);
        } else if (auto* m = std::get_if<metadata_request>(&request)) {
            detail::sqlite_statement q(db, k_set_metadata);
            q.bind(1, m->stream);
            if (m->meta.max_age)
                q.bind(2, static_cast<std::int64_t>(m->meta.max_age->count()));
            if (m->meta.truncate_before)
                q.bind(3, detail::sqlite_clamp(*m->meta.truncate_before));
            q.run();
        } else {
            const snapshot& s = std::get<snapshot_request>(request).snap;
            detail::sqlite_statement q(db, k_save_snapshot);
            q.bind(1, s.stream).bind(2, detail::sqlite_clamp(s.version));
            q.bind(3, std::int64_t{s.schema_version}).bind_blob(4, s.payload);
            q.run();
        }
    }

    append_result apply_append(detail::sqlite_connection& db, append_request& r,
                               log_position& head) {
        if (auto repeat = find_repeat(db, r.stream, r.events))
            return *repeat;
        const stream_version current = read_version(db, r.stream);
        if (auto unwritten = detail::check_expected_version(r.expected, current, r.events.size()))
            return *unwritten;

        const std::int64_t now = now_utc().time_since_epoch().count();
        append_result result{
            .status = append_status::ok, .version = current, .first_position = head + 1};
        detail::sqlite_statement insert(db, k_insert_event);
        for (const event_data& d : r.events) {
            ++head;
            ++result.version;
            insert.bind(1, detail::sqlite_clamp(head)).bind(2, r.stream);
            insert.bind(3, detail::sqlite_clamp(result.version)).bind(4, d.event_id);
            insert.bind(5, d.type).bind(6, std::int64_t{d.schema_version});
            insert.bind_blob(7, d.payload).bind(8, d.correlation_id).bind(9, d.causation_id);
            insert.bind(10, d.metadata).bind(11, now);
            insert.run();
        }
        detail::sqlite_statement set_version(db, k_set_version);
        set_version.bind(1, r.stream).bind(2, detail::sqlite_clamp(result.version));
        set_version.run();
        result.last_position = head;
        return result;
    }

    // detail::find_repeat, looking each id up in the events table.
    static std::optional<append_result> find_repeat(detail::sqlite_connection& db,
                                                    const std::string& stream,
                                                    const std::vector<event_data>& batch) {
        detail::sqlite_statement q(db, k_find_id);
        return detail::find_repeat(
            stream, batch,
            [&](const std::string& id) -> std::optional<detail::stored_event_location> {
                q.reset();
                q.bind(1, id);
                if (!q.step())
                    return std::nullopt;
                return detail::stored_event_location{
                    .stream = q.text_view(0), // valid until the next reset: the next id
                    .version = static_cast<stream_version>(q.int64(1)),
                    .position = static_cast<log_position>(q.int64(2))};
            });
    }

    // Completes each caller's future (after the COMMIT, or after the rollback of a failed
    // group) and retires committed snapshots from the pending map.
    void deliver(std::vector<write_request>& group, std::vector<outcome>& outcomes) noexcept {
        for (std::size_t i = 0; i < group.size(); ++i) {
            outcome& o = outcomes[i];
            if (auto* a = std::get_if<append_request>(&group[i])) {
                if (o.error)
                    a->done.set_exception(std::move(o.error));
                else
                    a->done.set_value(o.result);
            } else if (auto* m = std::get_if<metadata_request>(&group[i])) {
                if (o.error)
                    m->done.set_exception(std::move(o.error));
                else
                    m->done.set_value();
            } else {
                // Stored or refused, it is no longer pending (a refused save leaves the older
                // stored snapshot, which is still a correct one).
                const auto& s = std::get<snapshot_request>(group[i]);
                std::lock_guard lock(pending_mutex_);
                auto it = pending_snapshots_.find(s.snap.stream);
                if (it != pending_snapshots_.end() && it->second.seq == s.seq)
                    pending_snapshots_.erase(it);
            }
        }
    }

    sqlite_options options_;
    std::shared_ptr<shared_state> shared_;
    std::unique_ptr<detail::sqlite_connection> writer_db_; // the writer thread's, once it runs

    std::mutex queue_mutex_;
    std::condition_variable queue_ready_;
    std::deque<write_request> queue_;
    bool stopping_ = false;

    mutable std::mutex pending_mutex_;
    std::unordered_map<std::string, pending_snapshot> pending_snapshots_;
    std::uint64_t snapshot_seq_ = 0;

    std::atomic<std::uint64_t> commits_{0};
    std::thread writer_; // last: starts after everything it uses exists
};

static_assert(event_store<sqlite_store>);

} // namespace weft::es
