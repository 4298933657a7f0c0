// weft::es::event_store — the contract every event store keeps (memory_store, sqlite_store),
// and the values it speaks in.
//
//   auto r = store.append("account-42", expected_version::exactly(3), std::move(events));
//   if (!r)   // a value, not an exception: someone else wrote first
//       std::cout << "conflict, stream is at version " << r.version << '\n';
//
// The guarantees (checked for every store by tests/es/store_conformance.hpp):
// - append is atomic: all events of a batch are stored, or none.
// - Stream versions are 1, 2, 3... per stream; global positions 1, 2, 3... across the store,
//   gapless and assigned in commit order, so a reader that has seen position p never later
//   finds a new event below p (projections rely on this to checkpoint).
// - An event id is stored once. Appending a batch whose event ids are all stored already, in
//   that stream, at consecutive versions in that order, writes nothing and returns where they
//   are (`duplicate` set; for a retried batch that is the first append's result), so a retry
//   after a lost reply is safe. A batch mixing stored and new ids, or naming stored events of
//   another stream or in another order, throws invalid_append.
// - The expected version is checked against the stream's current version; on mismatch the
//   result says wrong_expected_version and carries the actual version. exactly(n) matches
//   only a stream at version n, for every n (none stands for any or stream_exists).
//
// Hidden events (truncate_before, max_age; weft has no delete): they leave read_stream, not
// the stream, so version_of and every expected version count them. A stream whose events are
// all hidden still exists: no_stream and exactly(0) conflict, stream_exists accepts, exactly(n)
// wants the last version appended (not the number of events shown), and new events continue
// the numbering (hidden too if below truncate_before). EventStoreDB's soft delete ($tb) also
// keeps the numbering (a write after it continues where the stream left off); where it reads
// a soft-deleted stream as "not found", read_stream returns no events. Both weft stores behave
// the same (tests/es/store_conformance.hpp checks it).
//
// Idempotent appends compared with EventStoreDB: it recognises a repeated write by its event
// ids only against the stream's latest events (best effort with `any`); weft looks every id
// up in the store-wide event-id index, so a batch repeated any time later, with any expected
// version, is still a duplicate, and a stored id reused elsewhere is an invalid_append.
#pragma once

#include "../context.hpp"
#include "../future.hpp"
#include "event.hpp"
#include "subscription.hpp"

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace weft::es {

// What the appender believes the stream's version to be (optimistic concurrency). The kind is
// a tag beside the number, so every stream_version is a valid exactly(n): none of them stands
// for any or stream_exists.
class expected_version {
public:
    // Append whatever the stream's version.
    static constexpr expected_version any() noexcept { return expected_version(kind::any, 0); }
    // Append only to a stream with no events (create it).
    static constexpr expected_version no_stream() noexcept {
        return expected_version(kind::exactly, 0);
    }
    // Append only to a stream that has at least one event.
    static constexpr expected_version stream_exists() noexcept {
        return expected_version(kind::exists, 0);
    }
    // Append only if the stream is at exactly version `v` (0 is the same as no_stream).
    static constexpr expected_version exactly(stream_version v) noexcept {
        return expected_version(kind::exactly, v);
    }

    constexpr bool accepts(stream_version current) const noexcept {
        switch (kind_) {
        case kind::any:
            return true;
        case kind::exists:
            return current > 0;
        case kind::exactly:
            break;
        }
        return current == version_;
    }
    std::string describe() const {
        if (kind_ == kind::any)
            return "any";
        if (kind_ == kind::exists)
            return "stream exists";
        if (version_ == 0)
            return "no stream";
        return std::to_string(version_);
    }
    friend constexpr bool operator==(expected_version, expected_version) = default;

private:
    enum class kind : unsigned char { any, exists, exactly };
    constexpr expected_version(kind k, stream_version v) noexcept : kind_(k), version_(v) {}
    kind kind_;
    stream_version version_; // exactly: the version; 0 for any and exists
};

enum class append_status {
    ok,                     // stored (or already stored: see `duplicate`)
    wrong_expected_version, // nothing stored; `version` is the stream's actual version
    // append(ctx, ...) only, when the context was done first:
    cancelled, // before the batch was handed to the store: nothing stored
    in_doubt,  // after the store took the batch: it may or may not commit (like a network
               // timeout). Append the same batch again, with the same event ids, to find out:
               // a batch stored meanwhile comes back ok and `duplicate`.
};

struct append_result {
    append_status status = append_status::ok;
    // ok: the stream's version after the batch (the last event's version).
    // wrong_expected_version: the stream's current version.
    stream_version version = 0;
    log_position first_position = 0; // ok: the batch's first and last global positions
    log_position last_position = 0;  //     (both 0 for an empty batch)
    bool duplicate = false;          // ok: every event was stored before; nothing was written

    explicit operator bool() const noexcept { return status == append_status::ok; }
};

enum class read_direction { forward, backward };

// The end of a stream, for reading backward from its last event.
inline constexpr stream_version stream_end = std::numeric_limits<stream_version>::max();

// Per-stream settings that hide old events from read_stream (they stay in the global log, so
// positions keep no gaps for projections that already saw them).
struct stream_metadata {
    std::optional<std::chrono::milliseconds> max_age; // hide events older than this
    std::optional<stream_version> truncate_before;    // hide versions below this
    friend bool operator==(const stream_metadata&, const stream_metadata&) = default;
};

// An aggregate's state at `version`, encoded by the aggregate service. A snapshot whose
// schema_version is not the service's current one is ignored (the state is replayed).
struct snapshot {
    std::string stream;
    stream_version version = 0;
    int schema_version = 1;
    std::string payload;
};

// Reads never see a partial batch. `max` bounds the events returned by one call.
template <class S>
concept event_store = requires(S& s, const S& cs, const std::string& stream,
                               std::vector<event_data> events, stream_metadata meta,
                               snapshot snap) {
    // Appends `events` to `stream` atomically; blocks until durable (per the store's options).
    { s.append(stream, expected_version::any(), std::move(events)) } -> std::same_as<append_result>;
    // The same, without blocking: a task co_awaits the future, a thread may get() it.
    {
        s.async_append(stream, expected_version::any(), std::move(events))
        } -> std::same_as<future<append_result>>;
    // Up to `max` events of `stream` starting at version `from` (inclusive), in `direction`.
    {
        cs.read_stream(stream, stream_version{1}, read_direction::forward, std::size_t{1})
        } -> std::same_as<std::vector<recorded_event>>;
    // Up to `max` events of the global log starting at position `from` (inclusive).
    { cs.read_all(log_position{1}, std::size_t{1}) } -> std::same_as<std::vector<recorded_event>>;
    // The last committed position (0 when the store is empty).
    { cs.head_position() } -> std::same_as<log_position>;
    // The stream's current version (0: no such stream).
    { cs.version_of(stream) } -> std::same_as<stream_version>;
    // Catch-up then live reading of the global log from position `from` (inclusive).
    { s.subscribe_all(log_position{1}) } -> std::same_as<subscription>;
    // The stored event with this id, if any.
    { cs.find_event(stream) } -> std::same_as<std::optional<recorded_event>>;
    s.set_stream_metadata(stream, meta);
    { cs.stream_metadata_of(stream) } -> std::same_as<stream_metadata>;
    // Keeps only the latest snapshot per stream; saving may complete after the call returns.
    s.save_snapshot(std::move(snap));
    { cs.load_snapshot(stream) } -> std::same_as<std::optional<snapshot>>;
};

} // namespace weft::es
