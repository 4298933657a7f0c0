// weft::es::sqlite_read_model — read models as tables in a SQLite file, kept by a
// projection_runner. A projection's changes and its checkpoint commit in one transaction, so
// each event takes effect exactly once, also across a crash (kill -9, power loss with the
// default durability): after a restart the projection resumes from the checkpoint that was
// committed with the last changes that were.
//
//   weft::es::sqlite_read_model model("/var/lib/bank/views.db");
//   model.write([](weft::es::sql_connection& db) {
//       db.exec("CREATE TABLE IF NOT EXISTS balances(account TEXT PRIMARY KEY, cents INTEGER)");
//   });
//   runner.add("balances", model.target("balances",
//       [](weft::es::sql_connection& db, const weft::es::recorded_event& e) {
//           if (e.type == "deposited")
//               db.exec("INSERT INTO balances VALUES (?1, ?2) ON CONFLICT(account) "
//                       "DO UPDATE SET cents = cents + excluded.cents", e.stream, cents_of(e));
//       },
//       [](weft::es::sql_connection& db) { db.exec("DELETE FROM balances"); }));
//   runner.wait_for("balances", r.last_position);   // the row is now visible to read()
//   auto cents = model.read([](weft::es::sql_connection& db) {
//       return db.query_value<std::int64_t>("SELECT cents FROM balances WHERE account = ?1",
//                                           "account-42");            // std::optional
//   });
//
// The file may be the event store's own (sqlite_store) or another one. The model adds the table
// weft_checkpoints(projection, position), weft_dead_letters once an event is parked, and touches
// no other table but those its handlers write. A sqlite_store refuses a file that holds other
// tables but no store (weft_checkpoints alone is fine), so when they share a file, open the
// sqlite_store before the handlers create their tables.
//
// Transactions: each target has its own writer connection. A batch of the runner is one
// BEGIN IMMEDIATE ... COMMIT holding SQLite's write lock; each event's handler runs inside a
// SAVEPOINT, so a handler that throws leaves no trace (the runner then retries it or parks it
// as a dead letter, and the batch commits without it). Other writers of the file (another
// target, write(), a sqlite_store's appends) wait for that lock up to busy_timeout. What a
// slow handler costs them: the runner commits before each back-off and once a batch's handlers
// have run for projection_options::max_batch_time (100 ms), then leaves the lock free for
// 25 ms, so they wait about that long (or for one handler call, if it takes longer). Keep
// their busy_timeout well above it.
//
// Dead letters: a parked event is stored in weft_dead_letters in the transaction that moves
// the checkpoint past it, so after a restart (also kill -9) it is a dead letter again; a
// rebuild's reset deletes them with the tables, and a retried one that succeeds is deleted in
// the transaction of its effects (one that fails again stays, its attempts counted).
//
// Not for partitioned projections: the handler is called under a mutex, so partitions would
// only take turns (no parallelism), and with failure_policy::stop the runner could commit a
// batch holding events past the checkpoint, which would be applied again after a restart. Use
// {.partitioned = false} (the default). Handlers must use the connection they are given:
// write() from a handler waits for the batch's write lock and fails after busy_timeout, and
// read() does not see the batch before it commits. retry_dead_letters() runs the handler in a
// transaction of its own while no batch is open (the runner stops a running projection for it
// and starts it again afterwards).
//
// Reads: read(fn) lends fn one connection of a small pool, inside a read transaction (one
// snapshot of the last commit). WAL readers never wait for the writer, nor it for them.
//
// Link weft::sqlite (CMake) to use this header.
#pragma once

#include "detail/sqlite.hpp"
#include "durability.hpp"
#include "projection.hpp"

#include <sqlite3.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace weft::es {

struct sqlite_read_model_options {
    // What a committed batch survives (PRAGMA synchronous on the writer connections).
    weft::es::durability durability = weft::es::durability::full;
    // How long a write or read waits for another connection's lock before failing (store_error).
    std::chrono::milliseconds busy_timeout{5000};
    // At most this many connections for read(), opened on demand; read() waits for a free one.
    std::size_t reader_connections = 4;
};

// One SQLite connection for handlers and queries. Arguments bind to ?1, ?2... in order:
// integers, bool, double, std::string / std::string_view / const char* (text; a null
// const char* is NULL), std::nullptr_t / std::nullopt (NULL), std::optional<T> (NULL when
// empty). Columns read as std::int64_t (or any integer type), bool, double, std::string, or
// std::optional of one of those (nullopt for NULL; otherwise NULL reads as 0 or "").
// Statements are prepared once and cached per connection. SQL errors throw store_error naming
// the file, the statement and SQLite's message; a wrong number of arguments, or several
// statements in one exec, throws std::invalid_argument (a bug in the caller).
// Used by one thread at a time; neither copyable nor movable.
class sql_connection {
public:
    // Opens `path` with sqlite3_open_v2 flags (SQLITE_OPEN_READWRITE, ...). A sqlite_read_model
    // opens its own; this is for tools and tests that need a plain connection.
    explicit sql_connection(std::string path, int flags = SQLITE_OPEN_READWRITE)
        : owned_(std::in_place, std::move(path), flags), db_(*owned_) {}
    sql_connection(const sql_connection&) = delete;
    sql_connection& operator=(const sql_connection&) = delete;

    // Runs one statement to its end (rows it returns are skipped).
    template <class... Args>
    void exec(std::string_view sql, const Args&... args) {
        detail::sqlite_statement s(db_, sql, detail::sqlite_errors::quote_sql);
        bind_all(s, args...);
        while (s.step()) {
        }
    }
    // Runs several `;`-separated statements without parameters (a schema, a migration).
    void exec_script(const std::string& sql) {
        char* error = nullptr;
        if (sqlite3_exec(db_.handle(), sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
            sqlite3_free(error); // the same text as sqlite3_errmsg, which fail() reports
            db_.fail(detail::sqlite_quoted(sql));
        }
    }
    // Every row, each as a tuple of Cols: query<std::string, std::int64_t>("SELECT a, b ...").
    template <class... Cols, class... Args>
    std::vector<std::tuple<Cols...>> query(std::string_view sql, const Args&... args) {
        static_assert(sizeof...(Cols) > 0, "query<Cols...>: name the column types");
        detail::sqlite_statement s(db_, sql, detail::sqlite_errors::quote_sql);
        bind_all(s, args...);
        std::vector<std::tuple<Cols...>> rows;
        while (s.step())
            rows.push_back(row<Cols...>(s, std::index_sequence_for<Cols...>{}));
        return rows;
    }
    // The first column of the first row, or nullopt when there is no row.
    template <class T, class... Args>
    std::optional<T> query_value(std::string_view sql, const Args&... args) {
        detail::sqlite_statement s(db_, sql, detail::sqlite_errors::quote_sql);
        bind_all(s, args...);
        if (!s.step())
            return std::nullopt;
        return column<T>(s, 0);
    }

    // True between BEGIN and COMMIT/ROLLBACK (SQLite may end a transaction itself on some
    // errors, such as a full disk).
    bool in_transaction() const noexcept { return db_.in_transaction(); }
    // Rows changed by the last INSERT, UPDATE or DELETE.
    std::int64_t changes() const noexcept { return sqlite3_changes(db_.handle()); }
    const std::string& path() const noexcept { return db_.path(); }
    sqlite3* native_handle() const noexcept { return db_.handle(); }

private:
    friend class sqlite_read_model;

    // A view of a connection owned elsewhere: a pooled reader, the probe of a file.
    explicit sql_connection(detail::sqlite_connection& db) noexcept : db_(db) {}

    template <class T>
    struct is_optional : std::false_type {};
    template <class T>
    struct is_optional<std::optional<T>> : std::true_type {};

    template <class... Args>
    static void bind_all(detail::sqlite_statement& s, const Args&... args) {
        const int wanted = s.parameter_count();
        if (static_cast<std::size_t>(wanted) != sizeof...(Args))
            throw std::invalid_argument("weft::es: " + detail::sqlite_quoted(s.sql()) + " takes " +
                                        std::to_string(wanted) + " arguments, given " +
                                        std::to_string(sizeof...(Args)));
        int i = 0;
        (bind(s, ++i, args), ...);
    }

    template <class T>
    static void bind(detail::sqlite_statement& s, int i, const T& value) {
        if constexpr (std::is_same_v<T, std::nullptr_t> || std::is_same_v<T, std::nullopt_t>) {
            s.bind_null(i);
        } else if constexpr (is_optional<T>::value) {
            if (value)
                bind(s, i, *value);
            else
                s.bind_null(i);
        } else if constexpr (std::is_same_v<T, bool>) {
            s.bind(i, std::int64_t{value ? 1 : 0});
        } else if constexpr (std::is_integral_v<T>) {
            if constexpr (std::is_unsigned_v<T> && sizeof(T) >= sizeof(std::int64_t)) {
                if (value > static_cast<T>(std::numeric_limits<std::int64_t>::max()))
                    throw std::out_of_range("weft::es: argument " + std::to_string(i) + " of " +
                                            detail::sqlite_quoted(s.sql()) +
                                            " does not fit a SQLite integer");
            }
            s.bind(i, static_cast<std::int64_t>(value));
        } else if constexpr (std::is_floating_point_v<T>) {
            s.bind_double(i, static_cast<double>(value));
        } else if constexpr (std::is_convertible_v<const T&, const char*>) {
            const char* text = value;
            if (text == nullptr)
                s.bind_null(i);
            else
                s.bind(i, std::string_view(text));
        } else {
            static_assert(std::is_convertible_v<const T&, std::string_view>,
                          "weft::es: an argument binds as an integer, bool, double, text, "
                          "nullptr or std::optional of one");
            // Not copied: the text outlives the statement's use, which ends before exec/query
            // returns.
            s.bind(i, std::string_view(value));
        }
    }

    template <class... Cols, std::size_t... I>
    static std::tuple<Cols...> row(const detail::sqlite_statement& s, std::index_sequence<I...>) {
        return std::tuple<Cols...>(column<Cols>(s, static_cast<int>(I))...);
    }

    template <class T>
    static T column(const detail::sqlite_statement& s, int i) {
        if constexpr (is_optional<T>::value) {
            if (s.is_null(i))
                return std::nullopt;
            return column<typename T::value_type>(s, i);
        } else if constexpr (std::is_same_v<T, bool>) {
            return s.int64(i) != 0;
        } else if constexpr (std::is_integral_v<T>) {
            return static_cast<T>(s.int64(i));
        } else if constexpr (std::is_floating_point_v<T>) {
            return static_cast<T>(s.real(i));
        } else {
            static_assert(std::is_same_v<T, std::string>,
                          "weft::es: a column reads as an integer, bool, double, "
                          "std::string or std::optional of one");
            return s.text(i);
        }
    }

    std::optional<detail::sqlite_connection> owned_; // empty for a view
    detail::sqlite_connection& db_;                  // *owned_, or the viewed connection
};

class sqlite_read_model {
    struct target_state; // a target's connection and state (the private part)

public:
    using handler = std::function<void(sql_connection&, const recorded_event&)>;
    using resetter = std::function<void(sql_connection&)>;

    // What target() returns: a projection_target with every member (projection.hpp says what
    // the runner expects of each), over a writer connection of its own. Rebuildable: it has
    // reset, given a resetter; one without cannot be rebuilt (that would apply every event
    // twice), and rebuild() refuses it. Copies share the connection, which lives as long as
    // the last of them (the runner keeps one for its projection).
    template <bool Rebuildable>
    class projection {
    public:
        void handle(const recorded_event& e) { state_->handle_event(e); }
        log_position load_checkpoint() { return state_->load_checkpoint(); }
        void begin_batch() { state_->begin_batch(); }
        void commit_batch(log_position checkpoint) { state_->commit_batch(checkpoint); }
        void rollback_batch() { state_->rollback_batch(); }
        void reset(log_position from) requires Rebuildable { state_->reset_to(from); }
        void park(const dead_letter& d) { state_->park(d); }
        std::vector<dead_letter> load_dead_letters() { return state_->load_dead_letters(); }
        void retry_dead_letter(const recorded_event& e) { state_->retry_dead_letter(e); }

    private:
        friend class sqlite_read_model;
        explicit projection(std::shared_ptr<target_state> state) : state_(std::move(state)) {}
        std::shared_ptr<target_state> state_;
    };

    // Opens (or creates) the database in `path`, in WAL mode (switching a file in rollback mode),
    // and creates weft_checkpoints if it is missing. Throws store_error, leaving the file
    // untouched, if it is not a SQLite database (or is truncated or corrupt, cannot use WAL
    // mode, or is locked past busy_timeout).
    explicit sqlite_read_model(std::string path, sqlite_read_model_options options = {})
        : path_(std::move(path)), options_(options),
          readers_(path_, options_.reader_connections, options_.busy_timeout) {
        writer_ =
            detail::sqlite_retry_while_busy(options_.busy_timeout, [this] { return open_model(); });
    }
    sqlite_read_model(const sqlite_read_model&) = delete;
    sqlite_read_model& operator=(const sqlite_read_model&) = delete;
    // Targets keep their own connection: a runner may outlive the model.
    ~sqlite_read_model() = default;

    // The target for runner.add(name, ...). `handle` applies one event through the connection
    // it is given, inside the batch's transaction; `reset` (for runner.rebuild) empties the
    // projection's tables: it runs in one transaction with setting the checkpoint to rebuild's
    // `from`. Opens a writer connection for the target; throws store_error if that fails, and
    // projection_error if `handle` (or a `reset` that is passed) is empty.
    projection<true> target(std::string name, handler handle, resetter reset) {
        return projection<true>(make_target(std::move(name), std::move(handle), std::move(reset),
                                            /*rebuildable=*/true));
    }
    // A target without reset: rebuild() refuses it.
    projection<false> target(std::string name, handler handle) {
        return projection<false>(
            make_target(std::move(name), std::move(handle), {}, /*rebuildable=*/false));
    }

    // Runs fn(sql_connection&) inside a read transaction on a pooled connection and returns
    // what fn returns. Sees the last commit; never waits for a writer (waits for a free
    // connection when all reader_connections are in use). Writes in fn fail (store_error).
    template <class Fn>
    std::invoke_result_t<Fn&, sql_connection&> read(Fn fn) const {
        auto lease = readers_.borrow();
        sql_connection db(lease.db());
        db.exec("BEGIN");
        // Declared after the lease, so it ends first: the snapshot closes, then the connection
        // goes back.
        struct end_read {
            sql_connection& db;
            ~end_read() {
                try {
                    db.exec("COMMIT"); // a read transaction: ends the snapshot, writes nothing
                } catch (...) {
                }
            }
        } snapshot{db};
        return fn(db);
    }

    // Runs fn(sql_connection&) in one write transaction (BEGIN IMMEDIATE) on the model's own
    // connection, for schemas and repairs: commits when fn returns, rolls back if it throws.
    // Waits up to busy_timeout for other writers (a projection's batch); not from a handler.
    template <class Fn>
    std::invoke_result_t<Fn&, sql_connection&> write(Fn fn) {
        std::lock_guard lock(writer_mutex_);
        sql_connection& db = *writer_;
        db.exec("BEGIN IMMEDIATE");
        try {
            if constexpr (std::is_void_v<std::invoke_result_t<Fn&, sql_connection&>>) {
                fn(db);
                db.exec("COMMIT");
            } else {
                auto result = fn(db);
                db.exec("COMMIT");
                return result;
            }
        } catch (...) {
            rollback_quietly(db);
            throw;
        }
    }

    // The checkpoint committed for `projection` (0 if none), as a reader sees it.
    log_position checkpoint(const std::string& projection) const {
        return read([&](sql_connection& db) {
            return static_cast<log_position>(
                db.query_value<std::int64_t>(k_load_checkpoint, projection).value_or(0));
        });
    }

    const std::string& path() const noexcept { return path_; }

private:
    static constexpr std::string_view k_load_checkpoint =
        "SELECT position FROM weft_checkpoints WHERE projection = ?1";
    static constexpr std::string_view k_save_checkpoint =
        "INSERT INTO weft_checkpoints(projection, position) VALUES (?1, ?2) "
        "ON CONFLICT(projection) DO UPDATE SET position = excluded.position";
    // Created with the first dead letter (a sqlite_store accepts a file holding only
    // weft_checkpoints, so a model that never parks one adds no other table).
    static constexpr std::string_view k_dead_letter_table =
        "CREATE TABLE IF NOT EXISTS weft_dead_letters(projection TEXT NOT NULL, "
        "position INTEGER NOT NULL, stream TEXT NOT NULL, version INTEGER NOT NULL, "
        "event_id TEXT NOT NULL, type TEXT NOT NULL, schema_version INTEGER NOT NULL, "
        "payload BLOB NOT NULL, correlation_id TEXT NOT NULL, causation_id TEXT NOT NULL, "
        "metadata TEXT NOT NULL, recorded_at INTEGER NOT NULL, error TEXT NOT NULL, "
        "attempts INTEGER NOT NULL, PRIMARY KEY(projection, position))";
    static constexpr std::string_view k_has_dead_letter_table =
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'weft_dead_letters'";
    static constexpr auto k_park = detail::sqlite_sql(
        "INSERT OR REPLACE INTO weft_dead_letters(projection, ", detail::sqlite_event_columns,
        ", error, attempts) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)");
    static constexpr auto k_load_dead_letters = detail::sqlite_sql(
        "SELECT ", detail::sqlite_event_columns,
        ", error, attempts FROM weft_dead_letters WHERE projection = ?1 ORDER BY position");
    static constexpr std::string_view k_forget_dead_letter =
        "DELETE FROM weft_dead_letters WHERE projection = ?1 AND position = ?2";
    static constexpr std::string_view k_retried_dead_letter =
        "UPDATE weft_dead_letters SET attempts = attempts + 1, error = ?3 "
        "WHERE projection = ?1 AND position = ?2";
    static constexpr std::string_view k_clear_dead_letters =
        "DELETE FROM weft_dead_letters WHERE projection = ?1";

    static void rollback_quietly(sql_connection& db) noexcept {
        try {
            if (db.in_transaction())
                db.exec("ROLLBACK");
        } catch (...) {
            // An error here must not hide the one being handled.
        }
    }

    static std::int64_t to_sql(log_position p) {
        if (p > static_cast<log_position>(std::numeric_limits<std::int64_t>::max()))
            throw std::out_of_range("weft::es: checkpoint " + std::to_string(p) +
                                    " does not fit a SQLite integer");
        return static_cast<std::int64_t>(p);
    }

    // The model's own connection, after looking at the file as sqlite_store does (its shape,
    // then a read of the schema through a read-only connection: detail::sqlite_probe_file), so
    // that a file that is not a database stays as it is.
    std::unique_ptr<sql_connection> open_model() const {
        detail::sqlite_probe_file(path_, options_.busy_timeout, [](detail::sqlite_connection& c) {
            sql_connection probe(c); // reports a failure as a query of sql_connection does
            (void)probe.query_value<std::int64_t>("SELECT count(*) FROM sqlite_master");
        });
        auto db = open_writer(SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
        const auto mode = db->query_value<std::string>("PRAGMA journal_mode = WAL");
        if (mode != "wal")
            throw store_error("weft::es: " + path_ + " cannot use WAL mode (journal_mode stays '" +
                              mode.value_or("") + "'; is its directory writable?)");
        db->exec("CREATE TABLE IF NOT EXISTS weft_checkpoints("
                 "projection TEXT PRIMARY KEY, position INTEGER NOT NULL)");
        return db;
    }

    std::unique_ptr<sql_connection> open_writer(int flags) const {
        auto db = std::make_unique<sql_connection>(path_, flags);
        sqlite3_busy_timeout(db->native_handle(), static_cast<int>(options_.busy_timeout.count()));
        db->exec(detail::sqlite_synchronous_pragma(options_.durability));
        return db;
    }

    std::shared_ptr<target_state> make_target(std::string name, handler handle, resetter reset,
                                              bool rebuildable) const {
        if (!handle)
            throw projection_error("weft::es: projection " + name + " has no handler");
        if (rebuildable && !reset)
            throw projection_error("weft::es: projection " + name +
                                   " has an empty reset (leave it out for a projection that "
                                   "cannot be rebuilt)");
        return std::make_shared<target_state>(std::move(name), std::move(handle), std::move(reset),
                                              open_writer(SQLITE_OPEN_READWRITE));
    }

    // A projection target's connection and state, shared by the copies of its projection<>
    // (so it lives as long as the runner keeps the target). `mutex` serializes every use of
    // `db`: the runner calls one member at a time per projection, except handle (and park)
    // for a partitioned projection, and retry_dead_letters from the caller's thread.
    struct target_state {
        target_state(std::string n, handler h, resetter r, std::unique_ptr<sql_connection> c)
            : name(std::move(n)), handle(std::move(h)), reset(std::move(r)), db(std::move(c)) {}

        void begin_batch() {
            std::lock_guard lock(mutex);
            rollback_quietly(*db); // a transaction left by a failed commit
            db->exec("BEGIN IMMEDIATE");
            in_batch = true;
            batch_lost = false;
        }

        void handle_event(const recorded_event& e) {
            std::lock_guard lock(mutex);
            if (!in_batch) {
                // retry_dead_letters on a stopped projection: a transaction of its own.
                db->exec("BEGIN IMMEDIATE");
                try {
                    handle(*db, e);
                    db->exec("COMMIT");
                } catch (...) {
                    rollback_quietly(*db);
                    throw;
                }
                return;
            }
            if (batch_lost)
                throw store_error("weft::es: " + db->path() + ": the batch of projection " + name +
                                  " was rolled back by SQLite");
            db->exec("SAVEPOINT weft_event");
            try {
                handle(*db, e);
                db->exec("RELEASE weft_event");
            } catch (...) {
                if (!db->in_transaction()) {
                    // Some errors (I/O, full disk) make SQLite roll back the whole
                    // transaction: the batch's earlier events are gone too, so it must not
                    // commit. Further handler calls would run outside any transaction.
                    batch_lost = true;
                    throw;
                }
                try {
                    db->exec("ROLLBACK TO weft_event");
                    db->exec("RELEASE weft_event");
                } catch (...) {
                    batch_lost = true;
                }
                throw;
            }
        }

        void commit_batch(log_position checkpoint) {
            std::lock_guard lock(mutex);
            if (batch_lost || !in_batch || !db->in_transaction())
                throw store_error("weft::es: " + db->path() + ": the batch of projection " + name +
                                  " was rolled back by SQLite; nothing committed");
            db->exec(k_save_checkpoint, name, to_sql(checkpoint));
            db->exec("COMMIT");
            in_batch = false;
        }

        void rollback_batch() {
            std::lock_guard lock(mutex);
            in_batch = false;
            batch_lost = false;
            rollback_quietly(*db);
        }

        log_position load_checkpoint() {
            std::lock_guard lock(mutex);
            return static_cast<log_position>(
                db->query_value<std::int64_t>(k_load_checkpoint, name).value_or(0));
        }

        void reset_to(log_position from) {
            std::lock_guard lock(mutex);
            rollback_quietly(*db);
            in_batch = false;
            db->exec("BEGIN IMMEDIATE");
            try {
                reset(*db);
                if (has_dead_letter_table()) // the rebuild meets their events again
                    db->exec(k_clear_dead_letters, name);
                db->exec(k_save_checkpoint, name, to_sql(from));
                db->exec("COMMIT");
            } catch (...) {
                rollback_quietly(*db);
                throw;
            }
        }

        // Stores a dead letter in the open batch, which commits it with the checkpoint that
        // passes its event (or rolls it back with the batch).
        void park(const dead_letter& d) {
            std::lock_guard lock(mutex);
            if (batch_lost || !in_batch || !db->in_transaction())
                throw store_error("weft::es: " + db->path() + ": dead letter of projection " +
                                  name + " outside a batch, or in one rolled back by SQLite");
            const recorded_event& e = d.event;
            db->exec(k_dead_letter_table);
            db->exec(k_park, name, to_sql(e.position), e.stream, e.version, e.event_id, e.type,
                     e.schema_version, e.payload, e.correlation_id, e.causation_id, e.metadata,
                     static_cast<std::int64_t>(e.recorded_at.time_since_epoch().count()), d.error,
                     d.attempts);
        }

        std::vector<dead_letter> load_dead_letters() {
            std::lock_guard lock(mutex);
            std::vector<dead_letter> out;
            if (!has_dead_letter_table())
                return out;
            for (auto& [position, stream, version, event_id, type, schema, payload, correlation,
                        causation, metadata, recorded_at, error, attempts] :
                 db->query<std::int64_t, std::string, std::int64_t, std::string, std::string, int,
                           std::string, std::string, std::string, std::string, std::int64_t,
                           std::string, std::int64_t>(k_load_dead_letters, name)) {
                dead_letter d;
                d.event.position = static_cast<log_position>(position);
                d.event.stream = std::move(stream);
                d.event.version = static_cast<stream_version>(version);
                d.event.event_id = std::move(event_id);
                d.event.type = std::move(type);
                d.event.schema_version = schema;
                d.event.payload = std::move(payload);
                d.event.correlation_id = std::move(correlation);
                d.event.causation_id = std::move(causation);
                d.event.metadata = std::move(metadata);
                d.event.recorded_at = timestamp(std::chrono::microseconds(recorded_at));
                d.error = std::move(error);
                d.attempts = static_cast<std::size_t>(attempts);
                out.push_back(std::move(d));
            }
            return out;
        }

        // Handles a dead letter again and forgets it, in one transaction; when the handler
        // throws, only the try is noted (attempts, error) and the exception goes on.
        void retry_dead_letter(const recorded_event& e) {
            std::lock_guard lock(mutex);
            const bool own = !in_batch; // a stopped projection: a transaction of its own
            if (!own && batch_lost)
                throw store_error("weft::es: " + db->path() + ": the batch of projection " + name +
                                  " was rolled back by SQLite");
            if (own)
                db->exec("BEGIN IMMEDIATE");
            try {
                db->exec("SAVEPOINT weft_event");
                try {
                    handle(*db, e);
                    db->exec("RELEASE weft_event");
                } catch (const std::exception& x) {
                    forget_try(e, x.what());
                    throw;
                } catch (...) {
                    forget_try(e, "unknown exception");
                    throw;
                }
                db->exec(k_forget_dead_letter, name, to_sql(e.position));
                if (own)
                    db->exec("COMMIT");
            } catch (...) {
                if (own)
                    rollback_quietly(*db);
                throw;
            }
        }

        const std::string name;
        const handler handle;
        const resetter reset;
        std::mutex mutex; // guards everything below, and every use of db
        std::unique_ptr<sql_connection> db;
        bool in_batch = false;   // between begin_batch and commit/rollback_batch
        bool batch_lost = false; // SQLite rolled the batch back: it must not commit

    private:
        bool has_dead_letter_table() { return db->query_value<int>(k_has_dead_letter_table) == 1; }

        // A retried dead letter's handler threw: undo what it did and count the try; then
        // commit that (own transaction), so the stored dead letter keeps its attempts.
        void forget_try(const recorded_event& e, const std::string& error) {
            if (!db->in_transaction()) {
                batch_lost = in_batch; // SQLite rolled it all back (full disk, I/O error)
                return;
            }
            db->exec("ROLLBACK TO weft_event");
            db->exec("RELEASE weft_event");
            db->exec(k_retried_dead_letter, name, to_sql(e.position), error);
            if (!in_batch)
                db->exec("COMMIT");
        }
    };

    std::string path_;
    sqlite_read_model_options options_;

    std::mutex writer_mutex_; // serializes write()
    std::unique_ptr<sql_connection> writer_;

    detail::sqlite_reader_pool readers_; // for read()
};

} // namespace weft::es
