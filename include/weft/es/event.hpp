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

#include "../detail/random.hpp"

#include <chrono>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>

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

// A random (version 4) UUID in its usual text form, for event ids and command ids.
// Seeded per thread from std::random_device, so two processes do not share a sequence.
inline std::string new_event_id() {
    thread_local weft::detail::fast_random rng{(std::uint64_t{std::random_device{}()} << 32) ^
                                               std::random_device{}() ^
                                               weft::detail::fast_random::for_this_thread().next()};
    const std::uint64_t hi = (rng.next() & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
    const std::uint64_t lo = (rng.next() & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
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
