// weft::context — Go's context.Context: a cancellation signal, a deadline and the reason,
// passed down a call tree so that everything started for one request stops together.
//
//   auto [ctx, cancel] = weft::with_timeout(weft::background(), 300ms);
//   weft::select_result r = weft::select(weft::on_recv(results, [&](int v) { use(v); }),
//                                        weft::on_recv(ctx.done()));
//   if (r.index == 1) std::puts(ctx.err().message().c_str()); // "context deadline exceeded"
//   cancel(); // always: releases the timer and the parent's link at once
//
// A context is a cheap, copyable, read-only handle; only its cancel_func cancels it. A child
// (with_cancel, with_timeout, with_deadline) is cancelled when its parent is, with the parent's
// reason; cancelling a child leaves the parent alone. Cancellation happens once: later cancels
// change nothing. background() (or a default-constructed context) is never cancelled and has no
// deadline; its done() is a nil receiver, which never becomes ready (Go's nil Done()).
//
// Costs: cancelled() is one relaxed load; making a child is one allocation; done() makes its
// channel on first use and stop_token() its std::stop_source, so a context nobody selects on
// or hands to a std::jthread pays for neither. Resources are released when the cancel_func is
// called or when the last handle of the child (context copies and cancel_func) is gone.
#pragma once

#include "channel.hpp"
#include "detail/cancel_source.hpp"
#include "detail/context_fwd.hpp"
#include "time.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace weft {

// Why a context is done: Go's context.Canceled and context.DeadlineExceeded.
enum class context_errc { cancelled = 1, deadline_exceeded = 2 };

// The category of context_errc ("weft.context").
const std::error_category& context_category() noexcept;
inline std::error_code make_error_code(context_errc e) noexcept {
    return {static_cast<int>(e), context_category()};
}

} // namespace weft

template <>
struct std::is_error_code_enum<weft::context_errc> : std::true_type {};

namespace weft {

namespace detail {
class context_state;
struct context_maker;
} // namespace detail

class context {
public:
    using time_point = std::chrono::steady_clock::time_point;

    // background(): never cancelled, no deadline.
    context() noexcept = default;

    // One relaxed load: true once the context is cancelled (or its deadline passed). A hint for
    // loops that check now and then; to act on the reason, read err().
    bool cancelled() const noexcept;

    // Empty while the context is live; then context_errc::cancelled or ::deadline_exceeded,
    // never changing again.
    std::error_code err() const;
    // What the canceller gave (cancel_func(cause)); err() when it gave nothing or the context
    // is live (Go's context.Cause).
    std::error_code cause() const;
    // When the context will be cancelled by itself, if ever (the earliest of its and its
    // ancestors' deadlines).
    std::optional<time_point> deadline() const;

    // A receiver that is closed when the context is cancelled: a case in select/async_select,
    // or `co_await ctx.done().async_recv()` to wait. Nil for background().
    receiver<std::monostate> done() const;

    // A std::stop_token that is stop_requested() once the context is cancelled, for
    // std::jthread, std::condition_variable_any and libraries that take one. A token with no
    // stop possible for background().
    std::stop_token stop_token() const;

    // Same context (same cancellation), not merely equal values.
    friend bool operator==(const context&, const context&) noexcept = default;

private:
    friend class cancel_func;
    friend struct detail::context_maker;
    friend detail::cancel_ref detail::cancellation_of(const context&);
    explicit context(std::shared_ptr<detail::context_state> state) noexcept
        : state_(std::move(state)) {}

    std::shared_ptr<detail::context_state> state_; // null: background
};

// Cancels the context it came with (and its children). Copyable; calling it again, or after
// the parent was cancelled, does nothing.
class cancel_func {
public:
    cancel_func() noexcept = default;
    // cause: what cause() reports (err() stays context_errc::cancelled); empty means
    // context_errc::cancelled.
    void operator()(std::error_code cause = {}) const;

private:
    friend struct detail::context_maker;
    explicit cancel_func(std::shared_ptr<detail::context_state> state) noexcept
        : state_(std::move(state)) {}

    std::shared_ptr<detail::context_state> state_;
};

// A context and the function that cancels it: `auto [ctx, cancel] = with_cancel(parent);`.
struct cancellable_context {
    context ctx;
    cancel_func cancel;
};

// The root of every context tree: never cancelled.
inline context background() noexcept {
    return context{};
}

// A child of `parent` that is cancelled when `cancel` is called or the parent is.
cancellable_context with_cancel(const context& parent);
// ... or also when `deadline` (steady clock) passes: err() is then deadline_exceeded. A
// deadline later than the parent's changes nothing but the handle.
cancellable_context with_deadline(const context& parent, context::time_point deadline);
// ... when `timeout` has passed from now.
template <class Rep, class Period>
cancellable_context with_timeout(const context& parent,
                                 std::chrono::duration<Rep, Period> timeout) {
    return with_deadline(parent, deadline_after(timeout));
}

// ---- implementation ------------------------------------------------------------------------

namespace detail {

// One context of the tree. Invariants:
//   1. err_ goes from empty to a context_errc once, under the mutex, with cause_ and done_
//      (the lock-free hint); none of them changes again.
//   2. `first_child_` lists the live, uncancelled children; a child removes itself (under this
//      mutex) when cancelled or destroyed, so the list never points at a dead child.
//   3. No context holds its mutex while it takes another's: cancel collects the children,
//      unlocks, then cancels them; a child unlinks itself from its parent after unlocking.
//      So there is no lock order to break.
//   4. Channel close, stop requests and the timer's stop run outside the mutex: they wake or
//      call foreign code (stop callbacks run synchronously).
class context_state : public std::enable_shared_from_this<context_state> {
public:
    explicit context_state(std::shared_ptr<context_state> parent) : parent_(std::move(parent)) {}
    context_state(const context_state&) = delete;
    context_state& operator=(const context_state&) = delete;
    ~context_state() {
        if (parent_)
            parent_->forget(this);
    }

    bool done() const noexcept {
        // relaxed: a hint only; err() and cause() read under the mutex.
        return done_.load(std::memory_order_relaxed);
    }
    std::error_code err() const {
        std::lock_guard lock(mutex_);
        return err_;
    }
    std::error_code cause() const {
        std::lock_guard lock(mutex_);
        return cause_ ? cause_ : err_;
    }
    std::optional<std::chrono::steady_clock::time_point> deadline() const { return deadline_; }

    receiver<std::monostate> done_channel() {
        std::lock_guard lock(mutex_);
        if (!done_channel_made_) {
            done_channel_ = channel<std::monostate>(0);
            done_channel_made_ = true;
            if (err_)
                done_channel_.close();
        }
        return done_channel_;
    }

    std::stop_token stop_token() {
        std::unique_lock lock(mutex_);
        if (!stop_)
            stop_.emplace();
        std::stop_token token = stop_->get_token();
        const bool stopped_already = static_cast<bool>(err_);
        std::stop_source source = *stop_;
        lock.unlock();
        if (stopped_already)
            source.request_stop(); // idempotent; outside the mutex (invariant 4)
        return token;
    }

    // What waits given this context link their cancel_watch to (cancel_source.hpp); shares
    // ownership of this state.
    cancel_ref cancellation() {
        return cancel_ref(std::shared_ptr<cancel_source>(shared_from_this(), &waits_));
    }

    // Links a new child: cancelled at once if this context already is.
    void adopt(const std::shared_ptr<context_state>& child) {
        std::error_code why;
        std::error_code cause;
        {
            std::lock_guard lock(mutex_);
            if (err_) {
                why = err_;
                cause = cause_;
            } else {
                link(child.get());
            }
        }
        if (why)
            child->cancel(why, cause);
    }

    void set_deadline(std::chrono::steady_clock::time_point when) { deadline_ = when; }
    void arm_timer(std::chrono::steady_clock::duration delay) {
        std::weak_ptr<context_state> weak = weak_from_this();
        callback_timer timer = after_func(delay, [weak] {
            if (std::shared_ptr<context_state> self = weak.lock())
                self->cancel(context_errc::deadline_exceeded, {});
        });
        std::lock_guard lock(mutex_);
        if (!err_)
            timer_ = std::move(timer);
        // else: cancelled meanwhile; `timer` stops as it goes out of scope
    }

    // Cancels this context and then its children (with the same reason). False if it was
    // cancelled before.
    bool cancel(std::error_code why, std::error_code cause) {
        std::vector<std::shared_ptr<context_state>> children;
        channel<std::monostate> to_close;
        std::optional<std::stop_source> to_stop;
        callback_timer timer;
        {
            std::lock_guard lock(mutex_);
            if (err_)
                return false;
            err_ = why;
            cause_ = cause;
            // relaxed: set under the mutex after err_; whoever acts on it reads err_ under the
            // mutex too, and a load that saw true cannot precede this critical section.
            done_.store(true, std::memory_order_relaxed);
            for (context_state* c = first_child_; c;) {
                // A child whose last handle is going away is skipped: its destructor waits for
                // this mutex to unlink it, and nothing can observe it any more.
                if (std::shared_ptr<context_state> alive = c->weak_from_this().lock())
                    children.push_back(std::move(alive));
                context_state* next = c->next_sibling_;
                c->prev_sibling_ = c->next_sibling_ = nullptr;
                c->linked_ = false;
                c = next;
            }
            first_child_ = nullptr;
            if (done_channel_made_)
                to_close = done_channel_;
            if (stop_)
                to_stop = *stop_;
            timer = std::move(timer_);
        }
        if (parent_)
            parent_->forget(this);
        if (to_close)
            to_close.close();
        waits_.fire(); // every wait given this context ends now (claims, see wait_limit.hpp)
        if (to_stop)
            to_stop->request_stop();
        timer.stop();
        for (auto& c : children)
            c->cancel(why, cause);
        return true;
    }

private:
    // The children form an intrusive list, so linking and unlinking allocate nothing and take
    // constant time (a root may have many thousands of request contexts). Under mutex_.
    void link(context_state* child) noexcept {
        child->next_sibling_ = first_child_;
        if (first_child_)
            first_child_->prev_sibling_ = child;
        first_child_ = child;
        child->linked_ = true;
    }
    void forget(context_state* child) {
        std::lock_guard lock(mutex_);
        if (!child->linked_)
            return;
        if (child->prev_sibling_)
            child->prev_sibling_->next_sibling_ = child->next_sibling_;
        else
            first_child_ = child->next_sibling_;
        if (child->next_sibling_)
            child->next_sibling_->prev_sibling_ = child->prev_sibling_;
        child->prev_sibling_ = child->next_sibling_ = nullptr;
        child->linked_ = false;
    }

    const std::shared_ptr<context_state> parent_; // keeps the chain of ancestors alive
    // This context's place in its parent's list of children: guarded by parent_->mutex_.
    context_state* prev_sibling_ = nullptr;
    context_state* next_sibling_ = nullptr;
    bool linked_ = false;
    std::atomic<bool> done_{false};
    std::optional<std::chrono::steady_clock::time_point> deadline_; // set before sharing
    cancel_source waits_; // the waits to end when cancelled (its own lock, never nested)

    mutable std::mutex mutex_; // guards everything below
    std::error_code err_;
    std::error_code cause_;
    context_state* first_child_ = nullptr; // the live, uncancelled children (invariant 2)
    channel<std::monostate> done_channel_; // made on first done()
    bool done_channel_made_ = false;
    std::optional<std::stop_source> stop_; // made on first stop_token()
    callback_timer timer_;                 // the deadline's, if any
};

class context_error_category final : public std::error_category {
public:
    const char* name() const noexcept override { return "weft.context"; }
    std::string message(int value) const override {
        switch (static_cast<context_errc>(value)) {
        case context_errc::cancelled:
            return "context cancelled";
        case context_errc::deadline_exceeded:
            return "context deadline exceeded";
        }
        return "unknown weft.context error";
    }
};

} // namespace detail

inline const std::error_category& context_category() noexcept {
    static const detail::context_error_category category;
    return category;
}

inline bool context::cancelled() const noexcept {
    return state_ && state_->done();
}
inline std::error_code context::err() const {
    return state_ ? state_->err() : std::error_code{};
}
inline std::error_code context::cause() const {
    return state_ ? state_->cause() : std::error_code{};
}
inline std::optional<context::time_point> context::deadline() const {
    return state_ ? state_->deadline() : std::nullopt;
}
inline receiver<std::monostate> context::done() const {
    return state_ ? state_->done_channel() : receiver<std::monostate>{};
}
inline std::stop_token context::stop_token() const {
    return state_ ? state_->stop_token() : std::stop_token{};
}

inline detail::cancel_ref detail::cancellation_of(const context& ctx) {
    return ctx.state_ ? ctx.state_->cancellation() : cancel_ref{};
}
inline bool detail::cancelled_of(const context& ctx) noexcept {
    return ctx.cancelled();
}

inline void cancel_func::operator()(std::error_code cause) const {
    if (state_)
        state_->cancel(context_errc::cancelled, cause);
}

namespace detail {

// Makes children: the one place that sees the private constructors of context and cancel_func.
struct context_maker {
    static cancellable_context make(const context& parent,
                                    std::optional<context::time_point> deadline) {
        const std::shared_ptr<detail::context_state>& up = parent.state_;
        std::optional<context::time_point> effective = parent.deadline();
        const bool own_timer = deadline && (!effective || *deadline < *effective);
        if (own_timer)
            effective = deadline;
        auto state = std::make_shared<detail::context_state>(up);
        if (effective)
            state->set_deadline(*effective);
        if (up)
            up->adopt(state);
        if (own_timer) {
            const auto now = std::chrono::steady_clock::now();
            if (*deadline <= now)
                state->cancel(context_errc::deadline_exceeded, {});
            else
                state->arm_timer(*deadline - now);
        }
        return {context(state), cancel_func(state)};
    }
};

} // namespace detail

inline cancellable_context with_cancel(const context& parent) {
    return detail::context_maker::make(parent, std::nullopt);
}
inline cancellable_context with_deadline(const context& parent, context::time_point deadline) {
    return detail::context_maker::make(parent, deadline);
}

} // namespace weft
