// weft::es::detail — the rule of event_store::read_stream (store.hpp) that every store applies
// the same way: which stored events stream metadata hides (truncate_before, max_age). Hidden
// events leave read_stream only; versions, positions and read_all keep them.
#pragma once

#include "../event.hpp"
#include "../store.hpp"

namespace weft::es::detail {

// Whether read_stream may show `e` under `meta` at time `now`.
inline bool visible(const stream_metadata& meta, const recorded_event& e, timestamp now) {
    if (meta.truncate_before && e.version < *meta.truncate_before)
        return false;
    if (meta.max_age && e.recorded_at + *meta.max_age < now)
        return false;
    return true;
}

} // namespace weft::es::detail
