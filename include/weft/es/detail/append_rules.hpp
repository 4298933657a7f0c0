// weft::es::detail — the rules of event_store::append (store.hpp), written once, so that every
// store answers the same batch with the same result or the same message. A store applies them
// in this order, then writes the batch:
//   1. check_request (check_stream_name, check_ids_unique): the request alone, before anything
//      is looked up;
//   2. find_repeat: a batch stored before is answered from where it is (idempotent append), a
//      batch partly stored or stored elsewhere is refused;
//   3. check_expected_version: the stream's current version against the expected one; an empty
//      batch is answered here too.
// Bad requests throw invalid_append; the stores' tests compare their messages.
#pragma once

#include "../event.hpp"
#include "../store.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace weft::es::detail {

inline void check_stream_name(const std::string& stream) {
    if (stream.empty())
        throw invalid_append("weft::es: append to a stream with an empty name");
}

// Throws invalid_append if an event id appears twice in `batch` (blank ids are made by the
// store, so they never repeat).
inline void check_ids_unique(const std::string& stream, const std::vector<event_data>& batch) {
    if (batch.size() < 2)
        return;
    std::unordered_set<std::string_view> seen;
    for (const event_data& d : batch) {
        if (!d.event_id.empty() && !seen.insert(d.event_id).second)
            throw invalid_append("weft::es: event id " + d.event_id +
                                 " appears twice in one batch for stream " + stream);
    }
}

// Step 1: what can be refused from the request alone, before a store looks anything up.
inline void check_request(const std::string& stream, const std::vector<event_data>& batch) {
    check_stream_name(stream);
    check_ids_unique(stream, batch);
}

// Where a stored event is. `stream` may point into the store's own buffers: find_repeat reads
// it before it asks for the next id.
struct stored_event_location {
    std::string_view stream;
    stream_version version = 0;
    log_position position = 0;
};

// The idempotent-append rule, for a batch whose ids are unique (check_ids_unique). `where(id)`
// returns where the event with that id is stored, or nullopt; it is asked once per id, in batch
// order (blank ids are not asked: they are new). Returns
// - nullopt when no id is stored: a new batch, to be written;
// - the first append's result (`duplicate` set) when every id is stored, in `stream`, at
//   consecutive versions in batch order: a retry, nothing to write;
// and throws invalid_append when only some ids are stored, or the stored ones are another
// stream's or in another order.
template <class Where>
std::optional<append_result> find_repeat(const std::string& stream,
                                         const std::vector<event_data>& batch, Where&& where) {
    std::size_t stored = 0;
    std::optional<std::size_t> misplaced; // the first id not where a retry would find it
    stream_version first_version = 0;
    append_result repeat{.status = append_status::ok, .duplicate = true};
    for (std::size_t i = 0; i < batch.size(); ++i) {
        if (batch[i].event_id.empty())
            continue;
        const std::optional<stored_event_location> at = where(batch[i].event_id);
        if (!at)
            continue;
        ++stored;
        if (i == 0) {
            first_version = at->version;
            repeat.first_position = at->position;
        }
        // Only read when every id is stored (batch[0]'s too).
        if (!misplaced && (at->stream != stream || at->version != first_version + i))
            misplaced = i;
        repeat.version = at->version; // in the end, the last event's
        repeat.last_position = at->position;
    }
    if (stored == 0)
        return std::nullopt;
    if (stored != batch.size())
        throw invalid_append("weft::es: batch for stream " + stream +
                             " repeats some stored event ids but not all");
    if (misplaced)
        throw invalid_append("weft::es: event id " + batch[*misplaced].event_id +
                             " is already stored elsewhere than this batch of " + stream);
    return repeat;
}

// The result of an append that writes nothing, given the stream's `current` version:
// wrong_expected_version carrying `current` when `expected` does not accept it, else ok at
// `current` for an empty batch. nullopt when the batch is to be written.
inline std::optional<append_result>
check_expected_version(expected_version expected, stream_version current, std::size_t batch_size) {
    if (!expected.accepts(current))
        return append_result{.status = append_status::wrong_expected_version, .version = current};
    if (batch_size == 0)
        return append_result{.status = append_status::ok, .version = current};
    return std::nullopt;
}

} // namespace weft::es::detail
