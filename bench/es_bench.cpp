// es_bench — weft::es event stores: durable appends with group commit next to a naive SQLite
// log that commits every append on its own, replay, and the bank aggregate under load. Same
// workload, same process, same disk.
//
// Families (ratios read between rows of one family; the append ratios are printed at the end):
//   append/<peer>/batch:B/appenders:T
//       T threads (1 or 8), each appending to its own stream, B events (1, 10, 100) per append
//       call, with expected_version::exactly (optimistic concurrency, as an aggregate appends).
//       A row that waits for each append makes N calls in all (--append_calls=N, default 500;
//       N/T per thread), so B*N events: each round of calls costs an fsync, so N bounds the
//       row's time on a slow disk. A pipelined row appends E events in all (--pipelined_events=E,
//       default 20000; E/B calls). Each row opens a fresh database file in the temp directory
//       and removes it afterwards; opening and closing are not timed. events_per_second is the
//       rate; events_per_commit says how much each commit (each fsync) carried. The table at
//       the end divides weft's rates by the naive baseline's, row by row.
//   replay/read_stream/<store>/events:10000
//       reads one stream of 10k events (in pages of k_page) from a store holding 100k events
//       of 10 streams, interleaved in chunks of 500
//   replay/read_all/<store>/events:100000
//       reads that store's whole global log (in pages of k_page)
//   aggregate/<store>/accounts:A/commands:N
//       the bank account decider (examples/domain/bank_domain.hpp) behind
//       weft::es::aggregate_service: A accounts are opened and given 10.00 each first (not timed),
//       then N commands
//       (--commands=N, default 20000) from k_producers threads, each keeping k_window commands
//       in flight (it waits for the oldest reply only when k_window are outstanding), so the
//       store sees many appends at once (events_per_commit: accepted commands per commit). Half
//       deposits, half withdrawals, 0.01..5.00 each, to an account drawn uniformly (fixed seed); a
//       withdrawal above the balance is rejected and appends nothing (refused_pct).
//       commands_per_second is the rate.
// Peers (append/):
//   weft_sqlite            weft::es::sqlite_store, durability full (its default: WAL,
//                          synchronous = FULL, an fsync per commit): each thread calls append()
//                          and waits; the store's writer commits whatever is queued together
//   weft_sqlite_pipelined  the same store, but each thread keeps k_in_flight async_append()s
//                          outstanding before it waits for the oldest
//   naive_sqlite           straight on SQLite's C API, no group commit: every append call is
//                          its own transaction (BEGIN IMMEDIATE; read the stream's version;
//                          INSERT each event; COMMIT), one connection per thread waiting for the
//                          others' write lock with busy_timeout. Same durability (WAL,
//                          synchronous = FULL) and the same events table (columns, unique
//                          event_id, unique (stream, version)); it does less per event than
//                          sqlite_store (no streams table, no idempotency lookup)
//   memory                 weft::es::memory_store, for reference (not durable)
// Stores (replay/, aggregate/): memory (weft::es::memory_store) and sqlite (sqlite_store,
// durability full).
//
// Every row checks what it did: each append's version, the store's head and each stream's
// version afterwards; every event read once, in order, gapless; the bank's balances add up to
// initial + deposits - accepted withdrawals and the log holds one event per accepted command.
// A row that fails its check is skipped with the error.
//
// Fsync latency on a shared or virtual disk varies from run to run: for a steadier table, run
// the rows several times, interleaved (the table shows each row's median):
//   es_bench --benchmark_filter=^append/ --benchmark_repetitions=5
//       --benchmark_enable_random_interleaving=true
//   es_bench --append_calls=5000 --pipelined_events=200000 --benchmark_filter=^append/
//   es_bench --commands=200000 --benchmark_filter=^aggregate/
#include "bank_domain.hpp"
#include "bench_support.hpp"

#include <weft/es/aggregate_service.hpp>
#include <weft/es/memory_store.hpp>
#include <weft/es/sqlite_store.hpp>
#include <weft/future.hpp>
#include <weft/scheduler.hpp>

#include <benchmark/benchmark.h>
#include <sqlite3.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <exception>
#include <filesystem>
#include <latch>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

using weft::es::append_result;
using weft::es::event_data;
using weft::es::expected_version;
using weft::es::stream_version;

std::int64_t g_append_calls = 500;        // --append_calls=N
std::int64_t g_pipelined_events = 20'000; // --pipelined_events=N
std::int64_t g_commands = 20'000;         // --commands=N

constexpr std::size_t k_in_flight = 64; // weft_sqlite_pipelined: async appends per thread
constexpr std::size_t k_page = 1'000;   // replay: events per read call
constexpr std::int64_t k_replay_streams = 10;
constexpr std::int64_t k_replay_stream_events = 10'000;
constexpr std::int64_t k_replay_chunk = 500; // replay fill: events per append
constexpr std::int64_t k_accounts = 10'000;
constexpr std::int64_t k_initial_cents = 1'000;
constexpr std::int32_t k_max_cents = 500;
constexpr int k_producers = 4;
constexpr std::size_t k_window = 256; // aggregate: commands in flight per producer

// --- shared pieces ------------------------------------------------------------------------

// B events as an account's deposits would be stored; the store makes their ids.
std::vector<event_data> make_batch(std::int64_t events, std::int64_t seed) {
    std::vector<event_data> batch(static_cast<std::size_t>(events));
    for (std::int64_t i = 0; i < events; ++i) {
        batch[static_cast<std::size_t>(i)].type = "money_deposited";
        batch[static_cast<std::size_t>(i)].payload =
            R"({"cents":)" + std::to_string(1 + (seed + i) % k_max_cents) + "}";
    }
    return batch;
}

std::string stream_name(std::int64_t i) {
    return "stream-" + std::to_string(i);
}

// Runs body(t) for t in [0, threads) on threads of its own, released together; returns the
// seconds from their release until the last has finished. Rethrows the first exception.
template <class Fn>
double run_threads(int threads, Fn body) {
    std::latch start(1);
    std::vector<std::exception_ptr> errors(static_cast<std::size_t>(threads));
    std::vector<std::thread> pool;
    try {
        for (int t = 0; t < threads; ++t)
            pool.emplace_back([&, t] {
                start.wait();
                try {
                    body(t);
                } catch (...) {
                    errors[static_cast<std::size_t>(t)] = std::current_exception();
                }
            });
    } catch (...) {
        start.count_down(); // release the started ones so they can be joined
        for (auto& th : pool)
            th.join();
        throw;
    }
    const auto begin = std::chrono::steady_clock::now();
    start.count_down();
    for (auto& th : pool)
        th.join();
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - begin;
    for (const auto& e : errors)
        if (e)
            std::rethrow_exception(e);
    return took.count();
}

// A store of type Store, in a temp file where it has one.
template <class Store>
Store open_store(const std::string& path) {
    if constexpr (std::is_same_v<Store, weft::es::memory_store>)
        return Store();
    else
        return Store(path);
}

template <class Store>
struct temp_store {
    weft_bench::temp_db file;
    Store store{open_store<Store>(file.path())};
};

// Rates of the append rows, for the table at the end: (peer, batch, appenders) -> events/s of
// each run of the row (several with --benchmark_repetitions).
std::map<std::tuple<std::string, std::int64_t, std::int64_t>, std::vector<double>> g_append_rates;

// --- the naive baseline -------------------------------------------------------------------

constexpr const char* k_naive_schema = R"sql(
CREATE TABLE IF NOT EXISTS events(
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
)sql";

// One connection of the naive log, used by one thread. append() is one transaction: the write
// lock (waiting for other connections up to busy_timeout), the stream's version, the inserts,
// the commit and its fsync. Positions are SQLite's rowids: max + 1 under the write lock, so
// gapless and in commit order.
class naive_connection {
public:
    naive_connection(const std::string& path, bool create) {
        const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
        if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
            const std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
            sqlite3_close_v2(db_);
            throw std::runtime_error("naive_sqlite: cannot open " + path + " (" + why + ")");
        }
        try {
            sqlite3_busy_timeout(db_, 30'000);
            if (create) {
                exec("PRAGMA journal_mode = WAL");
                exec(k_naive_schema);
            }
            exec("PRAGMA synchronous = FULL");
            begin_ = prepare("BEGIN IMMEDIATE");
            commit_ = prepare("COMMIT");
            rollback_ = prepare("ROLLBACK");
            version_ = prepare("SELECT coalesce(max(version), 0) FROM events WHERE stream = ?1");
            insert_ = prepare("INSERT INTO events(stream, version, event_id, type, schema_version, "
                              "payload, correlation_id, causation_id, metadata, recorded_at) "
                              "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
        } catch (...) {
            close();
            throw;
        }
    }
    naive_connection(const naive_connection&) = delete;
    naive_connection& operator=(const naive_connection&) = delete;
    ~naive_connection() { close(); }

    append_result append(const std::string& stream, expected_version expected,
                         std::vector<event_data> events) {
        done(begin_, "BEGIN IMMEDIATE");
        try {
            sqlite3_bind_text(version_, 1, stream.data(), static_cast<int>(stream.size()),
                              SQLITE_STATIC);
            if (sqlite3_step(version_) != SQLITE_ROW)
                fail("reading the stream's version");
            const auto current = static_cast<stream_version>(sqlite3_column_int64(version_, 0));
            sqlite3_reset(version_);
            if (!expected.accepts(current)) {
                done(rollback_, "ROLLBACK");
                return append_result{weft::es::append_status::wrong_expected_version, current, 0, 0,
                                     false};
            }
            const std::int64_t now = weft::es::now_utc().time_since_epoch().count();
            append_result r{weft::es::append_status::ok, current, 0, 0, false};
            for (event_data& e : events) {
                if (e.event_id.empty())
                    e.event_id = weft::es::new_event_id();
                ++r.version;
                bind(1, stream);
                sqlite3_bind_int64(insert_, 2, static_cast<std::int64_t>(r.version));
                bind(3, e.event_id);
                bind(4, e.type);
                sqlite3_bind_int64(insert_, 5, e.schema_version);
                sqlite3_bind_blob(insert_, 6, e.payload.data(), static_cast<int>(e.payload.size()),
                                  SQLITE_STATIC);
                bind(7, e.correlation_id);
                bind(8, e.causation_id);
                bind(9, e.metadata);
                sqlite3_bind_int64(insert_, 10, now);
                done(insert_, "INSERT");
                r.last_position =
                    static_cast<weft::es::log_position>(sqlite3_last_insert_rowid(db_));
                if (r.first_position == 0)
                    r.first_position = r.last_position;
            }
            done(commit_, "COMMIT");
            return r;
        } catch (...) {
            if (sqlite3_get_autocommit(db_) == 0)
                sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
            throw;
        }
    }

    // What is stored, for the check after a row.
    std::uint64_t head() {
        sqlite3_stmt* stmt = prepare("SELECT coalesce(max(position), 0) FROM events");
        const int rc = sqlite3_step(stmt);
        const std::int64_t v = sqlite3_column_int64(stmt, 0);
        sqlite3_finalize(stmt);
        if (rc != SQLITE_ROW)
            fail("reading the head");
        return static_cast<std::uint64_t>(v);
    }
    stream_version version_of(const std::string& stream) {
        sqlite3_bind_text(version_, 1, stream.data(), static_cast<int>(stream.size()),
                          SQLITE_STATIC);
        const int rc = sqlite3_step(version_);
        const std::int64_t v = sqlite3_column_int64(version_, 0);
        sqlite3_reset(version_);
        if (rc != SQLITE_ROW)
            fail("reading the stream's version");
        return static_cast<stream_version>(v);
    }

private:
    void exec(const char* sql) {
        if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK)
            fail(sql);
    }
    sqlite3_stmt* prepare(const char* sql) {
        sqlite3_stmt* stmt = nullptr;
        if (sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr) != SQLITE_OK)
            fail(sql);
        return stmt;
    }
    void bind(int i, const std::string& text) {
        sqlite3_bind_text(insert_, i, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
    }
    // Runs a statement that returns no rows and makes it ready for the next use.
    void done(sqlite3_stmt* stmt, const char* what) {
        const int rc = sqlite3_step(stmt);
        sqlite3_reset(stmt);
        if (rc != SQLITE_DONE)
            fail(what);
    }
    [[noreturn]] void fail(const char* what) const {
        throw std::runtime_error(std::string("naive_sqlite: ") + what + " failed (" +
                                 sqlite3_errmsg(db_) + ")");
    }
    void close() noexcept {
        for (sqlite3_stmt* s : {begin_, commit_, rollback_, version_, insert_})
            sqlite3_finalize(s);
        sqlite3_close_v2(db_);
    }

    sqlite3* db_ = nullptr;
    sqlite3_stmt* begin_ = nullptr;
    sqlite3_stmt* commit_ = nullptr;
    sqlite3_stmt* rollback_ = nullptr;
    sqlite3_stmt* version_ = nullptr;
    sqlite3_stmt* insert_ = nullptr;
};

// --- append -------------------------------------------------------------------------------

// An append peer:
//   Peer peer(path);             opens (not timed)
//   auto&& w = peer.writer();    on each appender thread: has append(stream, expected, events)
//   peer.head(), peer.version_of(stream): what is stored, for the check afterwards
//   peer.commits():              write transactions so far (0: not counted)
struct memory_peer {
    explicit memory_peer(const std::string&) {}
    weft::es::memory_store& writer() { return store; }
    std::uint64_t head() const { return store.head_position(); }
    std::uint64_t version_of(const std::string& s) const { return store.version_of(s); }
    std::uint64_t commits() const { return 0; }

    weft::es::memory_store store;
};

struct weft_sqlite_peer {
    explicit weft_sqlite_peer(const std::string& path) : store(path) {}
    weft::es::sqlite_store& writer() { return store; }
    std::uint64_t head() const { return store.head_position(); }
    std::uint64_t version_of(const std::string& s) const { return store.version_of(s); }
    std::uint64_t commits() const { return store.commits(); }

    weft::es::sqlite_store store;
};

struct naive_sqlite_peer {
    // The first connection sets WAL mode (it stays with the file) and creates the table.
    explicit naive_sqlite_peer(std::string p) : path(std::move(p)) {
        naive_connection create(path, true);
    }
    naive_connection writer() { return naive_connection(path, false); }
    std::uint64_t head() const { return naive_connection(path, false).head(); }
    std::uint64_t version_of(const std::string& s) const {
        return naive_connection(path, false).version_of(s);
    }
    // One transaction per append call, by construction; counted by the row.
    std::uint64_t commits() const { return 0; }

    std::string path;
};

// `calls` appends of `batch` events, each waiting for its commit.
template <class Writer>
void append_waiting(Writer& w, const std::string& stream, std::int64_t calls, std::int64_t batch) {
    stream_version v = 0;
    for (std::int64_t i = 0; i < calls; ++i) {
        const append_result r =
            w.append(stream, expected_version::exactly(v), make_batch(batch, i * batch));
        if (!r || r.duplicate || r.version != v + static_cast<stream_version>(batch))
            throw std::runtime_error(stream + ": append " + std::to_string(i) +
                                     " came back at version " + std::to_string(r.version) +
                                     ", want " +
                                     std::to_string(v + static_cast<stream_version>(batch)));
        v = r.version;
    }
}

// The same appends, k_in_flight outstanding at a time: each expects the version the ones
// before it leave (one appender per stream, and the store commits them in queue order).
void append_pipelined(weft::es::sqlite_store& store, const std::string& stream, std::int64_t calls,
                      std::int64_t batch) {
    struct pending {
        weft::future<append_result> result;
        stream_version want;
    };
    std::deque<pending> in_flight;
    auto settle = [&] {
        pending p = std::move(in_flight.front());
        in_flight.pop_front();
        const append_result r = p.result.get();
        if (!r || r.duplicate || r.version != p.want)
            throw std::runtime_error(stream + ": an append came back at version " +
                                     std::to_string(r.version) + ", want " +
                                     std::to_string(p.want));
    };
    stream_version v = 0;
    for (std::int64_t i = 0; i < calls; ++i) {
        if (in_flight.size() == k_in_flight)
            settle();
        const stream_version next = v + static_cast<stream_version>(batch);
        in_flight.push_back(pending{
            store.async_append(stream, expected_version::exactly(v), make_batch(batch, i * batch)),
            next});
        v = next;
    }
    while (!in_flight.empty())
        settle();
}

// Empty when the peer holds exactly what the appenders wrote, else what is wrong.
template <class Peer>
std::string audit_appends(const Peer& peer, std::int64_t appenders, std::int64_t per_stream) {
    const auto want_head = static_cast<std::uint64_t>(appenders * per_stream);
    if (const std::uint64_t head = peer.head(); head != want_head)
        return "head position " + std::to_string(head) + ", want " + std::to_string(want_head);
    for (std::int64_t t = 0; t < appenders; ++t)
        if (const std::uint64_t v = peer.version_of(stream_name(t));
            v != static_cast<std::uint64_t>(per_stream))
            return stream_name(t) + " at version " + std::to_string(v) + ", want " +
                   std::to_string(per_stream);
    return {};
}

template <class Peer, bool Pipelined>
void bm_append(benchmark::State& state, const std::string& peer_name) {
    const std::int64_t batch = state.range(0);
    const std::int64_t appenders = state.range(1);
    // Waiting rows are bound by one fsync per round of appends, pipelined rows by the inserts:
    // the first count calls, the second events.
    const std::int64_t calls = std::max<std::int64_t>(
        1, (Pipelined ? g_pipelined_events / batch : g_append_calls) / appenders);
    const std::int64_t events = appenders * calls * batch;
    double seconds = 0;
    std::uint64_t commits = 0;
    for (auto _ : state) {
        weft_bench::temp_db file;
        std::string error;
        try {
            Peer peer(file.path());
            seconds = run_threads(static_cast<int>(appenders), [&](int t) {
                auto&& w = peer.writer();
                if constexpr (Pipelined)
                    append_pipelined(w, stream_name(t), calls, batch);
                else
                    append_waiting(w, stream_name(t), calls, batch);
            });
            commits = peer.commits();
            error = audit_appends(peer, appenders, calls * batch);
        } catch (const std::exception& e) {
            error = e.what();
        }
        if (!error.empty()) {
            state.SkipWithError(error.c_str());
            return;
        }
        state.SetIterationTime(seconds);
    }
    const auto total = static_cast<double>(state.iterations() * events);
    state.counters["events_per_second"] = benchmark::Counter(total, benchmark::Counter::kIsRate);
    if constexpr (std::is_same_v<Peer, naive_sqlite_peer>)
        commits = static_cast<std::uint64_t>(appenders * calls);
    if (commits > 0)
        state.counters["events_per_commit"] =
            static_cast<double>(events) / static_cast<double>(commits);
    g_append_rates[{peer_name, batch, appenders}].push_back(static_cast<double>(events) / seconds);
}

// --- replay -------------------------------------------------------------------------------

// k_replay_streams streams of k_replay_stream_events each, appended in chunks of
// k_replay_chunk, round robin, all queued before the first is awaited.
template <class Store>
void fill_for_replay(Store& store) {
    std::vector<weft::future<append_result>> appends;
    for (std::int64_t done = 0; done < k_replay_stream_events; done += k_replay_chunk)
        for (std::int64_t s = 0; s < k_replay_streams; ++s)
            appends.push_back(store.async_append(stream_name(s), expected_version::any(),
                                                 make_batch(k_replay_chunk, done)));
    for (auto& a : appends)
        if (!a.get())
            throw std::runtime_error("replay: a fill append failed");
}

// The store both replay rows of one kind read, filled on first use (not timed) and dropped by
// release_replay_stores() after the run. Throws if the fill fails.
template <class Store>
std::unique_ptr<temp_store<Store>>& replay_store_slot() {
    static std::unique_ptr<temp_store<Store>> slot;
    return slot;
}

template <class Store>
temp_store<Store>& replay_store() {
    auto& slot = replay_store_slot<Store>();
    if (!slot) {
        auto s = std::make_unique<temp_store<Store>>();
        fill_for_replay(s->store);
        slot = std::move(s);
    }
    return *slot;
}

void release_replay_stores() {
    replay_store_slot<weft::es::memory_store>().reset();
    replay_store_slot<weft::es::sqlite_store>().reset();
}

template <class Store>
void bm_read_stream(benchmark::State& state) {
    temp_store<Store>* found = nullptr;
    try {
        found = &replay_store<Store>();
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
        return;
    }
    temp_store<Store>& s = *found;
    const std::string stream = stream_name(0);
    for (auto _ : state) {
        stream_version next = 1;
        for (;;) {
            std::vector<weft::es::recorded_event> page =
                s.store.read_stream(stream, next, weft::es::read_direction::forward, k_page);
            if (page.empty())
                break;
            for (const auto& e : page)
                if (e.version != next++) {
                    state.SkipWithError("read_stream: versions out of order");
                    return;
                }
            benchmark::DoNotOptimize(page.data());
        }
        if (next - 1 != static_cast<stream_version>(k_replay_stream_events)) {
            state.SkipWithError(
                ("read_stream: read " + std::to_string(next - 1) + " events").c_str());
            return;
        }
    }
    state.counters["events_per_second"] =
        benchmark::Counter(static_cast<double>(state.iterations() * k_replay_stream_events),
                           benchmark::Counter::kIsRate);
}

template <class Store>
void bm_read_all(benchmark::State& state) {
    temp_store<Store>* found = nullptr;
    try {
        found = &replay_store<Store>();
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
        return;
    }
    temp_store<Store>& s = *found;
    const std::int64_t total = k_replay_streams * k_replay_stream_events;
    for (auto _ : state) {
        weft::es::log_position next = 1;
        for (;;) {
            std::vector<weft::es::recorded_event> page = s.store.read_all(next, k_page);
            if (page.empty())
                break;
            for (const auto& e : page)
                if (e.position != next++) {
                    state.SkipWithError("read_all: positions out of order");
                    return;
                }
            benchmark::DoNotOptimize(page.data());
        }
        if (next - 1 != static_cast<weft::es::log_position>(total)) {
            state.SkipWithError(("read_all: read " + std::to_string(next - 1) + " events").c_str());
            return;
        }
    }
    state.counters["events_per_second"] = benchmark::Counter(
        static_cast<double>(state.iterations() * total), benchmark::Counter::kIsRate);
}

// --- aggregate ----------------------------------------------------------------------------

// cents > 0: a deposit; cents < 0: a withdrawal of -cents.
struct bank_command {
    std::uint32_t account;
    std::int32_t cents;
};

struct bank_workload {
    std::vector<bank_command> commands;
    std::int64_t deposited = 0; // cents
    std::int64_t withdrawals = 0;
};

// The first n commands of one fixed sequence, made once per n.
const bank_workload& bank_workload_for(std::int64_t n) {
    static std::map<std::int64_t, bank_workload> made;
    auto [it, fresh] = made.try_emplace(n);
    bank_workload& w = it->second;
    if (!fresh)
        return w;
    std::mt19937_64 rng(20'240'607);
    std::uniform_int_distribution<std::uint32_t> account(0, k_accounts - 1);
    std::uniform_int_distribution<std::int32_t> cents(1, k_max_cents);
    std::bernoulli_distribution is_deposit(0.5);
    w.commands.reserve(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) {
        bank_command c{account(rng), cents(rng)};
        if (is_deposit(rng)) {
            w.deposited += c.cents;
        } else {
            c.cents = -c.cents;
            ++w.withdrawals;
        }
        w.commands.push_back(c);
    }
    return w;
}

std::string account_name(std::int64_t i) {
    return "account-" + std::to_string(i);
}

// What one producer saw: its accepted withdrawals and its rejections.
struct producer_tally {
    std::int64_t withdrawn = 0; // cents
    std::int64_t accepted = 0;
    std::int64_t refused = 0;
};

template <class Service>
producer_tally send_commands(Service& bank, const std::vector<std::string>& names,
                             const bank_workload& w, std::size_t from, std::size_t to) {
    struct pending {
        weft::future<weft::es::command_result> result;
        std::int32_t cents;
    };
    producer_tally tally;
    std::deque<pending> in_flight;
    auto settle = [&] {
        pending p = std::move(in_flight.front());
        in_flight.pop_front();
        const weft::es::command_result r = p.result.get();
        if (r) {
            ++tally.accepted;
            if (p.cents < 0)
                tally.withdrawn += -std::int64_t{p.cents};
        } else if (p.cents < 0 && r.status == weft::es::command_status::rejected) {
            ++tally.refused;
        } else {
            throw std::runtime_error("bank: a command failed: " + r.reason);
        }
    };
    for (std::size_t i = from; i < to; ++i) {
        if (in_flight.size() == k_window)
            settle();
        const bank_command c = w.commands[i];
        const std::string& account = names[c.account];
        if (c.cents > 0)
            in_flight.push_back(pending{bank.handle(account, bank::deposit{c.cents}), c.cents});
        else
            in_flight.push_back(
                pending{bank.handle(account, bank::withdraw{-std::int64_t{c.cents}}), c.cents});
    }
    while (!in_flight.empty())
        settle();
    return tally;
}

// Opens every account and deposits k_initial_cents, all sent before the first is awaited.
template <class Service>
void open_accounts(Service& bank, const std::vector<std::string>& names) {
    std::vector<weft::future<weft::es::command_result>> replies;
    replies.reserve(names.size() * 2);
    for (const std::string& name : names) {
        replies.push_back(bank.handle(name, bank::open_account{name}));
        replies.push_back(bank.handle(name, bank::deposit{k_initial_cents}));
    }
    for (auto& r : replies)
        if (const weft::es::command_result result = r.get(); !result)
            throw std::runtime_error("bank: opening an account failed: " + result.reason);
}

// Empty when the balances and the log add up, else what is wrong.
template <class Service, class Store>
std::string audit_bank(Service& bank, const Store& store, const std::vector<std::string>& names,
                       const bank_workload& w, const producer_tally& seen) {
    std::vector<weft::future<weft::es::aggregate_state<bank::account::state>>> states;
    states.reserve(names.size());
    for (const std::string& name : names)
        states.push_back(bank.state_of(name));
    std::int64_t balances = 0;
    std::size_t negative = 0;
    for (auto& s : states) {
        const auto st = s.get();
        balances += st.state.balance;
        negative += st.state.balance < 0;
    }
    const auto accounts = static_cast<std::int64_t>(names.size());
    const std::int64_t want = accounts * k_initial_cents + w.deposited - seen.withdrawn;
    if (negative != 0)
        return "bank: " + std::to_string(negative) + " accounts below zero";
    if (balances != want)
        return "bank: sum of balances " + std::to_string(balances) +
               " != initial + deposits - accepted withdrawals " + std::to_string(want);
    const auto commands = static_cast<std::int64_t>(w.commands.size());
    if (seen.accepted + seen.refused != commands)
        return "bank: " + std::to_string(seen.accepted + seen.refused) + " replies for " +
               std::to_string(commands) + " commands";
    const auto want_head = static_cast<std::uint64_t>(2 * accounts + seen.accepted);
    if (const std::uint64_t head = store.head_position(); head != want_head)
        return "bank: the log holds " + std::to_string(head) + " events, want " +
               std::to_string(want_head);
    return {};
}

// Write transactions so far: sqlite_store counts them, memory_store has none.
template <class Store>
std::uint64_t commits_of(const Store& store) {
    if constexpr (requires { store.commits(); })
        return store.commits();
    else
        return 0;
}

template <class Store>
void bm_aggregate(benchmark::State& state) {
    using service = weft::es::aggregate_service<bank::account, Store, bank::account_codec>;
    const std::int64_t accounts = state.range(0);
    const bank_workload& w = bank_workload_for(state.range(1));
    std::vector<std::string> names;
    for (std::int64_t i = 0; i < accounts; ++i)
        names.push_back(account_name(i));
    producer_tally seen;
    std::uint64_t commits = 0; // sqlite: write transactions while timed
    for (auto _ : state) {
        std::string error;
        double seconds = 0;
        try {
            // The store first, then the scheduler, then the service: each goes before what it
            // uses.
            temp_store<Store> s;
            weft::scheduler sched(weft::scheduler::default_worker_count());
            service bank(sched, s.store);
            open_accounts(bank, names);
            const std::uint64_t commits_before = commits_of(s.store);
            std::vector<producer_tally> tallies(k_producers);
            const std::size_t n = w.commands.size();
            seconds = run_threads(k_producers, [&](int p) {
                const auto q = static_cast<std::size_t>(p);
                tallies[q] =
                    send_commands(bank, names, w, n * q / k_producers, n * (q + 1) / k_producers);
            });
            commits = commits_of(s.store) - commits_before;
            seen = {};
            for (const auto& t : tallies) {
                seen.withdrawn += t.withdrawn;
                seen.accepted += t.accepted;
                seen.refused += t.refused;
            }
            error = audit_bank(bank, s.store, names, w, seen);
        } catch (const std::exception& e) {
            error = e.what();
        }
        if (!error.empty()) {
            state.SkipWithError(error.c_str());
            return;
        }
        state.SetIterationTime(seconds);
    }
    const auto commands = static_cast<double>(w.commands.size());
    state.counters["commands_per_second"] = benchmark::Counter(
        static_cast<double>(state.iterations()) * commands, benchmark::Counter::kIsRate);
    if (commits > 0)
        state.counters["events_per_commit"] =
            static_cast<double>(seen.accepted) / static_cast<double>(commits);
    if (w.withdrawals > 0)
        state.counters["refused_pct"] =
            100.0 * static_cast<double>(seen.refused) / static_cast<double>(w.withdrawals);
}

// --- the ratio table ----------------------------------------------------------------------

// The median run of a row; 0 if it did not run.
double append_rate(const std::string& peer, std::int64_t batch, std::int64_t appenders) {
    auto it = g_append_rates.find({peer, batch, appenders});
    if (it == g_append_rates.end() || it->second.empty())
        return 0;
    std::vector<double> runs = it->second;
    std::sort(runs.begin(), runs.end());
    return runs[runs.size() / 2];
}

std::string rate_text(const std::string& peer, std::int64_t batch, std::int64_t appenders) {
    const double rate = append_rate(peer, batch, appenders);
    if (rate <= 0)
        return "-";
    char text[32];
    std::snprintf(text, sizeof text, "%.0f", rate);
    return text;
}

std::string ratio_text(const std::string& over, const std::string& under, std::int64_t batch,
                       std::int64_t appenders) {
    const double a = append_rate(over, batch, appenders);
    const double b = append_rate(under, batch, appenders);
    if (a <= 0 || b <= 0)
        return "-";
    char text[32];
    std::snprintf(text, sizeof text, "%.2fx", a / b);
    return text;
}

// weft's durable appends over the naive baseline's, per batch size and appender count (medians
// of the rows' runs), and the best durable weft rate against DESIGN.md's target. Prints nothing
// if no append row ran.
void print_append_ratios() {
    if (g_append_rates.empty())
        return;
    std::printf(
        "\nDurable appends, events/s (synchronous = FULL, WAL; same disk, same process):\n");
    std::printf("%6s %10s %14s %14s %14s %12s %16s\n", "batch", "appenders", "naive_sqlite",
                "weft_sqlite", "weft/naive", "pipelined", "pipelined/naive");
    for (std::int64_t appenders : {1, 8})
        for (std::int64_t batch : {1, 10, 100})
            std::printf(
                "%6lld %10lld %14s %14s %14s %12s %16s\n", static_cast<long long>(batch),
                static_cast<long long>(appenders),
                rate_text("naive_sqlite", batch, appenders).c_str(),
                rate_text("weft_sqlite", batch, appenders).c_str(),
                ratio_text("weft_sqlite", "naive_sqlite", batch, appenders).c_str(),
                rate_text("weft_sqlite_pipelined", batch, appenders).c_str(),
                ratio_text("weft_sqlite_pipelined", "naive_sqlite", batch, appenders).c_str());
    double best = 0;
    std::string where;
    for (const auto& [key, runs] : g_append_rates) {
        const auto& [peer, batch, appenders] = key;
        const double rate = append_rate(peer, batch, appenders);
        if (peer.starts_with("weft_sqlite") && rate > best) {
            best = rate;
            where = peer + ", batch " + std::to_string(batch) + ", " + std::to_string(appenders) +
                    " appender(s)";
        }
    }
    if (best > 0)
        std::printf("DESIGN.md target, >= 100000 durable events/s with group commit: best weft "
                    "%.0f events/s (%s): %s\n",
                    best, where.c_str(), best >= 100'000 ? "met" : "NOT met");
}

// --- registration -------------------------------------------------------------------------

// Append and aggregate rows run once each: a whole workload on threads they start, timed by
// hand (setup and teardown left out).
template <class Fn>
benchmark::internal::Benchmark* add_once(const std::string& name, Fn fn) {
    return benchmark::RegisterBenchmark(name.c_str(), fn)
        ->Iterations(1)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
}

template <class Peer, bool Pipelined = false>
void add_append(const std::string& peer, std::int64_t batch, std::int64_t appenders) {
    add_once("append/" + peer,
             [peer](benchmark::State& state) { bm_append<Peer, Pipelined>(state, peer); })
        ->ArgNames({"batch", "appenders"})
        ->Args({batch, appenders});
}

// Replay rows only read a store built before their loop: Google Benchmark picks the count.
void add_replay(const char* name, void (*fn)(benchmark::State&), std::int64_t events) {
    benchmark::RegisterBenchmark(name, fn)->ArgName("events")->Arg(events)->UseRealTime()->Unit(
        benchmark::kMillisecond);
}

// Append rows grouped by batch size and appender count, so each baseline sits under weft's.
void register_benchmarks() {
    for (std::int64_t appenders : {1, 8})
        for (std::int64_t batch : {1, 10, 100}) {
            add_append<weft_sqlite_peer>("weft_sqlite", batch, appenders);
            add_append<weft_sqlite_peer, true>("weft_sqlite_pipelined", batch, appenders);
            add_append<naive_sqlite_peer>("naive_sqlite", batch, appenders);
            add_append<memory_peer>("memory", batch, appenders);
        }

    add_replay("replay/read_stream/memory", bm_read_stream<weft::es::memory_store>,
               k_replay_stream_events);
    add_replay("replay/read_stream/sqlite", bm_read_stream<weft::es::sqlite_store>,
               k_replay_stream_events);
    add_replay("replay/read_all/memory", bm_read_all<weft::es::memory_store>,
               k_replay_streams * k_replay_stream_events);
    add_replay("replay/read_all/sqlite", bm_read_all<weft::es::sqlite_store>,
               k_replay_streams * k_replay_stream_events);

    add_once("aggregate/memory", bm_aggregate<weft::es::memory_store>)
        ->ArgNames({"accounts", "commands"})
        ->Args({k_accounts, g_commands});
    add_once("aggregate/sqlite", bm_aggregate<weft::es::sqlite_store>)
        ->ArgNames({"accounts", "commands"})
        ->Args({k_accounts, g_commands});
}

} // namespace

int main(int argc, char** argv) {
    constexpr std::int64_t most = std::numeric_limits<std::int32_t>::max();
    if (!weft_bench::take_int_flags("es_bench", argc, argv,
                                    {{"--append_calls=", &g_append_calls, 1, most},
                                     {"--pipelined_events=", &g_pipelined_events, 1, most},
                                     {"--commands=", &g_commands, 1, most}}))
        return 1;
    return weft_bench::run_benchmarks(argc, argv, register_benchmarks, [] {
        release_replay_stores();
        print_append_ratios();
    });
}
