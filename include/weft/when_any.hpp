// weft::when_any — run several tasks against one context, keep the first result, cancel and
// join the rest.
//
//   auto r = co_await weft::when_any(ctx,
//       [&](weft::context c) { return fetch(c, primary); },    // task<reply>
//       [&](weft::context c) { return fetch(c, mirror); });    // task<reply>
//   reply first = std::visit([](reply& x) { return std::move(x); }, r.value); // r.index: whose
//
// Each callable is called with a shared with_cancel child of `ctx` and returns task<R>; the
// tasks run concurrently on the current (or default) scheduler. The first to finish, by
// returning or by throwing, wins: one compare-and-swap decides, so of two that finish at once
// exactly one wins and the other's value is destroyed in its own frame. The winner cancels the
// child context; when_any waits until every task has finished (the losers see their context
// cancelled), then yields the winner's index and value, or rethrows the winner's exception.
// Losers' values and exceptions are dropped. The callables live in when_any's frame until it
// returns, so a capturing coroutine lambda is safe.
#pragma once

#include "context.hpp"
#include "task.hpp"

#include <atomic>
#include <cstddef>
#include <exception>
#include <limits>
#include <optional>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace weft {

// What when_any accepts: called with a context, returns a task<R>.
template <class F>
concept racer =
    std::invocable<F&, context> && detail::task_value<std::invoke_result_t<F&, context>>::is_task;

// The R of a racer's task<R>.
template <racer F>
using racer_result_t = typename detail::task_value<std::invoke_result_t<F&, context>>::type;

// Which callable won (its argument position) and its value (void: std::monostate).
template <class... R>
struct when_any_result {
    std::size_t index;
    std::variant<detail::non_void<R>...> value;
};

// The vector form's result: the winner's position in the vector and its value.
template <class R>
struct when_any_vector_result {
    std::size_t index;
    detail::non_void<R> value;
};

// `co_await when_any(ctx, f0, f1, ...)`: see above. At least one callable.
template <racer... Fs>
requires(sizeof...(Fs) > 0) task<when_any_result<racer_result_t<Fs>...>> when_any(context ctx,
                                                                                  Fs... fs);

// The same over callables of one type; throws std::invalid_argument when `fs` is empty.
template <racer F>
task<when_any_vector_result<racer_result_t<F>>> when_any(context ctx, std::vector<F> fs);

// ---- implementation ------------------------------------------------------------------------

namespace detail {

// What the racers of one when_any share. Written by the winner only; read by when_any after
// the join.
struct race_core {
    static constexpr std::size_t k_none = std::numeric_limits<std::size_t>::max();

    explicit race_core(cancel_func c) noexcept : cancel(std::move(c)) {}

    std::atomic<std::size_t> winner{k_none};
    std::exception_ptr error; // the winner's, if it threw
    cancel_func cancel;       // the shared child context's

    bool claim(std::size_t index) noexcept {
        std::size_t none = k_none;
        // relaxed: the CAS only decides who wins. What the winner then writes (its slot,
        // `error`) reaches when_any through when_all's join (join_counter::arrive, acq_rel),
        // which it passes only after every racer has finished.
        return winner.compare_exchange_strong(none, index, std::memory_order_relaxed);
    }
};

// One racer: runs f(ctx); if it is the first to finish, stores its value in `slot` (or its
// exception in core.error) and cancels the others. A loser's value dies here.
template <class F, class Slot>
task<void> race(race_core& core, std::size_t index, F& f, context ctx, Slot& slot) {
    using R = racer_result_t<F>;
    bool won = false;
    try {
        if constexpr (std::is_void_v<R>) {
            co_await f(std::move(ctx));
            won = core.claim(index);
            if (won)
                slot.emplace();
        } else {
            R value = co_await f(std::move(ctx));
            won = core.claim(index);
            if (won)
                slot.emplace(std::move(value));
        }
    } catch (...) {
        // Also when storing the winning value threw: the winner then reports that.
        if (won || (won = core.claim(index)))
            core.error = std::current_exception();
    }
    if (won)
        core.cancel();
}

template <class Result, class Slots, std::size_t... I>
Result take_winner(std::size_t index, Slots& slots, std::index_sequence<I...>) {
    using value_type = decltype(Result::value);
    std::optional<Result> out;
    ((index == I ? (void)out.emplace(Result{
                       index, value_type(std::in_place_index<I>, std::move(*std::get<I>(slots)))})
                 : void()),
     ...);
    return std::move(*out);
}

} // namespace detail

template <racer... Fs>
requires(sizeof...(Fs) > 0) task<when_any_result<racer_result_t<Fs>...>> when_any(context ctx,
                                                                                  Fs... fs) {
    using result = when_any_result<racer_result_t<Fs>...>;
    cancellable_context child = with_cancel(ctx);
    detail::race_core core(child.cancel);
    // One slot per racer, so each keeps its own type; only the winner's is ever filled.
    std::tuple<std::optional<detail::non_void<racer_result_t<Fs>>>...> slots;
    co_await [&]<std::size_t... I>(std::index_sequence<I...>) {
        return when_all(detail::race(core, I, fs, child.ctx, std::get<I>(slots))...);
    }
    (std::index_sequence_for<Fs...>{});
    child.cancel(); // every racer has finished: releases the child's link to `ctx`
    const std::size_t index = core.winner.load(std::memory_order_relaxed); // after the join
    if (core.error)
        std::rethrow_exception(core.error);
    co_return detail::take_winner<result>(index, slots, std::index_sequence_for<Fs...>{});
}

template <racer F>
task<when_any_vector_result<racer_result_t<F>>> when_any(context ctx, std::vector<F> fs) {
    using R = racer_result_t<F>;
    if (fs.empty())
        throw std::invalid_argument("weft: when_any of no callables");
    cancellable_context child = with_cancel(ctx);
    detail::race_core core(child.cancel);
    std::optional<detail::non_void<R>> slot; // only the winner writes it
    std::vector<task<void>> racers;
    racers.reserve(fs.size());
    for (std::size_t i = 0; i < fs.size(); ++i)
        racers.push_back(detail::race(core, i, fs[i], child.ctx, slot));
    co_await when_all(std::move(racers));
    child.cancel();
    const std::size_t index = core.winner.load(std::memory_order_relaxed); // after the join
    if (core.error)
        std::rethrow_exception(core.error);
    co_return when_any_vector_result<R>{index, std::move(*slot)};
}

} // namespace weft
