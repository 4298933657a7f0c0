// weft actors — state plus one mailbox, run on the scheduler's workers (no thread per actor).
//
//   struct account {
//       double balance = 100;
//       void handle(deposit d) { balance += d.amount; }               // tell(deposit{...})
//       std::string handle(withdraw w) { ... return "ok"; }           // ask(withdraw{...})
//       weft::task<double> handle(audit) { co_await ...; co_return balance; }  // may suspend
//   };
//   weft::actor_ref<account> acc = weft::spawn_actor<account>(sched);
//   acc.tell(deposit{50});
//   std::string r = acc.ask(withdraw{30}).get();      // or: co_await acc.ask(withdraw{30})
//
// A message is any type for which the actor has a `handle` overload; ask's reply is what that
// overload returns (a task<R>'s R). Messages of one actor are handled one at a time, in the
// order they arrived, also while a handler is suspended in a co_await: the actor's state needs
// no lock. Different actors run in parallel. A message to an idle actor schedules one drain
// job; the job handles up to `batch` messages, then yields so one busy actor cannot hold a
// worker.
//
// The mailbox is bounded (1024 by default). When it is full, tell() waits (a thread blocks,
// async_tell() suspends the task) or, with when_full::fail, throws mailbox_full; try_tell()
// never waits. A handler that throws fails only that message: an ask gets the exception, a
// tell's goes to the scheduler's unhandled-exception handler; the actor goes on. stop() lets
// the actor finish what is already in its mailbox (or drop it, stop_mode::drop); later
// messages are refused with actor_stopped, and an ask that will never be handled fails with
// actor_stopped: nothing hangs.
#pragma once

#include "channel.hpp"
#include "detail/mpsc_queue.hpp"
#include "detail/spin_mutex.hpp"
#include "detail/task_park.hpp"
#include "detail/waiter.hpp"
#include "future.hpp"
#include "scheduler.hpp"
#include "task.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace weft {

// A message an actor did not take.
class actor_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The actor was stopped (or its scheduler destroyed) before it handled the message.
class actor_stopped : public actor_error {
public:
    using actor_error::actor_error;
};

// tell() under when_full::fail found the mailbox full.
class mailbox_full : public actor_error {
public:
    using actor_error::actor_error;
};

// What tell() and ask() do when the mailbox is full.
enum class when_full {
    wait, // backpressure: the sending thread blocks, a task in async_tell/async_ask suspends
    fail, // throw mailbox_full
};

// What stop() does with the messages already in the mailbox.
enum class stop_mode {
    finish, // handle them, then stop
    drop,   // discard them (their asks fail with actor_stopped)
};

struct actor_options {
    std::size_t mailbox_capacity = 1024; // 0: unbounded
    when_full full = when_full::wait;
    std::size_t batch = 64; // messages per turn on a worker before the actor yields
};

template <class A>
class actor_ref;
template <class Key, class A, class Hash>
class registry;

namespace detail {

template <class T>
struct task_value {
    using type = T;
    static constexpr bool is_task = false;
};
template <class T>
struct task_value<task<T>> {
    using type = T;
    static constexpr bool is_task = true;
};

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

inline std::exception_ptr stopped_before_handled() {
    return std::make_exception_ptr(
        actor_stopped("weft: actor stopped before it handled the message"));
}

template <class A, class M>
struct ask_envelope final : envelope<A> {
    using result = handler_result<A, M>;
    static constexpr bool k_async = task_value<result>::is_task;
    using reply_type = typename task_value<result>::type;

    ask_envelope(M m, promise<reply_type> r) : message(std::move(m)), reply(std::move(r)) {}
    // Dropped unhandled (stop, or the scheduler went away mid-handler): the asker hears so.
    ~ask_envelope() override {
        if (!answered)
            reply.set_exception(stopped_before_handled());
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

// An actor: its state, its mailbox, and whether a drain job is scheduled.
template <class A>
class actor_cell : public std::enable_shared_from_this<actor_cell<A>> {
public:
    template <class... Args>
    actor_cell(scheduler& s, const actor_options& options, Args&&... args)
        : scheduler_(s), capacity_(options.mailbox_capacity), full_(options.full),
          batch_(options.batch == 0 ? 1 : options.batch),
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
    // Whatever is still queued is dropped: its asks fail with actor_stopped.
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

    // A thread's send under the actor's policy: waits for room or throws mailbox_full; throws
    // actor_stopped when stopped.
    void send(std::unique_ptr<envelope<A>>& e) {
        while (!sent_or_throw(try_send(e)))
            wait_for_room();
    }

    // A task's send: as send(), suspending the task while the mailbox is full.
    task<void> async_send(std::unique_ptr<envelope<A>> e) {
        const auto keep_alive = this->shared_from_this();
        while (!sent_or_throw(try_send(e))) {
            task_park<actor_cell> park(*this, &step_room, nullptr, blocked_on::mailbox);
            (void)co_await park; // done (room seen), closed, or again: try once more
        }
    }

    // --- stopping ---------------------------------------------------------------------------

    void stop(stop_mode mode) {
        deferred_wake wake;
        {
            std::lock_guard lock(mutex_);
            if (closed_.load(std::memory_order_relaxed)) // relaxed: written under this lock
                return;
            // release: a sender that sees closed (acquire) refuses its message.
            closed_.store(true, std::memory_order_release);
            // relaxed: read by the drain job after the marker below, which orders it.
            dropping_.store(mode == stop_mode::drop, std::memory_order_relaxed);
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
    // this through another actor_ref is refused with actor_stopped, never lost.
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

    static park_step step_room(actor_cell& self, waiter& w, void*) {
        {
            std::lock_guard lock(self.mutex_);
            self.room_waiters_.push_back(&w);
        }
        // seq_cst: pairs with the fence in release_slot(): either it sees our waiter, or we
        // see the room it made.
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (self.room_or_closed() && w.ctx->try_claim(0)) {
            self.cancel(w);
            return park_step::done;
        }
        return park_step::parked;
    }
    void cancel(waiter& w) noexcept {
        std::lock_guard lock(mutex_);
        if (w.queue)
            room_waiters_.remove(&w);
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
        // seq_cst loads: after the fence in step_room / wait_for_room (see release_slot()).
        return closed() || queued_.load(std::memory_order_seq_cst) < capacity_;
    }

    // try_send's answer under the actor's policy: true once sent, false to wait for room;
    // throws actor_stopped when stopped, mailbox_full when full under when_full::fail.
    bool sent_or_throw(status s) const {
        if (s == status::ok)
            return true;
        if (s == status::closed)
            throw actor_stopped("weft: actor stopped; message refused");
        if (full_ == when_full::fail)
            throw mailbox_full("weft: actor mailbox full (capacity " + std::to_string(capacity_) +
                               ")");
        return false;
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

    // A thread waiting for room: link, fence, re-check, sleep; woken to retry.
    void wait_for_room() {
        wait_context ctx(thread_parker::current());
        waiter w;
        w.ctx = &ctx;
        if (step_room(*this, w, nullptr) == park_step::parked) {
            note_blocking({"weft::actor_ref::tell (full mailbox)", "co_await ref.async_tell(m)"});
            ctx.wait(); // the claimant (release_slot or stop) unlinked us
        }
    }

    // The drain job took a message out: one more slot is free; wake one waiting sender.
    void release_slot() {
        queued_.fetch_sub(1, std::memory_order_seq_cst); // seq_cst: see deliver()
        // seq_cst: pairs with the fence in step_room()/wait_for_room().
        std::atomic_thread_fence(std::memory_order_seq_cst);
        // relaxed: ordered by the fence.
        if (room_waiters_.length.load(std::memory_order_relaxed) == 0)
            return;
        deferred_wake wake;
        std::lock_guard lock(mutex_);
        if (waiter* w = room_waiters_.claim_first())
            wake.add(w, wait_outcome::retry);
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

    friend class actor_ref<A>;

    scheduler& scheduler_;
    const std::size_t capacity_;
    const when_full full_;
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

} // namespace detail

// A copyable handle to an actor. Messages go through it; the actor lives while a handle or
// queued work refers to it.
template <class A>
class actor_ref {
public:
    actor_ref() noexcept = default;

    // Fire-and-forget. Waits for room when the mailbox is full (when_full::wait) or throws
    // mailbox_full (when_full::fail); throws actor_stopped once stopped. From a task prefer
    // async_tell, which suspends instead of blocking the worker.
    template <class M>
    requires detail::handles<A, std::decay_t<M>>
    void tell(M&& message) const {
        std::unique_ptr<detail::envelope<A>> e = make_tell(std::forward<M>(message));
        cell().send(e);
    }

    // Never waits: ok, not_ready (mailbox full) or closed (stopped); the message is dropped
    // unless ok.
    template <class M>
    requires detail::handles<A, std::decay_t<M>> status try_tell(M&& message)
    const {
        std::unique_ptr<detail::envelope<A>> e = make_tell(std::forward<M>(message));
        return cell().try_send(e);
    }

    // In a task: tell, suspending while the mailbox is full.
    template <class M>
    requires detail::handles<A, std::decay_t<M>> task<void> async_tell(M&& message)
    const { return cell().async_send(make_tell(std::forward<M>(message))); }

    // Request-reply: a future of what the handler returns (`co_await` it in a task, get() on
    // a thread). The handler's exception, or actor_stopped, arrives through the future. The
    // mailbox policy applies to the request as to tell().
    template <class M>
    requires detail::handles<A, std::decay_t<M>>
    auto ask(M&& message) const {
        auto request = make_ask(std::forward<M>(message));
        cell().send(request.first);
        return std::move(request.second);
    }

    // In a task: ask, suspending while the mailbox is full and then until the reply.
    template <class M>
    requires detail::handles<A, std::decay_t<M>>
    auto async_ask(M&& message) const {
        using reply_type = typename detail::ask_envelope<A, std::decay_t<M>>::reply_type;
        auto request = make_ask(std::forward<M>(message));
        return send_then_await<reply_type>(cell_, std::move(request.first),
                                           std::move(request.second));
    }

    // Stops the actor: it finishes (or drops) what is already in its mailbox; later messages
    // are refused with actor_stopped. Returns at once.
    void stop(stop_mode mode = stop_mode::finish) const { cell().stop(mode); }
    bool stopped() const noexcept { return cell_ && cell_->closed(); }

    explicit operator bool() const noexcept { return cell_ != nullptr; }
    friend bool operator==(const actor_ref& a, const actor_ref& b) noexcept {
        return a.cell_ == b.cell_;
    }

private:
    template <class B, class... Args>
    friend actor_ref<B> spawn_actor(scheduler&, const actor_options&, Args&&...);
    template <class Key, class B, class Hash>
    friend class registry;

    explicit actor_ref(std::shared_ptr<detail::actor_cell<A>> cell) noexcept
        : cell_(std::move(cell)) {}

    detail::actor_cell<A>& cell() const {
        if (!cell_)
            throw actor_error("weft: message sent through an empty actor_ref");
        return *cell_;
    }

    template <class M>
    static std::unique_ptr<detail::envelope<A>> make_tell(M&& message) {
        return std::make_unique<detail::tell_envelope<A, std::decay_t<M>>>(
            std::forward<M>(message));
    }

    template <class M>
    static auto make_ask(M&& message) {
        using envelope_type = detail::ask_envelope<A, std::decay_t<M>>;
        using reply_type = typename envelope_type::reply_type;
        promise<reply_type> answer;
        future<reply_type> reply = answer.get_future();
        std::unique_ptr<detail::envelope<A>> e =
            std::make_unique<envelope_type>(std::forward<M>(message), std::move(answer));
        return std::pair{std::move(e), std::move(reply)};
    }

    template <class R>
    static task<R> send_then_await(std::shared_ptr<detail::actor_cell<A>> cell,
                                   std::unique_ptr<detail::envelope<A>> e, future<R> reply) {
        co_await cell->async_send(std::move(e));
        co_return co_await std::move(reply);
    }

    std::shared_ptr<detail::actor_cell<A>> cell_;
};

// Creates an actor of type A (constructed from `args`) that runs on `s`.
template <class A, class... Args>
actor_ref<A> spawn_actor(scheduler& s, const actor_options& options, Args&&... args) {
    return actor_ref<A>(
        std::make_shared<detail::actor_cell<A>>(s, options, std::forward<Args>(args)...));
}

// The same with default actor_options.
template <class A, class... Args>
requires(!(std::is_same_v<std::remove_cvref_t<Args>, actor_options> ||
           ...)) actor_ref<A> spawn_actor(scheduler& s, Args&&... args) {
    return spawn_actor<A>(s, actor_options{}, std::forward<Args>(args)...);
}

} // namespace weft
