// weft::detail::actor_cell — one actor: its state, its mailbox, and the drain job that handles
// the mailbox on the scheduler's workers (actor.hpp is the public side: actor_ref,
// spawn_actor). And the envelopes: one message in a mailbox, type-erased.
//
// Invariants:
//   - Messages of one actor are handled one at a time, in the order they were pushed: at most
//     one drain job exists (`scheduled_`), and only it pops the mailbox.
//   - queued_ counts messages reserved or queued and not yet popped (the stop marker
//     included); a sender reserves before it pushes, so queued_ <= capacity_ for senders.
//   - A pushed message is always seen by a drain job: the sender's seq_cst push count and
//     exchange of scheduled_, against the drain job's seq_cst store of scheduled_ and load of
//     pushed_, make one side see the other (deliver()).
//   - Once closed_ is set (stop or passivation) every new message is refused; a sender that
//     reserved before it finds out gives the slot back. What was queued before the stop marker
//     is handled (or dropped, stop(drop)); nothing after it is.
//   - A sender waiting for room never sleeps past a freed slot or a stop: the retry handshake
//     (waiter.hpp) between step_room() and release_slot()/stop().
//
// Locks: mutex_ guards room_waiters_ and the transitions of closed_ (stop, passivation). The
// mailbox (mpsc_queue) and the counters are atomics; the drain job's own fields (popped_,
// stopped_) are touched only by the one drain job.
#pragma once

#include "../channel.hpp"
#include "../future.hpp"
#include "../scheduler.hpp"
#include "../task.hpp"
#include "mpsc_queue.hpp"
#include "spin_mutex.hpp"
#include "task_park.hpp"
#include "wait_limit.hpp"
#include "waiter.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>

namespace weft::detail {

// What A::handle returns for a message of type M.
template <class A, class M>
using handler_result = decltype(std::declval<A&>().handle(std::declval<M>()));

template <class A, class M>
concept handles = requires(A& a, M m) {
    a.handle(std::move(m));
};

// One message in a mailbox, type-erased.
template <class A>
struct envelope : mpsc_link {
    virtual ~envelope() = default;
    // Handlers returning a task are awaited (run_async); others are called (run).
    virtual bool is_async() const noexcept = 0;
    virtual void run(A& actor) = 0;
    virtual task<void> run_async(A& actor) = 0;
    // The stop marker of stop(finish): everything after it is dropped.
    virtual bool is_stop() const noexcept { return false; }
};

template <class A>
struct stop_envelope final : envelope<A> {
    bool is_async() const noexcept override { return false; }
    void run(A&) override {}
    task<void> run_async(A&) override { co_return; }
    bool is_stop() const noexcept override { return true; }
};

template <class T>
task<void> discard_result(task<T> t) {
    co_await std::move(t);
}

template <class A, class M>
struct tell_envelope final : envelope<A> {
    using result = handler_result<A, M>;
    static constexpr bool k_async = task_value<result>::is_task;

    explicit tell_envelope(M m) : message(std::move(m)) {}
    bool is_async() const noexcept override { return k_async; }
    void run(A& actor) override {
        if constexpr (!k_async)
            (void)actor.handle(std::move(message));
    }
    task<void> run_async(A& actor) override {
        if constexpr (k_async) {
            if constexpr (std::is_same_v<result, task<void>>)
                return actor.handle(std::move(message));
            else
                return discard_result(actor.handle(std::move(message)));
        } else {
            return task<void>();
        }
    }

    M message;
};

// An ask: the message and the promise of its reply. Dropped unanswered (stop, or the scheduler
// went away mid-handler), it fails the asker with a Stopped (actor.hpp's actor_stopped).
template <class A, class M, class Stopped>
struct ask_envelope final : envelope<A> {
    using result = handler_result<A, M>;
    static constexpr bool k_async = task_value<result>::is_task;
    using reply_type = typename task_value<result>::type;

    ask_envelope(M m, promise<reply_type> r) : message(std::move(m)), reply(std::move(r)) {}
    ~ask_envelope() override {
        if (!answered)
            reply.set_exception(std::make_exception_ptr(
                Stopped("weft: actor stopped before it handled the message")));
    }

    bool is_async() const noexcept override { return k_async; }
    void run(A& actor) override {
        if constexpr (!k_async) {
            std::exception_ptr error;
            try {
                if constexpr (std::is_void_v<reply_type>) {
                    actor.handle(std::move(message));
                    reply.set_value();
                } else {
                    reply.set_value(actor.handle(std::move(message)));
                }
            } catch (...) {
                error = std::current_exception();
            }
            if (error) // after the catch block (see future_state::take)
                reply.set_exception(std::move(error));
            answered = true;
        }
    }
    task<void> run_async(A& actor) override {
        if constexpr (k_async)
            return answer_async(actor);
        else
            return task<void>();
    }

    M message;
    promise<reply_type> reply;
    bool answered = false;

private:
    task<void> answer_async(A& actor) {
        std::exception_ptr error;
        try {
            if constexpr (std::is_void_v<reply_type>) {
                co_await actor.handle(std::move(message));
                reply.set_value();
            } else {
                reply.set_value(co_await actor.handle(std::move(message)));
            }
        } catch (...) {
            error = std::current_exception();
        }
        if (error) // after the catch block (see future_state::take)
            reply.set_exception(std::move(error));
        answered = true;
    }
};

// How one actor's mailbox behaves (actor.hpp's actor_options, when_full).
struct mailbox_policy {
    std::size_t capacity = 0;    // 0: unbounded
    bool fail_when_full = false; // a full mailbox refuses instead of making the sender wait
    std::size_t batch = 1;       // messages per turn on a worker before the actor yields
};

template <class A>
class actor_cell : public std::enable_shared_from_this<actor_cell<A>> {
public:
    template <class... Args>
    actor_cell(scheduler& s, const mailbox_policy& policy, Args&&... args)
        : scheduler_(s), capacity_(policy.capacity), fail_when_full_(policy.fail_when_full),
          batch_(policy.batch == 0 ? 1 : policy.batch),
          state_(make_state(std::forward<Args>(args)...)) {}
    actor_cell(const actor_cell&) = delete;
    actor_cell& operator=(const actor_cell&) = delete;

    // A(args...) if A has such a constructor, else A{args...} (an aggregate; clang 14 has no
    // parenthesized aggregate initialization). Returned as a prvalue: A need not be movable.
    template <class... Args>
    static A make_state(Args&&... args) {
        if constexpr (std::is_constructible_v<A, Args&&...>)
            return A(std::forward<Args>(args)...);
        else
            return A{std::forward<Args>(args)...};
    }
    // Whatever is still queued is dropped: its asks fail (see ask_envelope).
    ~actor_cell() {
        while (mpsc_link* link = mailbox_.pop())
            delete static_cast<envelope<A>*>(link);
    }

    // --- sending ----------------------------------------------------------------------------

    // ok, not_ready (full) or closed (stopped); takes `e` only on ok.
    status try_send(std::unique_ptr<envelope<A>>& e) {
        if (closed())
            return status::closed;
        if (!try_reserve())
            return status::not_ready;
        // seq_cst: after our reservation, pairs with try_passivate(), which closes and then
        // reads queued_: either it sees our reservation, or we see it closed.
        if (closed_.load(std::memory_order_seq_cst)) {
            release_slot(); // and wake a sender that may wait for it
            return status::closed;
        }
        deliver(std::move(e));
        return status::ok;
    }

    std::size_t capacity() const noexcept { return capacity_; }
    bool fails_when_full() const noexcept { return fail_when_full_; }

    // A thread waits until there may be room (or the actor is closed): then try_send again.
    void wait_for_room() {
        wait_context ctx(thread_parker::current());
        waiter w;
        w.ctx = &ctx;
        if (step_room(*this, w, nullptr) == park_step::parked) {
            note_blocking({"weft::actor_ref::tell (full mailbox)", "co_await ref.async_tell(m)"});
            ctx.wait(); // the claimant (release_slot or stop) unlinked us
        }
    }
    // The same, ended early by `limit`: done (try_send again) or cancelled / timed_out (the
    // waiter is unlinked; a slot freed meanwhile went to another waiter, see claim_first).
    park_step wait_for_room(const wait_limit& limit) {
        wait_context ctx(thread_parker::current());
        waiter w;
        w.ctx = &ctx;
        if (step_room(*this, w, nullptr) != park_step::parked)
            return park_step::done;
        note_blocking(
            {"weft::actor_ref::tell(ctx, m) (full mailbox)", "co_await ref.async_tell(ctx, m)"});
        const park_step step = sleep_limited(ctx, limit);
        if (step == park_step::parked)
            return park_step::done; // the claimant (release_slot or stop) unlinked us
        cancel(w);                  // a limit claimed us but cannot unlink us
        return step;
    }

    // The same for a task: `co_await cell.room()` suspends it while the mailbox is full. With
    // a limit (it must outlive the await), the result may also be cancelled / timed_out.
    task_park<actor_cell> room(const wait_limit* limit = nullptr) noexcept {
        return task_park<actor_cell>(*this, &step_room, nullptr, blocked_on::mailbox, limit);
    }

    // --- stopping ---------------------------------------------------------------------------

    // Refuses new messages; what is queued is handled, or dropped if `drop`.
    void stop(bool drop) {
        deferred_wake wake;
        {
            std::lock_guard lock(mutex_);
            if (closed_.load(std::memory_order_relaxed)) // relaxed: written under this lock
                return;
            // release: a sender that sees closed (acquire) refuses its message.
            closed_.store(true, std::memory_order_release);
            // relaxed: read by the drain job after the marker below, which orders it.
            dropping_.store(drop, std::memory_order_relaxed);
            while (waiter* w = room_waiters_.claim_first())
                wake.add(w, wait_outcome::retry);
        }
        // The marker: what was sent before it is handled (or dropped), what comes after is
        // dropped. It needs no room.
        queued_.fetch_add(1, std::memory_order_seq_cst); // seq_cst: see deliver()
        deliver(std::make_unique<stop_envelope<A>>());
    }

    bool closed() const noexcept {
        // acquire: pairs with the release store in stop().
        return closed_.load(std::memory_order_acquire);
    }

    // --- passivation (registry) -------------------------------------------------------------

    // When the actor last finished a turn of work, in steady-clock ticks.
    std::chrono::steady_clock::rep last_active() const noexcept {
        return last_active_.load(std::memory_order_relaxed); // relaxed: a hint for the sweeper
    }

    // If the actor is idle (nothing queued or reserved, no drain job), closes it for good and
    // moves its state out; otherwise leaves it open and returns nullopt. A sender racing with
    // this through another actor_ref is refused (try_send: closed), never lost.
    std::optional<A> try_passivate() {
        std::lock_guard lock(mutex_);
        if (closed_.load(std::memory_order_relaxed)) // relaxed: written under this lock
            return std::nullopt;
        // seq_cst: pairs with try_send()'s reserve-then-check (see there).
        closed_.store(true, std::memory_order_seq_cst);
        if (queued_.load(std::memory_order_seq_cst) != 0 ||
            scheduled_.load(std::memory_order_seq_cst)) {
            closed_.store(false, std::memory_order_seq_cst); // busy after all: stay open
            return std::nullopt;
        }
        return std::optional<A>(std::move(state_));
    }

    // --- task_park's owner interface ----------------------------------------------------------

    // Links `w` to wait for room (parked), unless there is room or the actor is closed now:
    // done, the caller tries again. The waiter side of the retry handshake (waiter.hpp), whose
    // other side is release_slot() and stop().
    static park_step step_room(actor_cell& self, waiter& w, void*) {
        return link_unless_ready(self.room_waiters_, self.mutex_, w,
                                 [&] { return self.room_or_closed(); })
                   ? park_step::parked
                   : park_step::done;
    }
    void cancel(waiter& w) noexcept {
        std::lock_guard lock(mutex_);
        unlink(w);
    }

private:
    bool try_reserve() noexcept {
        if (capacity_ == 0) {
            queued_.fetch_add(1, std::memory_order_seq_cst); // seq_cst: see deliver()
            return true;
        }
        // relaxed: the CAS below decides.
        std::size_t n = queued_.load(std::memory_order_relaxed);
        while (n < capacity_)
            // seq_cst: see deliver().
            if (queued_.compare_exchange_weak(n, n + 1, std::memory_order_seq_cst,
                                              std::memory_order_relaxed))
                return true;
        return false;
    }

    bool room_or_closed() const noexcept {
        // seq_cst loads: after the handshake's fence (link_unless_ready).
        return closed() || queued_.load(std::memory_order_seq_cst) < capacity_;
    }

    // Pushes a reserved message and makes sure a drain job will see it. With the drain job's
    // seq_cst store of `scheduled_` and load of `queued_`, one side always sees the other:
    // either the job finds our message, or we find `scheduled_` false and schedule a job.
    void deliver(std::unique_ptr<envelope<A>> e) {
        mailbox_.push(e.release());
        // seq_cst: see above; also a release, so a drain job that reads this count finds the
        // node linked.
        pushed_.fetch_add(1, std::memory_order_seq_cst);
        // seq_cst: see above.
        if (!scheduled_.exchange(true, std::memory_order_seq_cst))
            scheduler_.spawn(drain(this->shared_from_this()));
    }

    // The drain job took a message out: one more slot is free; wake one waiting sender.
    void release_slot() {
        queued_.fetch_sub(1, std::memory_order_seq_cst); // seq_cst: see deliver()
        wake_one_to_retry(room_waiters_, mutex_);
    }

    // The drain job: handles messages in order, one at a time, `batch_` per turn.
    static task<void> drain(std::shared_ptr<actor_cell> self) { return self->drain_loop(self); }

    task<void> drain_loop(std::shared_ptr<actor_cell> keep_alive) {
        (void)keep_alive; // the actor lives while it has work
        for (;;) {
            std::size_t handled = 0;
            while (handled < batch_) {
                mpsc_link* link = mailbox_.pop();
                if (!link)
                    break;
                std::unique_ptr<envelope<A>> e(static_cast<envelope<A>*>(link));
                ++popped_;
                release_slot();
                ++handled;
                // relaxed: set before the stop marker was pushed, which we popped through
                // the queue's acquire/release chain, or it does not matter yet.
                if (stopped_ || dropping_.load(std::memory_order_relaxed))
                    continue; // dropped: an ask's envelope fails it as it dies
                if (e->is_stop()) {
                    stopped_ = true;
                    continue;
                }
                try {
                    if (e->is_async())
                        co_await e->run_async(state_);
                    else
                        e->run(state_);
                } catch (...) {
                    // Only a tell's handler gets here (an ask's envelope catches for its
                    // asker).
                    scheduler_.report_unhandled(std::current_exception());
                }
            }
            // relaxed: a hint for passivation.
            last_active_.store(std::chrono::steady_clock::now().time_since_epoch().count(),
                               std::memory_order_relaxed);
            if (handled == batch_) {
                co_await yield(); // let other actors and tasks have the worker
                continue;
            }
            // Once scheduled_ is false another drain job may start: read our own state first.
            const std::uint64_t popped = popped_;
            // seq_cst, both: see deliver().
            scheduled_.store(false, std::memory_order_seq_cst);
            if (pushed_.load(std::memory_order_seq_cst) == popped)
                co_return;
            // A message was pushed after our last look, and its sender may have seen
            // scheduled_ still true: carry on, unless another drain job took over.
            if (scheduled_.exchange(true, std::memory_order_seq_cst))
                co_return;
            if (!handled)
                co_await yield(); // an earlier push is half done: give its sender a moment
        }
    }

    scheduler& scheduler_;
    const std::size_t capacity_;
    const bool fail_when_full_;
    const std::size_t batch_;

    mpsc_queue mailbox_;
    // Messages reserved or queued and not yet taken out by the drain job (the stop marker
    // included). Bounded by capacity_ for senders.
    std::atomic<std::size_t> queued_{0};
    std::atomic<std::uint64_t> pushed_{0}; // messages fully pushed, ever
    std::uint64_t popped_ = 0;             // messages taken out, ever (the drain job's)
    std::atomic<bool> scheduled_{false};   // a drain job is scheduled or running
    std::atomic<bool> closed_{false};      // stop() was called: new messages are refused
    std::atomic<bool> dropping_{false};    // stop(drop): discard instead of handling
    bool stopped_ = false;                 // the drain job passed the stop marker (its own)
    // When the drain job last finished a turn (steady-clock ticks): the sweeper's idleness hint.
    std::atomic<std::chrono::steady_clock::rep> last_active_{
        std::chrono::steady_clock::now().time_since_epoch().count()};

    spin_mutex mutex_;        // guards room_waiters_ and the stop transition
    wait_queue room_waiters_; // senders waiting for room

    A state_;
};

} // namespace weft::detail
