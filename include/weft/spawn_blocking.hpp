// weft::spawn_blocking — run a blocking call without stalling a scheduler worker (Tokio's
// spawn_blocking).
//
//   weft::task<std::string> load(std::string path) {
//       co_return co_await weft::spawn_blocking([path] { return read_whole_file(path); });
//   }
//
// The call starts at once on an elastic pool of plain threads (detail::blocking_pool: a new
// thread when none is idle, up to WEFT_MAX_BLOCKING_THREADS = 512, idle ones exit after 10 s).
// The returned weft::future<R> is awaited from a task, which is suspended meanwhile so its
// worker runs other tasks, or waited for with get() from a plain thread. An exception thrown by
// the call reaches whoever awaits it. A future dropped without being awaited lets the call
// still run to the end; its result is discarded.
#pragma once

#include "detail/blocking_pool.hpp"
#include "future.hpp"

#include <exception>
#include <memory>
#include <type_traits>
#include <utility>

namespace weft {

// What spawn_blocking returns.
template <class R>
using blocking_call = future<R>;

// Runs `f()` on the blocking pool and returns a future of its result.
template <class F>
future<std::invoke_result_t<std::decay_t<F>&>> spawn_blocking(F&& f);

// ---- implementation ------------------------------------------------------------------------

namespace detail {

// The call and its result: `f` lives here until the pool runs it.
template <class R, class F>
struct blocking_call_of final : blocking_job, future_state<R> {
    explicit blocking_call_of(F f) : fn(std::move(f)) {}
    void run() noexcept override {
        std::exception_ptr error;
        try {
            if constexpr (std::is_void_v<R>) {
                fn();
                this->set_value();
            } else {
                this->set_value(fn());
            }
        } catch (...) {
            error = std::current_exception();
        }
        if (error) // after the catch block, so only `error` refers to it (see future_state)
            this->set_exception(std::move(error));
    }
    F fn;
};

} // namespace detail

template <class F>
future<std::invoke_result_t<std::decay_t<F>&>> spawn_blocking(F&& f) {
    using fn_type = std::decay_t<F>;
    using R = std::invoke_result_t<fn_type&>;
    auto call = std::make_shared<detail::blocking_call_of<R, fn_type>>(std::forward<F>(f));
    detail::blocking_pool::instance().submit(call);
    return detail::future_access::adopt<R>(std::move(call));
}

} // namespace weft
