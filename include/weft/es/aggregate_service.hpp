// weft::es::aggregate_service — runs a decider's commands against an event store, one actor
// per stream: commands to one aggregate run one at a time, with no lock, while different
// aggregates run in parallel on the scheduler's workers.
//
//   weft::es::memory_store store;
//   weft::es::aggregate_service<account, weft::es::memory_store, account_codec> bank(sched, store);
//   weft::es::command_result r = bank.handle("account-42", withdraw{30'00}).get();  // thread
//   auto r2 = co_await bank.handle("account-42", deposit{5'00});                    // task
//   if (!r) std::cout << r.reason << '\n';   // "insufficient balance (10.00)"
//
// What the actor for a stream does with a command:
// 1. On first use (and after passivation) it loads the state: the latest snapshot of the
//    current schema version if there is one, then the events after it.
// 2. If the command has an id that was already handled, it answers with that first result.
// 3. decide(command, state): events are appended with the expected version it loaded (the
//    append does not block a worker: the actor's task waits). A decision that writes nothing
//    (a rejection, or no events) meets no conflict, so before answering it the actor checks
//    the stream's version in the store; if another writer moved it, it goes on as in 5.
// 4. On success it evolves its state and answers with the new version and the global position
//    of the last event (give that to a projection's wait_for to read your own writes).
//    Every `snapshot.every` events it saves a snapshot.
// 5. On a version conflict (another process or service wrote the stream) it reads the new
//    events and decides again, up to max_conflict_retries times, then answers `conflict`.
//
// Command ids: events of a command with id C get event ids "C#0", "C#1"... so a retry that
// races with the first attempt is also caught by the store's idempotent append. Ids must be
// unique across the store (use new_event_id()). Results of recent commands are kept per
// aggregate (`remembered_commands`, 0: none); any other id is looked up in the store by event
// id "C#0" before the command is decided, so an accepted command is answered from its first
// result on any instance, with any cache size, however many events it appended. A rejected
// command leaves no event, so a retry of it that is not in this instance's memory (another
// instance, passivation, restart) is decided again.
//
// The store must outlive the service. Errors that are not outcomes — a store_error, an event
// the codec cannot read, a decider that throws — fail that command's future with the
// exception, and the aggregate reloads from the store on its next command.
#pragma once

#include "../actor.hpp"
#include "../registry.hpp"
#include "../task.hpp"
#include "codec.hpp"
#include "decider.hpp"
#include "store.hpp"

#include <chrono>
#include <concepts>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace weft::es {

// Sent with a command; all optional.
struct command_options {
    std::string command_id{};     // makes the command idempotent (see above)
    std::string correlation_id{}; // copied onto every event of the command
    std::string causation_id{};   // copied onto every event (defaults to the command id)
    std::string metadata{};       // copied onto every event
};

enum class command_status {
    accepted, // the events are stored (or there were none to store)
    rejected, // the decider refused: `reason` says why
    conflict, // the stream kept changing under us: max_conflict_retries were used up
};

struct command_result {
    command_status status = command_status::accepted;
    std::string reason{};       // rejected / conflict: why
    stream_version version = 0; // the stream's version after the command
    log_position position = 0;  // accepted: the global position of its last event (0: none)
    std::size_t events = 0;     // accepted: how many events it appended
    bool duplicate = false;     // answered from an earlier command with the same id

    explicit operator bool() const noexcept { return status == command_status::accepted; }
};

// A decider's state with the version it reflects.
template <class State>
struct aggregate_state {
    State state;
    stream_version version = 0;
};

// How states are saved as snapshots. Off unless `every` > 0 and both functions are set.
template <class State>
struct snapshot_policy {
    std::size_t every = 0;  // save one every this many events
    int schema_version = 1; // bump when the state's shape changes: older snapshots are ignored
    std::function<std::string(const State&)> encode{};
    std::function<std::optional<State>(std::string_view)> decode{}; // nullopt: ignore it
};

template <class State>
struct aggregate_options {
    std::size_t max_conflict_retries = 3;
    std::size_t remembered_commands = 256; // command results kept per aggregate
    // An aggregate idle this long is dropped from memory and reloaded on its next command
    // (0: keep every loaded aggregate).
    std::chrono::steady_clock::duration idle_timeout{};
    actor_options actor{};
    snapshot_policy<State> snapshot{};
};

template <decider D, event_store S, codec<typename D::event> C>
class aggregate_service {
public:
    using command = typename D::command;
    using event = typename D::event;
    using state = typename D::state;

    aggregate_service(scheduler& sched, S& store, D decider = {}, C codec = {},
                      aggregate_options<state> options = {})
        : context_(std::make_shared<context>(
              context{store, std::move(decider), std::move(codec), std::move(options)})),
          aggregates_(
              sched, [ctx = context_](const std::string& stream) { return aggregate(ctx, stream); },
              registry_options_for(context_->options)) {}

    aggregate_service(const aggregate_service&) = delete;
    aggregate_service& operator=(const aggregate_service&) = delete;

    // Runs `cmd` (a command, or one alternative of it) on the aggregate `stream`: co_await
    // the future in a task, or get() it on a thread.
    // Not a coroutine: the command is moved into the actor's message before anything waits.
    // (g++ 12 still destroys an aggregate temporary with a std::string member twice when the
    // caller writes it inside co_await, before this runs: see "Known compiler issues" in the
    // README.)
    template <class Cmd>
    requires std::constructible_from<command, Cmd&&> future<command_result>
    handle(const std::string& stream, Cmd&& cmd, const command_options& options) {
        return aggregates_.ask(stream, command_message{command(std::forward<Cmd>(cmd)), options});
    }
    template <class Cmd>
    requires std::constructible_from<command, Cmd&&> future<command_result>
    handle(const std::string& stream, Cmd&& cmd) {
        return aggregates_.ask(stream, command_message{command(std::forward<Cmd>(cmd)), {}});
    }

    // The aggregate's current state, read through its actor (so after every command sent
    // before this call from the same thread).
    future<aggregate_state<state>> state_of(const std::string& stream) {
        return aggregates_.ask(stream, state_query{});
    }

    // Aggregates held in memory now.
    std::size_t loaded() const { return aggregates_.size(); }

    // Drops from memory every aggregate idle for `idle` or longer (they reload on demand).
    std::size_t passivate_idle(std::chrono::steady_clock::duration idle) {
        return aggregates_.passivate_idle(idle);
    }

private:
    struct context {
        S& store;
        D decider;
        C codec;
        aggregate_options<state> options;
    };

    struct command_message {
        command cmd;
        command_options options;
    };
    struct state_query {};

    // The actor of one stream. Only its drain job touches it, one message at a time.
    class aggregate {
    public:
        aggregate(std::shared_ptr<context> ctx, std::string stream)
            : ctx_(std::move(ctx)), stream_(std::move(stream)), state_(ctx_->decider.initial()) {}

        task<command_result> handle(command_message m) {
            try {
                co_return co_await run(std::move(m));
            } catch (...) {
                loaded_ = false; // we may not know what the store holds: reload next time
                throw;
            }
        }

        aggregate_state<state> handle(state_query) {
            try {
                ensure_loaded();
            } catch (...) {
                loaded_ = false;
                throw;
            }
            return {state_, version_};
        }

    private:
        task<command_result> run(command_message m) {
            ensure_loaded();
            const std::string& id = m.options.command_id;
            if (!id.empty()) {
                if (std::optional<command_result> earlier = find_result(id))
                    co_return *earlier;
            }
            for (std::size_t attempt = 0;; ++attempt) {
                decision<event> d = ctx_->decider.decide(m.cmd, state_);
                if (!d.accepted() || d.events().empty()) {
                    // Nothing to write, so no conflict can say our state is stale: ask.
                    if (ctx_->store.version_of(stream_) == version_) {
                        if (!d.accepted())
                            co_return remember(id,
                                               command_result{command_status::rejected, d.reason(),
                                                              version_, 0, 0, false});
                        co_return remember(
                            id,
                            command_result{command_status::accepted, {}, version_, 0, 0, false});
                    }
                } else {
                    std::vector<event> events = std::move(d).events();
                    std::vector<event_data> batch = encode(events, m.options);
                    std::optional<append_result> r;
                    std::exception_ptr invalid;
                    try {
                        r = co_await ctx_->store.async_append(
                            stream_, expected_version::exactly(version_), std::move(batch));
                    } catch (const invalid_append&) {
                        // With a command id: the other instance may have stored this command
                        // with fewer events than we decided now (its state was older).
                        if (id.empty())
                            throw;
                        invalid = std::current_exception();
                    }
                    if (r && *r && !r->duplicate) {
                        const stream_version before = version_;
                        for (const event& e : events)
                            state_ = ctx_->decider.evolve(std::move(state_), e);
                        version_ = r->version;
                        maybe_snapshot(before);
                        co_return remember(id, command_result{command_status::accepted,
                                                              {},
                                                              version_,
                                                              r->last_position,
                                                              events.size(),
                                                              false});
                    }
                    if (invalid) {
                        catch_up();
                        if (std::optional<command_result> earlier = find_result(id))
                            co_return *earlier;
                        std::rethrow_exception(invalid);
                    }
                }
                // Someone else wrote this stream (or this very command, if r.duplicate):
                // read what they wrote, then look again.
                catch_up();
                if (!id.empty()) {
                    if (std::optional<command_result> earlier = find_result(id))
                        co_return *earlier;
                }
                if (attempt >= ctx_->options.max_conflict_retries)
                    co_return command_result{command_status::conflict,
                                             "stream " + stream_ + " changed during each of " +
                                                 std::to_string(attempt + 1) +
                                                 " attempts (now at version " +
                                                 std::to_string(version_) + ")",
                                             version_,
                                             0,
                                             0,
                                             false};
            }
        }

        void ensure_loaded() {
            if (loaded_)
                return;
            state_ = ctx_->decider.initial();
            version_ = 0;
            results_.clear();
            order_.clear();
            const snapshot_policy<state>& policy = ctx_->options.snapshot;
            if (policy.every > 0 && policy.decode) {
                std::optional<snapshot> snap = ctx_->store.load_snapshot(stream_);
                if (snap && snap->schema_version == policy.schema_version) {
                    if (std::optional<state> s = policy.decode(snap->payload)) {
                        state_ = std::move(*s);
                        version_ = snap->version;
                    }
                }
            }
            catch_up();
            loaded_ = true;
        }

        // Applies the stream's events after version_.
        void catch_up() {
            for (;;) {
                std::vector<recorded_event> batch =
                    ctx_->store.read_stream(stream_, version_ + 1, read_direction::forward, 512);
                if (batch.empty())
                    return;
                for (const recorded_event& e : batch) {
                    state_ = ctx_->decider.evolve(std::move(state_), ctx_->codec.decode(e));
                    version_ = e.version;
                    note_replayed(e);
                }
            }
        }

        std::vector<event_data> encode(const std::vector<event>& events,
                                       const command_options& o) const {
            std::vector<event_data> batch;
            batch.reserve(events.size());
            for (std::size_t i = 0; i < events.size(); ++i) {
                encoded_event enc = ctx_->codec.encode(events[i]);
                event_data d;
                d.type = std::move(enc.type);
                d.schema_version = enc.schema_version;
                d.payload = std::move(enc.payload);
                if (!o.command_id.empty())
                    d.event_id = o.command_id + "#" + std::to_string(i);
                d.correlation_id = o.correlation_id;
                d.causation_id = o.causation_id.empty() ? o.command_id : o.causation_id;
                d.metadata = o.metadata;
                batch.push_back(std::move(d));
            }
            return batch;
        }

        void maybe_snapshot(stream_version before) {
            const snapshot_policy<state>& policy = ctx_->options.snapshot;
            if (policy.every == 0 || !policy.encode ||
                before / policy.every == version_ / policy.every)
                return;
            ctx_->store.save_snapshot(
                snapshot{stream_, version_, policy.schema_version, policy.encode(state_)});
        }

        // --- command results -------------------------------------------------------------

        // The event id "C#i" names event i of command C.
        static std::optional<std::pair<std::string_view, std::size_t>>
        command_of(std::string_view event_id) {
            const std::size_t hash = event_id.rfind('#');
            if (hash == std::string_view::npos || hash == 0 || hash + 1 == event_id.size())
                return std::nullopt;
            std::size_t index = 0;
            for (char c : event_id.substr(hash + 1)) {
                if (c < '0' || c > '9')
                    return std::nullopt;
                index = index * 10 + static_cast<std::size_t>(c - '0');
            }
            return std::pair{event_id.substr(0, hash), index};
        }

        void note_replayed(const recorded_event& e) {
            auto parsed = command_of(e.event_id);
            if (!parsed)
                return;
            std::string id(parsed->first);
            auto it = results_.find(id);
            if (it == results_.end())
                remember(id, command_result{command_status::accepted,
                                            {},
                                            e.version,
                                            e.position,
                                            parsed->second + 1,
                                            false});
            else if (it->second.status == command_status::accepted) {
                it->second.version = e.version;
                it->second.position = e.position;
                it->second.events = parsed->second + 1;
            }
        }

        command_result remember(const std::string& id, command_result r) {
            if (id.empty() || ctx_->options.remembered_commands == 0)
                return r;
            if (results_.insert_or_assign(id, r).second)
                order_.push_back(id);
            while (order_.size() > ctx_->options.remembered_commands) {
                results_.erase(order_.front());
                order_.pop_front();
            }
            return r;
        }

        // The first result of command `id`, from memory or (for an accepted command this
        // instance does not remember) from its events in the store, which may be newer than
        // our state: another instance may have stored it.
        std::optional<command_result> find_result(const std::string& id) {
            if (auto it = results_.find(id); it != results_.end()) {
                command_result r = it->second;
                r.duplicate = true;
                return r;
            }
            std::optional<recorded_event> last = stored_event_of(id, 0);
            if (!last)
                return std::nullopt;
            // Its events are "C#0".."C#n-1", stored in one batch: find n by doubling, then
            // halving, on which ids exist (about 2 log2(n) index lookups, whatever read_stream
            // would hide or page).
            std::size_t have = 0;    // "C#have" exists
            std::size_t lacking = 0; // "C#lacking" does not (0: not found yet)
            while (lacking == 0) {
                const std::size_t probe = have * 2 + 1;
                if (std::optional<recorded_event> e = stored_event_of(id, probe)) {
                    have = probe;
                    last = std::move(e);
                } else {
                    lacking = probe;
                }
            }
            while (lacking - have > 1) {
                const std::size_t probe = have + (lacking - have) / 2;
                if (std::optional<recorded_event> e = stored_event_of(id, probe)) {
                    have = probe;
                    last = std::move(e);
                } else {
                    lacking = probe;
                }
            }
            command_result r = remember(
                id,
                command_result{
                    command_status::accepted, {}, last->version, last->position, have + 1, false});
            r.duplicate = true;
            return r;
        }

        // Event `index` of command `id` if it is stored in this stream.
        std::optional<recorded_event> stored_event_of(const std::string& id,
                                                      std::size_t index) const {
            std::optional<recorded_event> e =
                ctx_->store.find_event(id + "#" + std::to_string(index));
            if (e && e->stream != stream_)
                return std::nullopt;
            return e;
        }

        std::shared_ptr<context> ctx_;
        std::string stream_;
        state state_;
        stream_version version_ = 0;
        bool loaded_ = false;
        std::unordered_map<std::string, command_result> results_;
        std::deque<std::string> order_; // results_' keys, oldest first
    };

    static registry_options<std::string, aggregate>
    registry_options_for(const aggregate_options<state>& o) {
        registry_options<std::string, aggregate> r;
        r.actor = o.actor;
        r.idle_timeout = o.idle_timeout;
        // Passivated aggregates are dropped, not kept: the store has their state.
        r.on_passivate = [](const std::string&, aggregate&&) {};
        return r;
    }

    std::shared_ptr<context> context_;
    registry<std::string, aggregate> aggregates_;
};

} // namespace weft::es
