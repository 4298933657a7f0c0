// weft::errgroup — Go's errgroup.WithContext: members that share a context; the first member
// that fails cancels it, so the others stop, and wait() joins them all and reports that failure.
//
//   weft::errgroup g(ctx);                   // g.context() is a child of ctx
//   for (const auto& url : urls)
//       g.go([url](weft::context c) -> weft::task<> { co_await fetch(c, url); });
//   co_await g.wait();                       // every member finished; rethrows the first error
//
// A member is a callable taking the group's context and returning task<void> (or void). It
// runs on the group's scheduler. The first member that throws records its exception and
// cancels the group's context (with the exception's error_code as cause() when it is a
// std::system_error); members that wait with that context see status::cancelled and return.
// wait() returns only after every member has finished, then rethrows the recorded exception.
// After wait() the group's context is cancelled, as in Go: the group is spent, and a later
// wait() reports the same outcome.
//
// Members are joined, never detached: destroying a group whose members still run cancels its
// context and then blocks the destroying thread until they have all finished (std::jthread's
// "request stop, then join"). In a task, co_await wait() before the group goes out of scope:
// the destructor's wait blocks the worker. An error nobody waited for is dropped.
//
// set_limit(n) bounds how many members run at once (Go's SetLimit): go() then blocks the
// calling thread, and co_await async_go() suspends the calling task, until a member finishes;
// try_go() refuses instead. The token pool is a channel<std::monostate>(n): a member sends a
// token to start and takes one back when it ends.
#pragma once

#include "channel.hpp"
#include "context.hpp"
#include "scheduler.hpp"
#include "sync.hpp"
#include "task.hpp"

#include <concepts>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace weft {

// What errgroup::go accepts: called with the group's context, returns task<void> or nothing.
template <class F>
concept errgroup_member = std::invocable < std::decay_t<F>
&, context > &&(std::is_void_v<std::invoke_result_t<std::decay_t<F>&, context>> ||
                std::same_as<std::invoke_result_t<std::decay_t<F>&, context>, task<void>>);

class errgroup {
public:
    // Members run on `s` (by default on the scheduler of the calling worker, else the default
    // one) and get a with_cancel child of `parent` (by default background()).
    errgroup() : errgroup(background()) {}
    explicit errgroup(const weft::context& parent) : errgroup(parent, current_or_default()) {}
    explicit errgroup(scheduler& s) : errgroup(background(), s) {}
    errgroup(const weft::context& parent, scheduler& s) : scheduler_(s) {
        cancellable_context child = with_cancel(parent);
        ctx_ = std::move(child.ctx);
        cancel_ = std::move(child.cancel);
    }
    errgroup(const errgroup&) = delete;
    errgroup& operator=(const errgroup&) = delete;

    // Cancels the group's context, then blocks until every member has finished (see above).
    ~errgroup() {
        cancel_();
        pending_.wait();
    }

    // The group's context: cancelled by the first failure, by wait(), or with the parent.
    const weft::context& context() const noexcept { return ctx_; }

    // Starts f(context()) as a member. With a limit set, blocks the calling thread while
    // the limit is reached (in a task, use async_go instead).
    template <errgroup_member F>
    void go(F&& f) {
        channel<std::monostate> tokens = tokens_;
        if (tokens)
            (void)tokens.send(std::monostate{}); // never closed: true once there is room
        start(std::forward<F>(f), std::move(tokens));
    }

    // In a task: `co_await g.async_go(f)` is go(f) that suspends the task, not its worker,
    // while the limit is reached. Takes `f` by value (it waits in the task's frame).
    template <errgroup_member F>
    task<void> async_go(F f) {
        channel<std::monostate> tokens = tokens_;
        if (tokens)
            (void)co_await tokens.async_send(std::monostate{});
        start(std::move(f), std::move(tokens));
    }

    // Starts f(context()) as a member unless the limit is reached; false (f untouched) then.
    template <errgroup_member F>
    bool try_go(F&& f) {
        channel<std::monostate> tokens = tokens_;
        if (tokens && tokens.try_send(std::monostate{}) != status::ok)
            return false;
        start(std::forward<F>(f), std::move(tokens));
        return true;
    }

    // At most `n` members run at once from now on; n < 0 removes the limit. Throws
    // sync_error if members are running or n is 0 (no member could ever start). Not to be
    // called while another thread may call go/try_go/async_go (those may run concurrently).
    void set_limit(std::ptrdiff_t n) {
        if (n == 0)
            throw sync_error("weft: errgroup limit of 0 (no member could ever start)");
        if (pending_.count() != 0)
            throw sync_error("weft: errgroup::set_limit while members are running");
        tokens_ = n < 0 ? channel<std::monostate>()
                        : channel<std::monostate>(static_cast<std::size_t>(n));
    }

    // In a task: suspends until every member started so far has finished, cancels the
    // group's context, then rethrows the first exception a member threw.
    task<void> wait() {
        co_await pending_.async_wait();
        finish();
    }

    // wait() for a plain thread: blocks it (reported on a worker, see blocking_report.hpp).
    void wait_blocking(weft::source_location loc = weft::source_location::current()) {
        pending_.wait(loc);
        finish();
    }

private:
    static scheduler& current_or_default() noexcept {
        scheduler* s = scheduler::current();
        return s ? *s : default_scheduler();
    }

    // `tokens` is the pool the member took a token from (nil: none taken).
    template <class F>
    void start(F&& f, channel<std::monostate> tokens) {
        pending_.add(1);
        try {
            scheduler_.spawn(
                run_member(this, std::optional<std::decay_t<F>>(std::forward<F>(f)), tokens));
        } catch (...) {
            // Nothing was spawned: give back what we took.
            if (tokens)
                (void)tokens.try_recv();
            pending_.done();
            throw;
        }
    }

    // Ends a member whether it returns or its frame is destroyed unfinished (its scheduler
    // shut down), so a waiter is never left blocked for ever.
    struct member_exit {
        errgroup* group;
        channel<std::monostate> tokens;
        ~member_exit() {
            if (tokens)
                (void)tokens.try_recv(); // ours is there: we sent it before starting
            // Last touch of the group: once the count reaches zero its owner may destroy it.
            group->pending_.done();
        }
    };

    template <class F>
    static task<void> run_member(errgroup* group, std::optional<F> f,
                                 channel<std::monostate> tokens) {
        member_exit exit{group, std::move(tokens)};
        std::exception_ptr error;
        try {
            if constexpr (std::is_void_v<std::invoke_result_t<F&, weft::context>>)
                std::invoke(*f, group->ctx_);
            else
                co_await std::invoke(*f, group->ctx_);
        } catch (...) {
            error = std::current_exception();
        }
        // The callable's captures die before wait() can return, not with the frame later.
        f.reset();
        if (error)
            group->fail(std::move(error));
    }

    void fail(std::exception_ptr error) {
        {
            std::lock_guard lock(error_mutex_);
            if (first_error_)
                return;
            first_error_ = error;
        }
        std::error_code cause;
        try {
            std::rethrow_exception(error);
        } catch (const std::system_error& e) {
            cause = e.code();
        } catch (...) {
        }
        try {
            cancel_(cause);
        } catch (...) {
            // Only bad_alloc can get here; the error is recorded and wait() reports it.
        }
    }

    void finish() {
        cancel_();
        std::exception_ptr error;
        {
            std::lock_guard lock(error_mutex_);
            error = first_error_;
        }
        if (error)
            std::rethrow_exception(error);
    }

    scheduler& scheduler_;
    weft::context ctx_;
    cancel_func cancel_;
    wait_group pending_;             // members started and not yet finished
    channel<std::monostate> tokens_; // the limit's token pool; nil: no limit
    std::mutex error_mutex_;         // guards first_error_
    std::exception_ptr first_error_;
};

} // namespace weft
