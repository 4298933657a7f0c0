// weft::es::detail — the SQLite toolkit of sqlite_store and sqlite_read_model: one connection
// type with its statement cache, one statement wrapper, one pool of reader connections, and
// the look at a file (its shape, then a read-only probe) before anything opens it to write.
// Private: the public faces are sqlite_store, sqlite_read_model and sql_connection.
//
// Errors are store_error naming the file and SQLite's reason; a lock held past the busy
// timeout is sqlite_busy_error, which opening retries (sqlite_retry_while_busy).
#pragma once

#include "../durability.hpp"
#include "../event.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace weft::es::detail {

// A lock another connection held past the busy timeout; opening retries on it (see
// sqlite_retry_while_busy), everything else reports it as the store_error it is.
struct sqlite_busy_error : store_error {
    using store_error::store_error;
};

// The PRAGMA that sets `d` on a connection.
inline const char* sqlite_synchronous_pragma(durability d) noexcept {
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

// `sql` in quotes for an error message, cut after 200 characters (user SQL may be long).
inline std::string sqlite_quoted(std::string_view sql) {
    constexpr std::size_t most = 200;
    return "\"" + std::string(sql.substr(0, most)) + (sql.size() > most ? "...\"" : "\"");
}

class sqlite_statement;

// One SQLite connection with its cache of prepared statements, used by one thread at a time
// (its owner hands it over under a mutex, so SQLite's own per-connection mutex is off).
class sqlite_connection {
public:
    // Opens `path` with sqlite3_open_v2 `flags`; throws store_error naming the file.
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

    // How long a statement waits for another connection's lock before it fails (busy).
    void set_busy_timeout(std::chrono::milliseconds busy) noexcept {
        sqlite3_busy_timeout(db_, static_cast<int>(busy.count()));
    }
    // Runs statements that return nothing worth reading (BEGIN, PRAGMA x = y...), unprepared.
    void exec(const char* sql) {
        if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK)
            fail(sql);
    }
    // Like exec, for cleanup paths: an error here must not hide the one being handled.
    void exec_quietly(const char* sql) noexcept {
        sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
    }
    bool in_transaction() const noexcept { return sqlite3_get_autocommit(db_) == 0; }

    // Throws store_error naming the file, what failed (`doing`) and SQLite's reason for the
    // last failure (sqlite_busy_error when another connection held a lock past the busy
    // timeout).
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
    friend class sqlite_statement;

    // SQL built at run time (sql_connection's users) may have no end of distinct texts: past
    // this many, a new one is prepared per use instead of cached, so the cache stays bounded.
    static constexpr std::size_t k_max_cached = 256;

    struct string_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };

    std::string path_;
    sqlite3* db_ = nullptr;
    // Keyed by the SQL text; a statement here is reset (not finalized) after each use.
    std::unordered_map<std::string, sqlite3_stmt*, string_hash, std::equal_to<>> statements_;
};

// What a failing statement's store_error names besides the file: the step that failed
// ("query failed", for weft's own statements) or the statement itself, quoted (user SQL run
// through sql_connection, which is often built at run time).
enum class sqlite_errors { name_step, quote_sql };

// One use of a statement on a connection: bind, step, read columns. It is the connection's
// cached statement for `sql`, or a private one when that is in use (the same SQL run from
// inside a query of itself) or the cache is full; when done, a cached one is reset (ready for
// new bindings), a private one finalized. `sql` must outlive this object, and hold exactly one
// statement (std::invalid_argument otherwise).
class sqlite_statement {
public:
    sqlite_statement(sqlite_connection& db, std::string_view sql,
                     sqlite_errors errors = sqlite_errors::name_step)
        : db_(db), sql_(sql), errors_(errors) {
        auto& cache = db.statements_;
        const auto it = cache.find(sql);
        if (it != cache.end() && !sqlite3_stmt_busy(it->second)) {
            stmt_ = it->second;
            return;
        }
        const char* tail = nullptr;
        if (sqlite3_prepare_v3(db.handle(), sql.data(), static_cast<int>(sql.size()),
                               SQLITE_PREPARE_PERSISTENT, &stmt_, &tail) != SQLITE_OK)
            fail("prepare");
        if (stmt_ == nullptr)
            throw std::invalid_argument("weft::es: no SQL statement in " + sqlite_quoted(sql));
        if (has_more(db.handle(), sql.substr(static_cast<std::size_t>(tail - sql.data())))) {
            sqlite3_finalize(stmt_);
            throw std::invalid_argument(
                "weft::es: several statements in one exec/query (use exec_script): " +
                sqlite_quoted(sql));
        }
        if (it == cache.end() && cache.size() < sqlite_connection::k_max_cached)
            cache.emplace(std::string(sql), stmt_);
        else
            owned_ = true;
    }
    sqlite_statement(const sqlite_statement&) = delete;
    sqlite_statement& operator=(const sqlite_statement&) = delete;
    ~sqlite_statement() {
        if (owned_)
            sqlite3_finalize(stmt_);
        else
            reset();
    }

    std::string_view sql() const noexcept { return sql_; }
    // The number of parameters (?1, ?2...) the statement takes.
    int parameter_count() const noexcept { return sqlite3_bind_parameter_count(stmt_); }

    // Parameters count from 1. Text and blobs are not copied: they must outlive the use.
    sqlite_statement& bind(int i, std::int64_t value) {
        check(sqlite3_bind_int64(stmt_, i, value));
        return *this;
    }
    sqlite_statement& bind(int i, std::string_view text) {
        // An empty text binds '' (not NULL), also from a string_view with no data.
        check(sqlite3_bind_text64(stmt_, i, text.data() ? text.data() : "", text.size(),
                                  SQLITE_STATIC, SQLITE_UTF8));
        return *this;
    }
    sqlite_statement& bind_double(int i, double value) {
        check(sqlite3_bind_double(stmt_, i, value));
        return *this;
    }
    sqlite_statement& bind_blob(int i, std::string_view bytes) {
        check(sqlite3_bind_blob64(stmt_, i, bytes.data(), bytes.size(), SQLITE_STATIC));
        return *this;
    }
    sqlite_statement& bind_null(int i) {
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
        fail("query");
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

    // Columns count from 0; NULL reads as 0, 0.0 or empty.
    bool is_null(int col) const noexcept { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
    std::int64_t int64(int col) const noexcept { return sqlite3_column_int64(stmt_, col); }
    double real(int col) const noexcept { return sqlite3_column_double(stmt_, col); }
    // Valid until the next step or reset.
    std::string_view text_view(int col) const noexcept {
        const auto* p = sqlite3_column_text(stmt_, col);
        return p ? std::string_view(reinterpret_cast<const char*>(p),
                                    static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
                 : std::string_view{};
    }
    std::string text(int col) const { return std::string(text_view(col)); }
    std::string blob(int col) const {
        const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, col));
        return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
                 : std::string{};
    }

private:
    // Whether `rest`, what follows the first statement, holds another one (not only blanks,
    // semicolons or comments).
    static bool has_more(sqlite3* db, std::string_view rest) noexcept {
        if (rest.find_first_not_of(" \t\r\n;") == std::string_view::npos)
            return false;
        sqlite3_stmt* more = nullptr;
        const int rc =
            sqlite3_prepare_v2(db, rest.data(), static_cast<int>(rest.size()), &more, nullptr);
        sqlite3_finalize(more);
        return rc != SQLITE_OK || more != nullptr;
    }

    void check(int rc) const {
        if (rc != SQLITE_OK)
            fail("bind");
    }
    // `step` is "prepare", "query" or "bind".
    [[noreturn]] void fail(std::string_view step) const {
        if (errors_ == sqlite_errors::name_step)
            db_.fail(step);
        db_.fail(step == "bind" ? "bind for " + sqlite_quoted(sql_) : sqlite_quoted(sql_));
    }

    sqlite_connection& db_;
    std::string_view sql_;
    sqlite_errors errors_;
    sqlite3_stmt* stmt_ = nullptr;
    bool owned_ = false; // prepared for this use only: finalized, not reset
};

// A read transaction on a reader connection, so the statements inside see one snapshot.
// Declare it before the statements it spans: it must end after they are reset.
class sqlite_read_transaction {
public:
    explicit sqlite_read_transaction(sqlite_connection& db) : db_(db) { db_.exec("BEGIN"); }
    sqlite_read_transaction(const sqlite_read_transaction&) = delete;
    sqlite_read_transaction& operator=(const sqlite_read_transaction&) = delete;
    ~sqlite_read_transaction() { db_.exec_quietly("COMMIT"); }

private:
    sqlite_connection& db_;
};

// SQL joined from string literals at compile time, so that statements share a column list
// and stay constants: sqlite_sql("SELECT ", sqlite_event_columns, " FROM events").
template <std::size_t N>
struct sqlite_sql_text {
    char text[N]{};
    constexpr operator std::string_view() const noexcept { return {text, N - 1}; }
};

template <std::size_t... N>
consteval auto sqlite_sql(const char (&... parts)[N]) {
    sqlite_sql_text<(N + ...) - sizeof...(N) + 1> out;
    std::size_t at = 0;
    const auto append = [&](const char* part, std::size_t size) {
        for (std::size_t i = 0; i + 1 < size; ++i) // not the terminating '\0'
            out.text[at++] = part[i];
    };
    (append(parts, N), ...);
    return out;
}

// The columns of an event, as every table holding events names them (the store's events, a
// read model's dead letters), in the order sqlite_event_from_row reads them.
inline constexpr char sqlite_event_columns[] =
    "position, stream, version, event_id, type, schema_version, payload, correlation_id, "
    "causation_id, metadata, recorded_at";

// An event from a row that starts with sqlite_event_columns.
inline recorded_event sqlite_event_from_row(const sqlite_statement& q) {
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
        db.set_busy_timeout(busy);
        db.exec("SELECT count(*) FROM sqlite_master"); // the first read rolls the journal back
    }
    sqlite_check_file_shape(path);
}

// Looks at an existing file before anything opens it to write, so that a file that is not a
// database (or a damaged one) stays as it is: sqlite_prepare_to_open, then, if `path` exists,
// `check(db)` on a read-only connection to it, which waits up to `busy` for locks. Does nothing
// more when there is no file (opening will create it).
template <class Check>
void sqlite_probe_file(const std::string& path, std::chrono::milliseconds busy, Check&& check) {
    sqlite_prepare_to_open(path, busy);
    std::error_code ec;
    if (!std::filesystem::exists(path, ec))
        return;
    sqlite_connection probe(path, SQLITE_OPEN_READONLY);
    // A read-only connection never checkpoints, but say so: closing must not write.
    sqlite3_db_config(probe.handle(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
    probe.set_busy_timeout(busy);
    std::forward<Check>(check)(probe);
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

// Reader connections to one file, opened on demand up to a bound and lent to one read at a
// time: borrow() returns a lease, whose end gives the connection back. They are read-write,
// not read-only (a WAL reader may have to write the -shm index); query_only keeps them from
// writing the database. Thread-safe; borrow is const, as the reads that use it are.
class sqlite_reader_pool {
public:
    // At most `max` connections (at least 1); each waits up to `busy` for another's lock.
    sqlite_reader_pool(std::string path, std::size_t max, std::chrono::milliseconds busy)
        : path_(std::move(path)), max_(std::max<std::size_t>(max, 1)), busy_(busy) {
        idle_.reserve(max_); // give_back, in a lease's destructor, must not allocate
    }
    sqlite_reader_pool(const sqlite_reader_pool&) = delete;
    sqlite_reader_pool& operator=(const sqlite_reader_pool&) = delete;

    // A reader connection on loan; goes back to the pool when the lease ends.
    class lease {
    public:
        lease(const sqlite_reader_pool& pool, std::unique_ptr<sqlite_connection> db) noexcept
            : pool_(pool), db_(std::move(db)) {}
        lease(const lease&) = delete;
        lease& operator=(const lease&) = delete;
        ~lease() { pool_.give_back(std::move(db_)); }
        sqlite_connection& db() const noexcept { return *db_; }

    private:
        const sqlite_reader_pool& pool_;
        std::unique_ptr<sqlite_connection> db_;
    };

    // An idle connection, or a new one while fewer than the bound are open; blocks while all
    // are on loan. Throws store_error if opening one fails.
    lease borrow() const {
        std::unique_lock lock(mutex_);
        for (;;) {
            if (!idle_.empty()) {
                auto db = std::move(idle_.back());
                idle_.pop_back();
                return lease(*this, std::move(db));
            }
            if (opened_ < max_)
                break;
            free_.wait(lock);
        }
        ++opened_;
        lock.unlock();
        try {
            return lease(*this, open());
        } catch (...) {
            lock.lock();
            --opened_;
            lock.unlock();
            free_.notify_one();
            throw;
        }
    }

    const std::string& path() const noexcept { return path_; }

private:
    std::unique_ptr<sqlite_connection> open() const {
        auto db = std::make_unique<sqlite_connection>(path_, SQLITE_OPEN_READWRITE);
        db->set_busy_timeout(busy_);
        db->exec("PRAGMA query_only = 1");
        return db;
    }
    void give_back(std::unique_ptr<sqlite_connection> db) const noexcept {
        {
            std::lock_guard lock(mutex_);
            idle_.push_back(std::move(db)); // reserved in the constructor
        }
        free_.notify_one();
    }

    const std::string path_;
    const std::size_t max_;
    const std::chrono::milliseconds busy_;
    mutable std::mutex mutex_; // guards the two below
    mutable std::condition_variable free_;
    mutable std::vector<std::unique_ptr<sqlite_connection>> idle_;
    mutable std::size_t opened_ = 0; // connections idle or on loan
};

} // namespace weft::es::detail
