// weft::es::projection_runner — keeps read models up to date from a store's global log: each
// projection reads from its checkpoint (catch-up, in bulk), then follows new appends (live).
// Many projections run side by side on the scheduler, each at its own pace (fan-out); one that
// fails never holds up the others.
//
//   weft::es::projection_runner runner(sched, store);
//   runner.add("balances", {.handle = [&](const weft::es::recorded_event& e) { ... }},
//              {.partitioned = true});
//   auto r = bank.handle("alice", deposit{5'00}).get();
//   runner.wait_for("balances", r.position);     // read your own write
//
// Targets: what a projection applies its events to is a projection_target (below): a class of
// one's own with handle(e) and the optional members it needs (checkpoint, transactions, reset,
// dead letters), sqlite_read_model::target(), or a function_target of lambdas, which
// `{.handle = ...}` above builds in place.
//
// Order: events of one stream are always handled in log order. A partitioned projection handles
// events of different streams in parallel (a stream's partition is a hash of its id), so its
// handler must be safe to call for different streams at once (keyed_read_model is); the
// checkpoint then advances only past a batch every partition has finished.
//
// Failures: a handler that throws is tried again after a back-off that doubles (first_backoff
// up to max_backoff), max_attempts times in all. Then, by policy, the event is parked in the
// projection's dead letters (inspect with dead_letters(), retry with retry_dead_letters()) and
// the projection goes on, or the projection stops in state `failed` with the error. A target
// with park/load_dead_letters (sqlite_read_model) stores them with its checkpoint, so they
// survive a restart; for other targets they live in the runner's memory only.
//
// Delivery: a projection_target with transactions (begin_batch/commit_batch, as
// sqlite_read_model provides) commits its changes and its checkpoint together: each event takes
// effect exactly once, also across a crash. A target without them (in-memory read models)
// saves its checkpoint after the handler: after a restart from a saved checkpoint, or when a
// stop cuts a batch short, some events may be handled again (at least once), so write such
// handlers to be idempotent (set a balance from the event's version, skip versions already
// seen).
//
// Locks: a transaction may hold a lock others wait for (SQLite's one write lock per file, which
// a sqlite_store's appends need when the read model shares its file). So a projection that is
// not partitioned never keeps one open across a back-off: the events before the failing one
// commit first, and each retry has a transaction of its own. A batch whose handlers run past
// max_batch_time commits what it has done and goes on in a new transaction after a 25 ms pause.
// A slow handler thus holds the lock for about max_batch_time (or one handler call, if longer);
// a partitioned projection keeps its batch's one transaction, back-offs included.
#pragma once

#include "../context.hpp"
#include "../scheduler.hpp"
#include "../task.hpp"
#include "../task_group.hpp"
#include "../time.hpp"
#include "detail/projection_target.hpp"
#include "store.hpp"
#include "subscription.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace weft::es {

enum class projection_state {
    stopped,     // not running (never started, or stop() was called)
    catching_up, // reading stored events it has not handled yet
    live,        // handled everything stored when it last looked; waiting for new appends
    failed,      // stopped by a handler's error (failure_policy::stop) or a checkpoint error
};

inline std::string_view to_string(projection_state s) noexcept {
    switch (s) {
    case projection_state::stopped:
        return "stopped";
    case projection_state::catching_up:
        return "catching up";
    case projection_state::live:
        return "live";
    case projection_state::failed:
        return "failed";
    }
    return "?";
}

enum class failure_policy {
    dead_letter, // park the event and go on
    stop,        // stop the projection in state `failed`
};

struct projection_options {
    bool partitioned = false;     // handle different streams in parallel (see above)
    std::size_t partitions = 16;  // how many streams may be handled at once when partitioned
    std::size_t batch = 512;      // events read, handled and checkpointed at a time
    std::size_t max_attempts = 5; // tries per event (1: no retry)
    std::chrono::milliseconds first_backoff{10}; // wait before the second try; doubles after
    std::chrono::milliseconds max_backoff{1000};
    failure_policy on_failure = failure_policy::dead_letter;
    // With transactions, not partitioned: once a batch's handlers have run this long, the part
    // done so far commits and the rest goes on in a new transaction after a short pause, so a
    // slow handler holds a shared file's write lock for about this long at most (see below).
    std::chrono::milliseconds max_batch_time{100};
};

struct dead_letter {
    recorded_event event;
    std::string error;        // the handler's last exception message
    std::size_t attempts = 0; // how many times it was tried
};

// What a projection does with its events, and where its checkpoint and dead letters live: a
// type with a member handle(e), and any of the optional members below. The runner finds at
// compile time which ones a type has; where one is absent it does that part itself, as said.
// A member of one of these names that the runner cannot call as written here is a compile
// error, not a member left unused. sqlite_read_model::target() returns a target with every
// member; function_target builds one from std::functions (lambdas).
//
// Threads: the runner calls a target's members one at a time, from the task that runs its
// projection on the scheduler (on a worker thread), except where said otherwise below and for
// a partitioned projection, which calls handle (and park) for different streams at once.
//
//   void handle(const recorded_event& e);                                  (required)
//       Applies e to the read model. A stream's events come in log order. A throw is a failed try:
//       the runner tries again after a back-off, then parks e as a dead letter or fails the
//       projection (projection_options::on_failure). With transactions, a throw must leave the open
//       transaction as it found it (sqlite_read_model runs each call in a SAVEPOINT): the runner
//       may commit it without e. Without retry_dead_letter, retry_dead_letters() calls it too,
//       on its own thread while the projection is stopped.
//   log_position load_checkpoint();
//       Where to resume: every event up to it is handled. Called by add(), on its thread,
//       before the projection starts; a throw leaves add() (nothing is added). Absent: 0.
//   void save_checkpoint(log_position p);
//       Without transactions: called after each batch, every event up to p being handled (or
//       parked). A throw fails the projection. Absent: the checkpoint lives in the runner's
//       memory only. Not called for a target with transactions (commit_batch stores it).
//   void begin_batch();  void commit_batch(log_position p);  void rollback_batch();
//       Transactions: all three or none. begin_batch opens one before a batch, or before the
//       next part of one (the runner commits a batch in parts around back-offs and after
//       max_batch_time; see the top of this file). commit_batch(p) commits the changes since
//       begin_batch, the dead letters parked in it and the checkpoint p, all at once: each event
//       then takes effect exactly once, also across a crash. rollback_batch undoes everything
//       since begin_batch, parked dead letters included (a stop during a back-off, a failed
//       try before its back-off, a failed commit). A throw from begin_batch or commit_batch
//       fails the projection (commit_batch's after a rollback_batch); one from rollback_batch
//       is ignored.
//   void reset(log_position from);
//       For rebuild(): empty the read model as it was at position `from` (usually: clear it, for
//       from = 0), store `from` as the checkpoint and drop the stored dead letters. Called on
//       rebuild()'s thread while the projection is stopped; a throw leaves rebuild() and the
//       projection stopped. Absent: rebuild() throws projection_error.
//   void park(const dead_letter& d);
//       Stores a dead letter inside the batch's transaction, so that it commits with the
//       checkpoint that passes its event (or rolls back with the batch). A throw fails the
//       projection.
//   std::vector<dead_letter> load_dead_letters();
//       The stored dead letters. Called by add(), on its thread, after load_checkpoint; a throw
//       leaves add().
//   void retry_dead_letter(const recorded_event& e);
//       For retry_dead_letters(), on its thread while the projection is stopped: handles e
//       again and, in the same transaction, forgets its stored dead letter. A throw means it
//       failed again: note the try (its attempts and error) and rethrow. Absent: handle(e).
//   With park and load_dead_letters, no dead letter is lost or doubled across a restart.
//   Without them the dead letters live in the runner's memory only: a restart loses them
//   (their events are behind the checkpoint, so they are not met again).
template <class T>
concept projection_target = requires(T& t, const recorded_event& e) {
    t.handle(e);
    requires detail::target_transactions_whole<T>; // the three batch members: all or none
    requires detail::target_members_fit<T>; // an optional member: callable as above, or absent
};

// A projection_target made of std::functions, for targets built from lambdas in place:
//   runner.add("balances", {.handle = [&](const weft::es::recorded_event& e) { ... }});
// Each member is the one of the same name above; a null member is absent (add() has an
// overload for function_target that reads them so, and throws projection_error when `handle`
// is null or the transaction members are not all set or all null).
struct function_target {
    std::function<void(const recorded_event&)> handle{};
    std::function<log_position()> load_checkpoint{};
    std::function<void(log_position)> save_checkpoint{};
    std::function<void()> begin_batch{};
    std::function<void(log_position)> commit_batch{};
    std::function<void()> rollback_batch{};
    std::function<void(log_position from)> reset{};
    std::function<void(const dead_letter&)> park{};
    std::function<std::vector<dead_letter>()> load_dead_letters{};
    std::function<void(const recorded_event&)> retry_dead_letter{};
};

struct projection_status {
    std::string name;
    projection_state state = projection_state::stopped;
    log_position checkpoint = 0;          // every event up to here is handled (or parked)
    std::uint64_t lag_events = 0;         // events in the store after the checkpoint
    std::chrono::milliseconds lag_time{}; // age of the oldest of those (0: none)
    std::uint64_t handled = 0;            // handler calls that succeeded
    std::uint64_t retries = 0;            // handler calls that threw and were tried again
    std::size_t dead_letters = 0;
    std::string error; // failed: why
};

// A projection name that is unknown or added twice, rebuild without reset, and the like.
class projection_error : public std::logic_error {
public:
    using std::logic_error::logic_error;
};

template <event_store S>
class projection_runner {
public:
    projection_runner(scheduler& sched, S& store) : scheduler_(sched), store_(store) {}
    projection_runner(const projection_runner&) = delete;
    projection_runner& operator=(const projection_runner&) = delete;
    // Stops every projection (each finishes the event it is handling; see stop()).
    ~projection_runner() { stop_all(); }

    // Adds the projection `name` over `target` and starts it from its checkpoint
    // (target.load_checkpoint(), or 0). Target: a projection_target (a type that is not one
    // fails to compile, with a message saying why), kept by the runner as long as the
    // projection; or std::ref(t) for a t that the caller keeps alive longer (a read model the
    // caller queries, or one that cannot be copied). Throws projection_error if the name is
    // taken, and what load_checkpoint or load_dead_letters throws.
    template <class Target>
    void add(std::string name, Target target, projection_options options = {}) {
        using object = std::remove_reference_t<std::unwrap_reference_t<Target>>; // of std::ref
        if constexpr (std::same_as<std::remove_cv_t<object>, function_target>) {
            add(std::move(name), function_target(target), std::move(options)); // null: absent
        } else {
            detail::check_target<object>(); // a static_assert per rule, each with a message
            if constexpr (projection_target<object>) {
                std::shared_ptr<object> owned;
                object* self = nullptr;
                if constexpr (std::same_as<object, Target>) {
                    owned = std::make_shared<object>(std::move(target));
                    self = owned.get();
                } else {
                    self = &target.get();
                }
                insert(std::move(name), erase(*self), std::move(owned), std::move(options));
            }
        }
    }
    // The same for a function_target, also spelled in place: {.handle = ..., .reset = ...}.
    // Its null members are absent. Throws projection_error also if `handle` is null or only
    // some of begin_batch, commit_batch and rollback_batch are set.
    void add(std::string name, function_target target, projection_options options = {}) {
        if (!target.handle)
            throw projection_error("weft::es: projection " + name + " has no handler");
        // projection_target's rule for transactions, found at run time here.
        const bool begins = static_cast<bool>(target.begin_batch);
        if (begins != static_cast<bool>(target.commit_batch) ||
            begins != static_cast<bool>(target.rollback_batch))
            throw projection_error("weft::es: projection " + name +
                                   " has one of begin_batch, commit_batch, rollback_batch but "
                                   "not all three");
        insert(std::move(name), std::move(target), nullptr, std::move(options));
    }

    // Control calls (start, stop, stop_all, rebuild, retry_dead_letters) may be made from any
    // threads at once, in any order; each returns once its effect is complete. They are
    // serialised per projection. Call them from threads, not tasks or handlers: stop waits for
    // the run, and the run waits for its handlers.

    // Starts a stopped (or failed) projection from its checkpoint. No effect if it runs.
    void start(const std::string& name) {
        std::shared_ptr<projection> p = find(name);
        std::lock_guard control(p->control);
        start_run(p);
    }

    // Stops the projection and waits until it has: the batch in hand is finished (and
    // checkpointed) unless a handler is between retries, in which case the batch is abandoned
    // (rolled back, or handled again after a restart). Call it from a thread, not a task.
    void stop(const std::string& name) {
        std::shared_ptr<projection> p = find(name);
        std::lock_guard control(p->control);
        stop_run(*p);
    }
    void stop_all() {
        std::vector<std::shared_ptr<projection>> all;
        {
            std::lock_guard lock(mutex_);
            for (auto& [name, p] : projections_)
                all.push_back(p);
        }
        for (auto& p : all) {
            std::lock_guard control(p->control);
            stop_run(*p);
        }
    }

    // Empties the read model (target.reset(from)) and handles the log again from position
    // `from` + 1, while appends go on. Dead letters are cleared (they will be met again).
    // Waits for positions go on through a rebuild and end when the rebuilt run reaches them.
    void rebuild(const std::string& name, log_position from = 0) {
        std::shared_ptr<projection> p = find(name);
        if (!p->target.reset)
            throw projection_error("weft::es: projection " + name +
                                   " cannot be rebuilt: its target has no reset");
        std::lock_guard control(p->control);
        restarting_scope restarting(*p, /*only_if_running=*/false);
        stop_run(*p);
        p->target.reset(from);
        {
            std::lock_guard lock(p->mutex);
            p->progress_base += p->checkpoint; // progress's head never goes back: see there
            p->checkpoint = from;
            p->dead.clear();
        }
        start_run(p);
    }

    // Blocks until the projection has handled the log up to `position` (true), or is stopped
    // or failed, or `timeout` passes (false). A rebuild or retry_dead_letters in between is not
    // a stop: the wait goes on with the run they start. Give it the position an append
    // returned to read your own write.
    template <class Rep = std::int64_t, class Period = std::ratio<1>>
    bool wait_for(const std::string& name, log_position position,
                  std::chrono::duration<Rep, Period> timeout = std::chrono::hours(24 * 365)) {
        std::shared_ptr<projection> p = find(name);
        const auto deadline = weft::deadline_after(timeout); // a huge timeout never ends
        for (;;) {
            const std::uint64_t epoch = p->progress.wake_epoch(); // before the checks
            log_position want = 0;
            if (std::optional<bool> done = reached(*p, position, want))
                return *done;
            if (std::chrono::steady_clock::now() >= deadline)
                return false;
            p->progress.wait_until(want, epoch, deadline);
        }
    }
    // wait_for in a task: suspends the task, not its worker.
    template <class Rep = std::int64_t, class Period = std::ratio<1>>
    task<bool>
    async_wait_for(std::string name, log_position position,
                   std::chrono::duration<Rep, Period> timeout = std::chrono::hours(24 * 365)) {
        std::shared_ptr<projection> p = find(name);
        const auto deadline = weft::deadline_after(timeout); // a huge timeout never ends
        for (;;) {
            const std::uint64_t epoch = p->progress.wake_epoch();
            log_position want = 0;
            if (std::optional<bool> done = reached(*p, position, want))
                co_return *done;
            const auto now = std::chrono::steady_clock::now();
            if (now >= deadline)
                co_return false;
            co_await p->progress.async_wait(want, epoch, deadline - now);
        }
    }

    // wait_for that waits only until `ctx` is done: ok (reached), closed (stopped or failed:
    // it will not be) or cancelled.
    weft::status wait_for(const context& ctx, const std::string& name, log_position position) {
        std::shared_ptr<projection> p = find(name);
        const std::stop_token stop = ctx.stop_token();
        for (;;) {
            const std::uint64_t epoch = p->progress.wake_epoch(); // before the checks
            log_position want = 0;
            if (std::optional<bool> done = reached(*p, position, want))
                return *done ? weft::status::ok : weft::status::closed;
            if (stop.stop_requested())
                return weft::status::cancelled;
            p->progress.wait_until(want, epoch, std::chrono::steady_clock::time_point::max(), stop);
        }
    }
    // The same in a task.
    task<weft::status> async_wait_for(context ctx, std::string name, log_position position) {
        std::shared_ptr<projection> p = find(name);
        for (;;) {
            const std::uint64_t epoch = p->progress.wake_epoch();
            log_position want = 0;
            if (std::optional<bool> done = reached(*p, position, want))
                co_return *done ? weft::status::ok : weft::status::closed;
            // A hint, but not a lost cancel: see subscription::async_next.
            if (ctx.cancelled())
                co_return weft::status::cancelled;
            co_await p->progress.async_wait(
                want, epoch, std::chrono::steady_clock::duration::zero(), ctx.done());
        }
    }

    projection_status status(const std::string& name) const {
        std::shared_ptr<projection> p = find(name);
        projection_status s;
        {
            std::lock_guard lock(p->mutex);
            s.name = p->name;
            s.state = p->state;
            s.checkpoint = p->checkpoint;
            // relaxed: statistics; no other data is read through them.
            s.handled = p->handled.load(std::memory_order_relaxed);
            s.retries = p->retries.load(std::memory_order_relaxed);
            s.dead_letters = p->dead.size();
            s.error = p->error;
        }
        const log_position head = store_.head_position();
        s.lag_events = head > s.checkpoint ? head - s.checkpoint : 0;
        if (s.lag_events > 0) {
            std::vector<recorded_event> oldest = store_.read_all(s.checkpoint + 1, 1);
            if (!oldest.empty())
                s.lag_time = std::max(std::chrono::milliseconds(0),
                                      std::chrono::duration_cast<std::chrono::milliseconds>(
                                          now_utc() - oldest.front().recorded_at));
        }
        return s;
    }

    std::vector<dead_letter> dead_letters(const std::string& name) const {
        std::shared_ptr<projection> p = find(name);
        std::lock_guard lock(p->mutex);
        return p->dead;
    }

    // Runs the handler once more on each dead letter (on the calling thread), in order; those
    // that succeed leave the list. Returns how many did. Meant for after the cause is fixed.
    // A running projection is stopped for it and started again afterwards, so the retries
    // never join (or get rolled back with) a batch in progress; call it from a thread.
    std::size_t retry_dead_letters(const std::string& name) {
        std::shared_ptr<projection> p = find(name);
        std::lock_guard control(p->control);
        // Only a running projection is restarted: a wait on a stopped one keeps its false.
        restarting_scope restarting(*p, /*only_if_running=*/true);
        const bool was_running = restarting.active;
        if (was_running)
            stop_run(*p);
        // The handlers' part: runs while no run exists, so never beside a batch.
        std::vector<dead_letter> parked;
        {
            std::lock_guard lock(p->mutex);
            parked.swap(p->dead);
        }
        std::size_t fixed = 0;
        std::vector<dead_letter> still;
        for (dead_letter& d : parked) {
            try {
                if (p->target.retry_dead_letter)
                    p->target.retry_dead_letter(d.event); // forgets it with its effects
                else
                    p->target.handle(d.event);
                ++fixed;
            } catch (const std::exception& e) {
                d.error = e.what();
                ++d.attempts;
                still.push_back(std::move(d));
            } catch (...) {
                d.error = "unknown exception";
                ++d.attempts;
                still.push_back(std::move(d));
            }
        }
        {
            std::lock_guard lock(p->mutex);
            still.insert(still.end(), std::make_move_iterator(p->dead.begin()),
                         std::make_move_iterator(p->dead.end()));
            p->dead = std::move(still);
        }
        if (was_running)
            start_run(p);
        return fixed;
    }

    std::vector<std::string> names() const {
        std::lock_guard lock(mutex_);
        std::vector<std::string> out;
        for (const auto& [name, p] : projections_)
            out.push_back(name);
        return out;
    }

private:
    struct projection {
        std::string name;
        // The target's members, null where absent. For a target add() was given as a type of
        // its own, they call `object` (or the caller's object, for std::ref).
        function_target target;
        std::shared_ptr<void> object;
        projection_options options;
        // Publishes progress_base + checkpoint, for wait_for. Its head only rises, so a rebuild,
        // which takes the checkpoint back, adds the old checkpoint to progress_base: else
        // waits for positions below the old checkpoint would return at once, and spin.
        detail::commit_signal progress;

        // Serialises the control calls on this projection. The rule that keeps them from
        // hanging: a control call holds `control` for its whole length, including while
        // stop_run waits for the run to end, and nothing a run does (run, handle_batch, the
        // handlers) ever takes it. So no start can slip in between a run's end and the wait
        // that saw it (before, a stop waited on for the next run, which never ended), no
        // reset or retry runs beside a batch, and every wait is for a run that is ending.
        // Order: control before mutex, never the other way round.
        std::mutex control;
        mutable std::mutex mutex; // guards everything below but the two counters
        std::condition_variable finished;
        projection_state state = projection_state::stopped;
        bool running = false; // a run() task exists
        bool stop_requested = false;
        // A rebuild or retry_dead_letters stops the run to start another: wait_for waits on.
        bool restarting = false;
        subscription* reading = nullptr; // run()'s subscription, closed by stop()
        log_position checkpoint = 0;
        log_position progress_base = 0;
        std::vector<dead_letter> dead;
        std::atomic<std::uint64_t> handled{0}; // counters, outside the mutex
        std::atomic<std::uint64_t> retries{0};
        std::string error;
    };

    enum class outcome { handled, failed, abandoned };

    std::shared_ptr<projection> find(const std::string& name) const {
        std::lock_guard lock(mutex_);
        auto it = projections_.find(name);
        if (it == projections_.end())
            throw projection_error("weft::es: no projection named " + name);
        return it->second;
    }

    // add()'s common part: keeps the target (and the object its members call) and starts the
    // projection from its checkpoint.
    void insert(std::string name, function_target target, std::shared_ptr<void> object,
                projection_options options) {
        auto p = std::make_shared<projection>();
        p->name = name;
        p->target = std::move(target);
        p->object = std::move(object);
        p->options = std::move(options);
        p->options.partitions = std::max<std::size_t>(p->options.partitions, 1);
        p->options.batch = std::max<std::size_t>(p->options.batch, 1);
        p->options.max_attempts = std::max<std::size_t>(p->options.max_attempts, 1);
        p->checkpoint = p->target.load_checkpoint ? p->target.load_checkpoint() : 0;
        if (p->target.load_dead_letters)
            p->dead = p->target.load_dead_letters();
        {
            std::lock_guard lock(mutex_);
            if (!projections_.emplace(name, p).second)
                throw projection_error("weft::es: projection " + name + " added twice");
        }
        start(name);
    }

    // The type erasure: T's members as a function_target's std::functions, each calling `t`,
    // the ones T lacks left null. A lambda holding one pointer fits std::function's own
    // storage, so this allocates nothing, and a call through it is one indirect call, as for
    // any function_target: the handler's cost per event is the same for both.
    template <class T>
    static function_target erase(T& t) {
        T* self = &t;
        function_target f;
        f.handle = [self](const recorded_event& e) { self->handle(e); };
        if constexpr (detail::target_has_load_checkpoint<T>)
            f.load_checkpoint = [self]() -> log_position { return self->load_checkpoint(); };
        if constexpr (detail::target_has_save_checkpoint<T>)
            f.save_checkpoint = [self](log_position p) { self->save_checkpoint(p); };
        if constexpr (detail::target_has_transactions<T>) {
            f.begin_batch = [self] { self->begin_batch(); };
            f.commit_batch = [self](log_position p) { self->commit_batch(p); };
            f.rollback_batch = [self] { self->rollback_batch(); };
        }
        if constexpr (detail::target_has_reset<T>)
            f.reset = [self](log_position from) { self->reset(from); };
        if constexpr (detail::target_has_park<T>)
            f.park = [self](const dead_letter& d) { self->park(d); };
        if constexpr (detail::target_has_load_dead_letters<T>)
            f.load_dead_letters = [self]() -> std::vector<dead_letter> {
                return self->load_dead_letters();
            };
        if constexpr (detail::target_has_retry_dead_letter<T>)
            f.retry_dead_letter = [self](const recorded_event& e) { self->retry_dead_letter(e); };
        return f;
    }

    // true: reached; false: will not be (stopped/failed); nullopt: keep waiting, for progress
    // to reach `want`.
    static std::optional<bool> reached(projection& p, log_position position, log_position& want) {
        std::lock_guard lock(p.mutex);
        want = p.progress_base + position;
        if (p.checkpoint >= position)
            return true;
        if (!p.running && !p.restarting)
            return false;
        return std::nullopt;
    }

    // Marks a rebuild or retry_dead_letters in progress for wait_for, for its whole length
    // (active: the projection will run afterwards); at the end (or on an exception) waiters
    // re-check: they follow the run it started, or return false.
    struct restarting_scope {
        projection& p;
        bool active = false;
        restarting_scope(projection& pr, bool only_if_running) : p(pr) {
            std::lock_guard lock(p.mutex);
            active = !only_if_running || p.running;
            p.restarting = active;
        }
        restarting_scope(const restarting_scope&) = delete;
        restarting_scope& operator=(const restarting_scope&) = delete;
        ~restarting_scope() {
            if (!active)
                return;
            {
                std::lock_guard lock(p.mutex);
                p.restarting = false;
            }
            p.progress.wake_all();
        }
    };

    // start and stop without taking `control`: the caller holds it.
    void start_run(const std::shared_ptr<projection>& p) {
        std::lock_guard lock(p->mutex);
        if (p->running)
            return;
        p->running = true;
        p->stop_requested = false;
        p->error.clear();
        p->state = projection_state::catching_up;
        scheduler_.spawn(run(p));
    }

    void stop_run(projection& p) {
        std::unique_lock lock(p.mutex);
        if (!p.running)
            return;
        p.stop_requested = true;
        if (p.reading)
            p.reading->close();
        p.finished.wait(lock, [&] { return !p.running; });
    }

    bool stop_requested(projection& p) const {
        std::lock_guard lock(p.mutex);
        return p.stop_requested;
    }

    // The projection's life on the scheduler: read a batch, handle it, checkpoint, repeat.
    task<void> run(std::shared_ptr<projection> p) {
        log_position from = 0;
        {
            std::lock_guard lock(p->mutex);
            from = p->checkpoint + 1;
        }
        subscription sub = store_.subscribe_all(from);
        {
            std::lock_guard lock(p->mutex);
            p->reading = &sub;
            if (p->stop_requested)
                sub.close();
        }
        bool failed = false;
        for (;;) {
            {
                // Everything stored is handled: from here on it waits for appends, i.e. live
                // (else a start at the head, or on an empty store, read "catching up" forever).
                std::lock_guard lock(p->mutex);
                if (sub.position() > store_.head_position())
                    p->state = projection_state::live;
            }
            std::vector<recorded_event> batch = co_await sub.async_next(p->options.batch);
            if (batch.empty() || stop_requested(*p))
                break; // closed: stopped, or the store is gone (nothing of this batch done)
            {
                std::lock_guard lock(p->mutex);
                p->state = batch.back().position >= store_.head_position()
                               ? projection_state::live
                               : projection_state::catching_up;
            }
            const outcome o = co_await handle_batch(*p, batch);
            if (o == outcome::failed) {
                failed = true;
                break;
            }
            if (o == outcome::abandoned)
                break;
        }
        {
            std::lock_guard lock(p->mutex);
            p->reading = nullptr;
            p->state = failed ? projection_state::failed : projection_state::stopped;
            p->running = false;
        }
        p->finished.notify_all();
        p->progress.wake_all(); // wait_for callers see it is no longer running
    }

    // What a batch has done and not committed yet, and whether a transaction is open.
    struct batch_progress {
        bool open = false;               // between begin_batch and commit_batch/rollback_batch
        bool over = false;               // a begin or commit failed, and the projection with it
        log_position done = 0;           // the batch's events up to here are handled (or parked)
        std::vector<dead_letter> parked; // parked since the last commit; under p.mutex
        std::chrono::steady_clock::time_point since{}; // when the open transaction began
    };

    // How long a batch cut short by max_batch_time leaves the write lock free before it takes
    // it again: SQLite's default busy handler, which other writers of a shared file wait in,
    // tries again at most 25 ms apart in its first 100 ms, so one of its tries falls in here.
    static constexpr std::chrono::milliseconds k_lock_pause{25};

    // One batch: opens a transaction (when the target has them), handles the events in the
    // sequential or the partitioned step, and ends in the commit step. handled: every event
    // took effect or was parked, and that is committed; failed: the projection failed (see its
    // error), what came before the failure is committed; abandoned: a stop came while waiting
    // (a back-off, a lock pause), and what is not committed is handled again after a start.
    task<outcome> handle_batch(projection& p, const std::vector<recorded_event>& batch) {
        batch_progress b;
        {
            std::lock_guard lock(p.mutex);
            b.done = p.checkpoint;
        }
        if (!begin(p, b))
            co_return outcome::failed;
        outcome result = outcome::handled;
        if (!p.options.partitioned || p.options.partitions == 1)
            result = co_await handle_in_order(p, batch, b);
        else
            result = co_await handle_partitioned(p, batch, b);
        co_return finish_batch(p, b, result);
    }

    // The sequential step: the events in log order, each handled (or retried, then parked)
    // before the next, b.done following. With transactions it keeps the write lock a SQLite
    // target's transaction holds (which the store's appends need when the file is shared) only
    // briefly: the events before a failing one commit before its first back-off (its retries
    // then take transactions of their own, see retry_event), and once the handlers have run
    // for max_batch_time, the part done commits and the rest waits in pause_for_writers.
    // Returns handled, failed (policy stop: b.done is the event before; or b.over) or
    // abandoned; what is not committed is left to the commit step.
    task<outcome> handle_in_order(projection& p, const std::vector<recorded_event>& batch,
                                  batch_progress& b) {
        const bool cut = static_cast<bool>(p.target.begin_batch); // commit in parts
        for (const recorded_event& e : batch) {
            if (std::optional<std::string> error = try_handle(p, e)) {
                if (cut && !commit(p, b)) // the events before e, so no lock while backing off
                    co_return outcome::failed;
                const outcome o = co_await retry_event(p, e, std::move(*error), b, cut);
                if (o != outcome::handled)
                    co_return o;
            }
            b.done = e.position;
            if (cut && &e != &batch.back() &&
                std::chrono::steady_clock::now() - b.since >= p.options.max_batch_time) {
                const outcome o = co_await pause_for_writers(p, b);
                if (o != outcome::handled)
                    co_return o;
            }
        }
        co_return outcome::handled;
    }

    // Commits the part of the batch done so far, leaves the write lock free for k_lock_pause
    // and opens a new transaction for the rest. handled: go on; failed: b.over; abandoned: a
    // stop came during the pause (the rest is handled after a start).
    task<outcome> pause_for_writers(projection& p, batch_progress& b) {
        if (!commit(p, b))
            co_return outcome::failed;
        co_await sleep_for(k_lock_pause);
        if (stop_requested(p))
            co_return outcome::abandoned;
        co_return begin(p, b) ? outcome::handled : outcome::failed;
    }

    // The partitioned step: streams to partitions (a hash of the stream's id), each partition
    // in log order, all partitions at once, in the batch's one transaction, which stays open
    // across back-offs (partitions cannot commit apart). Returns handled (b.done: the batch's
    // last event) or the partitions' worst outcome, failed before abandoned; b.done then stops
    // before the first event a partition did not get past. Later events of other partitions
    // were handled too: after a restart they are handled again (at least once).
    task<outcome> handle_partitioned(projection& p, const std::vector<recorded_event>& batch,
                                     batch_progress& b) {
        std::vector<std::vector<const recorded_event*>> parts(p.options.partitions);
        for (const recorded_event& e : batch)
            parts[std::hash<std::string>{}(e.stream) % parts.size()].push_back(&e);
        std::vector<outcome> outcomes(parts.size(), outcome::handled);
        std::vector<log_position> stopped_at(parts.size(), 0);
        task_group group(scheduler_);
        for (std::size_t i = 0; i < parts.size(); ++i)
            if (!parts[i].empty())
                group.spawn(handle_partition(p, parts[i], b, outcomes[i], stopped_at[i]));
        co_await group.wait();
        outcome result = outcome::handled;
        b.done = batch.back().position;
        for (std::size_t i = 0; i < parts.size(); ++i) {
            if (outcomes[i] == outcome::handled)
                continue;
            if (outcomes[i] == outcome::failed || result == outcome::handled)
                result = outcomes[i];
            b.done = std::min(b.done, stopped_at[i] - 1);
        }
        co_return result;
    }

    // One partition's events in order, until one ends other than handled: its outcome goes to
    // `result` and its position to `stopped_at`.
    task<void> handle_partition(projection& p, const std::vector<const recorded_event*>& events,
                                batch_progress& b, outcome& result, log_position& stopped_at) {
        for (const recorded_event* e : events) {
            std::optional<std::string> error = try_handle(p, *e);
            if (!error)
                continue;
            const outcome o = co_await retry_event(p, *e, std::move(*error), b, false);
            if (o != outcome::handled) {
                result = o;
                stopped_at = e->position;
                co_return;
            }
        }
    }

    // The commit step: ends the batch as its step left it. Commits what is done (up to
    // b.done, with the dead letters parked since the last commit) unless a begin or commit
    // failed (b.over: nothing is left to commit) or the batch was abandoned and the target can
    // roll it back (its dead letters too: their events will be met again). Returns the step's
    // outcome, or failed when the commit fails.
    outcome finish_batch(projection& p, batch_progress& b, outcome result) {
        if (b.over)
            return outcome::failed;
        if (result == outcome::abandoned && p.target.rollback_batch) {
            roll_back(p, b);
            return result;
        }
        return commit(p, b) ? result : outcome::failed;
    }

    // Opens the target's transaction, if it has them. false: that failed, and the projection
    // with it (b.over).
    bool begin(projection& p, batch_progress& b) {
        if (!p.target.begin_batch)
            return true;
        std::string error;
        try {
            p.target.begin_batch();
            b.open = true;
            b.since = std::chrono::steady_clock::now();
            return true;
        } catch (const std::exception& e) {
            error = e.what();
        } catch (...) {
            error = "unknown exception";
        }
        b.over = true;
        fail(p, "begin_batch failed: " + error);
        return false;
    }

    // Commits the batch up to b.done: its changes, its parked dead letters and the checkpoint
    // together (or saves the checkpoint, without transactions), then publishes the checkpoint.
    // false: it failed (rolled back), and the projection with it (b.over).
    bool commit(projection& p, batch_progress& b) {
        const function_target& t = p.target;
        try {
            if (t.commit_batch) {
                if (b.open)
                    t.commit_batch(b.done);
            } else if (t.save_checkpoint) {
                t.save_checkpoint(b.done);
            }
        } catch (const std::exception& e) {
            roll_back(p, b);
            b.over = true;
            fail(p, "checkpoint at " + std::to_string(b.done) + " failed: " + e.what());
            return false;
        }
        b.open = false;
        log_position published = 0;
        {
            std::lock_guard lock(p.mutex);
            p.checkpoint = std::max(p.checkpoint, b.done);
            published = p.progress_base + p.checkpoint;
            p.dead.insert(p.dead.end(), std::make_move_iterator(b.parked.begin()),
                          std::make_move_iterator(b.parked.end()));
            b.parked.clear();
        }
        p.progress.publish(published);
        return true;
    }

    // Rolls back the open transaction; the dead letters parked in it go with it.
    static void roll_back(projection& p, batch_progress& b) noexcept {
        if (b.open && p.target.rollback_batch) {
            try {
                p.target.rollback_batch();
            } catch (...) {
                // Abandoning anyway: nothing of it is committed.
            }
        }
        b.open = false;
        std::lock_guard lock(p.mutex);
        b.parked.clear();
    }

    outcome fail(projection& p, std::string why) {
        std::lock_guard lock(p.mutex);
        p.error = "projection " + p.name + ": " + std::move(why);
        return outcome::failed;
    }

    // One try of the handler: nothing, or the error. A plain call, not a task, so the usual
    // case costs no coroutine frame (and a long batch does not nest resumptions on the stack
    // where the compiler does not make symmetric transfer a tail call, as g++ at -O0).
    static std::optional<std::string> try_handle(projection& p, const recorded_event& e) {
        try {
            p.target.handle(e);
            // relaxed: a statistic, read by status() under no ordering.
            p.handled.fetch_add(1, std::memory_order_relaxed);
            return std::nullopt;
        } catch (const std::exception& x) {
            return std::string(x.what());
        } catch (...) {
            return std::string("unknown exception");
        }
    }

    // The event failed its first try with `error`: retry it with back-off. handled: done or
    // parked (in b); failed: policy stop; abandoned: a stop came while waiting to retry. With
    // `own_transactions` no transaction is open on entry, and none across a back-off: each try
    // begins one, a failed try rolls it back, and a try that succeeds (or the dead letter)
    // leaves it open for the rest of the batch.
    task<outcome> retry_event(projection& p, const recorded_event& e, std::string error,
                              batch_progress& b, bool own_transactions) {
        auto backoff = p.options.first_backoff;
        for (std::size_t attempt = 1;; ++attempt) {
            if (attempt > 1) {
                if (own_transactions && !begin(p, b))
                    co_return outcome::failed;
                std::optional<std::string> again = try_handle(p, e);
                if (!again)
                    co_return outcome::handled;
                error = std::move(*again);
            }
            if (attempt >= p.options.max_attempts) {
                if (p.options.on_failure == failure_policy::dead_letter) {
                    if (own_transactions && !b.open && !begin(p, b))
                        co_return outcome::failed;
                    dead_letter d{e, std::move(error), attempt};
                    if (p.target.park) {
                        try {
                            p.target.park(d); // in the transaction: commits with the checkpoint
                        } catch (const std::exception& x) {
                            co_return fail(p, "dead letter at " + std::to_string(e.position) +
                                                  " not stored: " + x.what());
                        } catch (...) {
                            co_return fail(p, "dead letter at " + std::to_string(e.position) +
                                                  " not stored: unknown exception");
                        }
                    }
                    std::lock_guard lock(p.mutex);
                    b.parked.push_back(std::move(d));
                    co_return outcome::handled;
                }
                co_return fail(p, "event at position " + std::to_string(e.position) + " (" +
                                      e.type + " in " + e.stream + "@" + std::to_string(e.version) +
                                      ") failed " + std::to_string(attempt) + " times: " + error);
            }
            // relaxed: a statistic, as handled.
            p.retries.fetch_add(1, std::memory_order_relaxed);
            if (own_transactions)
                roll_back(p, b); // the failed try left nothing in it (its savepoint is gone)
            co_await sleep_for(backoff);
            backoff = std::min(backoff * 2, p.options.max_backoff);
            if (stop_requested(p))
                co_return outcome::abandoned;
        }
    }

    scheduler& scheduler_;
    S& store_;
    mutable std::mutex mutex_;
    std::map<std::string, std::shared_ptr<projection>> projections_;
};

} // namespace weft::es
