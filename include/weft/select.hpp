// weft::select — wait on several channel operations, run the one that happens first.
//
//   weft::select(
//       weft::on_recv(jobs, [&](std::optional<job> j) { ... }),   // nullopt: jobs closed
//       weft::on_send(results, r, [&] { ... }),                     // r moved only if sent
//       weft::on_timeout(1s, [&] { ... }),                          // or weft::otherwise(...)
//       weft::on_done(ctx, [&] { ... }));                           // ctx cancelled
//
// Among several ready cases one is picked uniformly at random, so no case starves. Nil
// channels are never picked. A case that does not fire consumes nothing and loses nothing: a
// select claims at most one operation, atomically, before any value moves. The same channel
// may appear in several cases. Nothing is allocated: the waiters live on the caller's stack.
//
// The machinery (the case types, the locks, how a select polls, links and resolves) is in
// detail/selector.hpp.
#pragma once

#include "blocking_report.hpp"
#include "channel.hpp"
#include "detail/context_fwd.hpp"
#include "detail/deadline.hpp"
#include "detail/selector.hpp"
#include "detail/task_core.hpp"
#include "detail/task_park.hpp"
#include "detail/wait_limit.hpp"
#include "detail/waiter.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

namespace weft {

// Which case ran: `index` is its position among select's arguments. `ok` is false when a
// channel case fired because its channel is closed (a recv found it closed and drained, or a
// send found it closed and kept its value).
using select_result = detail::select_result;

// A case that receives from `ch` (a channel<T> or receiver<T>). The handler takes
// std::optional<T> (nullopt: closed and drained), or T (not called on close), or nothing.
template <class Channel, class Fn = detail::no_handler>
auto on_recv(const Channel& ch, Fn fn = {}) {
    static_assert(!detail::is_sender_v<Channel>,
                  "weft::on_recv: cannot receive from a sender<T>, it is send-only (Go: receive "
                  "from send-only channel)");
    static_assert(detail::is_handle_v<Channel>,
                  "weft::on_recv takes a channel<T> or a receiver<T>");
    using T = typename Channel::value_type;
    return detail::recv_case<T, Fn>(detail::channel_access::state(ch), std::nullopt, std::move(fn));
}

// A case that sends `value` on `ch` (a channel<T> or sender<T>). A non-const lvalue is moved
// from only if the send happens; anything else is copied or moved into the case. The handler
// takes bool `sent` (false: the channel is closed) or nothing (then it runs only when sent).
template <class Channel, class U, class Fn = detail::no_handler>
auto on_send(const Channel& ch, U&& value, Fn fn = {}) {
    static_assert(!detail::is_receiver_v<Channel>,
                  "weft::on_send: cannot send on a receiver<T>, it is receive-only (Go: send to "
                  "receive-only channel); after() and timer channels are receivers");
    static_assert(detail::is_handle_v<Channel>, "weft::on_send takes a channel<T> or a sender<T>");
    using T = typename Channel::value_type;
    auto* state = detail::channel_access::state(ch);
    if constexpr (std::is_lvalue_reference_v<U> && !std::is_const_v<std::remove_reference_t<U>> &&
                  std::is_same_v<std::remove_cvref_t<U>, T>)
        return detail::send_case<T, T*, Fn>(state, &value, std::move(fn));
    else
        return detail::send_case<T, T, Fn>(state, T(std::forward<U>(value)), std::move(fn));
}

// Makes the select non-blocking: runs `fn` when no case is ready (Go's `default:`).
template <class Fn = detail::no_handler>
auto otherwise(Fn fn = {}) {
    return detail::otherwise_case<Fn>{std::move(fn)};
}

// Bounds the wait: runs `fn` when no case became ready within `timeout`.
template <class Rep, class Period, class Fn = detail::no_handler>
auto on_timeout(std::chrono::duration<Rep, Period> timeout, Fn fn = {}) {
    return detail::timeout_case<Fn>{detail::deadline_after(timeout), std::move(fn)};
}

// Runs `fn` when `ctx` is done (cancelled, or its deadline passed): Go's `case <-ctx.Done():`
// without making the done channel. A context done already makes it a ready case, picked at
// random among the ready ones; with otherwise() it is ready iff ctx.cancelled(). A select it
// ends consumed nothing. Never fires for background(). Refers to `ctx`: keep it alive until
// the select returns (it is, in `co_await weft::async_select(..., weft::on_done(ctx))`).
template <class Fn = detail::no_handler>
auto on_done(const context& ctx, Fn fn = {}) {
    return detail::done_case<Fn>{&ctx, std::move(fn)};
}

// Waits until one case can proceed, performs it, runs its handler and says which it was.
// Blocks for ever if no case can ever proceed (all channels nil, no otherwise/timeout, and
// on_done's context, if any, never cancelled).
template <class... Cases>
select_result select(Cases&&... cases);

// In a task: `co_await weft::async_select(cases...)` is select() that suspends the task, not
// its worker, while no case is ready; the same cases, the same guarantees. The cases are moved
// into the task, which is lazy: await it at once (an on_send case given a non-const lvalue
// refers to it, and is moved from only if sent).
template <class... Cases>
task<select_result> async_select(Cases... cases);

// ---- implementation ------------------------------------------------------------------------

template <class... Cases>
select_result select(Cases&&... cases) {
    detail::selector<Cases...> sel(cases...);
    if (auto r = sel.poll_lock_free(8))
        return *r;
    for (;;) {
        detail::wait_context ctx(detail::thread_parker::current());
        if (auto r = sel.link(ctx))
            return *r;
        bool signalled = true;
        if (!sel.self_claimed()) {
            // A pack cannot be followed by a source_location default argument: this select's
            // instantiation (its function name lists the case types) names the site instead.
            detail::note_blocking({"weft::select", "co_await weft::async_select(...)",
                                   weft::source_location::current().function_name()});
            if constexpr (detail::selector<Cases...>::has_done)
                (void)detail::sleep_limited(ctx, sel.limit()); // resolve() reads who claimed
            else if constexpr (detail::selector<Cases...>::has_timeout)
                signalled = ctx.wait_until(sel.deadline());
            else
                ctx.wait(); // with no live case nobody signals: blocks for ever, as Go's select {}
        }
        sel.unlink_all();
        if (!signalled)
            return sel.finish_special();
        if (auto r = sel.resolve(ctx))
            return *r;
    }
}

template <class... Cases>
task<select_result> async_select(Cases... cases) {
    // While the task waits, it keeps its channels alive (as Go's blocked goroutine does);
    // declared first, so it outlives the selector, which unlinks from them.
    std::array<std::shared_ptr<void>, sizeof...(Cases)> keep_alive;
    detail::selector<Cases...> sel(cases...);
    if (auto r = sel.poll_lock_free(1)) // one look: a task does not spin
        co_return *r;
    auto all = std::tie(cases...);
    detail::for_each_case(all, [&](std::size_t i, auto& c) {
        if constexpr (std::remove_cvref_t<decltype(c)>::is_channel_case)
            if (c.state())
                keep_alive[i] = c.state()->shared_from_this();
    });
    detail::task_wakeup wakeup(detail::blocked_on::select);
    for (;;) {
        wakeup.reset();
        if (auto r = sel.link(wakeup.context()))
            co_return *r;
        if (!sel.self_claimed()) {
            // The deadline and the context's stop claim the context while the task sleeps;
            // destroyed before resolve(), after which nothing else claims.
            std::optional<detail::limit_claims> limits;
            if constexpr (detail::selector<Cases...>::has_timeout ||
                          detail::selector<Cases...>::has_done)
                limits.emplace(wakeup.context(), sel.limit());
            co_await wakeup; // with no live case and no limit: until the frame is destroyed
        }
        sel.unlink_all();
        if (auto r = sel.resolve(wakeup.context()))
            co_return *r;
    }
}

} // namespace weft
