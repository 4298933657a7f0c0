// weft::es::memory_store — an event store in memory, for tests, examples and caches. It keeps
// every guarantee of event_store (store.hpp) except durability: its events live as long as it.
//
//   weft::es::memory_store store;
//   store.append("account-42", expected_version::no_stream(), {opened, deposited});
//
// Readers run in parallel with each other and wait only while an append holds the write lock
// (it copies the batch in, nothing slower). Appends are serialized, which is what gives the
// global log its commit order.
#pragma once

#include "detail/append_rules.hpp"
#include "detail/read_rules.hpp"
#include "store.hpp"

#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace weft::es {

class memory_store {
public:
    memory_store() : log_(std::make_shared<shared_log>()) {}
    memory_store(const memory_store&) = delete;
    memory_store& operator=(const memory_store&) = delete;
    // Ends every subscription (a waiting next() returns empty).
    ~memory_store() { log_->signal().close(); }

    append_result append(const std::string& stream, expected_version expected,
                         std::vector<event_data> events) {
        detail::check_request(stream, events);
        append_result result;
        {
            std::unique_lock lock(log_->mutex);
            result = log_->append_locked(stream, expected, events);
        }
        if (result && !result.duplicate && result.last_position != 0)
            log_->signal().publish(result.last_position);
        return result;
    }
    // append that a context may cancel: a memory append does not wait for anything but a
    // short lock, so it is cancelled (nothing stored) only if `ctx` is done when it is called;
    // otherwise it runs to the end. Never in_doubt.
    append_result append(const context& ctx, const std::string& stream, expected_version expected,
                         std::vector<event_data> events) {
        if (ctx.cancelled())
            return append_result{.status = append_status::cancelled};
        return append(stream, expected, std::move(events));
    }
    // Memory appends do not wait, so the future is ready at once (an invalid batch is an
    // exception in the future).
    future<append_result> async_append(const std::string& stream, expected_version expected,
                                       std::vector<event_data> events) {
        std::exception_ptr error;
        try {
            return make_ready_future(append(stream, expected, std::move(events)));
        } catch (...) {
            error = std::current_exception();
        }
        // After the catch block, so only the future refers to it (see weft::future).
        return make_exceptional_future<append_result>(std::move(error));
    }

    std::vector<recorded_event> read_stream(const std::string& stream, stream_version from,
                                            read_direction direction, std::size_t max) const {
        std::vector<recorded_event> out;
        std::shared_lock lock(log_->mutex);
        auto it = log_->streams.find(stream);
        if (it == log_->streams.end() || max == 0)
            return out;
        const stream_entry& s = it->second;
        const timestamp now = now_utc();
        const stream_version last = s.positions.size();
        auto take = [&](stream_version v) {
            const recorded_event& e = log_->at(s.positions[v - 1]);
            if (detail::visible(s.meta, e, now))
                out.push_back(e);
        };
        if (direction == read_direction::forward) {
            for (stream_version v = from < 1 ? 1 : from; v <= last && out.size() < max; ++v)
                take(v);
        } else {
            for (stream_version v = from > last ? last : from; v >= 1 && out.size() < max; --v)
                take(v);
        }
        return out;
    }

    std::vector<recorded_event> read_all(log_position from, std::size_t max) const {
        return log_->read_all(from, max);
    }

    log_position head_position() const {
        std::shared_lock lock(log_->mutex);
        return log_->events.size();
    }

    stream_version version_of(const std::string& stream) const {
        std::shared_lock lock(log_->mutex);
        auto it = log_->streams.find(stream);
        return it == log_->streams.end() ? 0 : it->second.positions.size();
    }

    // No polling: only this process appends, and every append wakes its readers.
    subscription subscribe_all(log_position from) {
        return subscription(log_, from, std::chrono::steady_clock::duration::zero());
    }

    std::optional<recorded_event> find_event(const std::string& event_id) const {
        std::shared_lock lock(log_->mutex);
        auto it = log_->by_event_id.find(event_id);
        if (it == log_->by_event_id.end())
            return std::nullopt;
        return log_->at(it->second);
    }

    void set_stream_metadata(const std::string& stream, stream_metadata meta) {
        std::unique_lock lock(log_->mutex);
        log_->streams[stream].meta = std::move(meta);
    }
    stream_metadata stream_metadata_of(const std::string& stream) const {
        std::shared_lock lock(log_->mutex);
        auto it = log_->streams.find(stream);
        return it == log_->streams.end() ? stream_metadata{} : it->second.meta;
    }

    void save_snapshot(snapshot snap) {
        std::lock_guard lock(snapshot_mutex_);
        std::string key = snap.stream;
        snapshots_.insert_or_assign(std::move(key), std::move(snap));
    }
    std::optional<snapshot> load_snapshot(const std::string& stream) const {
        std::lock_guard lock(snapshot_mutex_);
        auto it = snapshots_.find(stream);
        if (it == snapshots_.end())
            return std::nullopt;
        return it->second;
    }

private:
    struct stream_entry {
        std::vector<log_position> positions; // positions[v - 1] holds version v
        stream_metadata meta;
    };

    // Shared with subscriptions, which may outlive the store.
    struct shared_log final : detail::log_source {
        mutable std::shared_mutex mutex;
        std::deque<recorded_event> events; // events[p - 1] is position p
        std::unordered_map<std::string, stream_entry> streams;
        std::unordered_map<std::string, log_position> by_event_id;

        const recorded_event& at(log_position p) const { return events[p - 1]; }

        std::vector<recorded_event> read_all(log_position from, std::size_t max) const override {
            std::vector<recorded_event> out;
            std::shared_lock lock(mutex);
            const log_position head = events.size();
            for (log_position p = from < 1 ? 1 : from; p <= head && out.size() < max; ++p)
                out.push_back(events[p - 1]);
            return out;
        }

        append_result append_locked(const std::string& stream, expected_version expected,
                                    std::vector<event_data>& batch) {
            stream_entry* s = nullptr;
            if (auto it = streams.find(stream); it != streams.end())
                s = &it->second;
            const stream_version current = s ? s->positions.size() : 0;

            if (auto repeat = detail::find_repeat(
                    stream, batch, [this](const std::string& id) { return where(id); }))
                return *repeat;
            if (auto unwritten = detail::check_expected_version(expected, current, batch.size()))
                return *unwritten;

            if (!s)
                s = &streams[stream];
            const timestamp now = now_utc();
            append_result r{.status = append_status::ok,
                            .version = current,
                            .first_position = events.size() + 1};
            for (event_data& d : batch) {
                recorded_event e;
                e.stream = stream;
                e.version = ++r.version;
                e.position = events.size() + 1;
                e.event_id = d.event_id.empty() ? new_event_id() : std::move(d.event_id);
                e.type = std::move(d.type);
                e.schema_version = d.schema_version;
                e.payload = std::move(d.payload);
                e.correlation_id = std::move(d.correlation_id);
                e.causation_id = std::move(d.causation_id);
                e.metadata = std::move(d.metadata);
                e.recorded_at = now;
                by_event_id.emplace(e.event_id, e.position);
                s->positions.push_back(e.position);
                events.push_back(std::move(e));
            }
            r.last_position = events.size();
            return r;
        }

        // Where the event with id `id` is stored, if it is (for detail::find_repeat).
        std::optional<detail::stored_event_location> where(const std::string& id) const {
            auto it = by_event_id.find(id);
            if (it == by_event_id.end())
                return std::nullopt;
            const recorded_event& e = at(it->second);
            return detail::stored_event_location{
                .stream = e.stream, .version = e.version, .position = e.position};
        }
    };

    std::shared_ptr<shared_log> log_;
    mutable std::mutex snapshot_mutex_;
    std::unordered_map<std::string, snapshot> snapshots_;
};

static_assert(event_store<memory_store>);

} // namespace weft::es
