// weft::es events as a store sees them: what an appender hands in (event_data) and what a
// reader gets back (recorded_event, the envelope).
//
//   weft::es::event_data e{.type = "deposited", .payload = R"({"amount":5000})"};
//   e.correlation_id = request_id;            // optional; event_id is made if left empty
//   store.append("account-42", weft::es::expected_version::any(), {e});
//
// A store never looks inside a payload: it is bytes, produced and read by a codec (codec.hpp).
// Stream versions count from 1 (the first event of a stream has version 1, a stream with n
// events has version n, 0 means "no stream"); global positions count from 1 across all streams
// and have no gaps.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>

#if __has_include(<pthread.h>)
#include <pthread.h>
#endif

namespace weft::es {

using stream_version = std::uint64_t; // 0: the stream has no events
using log_position = std::uint64_t;   // 0: before the first event
using timestamp = std::chrono::time_point<std::chrono::system_clock, std::chrono::microseconds>;

// An event to append. The store fills in stream, version, position and timestamp.
struct event_data {
    std::string type{};           // the event's name, e.g. "deposited" (what the codec reads)
    std::string payload{};        // the encoded event, opaque to the store
    int schema_version = 1;       // the payload's shape; upcasters turn old shapes into new
    std::string event_id{};       // unique across the store; made (a random UUID) when empty
    std::string correlation_id{}; // the request/conversation this event belongs to
    std::string causation_id{};   // the command or event that caused it
    std::string metadata{};       // anything else the user wants to keep (JSON by convention)
};

// An event as stored: the envelope plus the event.
struct recorded_event {
    std::string stream;       // the stream (aggregate) it belongs to
    stream_version version{}; // its place in that stream, from 1
    log_position position{};  // its place in the store's global log, from 1, gapless
    std::string event_id;
    std::string type;
    int schema_version = 1;
    std::string payload;
    std::string correlation_id;
    std::string causation_id;
    std::string metadata;
    timestamp recorded_at{}; // UTC, when the store committed it
};

// A store that cannot do its job: an I/O error, a file that is not a weft store or is corrupt,
// a schema from a newer weft. The message names the store (its file) and the cause.
class store_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A request that is a bug in the caller, e.g. a batch that repeats some stored event ids but
// not all of them, or an empty stream name.
class invalid_append : public std::logic_error {
public:
    using std::logic_error::logic_error;
};

// A new UUID in its usual text form, for event ids and command ids: version 7 (RFC 9562), a
// 48-bit Unix time in milliseconds followed by 74 random bits. Time-ordered ids land next to
// each other in a store's event-id index, so an append dirties one B-tree page instead of a
// random one per event (random v4 ids made SQLite write ~14x more pages). The random bits come
// from a per-thread generator seeded from std::random_device (again in a forked child), so
// threads and processes do not collide.
inline std::string new_event_id();

// The wall clock at the store's resolution (microseconds), for recorded_event::recorded_at.
inline timestamp now_utc() noexcept;

// ---- implementation ------------------------------------------------------------------------

namespace detail {

// Bumped in the child of every fork(), so a thread's generator there seeds itself again: a
// forked child must not make its parent's ids.
inline std::atomic<std::uint64_t> fork_generation{0};

// new_event_id's random bits: a generator per thread, seeded from std::random_device (so
// threads and processes differ), and seeded again after a fork.
inline std::uint64_t event_id_random() {
#if __has_include(<pthread.h>)
    static const bool watching_forks = [] {
        // relaxed: the child is single-threaded when this runs; its threads read it later.
        pthread_atfork(nullptr, nullptr,
                       [] { fork_generation.fetch_add(1, std::memory_order_relaxed); });
        return true;
    }();
    (void)watching_forks;
#endif
    struct generator {
        std::mt19937_64 engine;
        std::uint64_t generation = ~std::uint64_t{0}; // seeded on first use
    };
    thread_local generator g;
    // relaxed: only this process's fork count matters, and it changes before any thread of the
    // child runs.
    const std::uint64_t generation = fork_generation.load(std::memory_order_relaxed);
    if (g.generation != generation) {
        std::random_device device;
        std::seed_seq seed{device(), device(), device(), device()};
        g.engine.seed(seed);
        g.generation = generation;
    }
    return g.engine();
}

} // namespace detail

inline std::string new_event_id() {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
    const std::uint64_t hi = (static_cast<std::uint64_t>(ms) << 16) | 0x7000ULL |
                             (detail::event_id_random() & 0x0fffULL); // time, version 7, 12 bits
    const std::uint64_t lo = (detail::event_id_random() & 0x3fffffffffffffffULL) |
                             0x8000000000000000ULL; // variant 10, 62 random bits
    static constexpr char digits[] = "0123456789abcdef";
    std::string s;
    s.reserve(36);
    for (int i = 0; i < 32; ++i) {
        if (i == 8 || i == 12 || i == 16 || i == 20)
            s.push_back('-');
        const std::uint64_t word = i < 16 ? hi : lo;
        s.push_back(digits[(word >> (60 - 4 * (i % 16))) & 0xf]);
    }
    return s;
}

inline timestamp now_utc() noexcept {
    return std::chrono::time_point_cast<std::chrono::microseconds>(
        std::chrono::system_clock::now());
}

} // namespace weft::es
