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

#include "store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <exception>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

namespace weft::es {

// How much an acknowledged append survives (SQLite's PRAGMA synchronous, in WAL mode).
enum class durability {
    full,   // fsync per commit: survives a process crash (kill -9) and power loss
    normal, // survives a process crash; power loss may lose the last commits (not the file)
    off,    // survives a process crash; power loss may lose commits or corrupt the file
};

namespace detail {
// The PRAGMA that sets `d` on a connection.
inline const char* synchronous_pragma(durability d) noexcept {
    switch (d) {
    case durability::normal:
        return "PRAGMA synchronous = NORMAL";
    case durability::off:
        return "PRAGMA synchronous = OFF";
    case durability::full:
        break;
    }
    return "PRAGMA synchronous = FULL";
}
} // namespace detail

struct sqlite_options {
    // What an append has survived when append() returns (see durability above).
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

namespace detail {

// A lock another connection held past the busy timeout; opening retries on it (see
// sqlite_retry_while_busy), everything else reports it as the store_error it is.
struct sqlite_busy_error : store_error {
    using store_error::store_error;
};

// One SQLite connection with its prepared statements, used by one thread at a time (the
// store hands it over under a mutex, so SQLite's own per-connection mutex is off).
class sqlite_connection {
public:
    sqlite_connection(std::string path, int flags) : path_(std::move(path)) {
        const int rc = sqlite3_open_v2(path_.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, nullptr);
        if (rc != SQLITE_OK) {
            std::string why = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
            sqlite3_close_v2(db_);
            throw store_error("weft::es: cannot open " + path_ + " (" + why + ")");
        }
        sqlite3_extended_result_codes(db_, 1);
    }
    sqlite_connection(const sqlite_connection&) = delete;
    sqlite_connection& operator=(const sqlite_connection&) = delete;
    ~sqlite_connection() {
        for (auto& [sql, stmt] : statements_)
            sqlite3_finalize(stmt);
        sqlite3_close_v2(db_);
    }

    sqlite3* handle() const noexcept { return db_; }
    const std::string& path() const noexcept { return path_; }

    // The cached statement for `sql`, prepared on first use. `sql` must be a string literal:
    // the cache keeps the view.
    sqlite3_stmt* prepare(std::string_view sql) {
        if (auto it = statements_.find(sql); it != statements_.end())
            return it->second;
        sqlite3_stmt* stmt = nullptr;
        if (sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                               SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK)
            fail("prepare");
        statements_.emplace(sql, stmt);
        return stmt;
    }
    // Runs statements that return nothing worth reading (BEGIN, PRAGMA x = y...).
    void exec(const char* sql) {
        if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK)
            fail(sql);
    }
    // Like exec, for cleanup paths: an error here must not hide the one being handled.
    void exec_quietly(const char* sql) noexcept {
        sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
    }
    bool in_transaction() const noexcept { return sqlite3_get_autocommit(db_) == 0; }

    // Throws store_error naming the file and SQLite's reason for the last failure
    // (sqlite_busy_error when another connection held a lock past the busy timeout).
    [[noreturn]] void fail(std::string_view doing) const {
        const int code = sqlite3_extended_errcode(db_) & 0xff;
        std::string message = "weft::es: " + path_;
        if (code == SQLITE_NOTADB)
            message += " is not a SQLite database";
        else if (code == SQLITE_CORRUPT)
            message += " is corrupt";
        else
            message += ": " + std::string(doing) + " failed";
        message += " (" + std::string(sqlite3_errmsg(db_)) + ")";
        if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
            throw sqlite_busy_error(message);
        throw store_error(message);
    }

private:
    std::string path_;
    sqlite3* db_ = nullptr;
    std::unordered_map<std::string_view, sqlite3_stmt*> statements_;
};

// One use of a cached statement: bind, step, read columns. Resets the statement when done, so
// the next use starts clean.
class sqlite_query {
public:
    sqlite_query(sqlite_connection& db, std::string_view sql) : db_(db), stmt_(db.prepare(sql)) {
        if (sqlite3_stmt_busy(stmt_))
            throw std::logic_error("weft::es: a cached statement used twice at once: " +
                                   std::string(sql));
    }
    sqlite_query(const sqlite_query&) = delete;
    sqlite_query& operator=(const sqlite_query&) = delete;
    ~sqlite_query() { reset(); }

    sqlite_query& bind(int i, std::int64_t value) {
        check(sqlite3_bind_int64(stmt_, i, value));
        return *this;
    }
    sqlite_query& bind(int i, std::string_view text) {
        // data() of a string is never null, so an empty text binds '' (not NULL).
        check(sqlite3_bind_text64(stmt_, i, text.data(), text.size(), SQLITE_STATIC, SQLITE_UTF8));
        return *this;
    }
    sqlite_query& bind_blob(int i, std::string_view bytes) {
        check(sqlite3_bind_blob64(stmt_, i, bytes.data(), bytes.size(), SQLITE_STATIC));
        return *this;
    }
    sqlite_query& bind_null(int i) {
        check(sqlite3_bind_null(stmt_, i));
        return *this;
    }

    // True when a row is ready to read, false when the statement is done.
    bool step() {
        const int rc = sqlite3_step(stmt_);
        if (rc == SQLITE_ROW)
            return true;
        if (rc == SQLITE_DONE)
            return false;
        db_.fail("query");
    }
    // For statements that return no rows; ready for new bindings afterwards.
    void run() {
        step();
        reset();
    }
    void reset() noexcept {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
    }

    bool is_null(int col) const noexcept { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
    std::int64_t int64(int col) const noexcept { return sqlite3_column_int64(stmt_, col); }
    std::string text(int col) const {
        const auto* p = sqlite3_column_text(stmt_, col);
        return p ? std::string(reinterpret_cast<const char*>(p),
                               static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
                 : std::string{};
    }
    std::string blob(int col) const {
        const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, col));
        return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
                 : std::string{};
    }

private:
    void check(int rc) const {
        if (rc != SQLITE_OK)
            db_.fail("bind");
    }
    sqlite_connection& db_;
    sqlite3_stmt* stmt_;
};

// A read transaction on a reader connection, so the statements inside see one snapshot.
// Declare it before the queries it spans: it must end after they are reset.
class sqlite_read_transaction {
public:
    explicit sqlite_read_transaction(sqlite_connection& db) : db_(db) { db_.exec("BEGIN"); }
    sqlite_read_transaction(const sqlite_read_transaction&) = delete;
    sqlite_read_transaction& operator=(const sqlite_read_transaction&) = delete;
    ~sqlite_read_transaction() { db_.exec_quietly("COMMIT"); }

private:
    sqlite_connection& db_;
};

// An event from a row of the columns every event read selects, in this order: position, stream,
// version, event_id, type, schema_version, payload, correlation_id, causation_id, metadata,
// recorded_at.
inline recorded_event sqlite_event_from_row(const sqlite_query& q) {
    recorded_event e;
    e.position = static_cast<log_position>(q.int64(0));
    e.stream = q.text(1);
    e.version = static_cast<stream_version>(q.int64(2));
    e.event_id = q.text(3);
    e.type = q.text(4);
    e.schema_version = static_cast<int>(q.int64(5));
    e.payload = q.blob(6);
    e.correlation_id = q.text(7);
    e.causation_id = q.text(8);
    e.metadata = q.text(9);
    e.recorded_at = timestamp(std::chrono::microseconds(q.int64(10)));
    return e;
}

// Versions and positions are unsigned; SQLite integers are signed. Bounds from callers (a
// `from`, a `max`) may exceed int64 and mean "no bound".
inline std::int64_t sqlite_clamp(std::uint64_t v) noexcept {
    constexpr auto top = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    return static_cast<std::int64_t>(v > top ? top : v);
}

// ---- looking at a file before opening it ---------------------------------------------------

inline std::uint32_t sqlite_be32(const std::string& bytes, std::size_t at) noexcept {
    const auto b = [&](std::size_t i) {
        return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[at + i]));
    };
    return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
}

inline bool sqlite_valid_page_size(std::uint32_t size) noexcept {
    return size >= 512 && size <= 65536 && (size & (size - 1)) == 0;
}

inline std::string sqlite_file_prefix(const std::string& path, std::size_t max) {
    std::ifstream in(path, std::ios::binary);
    std::string bytes(max, '\0');
    in.read(bytes.data(), static_cast<std::streamsize>(max));
    bytes.resize(static_cast<std::size_t>(std::max<std::streamsize>(in.gcount(), 0)));
    return bytes;
}

// What a reader takes from a -wal file: the pages of its frames up to the last valid commit
// (SQLite's own rule: frames count while their salts and running checksum hold).
struct sqlite_wal_pages {
    std::uint32_t page_size = 0;
    std::uint32_t database_pages = 0; // the database's size at that commit; 0: no commit
    std::vector<bool> present;        // present[p]: page p is in a committed frame
};

inline sqlite_wal_pages sqlite_read_wal(const std::string& wal_path) {
    sqlite_wal_pages out;
    std::ifstream in(wal_path, std::ios::binary);
    // One frame at a time: a -wal may be large (a reader can hold off checkpoints).
    std::string bytes(32, '\0');
    auto read_next = [&](std::size_t n) {
        bytes.resize(n);
        return static_cast<bool>(in.read(bytes.data(), static_cast<std::streamsize>(n)));
    };
    if (!read_next(32))
        return out;
    const std::uint32_t magic = sqlite_be32(bytes, 0);
    if (magic != 0x377f0682 && magic != 0x377f0683)
        return out;
    const bool big_endian_sums = magic & 1;
    std::uint32_t s1 = 0;
    std::uint32_t s2 = 0;
    auto add_sums = [&](std::size_t at, std::size_t n) {
        for (std::size_t i = at; i + 8 <= at + n; i += 8) {
            std::uint32_t x0 = sqlite_be32(bytes, i);
            std::uint32_t x1 = sqlite_be32(bytes, i + 4);
            if (!big_endian_sums) {
                x0 = (x0 >> 24) | ((x0 >> 8) & 0xff00) | ((x0 << 8) & 0xff0000) | (x0 << 24);
                x1 = (x1 >> 24) | ((x1 >> 8) & 0xff00) | ((x1 << 8) & 0xff0000) | (x1 << 24);
            }
            s1 += x0 + s2;
            s2 += x1 + s1;
        }
    };
    const std::uint32_t page_size = sqlite_be32(bytes, 8);
    const std::uint32_t salt1 = sqlite_be32(bytes, 16);
    const std::uint32_t salt2 = sqlite_be32(bytes, 20);
    add_sums(0, 24);
    if (!sqlite_valid_page_size(page_size) || s1 != sqlite_be32(bytes, 24) ||
        s2 != sqlite_be32(bytes, 28))
        return out; // an invalid header: SQLite treats the -wal as empty
    out.page_size = page_size;
    std::vector<std::uint32_t> uncommitted;
    while (read_next(24 + std::size_t{page_size})) {
        const std::uint32_t page = sqlite_be32(bytes, 0);
        const std::uint32_t commit = sqlite_be32(bytes, 4);
        if (page == 0 || sqlite_be32(bytes, 8) != salt1 || sqlite_be32(bytes, 12) != salt2)
            break;
        add_sums(0, 8);
        add_sums(24, page_size);
        if (s1 != sqlite_be32(bytes, 16) || s2 != sqlite_be32(bytes, 20))
            break;
        uncommitted.push_back(page);
        if (commit != 0) {
            for (std::uint32_t p : uncommitted) {
                if (p >= out.present.size())
                    out.present.resize(std::size_t{p} + 1);
                out.present[p] = true;
            }
            uncommitted.clear();
            out.database_pages = commit;
        }
    }
    return out;
}

// Throws store_error, naming the file and the damage, if `path` and its -wal cannot hold a
// whole database: a reader would find a page in neither (the file was truncated). Reads the
// header and the -wal only; a file that is not there passes.
inline void sqlite_check_file_shape(const std::string& path) {
    // The -wal first: a checkpoint by another process between the two reads then only grows
    // the file, never hides a page.
    const sqlite_wal_pages wal = sqlite_read_wal(path + "-wal");
    std::error_code ec;
    const auto main_size = std::filesystem::file_size(path, ec);
    if (ec)
        return;
    auto damaged = [&](const std::string& why) {
        throw store_error("weft::es: " + path + " is truncated or corrupt: " + why);
    };
    if (main_size == 0) {
        if (wal.database_pages > 0)
            damaged("the file is empty but its -wal holds committed pages");
        return;
    }
    std::uint32_t page_size = wal.page_size;
    std::uint64_t header_pages = 0; // 0: no size in the header to trust
    const std::string header = sqlite_file_prefix(path, 100);
    if (header.size() == 100) {
        if (header.compare(0, 16, std::string("SQLite format 3\0", 16)) != 0)
            throw store_error("weft::es: " + path + " is not a SQLite database (no SQLite header)");
        const std::uint32_t raw = sqlite_be32(header, 16) >> 16;
        page_size = raw == 1 ? 65536 : raw;
        if (!sqlite_valid_page_size(page_size))
            damaged("its header has a page size of " + std::to_string(raw));
        // The header's page count is valid when it is set in the same change as the counter.
        if (sqlite_be32(header, 24) == sqlite_be32(header, 92))
            header_pages = sqlite_be32(header, 28);
        if (wal.database_pages > 0 && wal.page_size != page_size)
            damaged("its -wal has pages of " + std::to_string(wal.page_size) + " bytes, the file " +
                    std::to_string(page_size));
    } else if (wal.database_pages == 0) {
        damaged(std::to_string(main_size) + " bytes, shorter than a SQLite header");
    }
    if (wal.database_pages > 0) {
        for (std::uint64_t p = 1; p <= wal.database_pages; ++p) {
            const bool in_wal = p < wal.present.size() && wal.present[p];
            if (!in_wal && p * page_size > main_size)
                damaged("page " + std::to_string(p) + " of " + std::to_string(wal.database_pages) +
                        " is neither in the file (" + std::to_string(main_size) +
                        " bytes) nor in its -wal");
        }
    } else if (header_pages * page_size > main_size) {
        damaged("its header counts " + std::to_string(header_pages) + " pages of " +
                std::to_string(page_size) + " bytes, the file has " + std::to_string(main_size));
    }
}

// Makes `path` safe to look at before anything else touches it: a hot rollback journal (left
// by a process killed while it wrote in rollback mode, e.g. while switching a new file to WAL)
// is rolled back, as SQLite does on any read, but through a read-write connection, since the
// read-only probe cannot. Then checks the file's shape (sqlite_check_file_shape).
inline void sqlite_prepare_to_open(const std::string& path, std::chrono::milliseconds busy) {
    std::error_code ec;
    const auto journal = std::filesystem::file_size(path + "-journal", ec);
    if (!ec && journal > 0 && std::filesystem::exists(path, ec)) {
        sqlite_connection db(path, SQLITE_OPEN_READWRITE);
        sqlite3_busy_timeout(db.handle(), static_cast<int>(busy.count()));
        db.exec("SELECT count(*) FROM sqlite_master"); // the first read rolls the journal back
    }
    sqlite_check_file_shape(path);
}

// Runs `open` again while it fails on another connection's lock, until `busy` has passed:
// SQLite's busy handler does not cover every lock met while opening (switching a file to WAL,
// another process's recovery), and many processes may open one new file at once.
template <class Fn>
auto sqlite_retry_while_busy(std::chrono::milliseconds busy, Fn open) {
    const auto give_up = std::chrono::steady_clock::now() + busy;
    for (int attempt = 1;; ++attempt) {
        try {
            return open();
        } catch (const sqlite_busy_error&) {
            if (std::chrono::steady_clock::now() >= give_up)
                throw;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(std::min(attempt, 20)));
    }
}

} // namespace detail

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
        writer_db_ = open_writer(shared_->path, options_);
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
    // Queues the batch for the writer; the future completes after the commit that holds it.
    future<append_result> async_append(const std::string& stream, expected_version expected,
                                       std::vector<event_data> events) {
        promise<append_result> done;
        future<append_result> result = done.get_future();
        std::exception_ptr error;
        try {
            detail::check_stream_name(stream);
            prepare_batch(stream, events);
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
        auto lease = shared_->borrow();
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
        detail::sqlite_query q(db, forward ? k_read_stream_forward : k_read_stream_backward);
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
        auto lease = shared_->borrow();
        return read_head(lease.db());
    }

    stream_version version_of(const std::string& stream) const {
        auto lease = shared_->borrow();
        return read_version(lease.db(), stream);
    }

    // Reads from `from` on; wakes at once for this store's commits, polls for other processes'.
    subscription subscribe_all(log_position from) {
        return subscription(shared_, from, options_.poll_interval);
    }

    std::optional<recorded_event> find_event(const std::string& event_id) const {
        auto lease = shared_->borrow();
        detail::sqlite_query q(lease.db(), k_find_event);
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
        auto lease = shared_->borrow();
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
        auto lease = shared_->borrow();
        detail::sqlite_query q(lease.db(), k_load_snapshot);
        q.bind(1, stream);
        if (!q.step())
            return std::nullopt;
        return snapshot{stream, static_cast<stream_version>(q.int64(0)),
                        static_cast<int>(q.int64(1)), q.blob(2)};
    }

    const std::string& path() const noexcept { return shared_->path; }
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
        shared_state(std::string p, std::size_t readers, std::chrono::milliseconds busy)
            : path(std::move(p)), max_readers(std::max<std::size_t>(readers, 1)),
              busy_timeout(busy) {
            idle.reserve(max_readers); // give_back, in a destructor, must not allocate
        }

        // A reader connection on loan; goes back to the pool when the lease ends.
        class lease {
        public:
            lease(const shared_state& owner, std::unique_ptr<detail::sqlite_connection> db)
                : owner_(owner), db_(std::move(db)) {}
            lease(const lease&) = delete;
            lease& operator=(const lease&) = delete;
            ~lease() { owner_.give_back(std::move(db_)); }
            detail::sqlite_connection& db() const noexcept { return *db_; }

        private:
            const shared_state& owner_;
            std::unique_ptr<detail::sqlite_connection> db_;
        };

        // Blocks while all max_readers connections are on loan.
        lease borrow() const {
            std::unique_lock lock(pool_mutex);
            for (;;) {
                if (!idle.empty()) {
                    auto db = std::move(idle.back());
                    idle.pop_back();
                    return lease(*this, std::move(db));
                }
                if (opened < max_readers)
                    break;
                pool_free.wait(lock);
            }
            ++opened;
            lock.unlock();
            try {
                return lease(*this, open_reader());
            } catch (...) {
                lock.lock();
                --opened;
                lock.unlock();
                pool_free.notify_one();
                throw;
            }
        }
        void give_back(std::unique_ptr<detail::sqlite_connection> db) const {
            {
                std::lock_guard lock(pool_mutex);
                idle.push_back(std::move(db));
            }
            pool_free.notify_one();
        }

        std::vector<recorded_event> read_all(log_position from, std::size_t max) const override {
            std::vector<recorded_event> out;
            auto l = borrow();
            detail::sqlite_query q(l.db(), k_read_all);
            q.bind(1, detail::sqlite_clamp(from)).bind(2, detail::sqlite_clamp(max));
            while (q.step())
                out.push_back(detail::sqlite_event_from_row(q));
            return out;
        }

        // Read-write, not read-only: a WAL reader may have to write the -shm index. query_only
        // keeps it from writing the database.
        std::unique_ptr<detail::sqlite_connection> open_reader() const {
            auto db = std::make_unique<detail::sqlite_connection>(path, SQLITE_OPEN_READWRITE);
            sqlite3_busy_timeout(db->handle(), static_cast<int>(busy_timeout.count()));
            db->exec("PRAGMA query_only = 1");
            return db;
        }

        const std::string path;
        const std::size_t max_readers;
        const std::chrono::milliseconds busy_timeout;
        mutable std::mutex pool_mutex;
        mutable std::condition_variable pool_free;
        mutable std::vector<std::unique_ptr<detail::sqlite_connection>> idle;
        mutable std::size_t opened = 0; // connections in idle or on loan
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

    static constexpr std::string_view k_read_all =
        "SELECT position, stream, version, event_id, type, schema_version, payload, "
        "correlation_id, causation_id, metadata, recorded_at FROM events "
        "WHERE position >= ?1 ORDER BY position LIMIT ?2";
    static constexpr std::string_view k_read_stream_forward =
        "SELECT position, stream, version, event_id, type, schema_version, payload, "
        "correlation_id, causation_id, metadata, recorded_at FROM events "
        "WHERE stream = ?1 AND version >= ?2 AND version >= ?3 AND recorded_at >= ?4 "
        "ORDER BY version";
    static constexpr std::string_view k_read_stream_backward =
        "SELECT position, stream, version, event_id, type, schema_version, payload, "
        "correlation_id, causation_id, metadata, recorded_at FROM events "
        "WHERE stream = ?1 AND version <= ?2 AND version >= ?3 AND recorded_at >= ?4 "
        "ORDER BY version DESC";
    static constexpr std::string_view k_find_event =
        "SELECT position, stream, version, event_id, type, schema_version, payload, "
        "correlation_id, causation_id, metadata, recorded_at FROM events WHERE event_id = ?1";
    static constexpr std::string_view k_head = "SELECT max(position) FROM events";
    static constexpr std::string_view k_version = "SELECT version FROM streams WHERE stream = ?1";
    static constexpr std::string_view k_metadata =
        "SELECT max_age_ms, truncate_before FROM streams WHERE stream = ?1";
    static constexpr std::string_view k_load_snapshot =
        "SELECT version, schema_version, payload FROM snapshots WHERE stream = ?1";
    static constexpr std::string_view k_find_id =
        "SELECT stream, version, position FROM events WHERE event_id = ?1";
    static constexpr std::string_view k_insert_event =
        "INSERT INTO events(position, stream, version, event_id, type, schema_version, payload, "
        "correlation_id, causation_id, metadata, recorded_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
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
        detail::sqlite_query q(db, sql);
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
            detail::sqlite_query q(db, "SELECT key, value FROM weft_meta");
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
            detail::sqlite_query q(db, "SELECT position, stream, version, event_id, type, "
                                       "schema_version, payload, correlation_id, causation_id, "
                                       "metadata, recorded_at FROM events "
                                       "ORDER BY position DESC LIMIT 1");
            if (q.step())
                (void)detail::sqlite_event_from_row(q);
        }
        if (full_check) {
            detail::sqlite_query q(db, "PRAGMA quick_check(1)");
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
        std::error_code ec;
        bool is_store = false;
        detail::sqlite_prepare_to_open(path, options.busy_timeout);
        if (std::filesystem::exists(path, ec)) {
            detail::sqlite_connection probe(path, SQLITE_OPEN_READONLY);
            // A read-only connection never checkpoints, but say so: closing must not write.
            sqlite3_db_config(probe.handle(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
            sqlite3_busy_timeout(probe.handle(), static_cast<int>(options.busy_timeout.count()));
            is_store = check_store(probe, options.check_on_open);
        }
        auto db = std::make_unique<detail::sqlite_connection>(path, SQLITE_OPEN_READWRITE |
                                                                        SQLITE_OPEN_CREATE);
        sqlite3_busy_timeout(db->handle(), static_cast<int>(options.busy_timeout.count()));
        {
            detail::sqlite_query q(*db, "PRAGMA journal_mode = WAL");
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
        db->exec(detail::synchronous_pragma(options.durability));
        return db;
    }

    // ---- reads shared by the reader and writer connections ---------------------------------

    static log_position read_head(detail::sqlite_connection& db) {
        return static_cast<log_position>(read_int(db, k_head));
    }
    static stream_version read_version(detail::sqlite_connection& db, const std::string& stream) {
        detail::sqlite_query q(db, k_version);
        q.bind(1, stream);
        return q.step() ? static_cast<stream_version>(q.int64(0)) : 0;
    }
    // Nothing if the stream has neither events nor metadata.
    static std::optional<stream_metadata> read_metadata(detail::sqlite_connection& db,
                                                        const std::string& stream) {
        detail::sqlite_query q(db, k_metadata);
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

    // Caller-side checks that need no database: gives every event an id and rejects a batch
    // that repeats an id within itself (memory_store's find_repeat does the same first).
    static void prepare_batch(const std::string& stream, std::vector<event_data>& batch) {
        std::unordered_set<std::string_view> seen;
        for (event_data& d : batch) {
            if (d.event_id.empty())
                continue;
            if (!seen.insert(d.event_id).second)
                throw invalid_append("weft::es: event id " + d.event_id +
                                     " appears twice in one batch for stream " + stream);
        }
        for (event_data& d : batch)
            if (d.event_id.empty())
                d.event_id = new_event_id();
    }

    void enqueue(write_request request) {
        {
            std::lock_guard lock(queue_mutex_);
            if (stopping_)
                throw store_error("weft::es: " + shared_->path + " is closing");
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
            detail::sqlite_query q(db, k_set_metadata);
            q.bind(1, m->stream);
            if (m->meta.max_age)
                q.bind(2, static_cast<std::int64_t>(m->meta.max_age->count()));
            if (m->meta.truncate_before)
                q.bind(3, detail::sqlite_clamp(*m->meta.truncate_before));
            q.run();
        } else {
            const snapshot& s = std::get<snapshot_request>(request).snap;
            detail::sqlite_query q(db, k_save_snapshot);
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
        if (!r.expected.accepts(current))
            return append_result{append_status::wrong_expected_version, current, 0, 0, false};
        if (r.events.empty())
            return append_result{append_status::ok, current, 0, 0, false};

        const std::int64_t now = now_utc().time_since_epoch().count();
        append_result result{append_status::ok, current, head + 1, 0, false};
        detail::sqlite_query insert(db, k_insert_event);
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
        detail::sqlite_query set_version(db, k_set_version);
        set_version.bind(1, r.stream).bind(2, detail::sqlite_clamp(result.version));
        set_version.run();
        result.last_position = head;
        return result;
    }

    // The first append's result if every id of `batch` is stored, as this stream's consecutive
    // versions; nothing if none is; invalid_append otherwise (as memory_store).
    static std::optional<append_result> find_repeat(detail::sqlite_connection& db,
                                                    const std::string& stream,
                                                    const std::vector<event_data>& batch) {
        struct stored_at {
            std::string stream;
            stream_version version;
            log_position position;
        };
        std::vector<stored_at> found;
        detail::sqlite_query q(db, k_find_id);
        for (const event_data& d : batch) {
            q.bind(1, d.event_id);
            if (q.step())
                found.push_back(stored_at{q.text(0), static_cast<stream_version>(q.int64(1)),
                                          static_cast<log_position>(q.int64(2))});
            q.reset();
        }
        if (found.empty())
            return std::nullopt;
        if (found.size() != batch.size())
            throw invalid_append("weft::es: batch for stream " + stream +
                                 " repeats some stored event ids but not all");
        for (std::size_t i = 0; i < found.size(); ++i)
            if (found[i].stream != stream || found[i].version != found.front().version + i)
                throw invalid_append("weft::es: event id " + batch[i].event_id +
                                     " is already stored elsewhere than this batch of " + stream);
        return append_result{append_status::ok, found.back().version, found.front().position,
                             found.back().position, true};
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
