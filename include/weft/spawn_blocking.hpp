// weft::spawn_blocking — run a blocking call without stalling a scheduler worker (Tokio's
// spawn_blocking).
//
//   weft::task<std::string> load(std::string path) {
//       co_return co_await weft::spawn_blocking([path] { return read_whole_file(path); });
//   }
//
// The call starts at once on an elastic pool of plain threads (detail::blocking_pool: a new
// thread when none is idle, up to WEFT_MAX_BLOCKING_THREADS = 512, idle ones exit after 10 s).
// The returned blocking_call<R> is awaited from a task, which is suspended meanwhile so its
// worker runs other tasks, or waited for with get() from a plain thread. An exception thrown by
// the call reaches whoever awaits it. A blocking_call dropped without being awaited still runs
// to the end; its result is discarded.
#pragma once

#include "detail/blocking_pool.hpp"
#include "scheduler.hpp"

#include <atomic>
#include <coroutine>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

namespace weft {

namespace detail {

// Shared by the pool thread running the call and the blocking_call awaiting it.
template <class R>
struct blocking_state : blocking_job {
    static constexpr int k_running = 0;   // the call has not finished
    static constexpr int k_awaiting = 1;  // ... and a task is suspended on it
    static constexpr int k_done = 2;      // finished: result or error is set
    static constexpr int k_abandoned = 3; // the awaiting task's frame was destroyed first

    std::atomic<int> phase{k_running};
    std::optional<std::conditional_t<std::is_void_v<R>, std::monostate, R>> result;
    std::exception_ptr error;
    std::coroutine_handle<> awaiting;
    scheduler* owner = nullptr;

    // On the pool thread, once the call returned or threw.
    void finish() noexcept {
        // acq_rel: the release publishes result/error to the awaiter's acquire; the acquire
        // sees awaiting/owner when the task suspended first.
        const int before = phase.exchange(k_done, std::memory_order_acq_rel);
        if (before == k_awaiting)
            owner->schedule(awaiting);
        else if (before == k_running)
            phase.notify_all(); // a thread may be in get()
    }
};

// The call itself: `f` lives here until the pool runs it.
template <class R, class F>
struct blocking_call_of final : blocking_state<R> {
    explicit blocking_call_of(F f) : fn(std::move(f)) {}
    void run() noexcept override {
        try {
            if constexpr (std::is_void_v<R>) {
                fn();
                this->result.emplace();
            } else {
                this->result.emplace(fn());
            }
        } catch (...) {
            this->error = std::current_exception();
        }
        this->finish();
    }
    F fn;
};

} // namespace detail

// The pending result of spawn_blocking(): `co_await` it in a task, or get() it on a thread.
// Move-only; awaited (or got) at most once.
template <class R>
class [[nodiscard]] blocking_call {
    using state = detail::blocking_state<R>;

public:
    blocking_call(blocking_call&&) noexcept = default;
    blocking_call& operator=(blocking_call&&) = delete;
    ~blocking_call() {
        // A task destroyed while suspended here (its scheduler shut down): make sure the call,
        // when it ends, does not resume the dead frame. release: nothing to publish but the
        // word itself; acquire: as finish().
        if (state_)
            state_->phase.exchange(state::k_abandoned, std::memory_order_acq_rel);
    }

    bool await_ready() const noexcept {
        // acquire: pairs with the release in finish().
        return state_->phase.load(std::memory_order_acquire) == state::k_done;
    }
    bool await_suspend(std::coroutine_handle<> h) noexcept {
        state_->awaiting = h;
        state_->owner = scheduler::current();
        if (!state_->owner)
            state_->owner = &default_scheduler();
        int expected = state::k_running;
        // acq_rel: the release publishes awaiting/owner to finish(); on failure (acquire) the
        // call is done and its result visible: resume at once.
        return state_->phase.compare_exchange_strong(
            expected, state::k_awaiting, std::memory_order_acq_rel, std::memory_order_acquire);
    }
    R await_resume() { return take(); }

    // Blocks the calling thread until the call has finished; returns its result or rethrows.
    R get() {
        // acquire: pairs with the release in finish().
        for (int p = state_->phase.load(std::memory_order_acquire); p != state::k_done;
             p = state_->phase.load(std::memory_order_acquire))
            state_->phase.wait(p, std::memory_order_acquire);
        return take();
    }

private:
    template <class F>
    friend auto spawn_blocking(F&& f);

    explicit blocking_call(std::shared_ptr<state> s) noexcept : state_(std::move(s)) {}

    R take() {
        if (state_->error)
            std::rethrow_exception(state_->error);
        if constexpr (!std::is_void_v<R>)
            return std::move(*state_->result);
    }

    std::shared_ptr<state> state_;
};

// Runs `f()` on the blocking pool and returns a blocking_call for its result.
template <class F>
auto spawn_blocking(F&& f) {
    using fn_type = std::decay_t<F>;
    using R = std::invoke_result_t<fn_type&>;
    auto call = std::make_shared<detail::blocking_call_of<R, fn_type>>(std::forward<F>(f));
    detail::blocking_pool::instance().submit(call);
    return blocking_call<R>(std::move(call));
}

} // namespace weft
