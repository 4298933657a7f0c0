// weft::future<R> — the result of work that runs elsewhere (spawn_blocking's call, an actor's
// reply to ask): `co_await` it in a task, which is suspended meanwhile so its worker runs other
// tasks, or get() it on a plain thread. An exception set by the producer is rethrown to the
// consumer. Move-only, and read once.
//
//   weft::future<int> f = weft::spawn_blocking([] { return 42; });
//   int v = co_await std::move(f);   // in a task
//   int w = other.get();             // on a thread
#pragma once

#include "blocking_report.hpp"
#include "scheduler.hpp"

#include <atomic>
#include <coroutine>
#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

namespace weft {

namespace detail {

// The meeting point of one producer and one consumer.
template <class R>
class future_state {
public:
    future_state() = default;
    future_state(const future_state&) = delete;
    future_state& operator=(const future_state&) = delete;
    virtual ~future_state() = default;

    // Producer side, once: the value (nothing for R = void) or an exception.
    template <class... Args>
    void set_value(Args&&... args) {
        if constexpr (std::is_void_v<R>)
            value_.emplace();
        else
            value_.emplace(std::forward<Args>(args)...);
        finish();
    }
    void set_exception(std::exception_ptr error) noexcept {
        error_ = std::move(error);
        finish();
    }
    bool ready() const noexcept {
        // acquire: pairs with the release in finish().
        return phase_.load(std::memory_order_acquire) == k_done;
    }

    // Consumer side, for future<R>.
    // Suspends `h` until the result is set; false if it already is (resume at once).
    bool suspend(std::coroutine_handle<> h) noexcept {
        awaiting_ = h;
        owner_ = scheduler::current();
        if (!owner_)
            owner_ = &default_scheduler();
        int expected = k_pending;
        // acq_rel: the release publishes awaiting_/owner_ to finish(); on failure (acquire) the
        // result is set and visible.
        return phase_.compare_exchange_strong(expected, k_awaiting, std::memory_order_acq_rel,
                                              std::memory_order_acquire);
    }
    // Blocks the calling thread until the result is set.
    void wait() const noexcept {
        // acquire: pairs with the release in finish().
        for (int p = phase_.load(std::memory_order_acquire); p != k_done;
             p = phase_.load(std::memory_order_acquire))
            phase_.wait(p, std::memory_order_acquire);
    }
    // The consumer is gone (its task's frame destroyed while suspended here): never resume it.
    void abandon() noexcept {
        // acq_rel: as in finish(); after this exchange finish() finds k_abandoned.
        phase_.exchange(k_abandoned, std::memory_order_acq_rel);
    }
    // Moves the exception out before rethrowing it, so the consumer's thread holds the only
    // reference and frees it: libstdc++ counts exception references where ThreadSanitizer
    // cannot see it, so a last release on the producer's thread would be reported as a race.
    // Producers likewise hand over an exception_ptr after their catch block has ended.
    R take() {
        if (error_) {
            std::exception_ptr error = std::move(error_);
            error_ = nullptr;
            std::rethrow_exception(std::move(error));
        }
        if constexpr (!std::is_void_v<R>)
            return std::move(*value_);
    }

private:
    static constexpr int k_pending = 0;   // no result yet
    static constexpr int k_awaiting = 1;  // ... and a task is suspended on it
    static constexpr int k_done = 2;      // the result is set
    static constexpr int k_abandoned = 3; // the consumer is gone

    void finish() noexcept {
        // acq_rel: the release publishes the result to the consumer's acquire; the acquire
        // sees awaiting_/owner_ when the task suspended first.
        const int before = phase_.exchange(k_done, std::memory_order_acq_rel);
        if (before == k_awaiting)
            owner_->schedule(awaiting_);
        else if (before == k_pending)
            phase_.notify_all(); // a thread may be in wait()
    }

    std::atomic<int> phase_{k_pending};
    std::optional<std::conditional_t<std::is_void_v<R>, std::monostate, R>> value_;
    std::exception_ptr error_;
    std::coroutine_handle<> awaiting_;
    scheduler* owner_ = nullptr;
};

} // namespace detail

template <class R>
class [[nodiscard]] future {
public:
    explicit future(std::shared_ptr<detail::future_state<R>> state) noexcept
        : state_(std::move(state)) {}
    future(future&&) noexcept = default;
    future& operator=(future&&) = delete;
    ~future() {
        // A task destroyed while suspended here (its scheduler shut down) must not be resumed
        // when the result arrives; after a normal read this changes nothing.
        if (state_)
            state_->abandon();
    }

    // True once the result is set (get() and co_await will not wait).
    bool ready() const noexcept { return state_->ready(); }

    bool await_ready() const noexcept { return state_->ready(); }
    bool await_suspend(std::coroutine_handle<> h) noexcept { return state_->suspend(h); }
    R await_resume() { return state_->take(); }

    // Blocks the calling thread until the result is set; returns it or rethrows.
    // (On a worker thread that would wait, this is reported: see blocking_report.hpp.)
    R get(weft::source_location loc = weft::source_location::current()) {
        if (!state_->ready())
            detail::note_blocking({"weft::future::get", "co_await the future", loc});
        state_->wait();
        return state_->take();
    }

private:
    std::shared_ptr<detail::future_state<R>> state_;
};

} // namespace weft
