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
//
// Each wait can be given a weft::context: tell(ctx, m) / async_tell(ctx, m) return
// status::cancelled if the context is done before there is room, and then nothing was
// enqueued; ask(ctx, m) / async_ask(ctx, m) return an ask_result, cancelled if the context is
// done before the reply. As with Akka's ask timeout, a cancelled ask only stops the waiting:
// if the message was already in the mailbox (ask_result::sent()), the actor still handles it
// and its reply is dropped.
//
// One actor's machinery (its mailbox, the drain job, the envelopes) is in detail/actor_cell.hpp.
#pragma once

#include "channel.hpp"
#include "detail/actor_cell.hpp"
#include "detail/context_fwd.hpp"
#include "detail/wait_limit.hpp"
#include "future.hpp"
#include "scheduler.hpp"
#include "task.hpp"

#include <cstddef>
#include <memory>
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

template <class Key, class A, class Hash>
class registry;

// What ask(ctx, m) and async_ask(ctx, m) give: the reply (status ok), or status::cancelled
// when the context was done first. Reads like std::optional<R>; for R = void only the status.
template <class R>
class ask_result {
public:
    using value_type = R;

    weft::status status() const noexcept { return status_; }
    explicit operator bool() const noexcept { return status_ == weft::status::ok; }
    // Whether the message got into the mailbox. After a cancelled ask that is sent, the actor
    // still handles it (its reply goes nowhere); unsent, it never will.
    bool sent() const noexcept { return sent_; }

    template <class U = R>
    requires(!std::is_void_v<U>) U& operator*() & { return *value_; }
    template <class U = R>
    requires(!std::is_void_v<U>) U && operator*() && { return std::move(*value_); }
    template <class U = R>
    requires(!std::is_void_v<U>) U* operator->() { return &*value_; }

private:
    template <class B>
    friend class actor_ref;
    template <class Key, class B, class Hash>
    friend class registry;

    using stored = std::conditional_t<std::is_void_v<R>, std::monostate, R>;
    static ask_result cancelled(bool sent) { return ask_result(weft::status::cancelled, sent); }
    template <class... V>
    static ask_result replied(V&&... v) {
        ask_result r(weft::status::ok, true);
        r.value_.emplace(std::forward<V>(v)...);
        return r;
    }
    ask_result(weft::status s, bool sent) noexcept : status_(s), sent_(sent) {}

    std::optional<stored> value_;
    weft::status status_;
    bool sent_;
};

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
        send(cell(), e);
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
    const { return async_send(live_cell(), make_tell(std::forward<M>(message))); }

    // tell that stops waiting for room when `ctx` is done: ok, or cancelled with nothing
    // enqueued. Throws as tell() does (actor_stopped, mailbox_full). A mailbox with room takes
    // the message even if `ctx` is done already.
    template <class M>
    requires detail::handles<A, std::decay_t<M>> status tell(const context& ctx, M&& message)
    const {
        envelope_ptr e = make_tell(std::forward<M>(message));
        return send(cell(), e, ctx);
    }

    // In a task: tell(ctx, m), suspending while the mailbox is full: ok or cancelled.
    template <class M>
    requires detail::handles<A, std::decay_t<M>> task<status> async_tell(const context& ctx,
                                                                         M&& message)
    const {
        return async_send(live_cell(), make_tell(std::forward<M>(message)),
                          detail::wait_limit{{}, detail::cancellation_of(ctx)});
    }

    // Request-reply: a future of what the handler returns (`co_await` it in a task, get() on
    // a thread). The handler's exception, or actor_stopped, arrives through the future. The
    // mailbox policy applies to the request as to tell().
    template <class M>
    requires detail::handles<A, std::decay_t<M>>
    auto ask(M&& message) const {
        auto request = make_ask(std::forward<M>(message));
        send(cell(), request.first);
        return std::move(request.second);
    }

    // In a task: ask, suspending while the mailbox is full and then until the reply.
    template <class M>
    requires detail::handles<A, std::decay_t<M>>
    auto async_ask(M&& message) const {
        using reply_type = typename ask_type<M>::reply_type;
        auto request = make_ask(std::forward<M>(message));
        return send_then_await<reply_type>(live_cell(), std::move(request.first),
                                           std::move(request.second));
    }

    // ask that waits (for room, then for the reply) only until `ctx` is done: the reply, or
    // cancelled (see ask_result::sent: the message may still be handled). The handler's
    // exception, or actor_stopped, is rethrown here.
    template <class M>
    requires detail::handles<A, std::decay_t<M>>
    auto ask(const context& ctx, M&& message) const {
        using reply_type = typename ask_type<M>::reply_type;
        std::optional<future<reply_type>> reply = send_ask(ctx, std::forward<M>(message));
        if (!reply)
            return ask_result<reply_type>::cancelled(false);
        return await_reply(ctx, std::move(*reply));
    }

    // In a task: ask(ctx, m), suspending while it waits.
    template <class M>
    requires detail::handles<A, std::decay_t<M>>
    auto async_ask(const context& ctx, M&& message) const {
        auto request = make_ask(std::forward<M>(message));
        return send_then_await(live_cell(), std::move(request.first), std::move(request.second),
                               detail::wait_limit{{}, detail::cancellation_of(ctx)});
    }

    // Stops the actor: it finishes (or drops) what is already in its mailbox; later messages
    // are refused with actor_stopped. Returns at once.
    void stop(stop_mode mode = stop_mode::finish) const { cell().stop(mode == stop_mode::drop); }
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

    using cell_type = detail::actor_cell<A>;
    using envelope_ptr = std::unique_ptr<detail::envelope<A>>;
    template <class M>
    using ask_type = detail::ask_envelope<A, std::decay_t<M>, actor_stopped>;

    cell_type& cell() const { return *live_cell(); }
    const std::shared_ptr<cell_type>& live_cell() const {
        if (!cell_)
            throw actor_error("weft: message sent through an empty actor_ref");
        return cell_;
    }

    // try_send's answer under the actor's policy: true once sent, false to wait for room;
    // throws actor_stopped when stopped, mailbox_full when full under when_full::fail.
    static bool accepted(const cell_type& c, status s) {
        if (s == status::ok)
            return true;
        if (s == status::closed)
            throw actor_stopped("weft: actor stopped; message refused");
        if (c.fails_when_full())
            throw mailbox_full("weft: actor mailbox full (capacity " +
                               std::to_string(c.capacity()) + ")");
        return false;
    }

    // A thread's send: waits for room or throws (see accepted()).
    static void send(cell_type& c, envelope_ptr& e) {
        while (!accepted(c, c.try_send(e)))
            c.wait_for_room();
    }

    // A thread's send that `ctx` may end: ok, or cancelled (`e` is still ours).
    static status send(cell_type& c, envelope_ptr& e, const context& ctx) {
        const detail::wait_limit limit{{}, detail::cancellation_of(ctx)};
        while (!accepted(c, c.try_send(e)))
            if (c.wait_for_room(limit) == detail::park_step::cancelled)
                return status::cancelled;
        return status::ok;
    }

    // The sending half of ask(ctx, m): the reply's future, or nullopt if `ctx` was done
    // before there was room (nothing enqueued). The registry waits for the reply outside its
    // lock.
    template <class M>
    std::optional<future<typename ask_type<M>::reply_type>> send_ask(const context& ctx,
                                                                     M&& message) const {
        auto request = make_ask(std::forward<M>(message));
        if (send(cell(), request.first, ctx) == status::cancelled)
            return std::nullopt; // the envelope dies here, failing a future nobody reads
        return std::move(request.second);
    }

    // The waiting half of ask(ctx, m) on a thread.
    template <class R>
    static ask_result<R> await_reply(const context& ctx, future<R> reply) {
        if (reply.wait(ctx) == status::cancelled)
            return ask_result<R>::cancelled(true);
        if constexpr (std::is_void_v<R>) {
            reply.get();
            return ask_result<R>::replied();
        } else {
            return ask_result<R>::replied(reply.get());
        }
    }

    // A task's send that a limit may end: ok or cancelled (nothing enqueued). Holds the actor
    // while it waits.
    static task<status> async_send(std::shared_ptr<cell_type> c, envelope_ptr e,
                                   detail::wait_limit limit) {
        while (!accepted(*c, c->try_send(e))) {
            // A statement of its own: GCC 12 mishandles a non-movable awaitable temporary
            // (task_park) co_awaited inside a condition.
            const detail::park_step step = co_await c->room(&limit);
            if (step == detail::park_step::cancelled)
                co_return status::cancelled;
        }
        co_return status::ok;
    }

    // A task's ask(ctx, m): send, then wait for the reply, both limited by the context's stop
    // token (held by value: the caller's context may be gone by the time the task runs).
    template <class R>
    static task<ask_result<R>> send_then_await(std::shared_ptr<cell_type> c, envelope_ptr e,
                                               future<R> reply, detail::wait_limit limit) {
        detail::cancel_ref stop = limit.stop;
        const status sent = co_await async_send(std::move(c), std::move(e), std::move(limit));
        if (sent == status::cancelled)
            co_return ask_result<R>::cancelled(false);
        const status replied = co_await detail::future_access::wait_for(reply, std::move(stop));
        if (replied == status::cancelled)
            co_return ask_result<R>::cancelled(true);
        if constexpr (std::is_void_v<R>) {
            co_await std::move(reply);
            co_return ask_result<R>::replied();
        } else {
            co_return ask_result<R>::replied(co_await std::move(reply));
        }
    }

    // A task's send: as send(), suspending the task while the mailbox is full. Holds the
    // actor while it waits.
    static task<void> async_send(std::shared_ptr<cell_type> c, envelope_ptr e) {
        while (!accepted(*c, c->try_send(e)))
            (void)co_await c->room(); // done (room seen), closed, or again: try once more
    }

    template <class M>
    static std::unique_ptr<detail::envelope<A>> make_tell(M&& message) {
        return std::make_unique<detail::tell_envelope<A, std::decay_t<M>>>(
            std::forward<M>(message));
    }

    template <class M>
    static auto make_ask(M&& message) {
        using envelope_type = ask_type<M>;
        using reply_type = typename envelope_type::reply_type;
        promise<reply_type> answer;
        future<reply_type> reply = answer.get_future();
        std::unique_ptr<detail::envelope<A>> e =
            std::make_unique<envelope_type>(std::forward<M>(message), std::move(answer));
        return std::pair{std::move(e), std::move(reply)};
    }

    template <class R>
    static task<R> send_then_await(std::shared_ptr<cell_type> c, envelope_ptr e, future<R> reply) {
        co_await async_send(std::move(c), std::move(e));
        co_return co_await std::move(reply);
    }

    std::shared_ptr<detail::actor_cell<A>> cell_;
};

// Creates an actor of type A (constructed from `args`) that runs on `s`.
template <class A, class... Args>
actor_ref<A> spawn_actor(scheduler& s, const actor_options& options, Args&&... args) {
    const detail::mailbox_policy policy{.capacity = options.mailbox_capacity,
                                        .fail_when_full = options.full == when_full::fail,
                                        .batch = options.batch};
    return actor_ref<A>(
        std::make_shared<detail::actor_cell<A>>(s, policy, std::forward<Args>(args)...));
}

// The same with default actor_options.
template <class A, class... Args>
requires(!(std::is_same_v<std::remove_cvref_t<Args>, actor_options> ||
           ...)) actor_ref<A> spawn_actor(scheduler& s, Args&&... args) {
    return spawn_actor<A>(s, actor_options{}, std::forward<Args>(args)...);
}

} // namespace weft
