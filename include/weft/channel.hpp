// weft::channel<T> — Go's channels for C++.
//
// A channel is a cheap, copyable handle to shared state; copies talk to the same channel. A
// default-constructed channel is nil: sends and receives on it block forever and select never
// picks it. channel<T>(n) buffers n values; channel<T>(0) is a rendezvous where a send
// completes only when a receiver takes the value, handed over directly with no buffer hop.
//
// Values are never lost: a send on a closed channel reports closure and leaves the value with
// the caller, and values sent before close() are still received. Threads and tasks wait in the
// same queues, so they can talk over one channel.
//
// Inside, a channel is one of two flavors, chosen when it is made (crossbeam's flavors/):
//   detail/channel_ring.hpp      buffered, T's move cannot throw: a lock-free ring; the lock
//                                guards only the wait queues and is taken only when somebody
//                                waits; waiters are woken to retry.
//   detail/channel_locked.hpp    unbuffered, or T's move may throw: Go's design, one short lock
//                                around a ring buffer and direct hand-off to parked waiters.
//   detail/channel_flavor.hpp    what a flavor provides; detail/channel_state.hpp holds one and
//                                dispatches to it, the one place that asks which.
//   detail/channel_awaiters.hpp  how a task sends and receives (co_await ch.async_send(v), ...).
//
// None of that needs the scheduler; this header includes scheduler.hpp for one reason: a task
// that waits here on a thread no worker runs (a coroutine of another library awaiting a channel)
// is resumed on default_scheduler(), which scheduler.hpp installs as the fallback of
// detail/task_host.hpp before this translation unit's statics are initialized. Without the
// include that would depend on some other translation unit having included it.
#pragma once

#include "blocking_report.hpp"
#include "detail/channel_awaiters.hpp"
#include "detail/channel_flavor.hpp"
#include "detail/channel_state.hpp"
#include "detail/context_fwd.hpp"
#include "detail/deadline.hpp"
#include "detail/task_core.hpp"
#include "detail/task_park.hpp"
#include "detail/wait_limit.hpp"
#include "detail/waiter.hpp"
#include "scheduler.hpp" // the fallback host of a waiting task (see above)

#include <chrono>
#include <cstddef>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace weft {

// The outcome of a non-blocking or deadline-bounded channel operation.
enum class status {
    ok,        // the value was sent or received
    closed,    // the channel is closed (and, for a receive, drained)
    not_ready, // try_*: the operation would have blocked
    timeout,   // *_for / *_until: the deadline passed first
    cancelled, // a wait given a context: the context was done first (ctx.err() says why:
               // cancelled or its deadline exceeded); nothing was sent or received
};

// Misuse of a channel that is a bug in the caller: closing twice, closing a nil channel.
class channel_error : public std::logic_error {
public:
    using std::logic_error::logic_error;
};

// A received value, or why there is none. Reads like std::optional<T>.
template <class T>
class recv_result {
public:
    recv_result(weft::status s) noexcept : status_(s) {}
    recv_result(T&& value) : value_(std::move(value)), status_(weft::status::ok) {}

    weft::status status() const noexcept { return status_; }
    bool has_value() const noexcept { return value_.has_value(); }
    explicit operator bool() const noexcept { return value_.has_value(); }

    T& operator*() & noexcept { return *value_; }
    T&& operator*() && noexcept { return std::move(*value_); }
    T* operator->() noexcept { return &*value_; }
    // Throws std::bad_optional_access when there is no value.
    T& value() & { return value_.value(); }
    T&& value() && { return std::move(value_.value()); }

private:
    std::optional<T> value_;
    weft::status status_;
};

template <class T>
class channel;
template <class T>
class sender;
template <class T>
class receiver;

namespace detail {
struct channel_access;
} // namespace detail

template <class T>
class channel {
public:
    using value_type = T;

    // A nil channel.
    channel() noexcept = default;
    // A channel buffering up to `capacity` values; 0 makes it a rendezvous.
    explicit channel(std::size_t capacity)
        : state_(std::make_shared<detail::channel_state<T>>(capacity)) {}

    // Blocks until the value is taken (or buffered). Returns false if the channel is closed,
    // leaving `value` unmoved.
    bool send(T&& value, weft::source_location loc = weft::source_location::current()) {
        return send_until_impl(value, detail::no_deadline{}, send_site(loc)) == status::ok;
    }
    bool send(const T& value, weft::source_location loc = weft::source_location::current()) {
        T copy(value);
        return send(std::move(copy), loc);
    }

    // Never blocks: ok, not_ready (full, or no receiver for a rendezvous) or closed. Moves
    // from `value` only on ok.
    status try_send(T&& value) {
        return state_ ? try_status(state_->try_now(detail::sending{}, value)) : status::not_ready;
    }
    status try_send(const T& value) {
        T copy(value);
        return try_send(std::move(copy));
    }

    // Blocks at most until the deadline: ok, closed or timeout. Moves from `value` only on ok.
    template <class Rep, class Period>
    status send_for(T&& value, std::chrono::duration<Rep, Period> timeout) {
        return send_until(std::move(value), detail::deadline_after(timeout));
    }
    template <class Clock, class Duration>
    status send_until(T&& value, std::chrono::time_point<Clock, Duration> deadline) {
        return send_until_impl(value, deadline, {k_send_until, "co_await ch.async_send_for(v, d)"});
    }

    // Blocks until a value arrives; nullopt once the channel is closed and drained.
    std::optional<T> recv(weft::source_location loc = weft::source_location::current()) {
        std::optional<T> out;
        const detail::blocking_site site("weft::channel::recv", "co_await ch.async_recv()", loc);
        if (!state_)
            wait_on_nil(detail::no_deadline{}, site);
        else
            state_->wait(detail::receiving{}, out, detail::no_deadline{}, about_to_park(site));
        return out;
    }

    // Never blocks: a value, or status not_ready / closed (closed means closed and drained).
    recv_result<T> try_recv() {
        if (!state_)
            return status::not_ready;
        std::optional<T> out;
        const status s = try_status(state_->try_now(detail::receiving{}, out));
        return s == status::ok ? recv_result<T>(std::move(*out)) : recv_result<T>(s);
    }

    // Blocks at most until the deadline: a value, or status closed / timeout.
    template <class Rep, class Period>
    recv_result<T> recv_for(std::chrono::duration<Rep, Period> timeout) {
        return recv_until(detail::deadline_after(timeout));
    }
    template <class Clock, class Duration>
    recv_result<T> recv_until(std::chrono::time_point<Clock, Duration> deadline) {
        return recv_until_impl(deadline, {k_recv_until, "co_await ch.async_recv_for(d)"});
    }

    // Blocks until sent, the channel is closed, or `ctx` is done: ok, closed or cancelled.
    // Moves from `value` only on ok.
    status send(const context& ctx, T&& value) {
        return send_until_impl(value, detail::wait_limit{{}, detail::cancellation_of(ctx)},
                               {k_send_ctx, "co_await ch.async_send(ctx, v)"});
    }
    status send(const context& ctx, const T& value) {
        T copy(value);
        return send(ctx, std::move(copy));
    }

    // Blocks until a value arrives, the channel is closed and drained, or `ctx` is done: a
    // value, or status closed / cancelled. A cancelled receive takes nothing from the channel.
    recv_result<T> recv(const context& ctx) {
        return recv_until_impl(detail::wait_limit{{}, detail::cancellation_of(ctx)},
                               {k_recv_ctx, "co_await ch.async_recv(ctx)"});
    }

    // In a task: `co_await ch.async_send(v)` sends like send() but suspends the task, not its
    // worker thread, while it waits. True once sent; false if closed, leaving `value` unmoved.
    // Returns an awaitable to co_await at once (it refers to `value`), not a task.
    detail::send_awaiter<T> async_send(T&& value) { return {state_.get(), value}; }
    detail::send_awaiter<T> async_send(const T& value) { return {state_.get(), value}; }

    // In a task: send_for / send_until that suspend the task. ok, closed or timeout; moves
    // from `value` only on ok. Await the returned task at once: it refers to `value`.
    template <class Rep, class Period>
    task<status> async_send_for(T&& value, std::chrono::duration<Rep, Period> timeout) {
        return async_send_until(std::move(value), detail::deadline_after(timeout));
    }
    task<status> async_send_until(T&& value, std::chrono::steady_clock::time_point deadline) {
        return detail::async_send_impl(state_.get(), value, {deadline, {}}, &wait_status);
    }

    // In a task: send(ctx, v) that suspends the task. ok, closed or cancelled; moves from
    // `value` only on ok. Await the returned task at once: it refers to `value`.
    task<status> async_send(const context& ctx, T&& value) {
        return detail::async_send_impl(state_.get(), value, {{}, detail::cancellation_of(ctx)},
                                       &wait_status);
    }

    // In a task: `co_await ch.async_recv()` receives like recv() but suspends the task, not
    // its worker thread. A value, or nullopt once the channel is closed and drained. Returns an
    // awaitable to co_await at once, not a task.
    detail::recv_awaiter<T> async_recv() { return detail::recv_awaiter<T>(state_.get()); }

    // In a task: recv_for / recv_until that suspend the task. A value, or status closed /
    // timeout.
    template <class Rep, class Period>
    task<recv_result<T>> async_recv_for(std::chrono::duration<Rep, Period> timeout) {
        return async_recv_until(detail::deadline_after(timeout));
    }
    task<recv_result<T>> async_recv_until(std::chrono::steady_clock::time_point deadline) {
        return detail::async_recv_impl(state_.get(), {deadline, {}}, &received);
    }

    // In a task: recv(ctx) that suspends the task. A value, or status closed / cancelled.
    task<recv_result<T>> async_recv(const context& ctx) {
        return detail::async_recv_impl(state_.get(), {{}, detail::cancellation_of(ctx)}, &received);
    }

    // Closes the channel and wakes every blocked sender and receiver. Buffered values can
    // still be received. Throws channel_error on a closed or nil channel.
    void close() {
        if (!state_)
            throw channel_error("weft: close of nil channel");
        if (!state_->close())
            throw channel_error("weft: close of closed channel");
    }

    // Buffered values right now (Go's len); a snapshot that may be stale at once.
    std::size_t size() const { return state_ ? state_->size() : 0; }
    // Buffer capacity (Go's cap); 0 for a rendezvous or nil channel.
    std::size_t capacity() const noexcept { return state_ ? state_->capacity() : 0; }

    // False for a nil channel.
    explicit operator bool() const noexcept { return state_ != nullptr; }
    // Channels compare equal when they are handles to the same channel.
    friend bool operator==(const channel& a, const channel& b) noexcept {
        return a.state_ == b.state_;
    }

    // `for (auto& v : ch)` receives until the channel is closed and drained.
    class iterator {
    public:
        using value_type = T;
        using difference_type = std::ptrdiff_t;

        iterator() = default;
        explicit iterator(channel* ch) : channel_(ch) { ++*this; }
        T& operator*() noexcept { return *current_; }
        iterator& operator++() {
            current_ = channel_->recv();
            return *this;
        }
        void operator++(int) { ++*this; }
        friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
            return !it.current_;
        }

    private:
        channel* channel_ = nullptr;
        std::optional<T> current_;
    };
    iterator begin() { return iterator(this); }
    std::default_sentinel_t end() noexcept { return {}; }

private:
    friend struct detail::channel_access;

    template <class Deadline>
    status send_until_impl(T& value, const Deadline& deadline, const detail::blocking_site& site) {
        if (!state_)
            return wait_on_nil(deadline, site);
        return wait_status(state_->wait(detail::sending{}, value, deadline, about_to_park(site)));
    }
    template <class Deadline>
    recv_result<T> recv_until_impl(const Deadline& deadline, const detail::blocking_site& site) {
        if (!state_)
            return wait_on_nil(deadline, site);
        std::optional<T> out;
        const detail::park_step step =
            state_->wait(detail::receiving{}, out, deadline, about_to_park(site));
        return received(step, std::move(out));
    }
    static detail::blocking_site send_site(const weft::source_location& loc) noexcept {
        return {"weft::channel::send", "co_await ch.async_send(v)", loc};
    }
    // The deadline forms take no source_location: each reports once, wherever it is called.
    static constexpr const char* k_recv_until = "weft::channel::recv_for/recv_until";
    static constexpr const char* k_send_until = "weft::channel::send_for/send_until";
    static constexpr const char* k_recv_ctx = "weft::channel::recv(ctx)";
    static constexpr const char* k_send_ctx = "weft::channel::send(ctx, v)";

    // A thread that is about to park says so (blocking_report.hpp), once per call.
    static auto about_to_park(const detail::blocking_site& site) noexcept {
        return [&site] { detail::note_blocking(site); };
    }

    // Blocks the calling thread for ever (an operation on a nil channel), or until `deadline`.
    template <class Deadline>
    static status wait_on_nil(const Deadline& deadline, const detail::blocking_site& site) {
        detail::note_blocking(site);
        detail::wait_context ctx(detail::thread_parker::current());
        if constexpr (std::is_same_v<Deadline, detail::no_deadline>) {
            for (;;)
                ctx.wait(); // nobody can claim it; a spurious wake-up sleeps again
        } else {
            detail::park_step step;
            while ((step = detail::sleep_limited(ctx, deadline)) == detail::park_step::parked) {
            }
            return wait_status(step);
        }
    }

    // How an operation ended, as the caller sees it: a try (never timeout), a wait (never
    // not_ready), a receive's value or why there is none.
    static status try_status(detail::attempt a) noexcept {
        return a == detail::attempt::done     ? status::ok
               : a == detail::attempt::closed ? status::closed
                                              : status::not_ready;
    }
    static status wait_status(detail::park_step step) noexcept {
        switch (step) {
        case detail::park_step::done:
            return status::ok;
        case detail::park_step::closed:
            return status::closed;
        case detail::park_step::cancelled:
            return status::cancelled;
        default:
            return status::timeout;
        }
    }
    static recv_result<T> received(detail::park_step step, std::optional<T>&& out) {
        return out ? recv_result<T>(std::move(*out)) : recv_result<T>(wait_status(step));
    }

    std::shared_ptr<detail::channel_state<T>> state_;
};

// The send half of a channel (Go's chan<- T): send, close, no receive.
template <class T>
class sender {
public:
    using value_type = T;

    sender() noexcept = default;
    sender(channel<T> ch) noexcept : channel_(std::move(ch)) {}

    bool send(T&& value, weft::source_location loc = weft::source_location::current()) {
        return channel_.send(std::move(value), loc);
    }
    bool send(const T& value, weft::source_location loc = weft::source_location::current()) {
        return channel_.send(value, loc);
    }
    status send(const context& ctx, T&& value) { return channel_.send(ctx, std::move(value)); }
    status send(const context& ctx, const T& value) { return channel_.send(ctx, value); }
    status try_send(T&& value) { return channel_.try_send(std::move(value)); }
    status try_send(const T& value) { return channel_.try_send(value); }
    template <class Rep, class Period>
    status send_for(T&& value, std::chrono::duration<Rep, Period> timeout) {
        return channel_.send_for(std::move(value), timeout);
    }
    template <class Clock, class Duration>
    status send_until(T&& value, std::chrono::time_point<Clock, Duration> deadline) {
        return channel_.send_until(std::move(value), deadline);
    }
    detail::send_awaiter<T> async_send(T&& value) { return channel_.async_send(std::move(value)); }
    detail::send_awaiter<T> async_send(const T& value) { return channel_.async_send(value); }
    task<status> async_send(const context& ctx, T&& value) {
        return channel_.async_send(ctx, std::move(value));
    }
    template <class Rep, class Period>
    task<status> async_send_for(T&& value, std::chrono::duration<Rep, Period> timeout) {
        return channel_.async_send_for(std::move(value), timeout);
    }
    task<status> async_send_until(T&& value, std::chrono::steady_clock::time_point deadline) {
        return channel_.async_send_until(std::move(value), deadline);
    }
    void close() { channel_.close(); }
    std::size_t size() const { return channel_.size(); }
    std::size_t capacity() const noexcept { return channel_.capacity(); }
    explicit operator bool() const noexcept { return static_cast<bool>(channel_); }
    friend bool operator==(const sender& a, const sender& b) noexcept {
        return a.channel_ == b.channel_;
    }

private:
    friend struct detail::channel_access;
    channel<T> channel_;
};

// The receive half of a channel (Go's <-chan T): receive and range, no send, no close.
template <class T>
class receiver {
public:
    using value_type = T;
    using iterator = typename channel<T>::iterator;

    receiver() noexcept = default;
    receiver(channel<T> ch) noexcept : channel_(std::move(ch)) {}

    std::optional<T> recv(weft::source_location loc = weft::source_location::current()) {
        return channel_.recv(loc);
    }
    recv_result<T> recv(const context& ctx) { return channel_.recv(ctx); }
    detail::recv_awaiter<T> async_recv() { return channel_.async_recv(); }
    task<recv_result<T>> async_recv(const context& ctx) { return channel_.async_recv(ctx); }
    template <class Rep, class Period>
    task<recv_result<T>> async_recv_for(std::chrono::duration<Rep, Period> timeout) {
        return channel_.async_recv_for(timeout);
    }
    task<recv_result<T>> async_recv_until(std::chrono::steady_clock::time_point deadline) {
        return channel_.async_recv_until(deadline);
    }
    recv_result<T> try_recv() { return channel_.try_recv(); }
    template <class Rep, class Period>
    recv_result<T> recv_for(std::chrono::duration<Rep, Period> timeout) {
        return channel_.recv_for(timeout);
    }
    template <class Clock, class Duration>
    recv_result<T> recv_until(std::chrono::time_point<Clock, Duration> deadline) {
        return channel_.recv_until(deadline);
    }
    std::size_t size() const { return channel_.size(); }
    std::size_t capacity() const noexcept { return channel_.capacity(); }
    explicit operator bool() const noexcept { return static_cast<bool>(channel_); }
    friend bool operator==(const receiver& a, const receiver& b) noexcept {
        return a.channel_ == b.channel_;
    }
    iterator begin() { return channel_.begin(); }
    std::default_sentinel_t end() noexcept { return {}; }

private:
    friend struct detail::channel_access;
    channel<T> channel_;
};

namespace detail {

// Which handle a type is: select checks Go's channel directions with these at compile time.
template <class C>
inline constexpr bool is_channel_v = false;
template <class T>
inline constexpr bool is_channel_v<channel<T>> = true;
template <class C>
inline constexpr bool is_sender_v = false;
template <class T>
inline constexpr bool is_sender_v<sender<T>> = true;
template <class C>
inline constexpr bool is_receiver_v = false;
template <class T>
inline constexpr bool is_receiver_v<receiver<T>> = true;
template <class C>
inline constexpr bool is_handle_v = is_channel_v<C> || is_sender_v<C> || is_receiver_v<C>;

// Lets select and timers reach a handle's state without making it public API.
struct channel_access {
    // A handle to a state made elsewhere: after()'s, whose deleter cancels its timer.
    template <class T>
    static channel<T> adopt(std::shared_ptr<channel_state<T>> state) noexcept {
        channel<T> c;
        c.state_ = std::move(state);
        return c;
    }
    template <class T>
    static channel_state<T>* state(const channel<T>& c) noexcept {
        return c.state_.get();
    }
    template <class T>
    static channel_state<T>* state(const sender<T>& s) noexcept {
        return state(s.channel_);
    }
    template <class T>
    static channel_state<T>* state(const receiver<T>& r) noexcept {
        return state(r.channel_);
    }
};

} // namespace detail

} // namespace weft
