// weft::detail::selector — the machinery of one select (select.hpp): its cases, the locks it
// takes, and how it polls, links, waits and resolves.
//
// Invariants:
//   - A select claims at most one operation, atomically, before any value moves: every case's
//     waiter shares one wait_context, and only its claimant touches the case's value.
//   - Among ready cases one is picked uniformly at random (a fresh shuffle each pass).
//   - A select with otherwise() runs it only if there was one instant at which no case was
//     ready (confirmed_none_ready's double collect).
//   - on_done() is one more claimant of the select's context (wait_context::k_cancelled, armed
//     only while the select sleeps), and a ready case when the context is done already: it
//     takes a random place among the live cases in every pass.
//   - Nil channels are never polled or waited on.
//
// Locks: link() holds every case's channel lock at once (lock_set, in address order, each
// channel once), so the locked channels cannot change while it tries them all and links its
// waiters. Lock-free channels change without their lock: after linking, the select fences and
// looks at them again (the retry handshake, waiter.hpp).
#pragma once

#include "atomic_ring.hpp"
#include "channel_flavor.hpp"
#include "channel_state.hpp"
#include "context_fwd.hpp"
#include "random.hpp"
#include "spin_mutex.hpp"
#include "wait_limit.hpp"
#include "waiter.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

namespace weft::detail {

// Which case ran (weft::select_result). `ok` is false when a channel case fired because its
// channel is closed (a recv found it closed and drained, or a send found it closed and kept its
// value).
struct select_result {
    std::size_t index;
    bool ok;
};

struct no_handler {
    void operator()() const noexcept {}
};

// One channel case of a select, in either direction: Dir is receiving (Value: the case's own
// std::optional<T>) or sending (Value: a T the case owns, given as an rvalue or a const lvalue,
// or T* for the caller's lvalue, moved from only when the send happens). Everything it does to
// its channel goes through the channel's one dispatch (channel_state::visit).
template <class T, class Dir, class Value, class Fn>
class channel_case {
public:
    static constexpr bool is_channel_case = true;
    static constexpr bool is_otherwise = false;
    static constexpr bool is_timeout = false;
    static constexpr bool is_done = false;

    channel_case(channel_state<T>* state, Value value, Fn fn)
        : state_(state), value_(std::move(value)), fn_(std::move(fn)) {}

    // Null for a nil channel.
    channel_state<T>* state() const noexcept { return state_; }
    spin_mutex& mutex() {
        return state_->visit([](auto& f) -> spin_mutex& { return f.mutex(); });
    }
    bool lock_free() {
        return state_->visit([](auto& f) { return f.lock_free(); });
    }
    // With the channel's lock held (a lock-free flavor does not need it).
    attempt try_op(deferred_wake& wake) {
        return state_->visit([&](auto& f) { return f.try_held(Dir{}, slot(), wake); });
    }
    void enqueue(waiter& w) {
        state_->visit([&](auto& f) { f.enqueue(Dir{}, slot(), w); });
    }
    // After try_op succeeded and the locks are released: a lock-free flavor wakes a peer now.
    void after_success() {
        state_->visit([](auto& f) { f.after_success(Dir{}); });
    }
    // Lock-free flavors only (others say false): could a retry make progress now, and the same
    // as of one reading of the ring's indices.
    bool ready() {
        return state_->visit([](auto& f) { return f.ready(Dir{}); });
    }
    ring_indices indices() {
        return state_->visit([](auto& f) { return f.indices(); });
    }
    bool ready_at(ring_indices at) {
        return state_->visit([&](auto& f) { return f.ready_at(Dir{}, at); });
    }

    // Runs the handler; true when the operation completed (false: the channel is closed).
    // A receive's handler takes std::optional<T> (nullopt means closed), or T or nothing (then
    // it runs only when a value arrived); a send's takes bool `sent`, or nothing (then it runs
    // only when sent).
    bool finish(bool completed) {
        if constexpr (std::is_same_v<Dir, receiving>) {
            const bool ok = value_.has_value();
            if constexpr (std::is_invocable_v<Fn&, std::optional<T>&&>) {
                fn_(std::move(value_));
            } else if constexpr (std::is_invocable_v<Fn&, T&&>) {
                if (ok)
                    fn_(std::move(*value_));
            } else {
                static_assert(std::is_invocable_v<Fn&>,
                              "on_recv handler must take std::optional<T>, T, or nothing");
                if (ok)
                    fn_();
            }
            return ok;
        } else {
            if constexpr (std::is_invocable_v<Fn&, bool>) {
                fn_(completed);
            } else {
                static_assert(std::is_invocable_v<Fn&>,
                              "on_send handler must take bool or nothing");
                if (completed)
                    fn_();
            }
            return completed;
        }
    }

private:
    // What the flavor hands over through: the optional to receive into, or the T to send.
    auto& slot() noexcept {
        if constexpr (std::is_pointer_v<Value>)
            return *value_;
        else
            return value_;
    }

    channel_state<T>* state_;
    Value value_;
    Fn fn_;
};

template <class T, class Fn>
using recv_case = channel_case<T, receiving, std::optional<T>, Fn>;
template <class T, class Value, class Fn>
using send_case = channel_case<T, sending, Value, Fn>;

template <class Fn>
struct otherwise_case {
    static constexpr bool is_channel_case = false;
    static constexpr bool is_otherwise = true;
    static constexpr bool is_timeout = false;
    static constexpr bool is_done = false;
    Fn fn;
};

template <class Fn>
struct timeout_case {
    static constexpr bool is_channel_case = false;
    static constexpr bool is_otherwise = false;
    static constexpr bool is_timeout = true;
    static constexpr bool is_done = false;
    std::chrono::steady_clock::time_point deadline;
    Fn fn;
};

// on_done(ctx): ready once `ctx` is done. Refers to the caller's context, which outlives the
// select: a copy would cost an atomic increment per select and need context's definition,
// which this layer cannot include (context_fwd.hpp).
template <class Fn>
struct done_case {
    static constexpr bool is_channel_case = false;
    static constexpr bool is_otherwise = false;
    static constexpr bool is_timeout = false;
    static constexpr bool is_done = true;
    const context* ctx;
    Fn fn;
};

// Locks a set of channel mutexes in address order (so two selects never deadlock) and
// unlocks them on destruction. Duplicates are locked once.
template <std::size_t N>
class lock_set {
public:
    lock_set(std::array<spin_mutex*, N>& mutexes, std::size_t count) noexcept
        : mutexes_(mutexes), count_(count) {
        // Insertion sort, dropping duplicates: a handful of entries, and std::sort here trips
        // g++ 12's -Warray-bounds once select is inlined.
        std::size_t sorted = 0;
        for (std::size_t i = 0; i < count_; ++i) {
            spin_mutex* m = mutexes_[i];
            std::size_t at = sorted;
            while (at > 0 && std::less<>()(m, mutexes_[at - 1]))
                --at;
            if (at > 0 && mutexes_[at - 1] == m)
                continue; // the same channel twice
            for (std::size_t j = sorted; j > at; --j)
                mutexes_[j] = mutexes_[j - 1];
            mutexes_[at] = m;
            ++sorted;
        }
        count_ = sorted;
        for (std::size_t i = 0; i < count_; ++i)
            mutexes_[i]->lock();
    }
    lock_set(const lock_set&) = delete;
    lock_set& operator=(const lock_set&) = delete;
    ~lock_set() { unlock(); }

    void unlock() noexcept {
        while (count_ > 0)
            mutexes_[--count_]->unlock();
    }

private:
    std::array<spin_mutex*, N>& mutexes_;
    std::size_t count_;
};

// Calls f(case) on the case at runtime position `index`.
template <class Tuple, class Fn>
void visit_case(Tuple& cases, std::size_t index, Fn&& fn) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
        ((I == index ? (fn(std::get<I>(cases)), 0) : 0), ...);
    }
    (std::make_index_sequence<std::tuple_size_v<Tuple>>{});
}

// Calls f(index, case) on every case.
template <class Tuple, class Fn>
void for_each_case(Tuple& cases, Fn&& fn) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
        (fn(I, std::get<I>(cases)), ...);
    }
    (std::make_index_sequence<std::tuple_size_v<Tuple>>{});
}

// The machinery of one select, shared by the blocking select() and the task's async_select():
// they differ only in how they sleep between link() and resolve().
template <class... Cases>
class selector {
public:
    static constexpr std::size_t n = sizeof...(Cases);
    static constexpr bool has_otherwise = (0 + ... + std::remove_cvref_t<Cases>::is_otherwise) == 1;
    static constexpr bool has_timeout = (0 + ... + std::remove_cvref_t<Cases>::is_timeout) == 1;
    static_assert((0 + ... + std::remove_cvref_t<Cases>::is_otherwise) +
                          (0 + ... + std::remove_cvref_t<Cases>::is_timeout) <=
                      1,
                  "select takes at most one otherwise() or on_timeout() (on_done() may join "
                  "either)");
    static constexpr bool has_done = (0 + ... + std::remove_cvref_t<Cases>::is_done) == 1;
    static_assert((0 + ... + std::remove_cvref_t<Cases>::is_done) <= 1,
                  "select takes at most one on_done()");
    static_assert(n < 256, "select takes fewer than 256 cases");

    explicit selector(Cases&... cases) : all_(cases...) {
        for_each_case(all_, [&](std::size_t i, auto& c) {
            using C = std::remove_cvref_t<decltype(c)>;
            if constexpr (C::is_otherwise || C::is_timeout)
                special_ = i;
            if constexpr (C::is_timeout)
                deadline_ = c.deadline;
            if constexpr (C::is_done) {
                done_index_ = i;
                done_ctx_ = c.ctx;
            }
            // Live channel cases: nil channels are never polled or waited on.
            if constexpr (C::is_channel_case)
                if (c.state())
                    order_[live_++] = static_cast<std::uint8_t>(i);
        });
        all_lock_free_ = live_ > 0;
        for (std::size_t j = 0; j < live_; ++j)
            on_channel_case(order_[j],
                            [&](auto& c) { all_lock_free_ = all_lock_free_ && c.lock_free(); });
    }
    selector(const selector&) = delete;
    selector& operator=(const selector&) = delete;
    // A task's select destroyed mid-wait (its scheduler shut down) leaves every queue.
    ~selector() { unlink_all(); }

    std::chrono::steady_clock::time_point deadline() const noexcept { return deadline_; }

    // What may end the select's sleep besides its channels: on_timeout()'s deadline and
    // on_done()'s context (its cancel_source: one reference count, taken only to sleep).
    wait_limit limit() const {
        wait_limit limit;
        if constexpr (has_timeout)
            limit.deadline = deadline_;
        if constexpr (has_done)
            limit.stop = cancellation_of(*done_ctx_);
        return limit;
    }

    // When every live case is on a lock-free channel, polls them without any lock, `rounds`
    // times with a short back-off between rounds (a peer is often a few hundred nanoseconds
    // away). Taking the locks would add nothing: lock-free operations do not take them. A
    // select with a locked channel skips this, since polling only its lock-free cases would
    // favour them. With otherwise() it polls until a case runs or a double collect confirms
    // that none was ready (see confirmed_none_ready), then runs otherwise().
    std::optional<select_result> poll_lock_free(int rounds) {
        if (!all_lock_free_)
            return std::nullopt;
        backoff spin;
        // With otherwise() the loop ends only by returning; `round` then stops counting at
        // `rounds` (it only decides whether to back off).
        for (int round = 0; has_otherwise || round < rounds; round += round < rounds ? 1 : 0) {
            if (round > 0)
                spin.snooze();
            shuffle();
            for (std::size_t j = 0; j < live_; ++j) {
                if (done_turn(j))
                    return finish(done_index_, true);
                attempt a = attempt::not_ready;
                // Lock-free flavors take no lock and defer nothing.
                on_channel_case(order_[j], [&](auto& c) {
                    deferred_wake none;
                    a = c.try_op(none);
                });
                if (a == attempt::done)
                    on_channel_case(order_[j], [](auto& c) { c.after_success(); });
                if (a != attempt::not_ready)
                    return finish(order_[j], a == attempt::done);
            }
            if (done_turn(live_))
                return finish(done_index_, true);
            if constexpr (has_otherwise) {
                if (confirmed_none_ready())
                    return finish_special_unless_done();
                continue; // a ring moved while we looked: look again
            }
            if constexpr (has_timeout)
                if (std::chrono::steady_clock::now() >= deadline_)
                    break; // link() still tries once more under the locks
        }
        return std::nullopt;
    }

    // Under every channel's lock: performs the first ready case in a fresh random order, or
    // otherwise(), or links one waiter per live case to `ctx` and returns nullopt. After
    // linking, lock-free channels are looked at once more: if one changed, the select claims
    // its own context (then no signal will come; see self_claimed()).
    std::optional<select_result> link(wait_context& ctx) {
        shuffle();
        std::array<spin_mutex*, n> mutexes{};
        for (std::size_t j = 0; j < live_; ++j)
            on_channel_case(order_[j], [&](auto& c) { mutexes[j] = &c.mutex(); });

        waiters_ = {};
        self_claimed_ = false;
        bool any_lock_free = false;
        {
            deferred_wake wake;
            lock_set<n> locks(mutexes, live_);
            // The locks freeze the locked channels, not the lock-free rings: with otherwise(),
            // go round until a double collect of the rings confirms that nothing was ready.
            for (bool again = true; again;) {
                again = false;
                for (std::size_t j = 0; j <= live_; ++j) {
                    if (done_turn(j)) {
                        locks.unlock();
                        wake.flush();
                        return finish(done_index_, true);
                    }
                    if (j == live_)
                        break;
                    attempt a = attempt::not_ready;
                    on_channel_case(order_[j], [&](auto& c) { a = c.try_op(wake); });
                    if (a != attempt::not_ready) {
                        locks.unlock();
                        wake.flush();
                        if (a == attempt::done)
                            on_channel_case(order_[j], [](auto& c) { c.after_success(); });
                        return finish(order_[j], a == attempt::done);
                    }
                }
                if constexpr (has_otherwise)
                    again = !confirmed_none_ready();
            }
            if constexpr (has_otherwise) {
                locks.unlock();
                return finish_special_unless_done();
            }
            for (std::size_t j = 0; j < live_; ++j) {
                waiter& w = waiters_[order_[j]];
                w.ctx = &ctx;
                w.case_index = order_[j];
                on_channel_case(order_[j], [&](auto& c) {
                    c.enqueue(w);
                    any_lock_free = any_lock_free || c.lock_free();
                });
            }
            linked_ = true;
        }

        // Lock-free channels change without their lock: after linking, fence and look again.
        // Either a notifier sees our waiters, or we see its change here and take ourselves back.
        if (any_lock_free) {
            std::atomic_thread_fence(std::memory_order_seq_cst);
            for (std::size_t j = 0; j < live_; ++j) {
                bool ready = false;
                on_channel_case(order_[j], [&](auto& c) { ready = c.ready(); });
                if (!ready)
                    continue;
                if (ctx.try_claim(static_cast<int>(order_[j]))) {
                    waiters_[order_[j]].outcome = wait_outcome::retry;
                    self_claimed_ = true;
                }
                break; // if someone else claimed us, their signal is on its way
            }
        }
        return std::nullopt;
    }

    // After link(): true when the select claimed itself, so nobody will signal it.
    bool self_claimed() const noexcept { return self_claimed_; }

    // Leaves every queue the select still sits in; a claimant already unlinked its waiter.
    void unlink_all() noexcept {
        if (!linked_)
            return;
        for (std::size_t j = 0; j < live_; ++j) {
            on_channel_case(order_[j], [&](auto& c) { c.state()->cancel(waiters_[order_[j]]); });
        }
        linked_ = false;
    }

    // After the wait, with every waiter unlinked: the case that won, or nullopt to go round
    // again (a lock-free channel changed, or a hand-off threw, and the retry found nothing).
    std::optional<select_result> resolve(const wait_context& ctx) {
        // acquire: pairs with the claim CAS; the claimant's writes are also ordered by the
        // signal's release/acquire, this load just reads which case won.
        const int selected = ctx.selected.load(std::memory_order_acquire);
        if (selected == wait_context::k_timed_out)
            return finish_special();
        if (selected == wait_context::k_cancelled)
            return finish(done_index_, true);
        const auto index = static_cast<std::size_t>(selected);
        switch (waiters_[index].outcome) {
        case wait_outcome::completed:
            return finish(index, true);
        case wait_outcome::closed:
            return finish(index, false);
        default: {
            // retry: try the case that woke us first, on its own, so the value that woke us is
            // taken by us (or by someone) and never stranded.
            const attempt a = try_alone(index);
            if (a != attempt::not_ready)
                return finish(index, a == attempt::done);
            return std::nullopt;
        }
        }
    }

    // Runs otherwise()'s or on_timeout()'s handler.
    select_result finish_special() { return finish(special_, true); }

private:
    // Whether on_done() is tried at position `j` of this pass (it takes a random one of the
    // live_ + 1 places, so among ready cases it is as likely as any) and its context is done.
    // A relaxed load: a stale `false` only lets the select link and sleep, and the stop claim
    // armed then fires at once if the stop was requested (cancel_claim).
    bool done_turn(std::size_t j) const noexcept {
        if constexpr (has_done)
            return j == done_at_ && cancelled_of(*done_ctx_);
        else
            return false;
    }

    // otherwise() once no channel case was ready at one instant: unless on_done() is ready
    // now. Cancellation never goes back, so a context not done now was not done then either.
    select_result finish_special_unless_done() {
        if constexpr (has_done)
            if (cancelled_of(*done_ctx_))
                return finish(done_index_, true);
        return finish_special();
    }

    select_result finish(std::size_t index, bool completed) {
        bool ok = true;
        visit_case(all_, index, [&](auto& c) {
            if constexpr (std::remove_cvref_t<decltype(c)>::is_channel_case)
                ok = c.finish(completed);
            else
                c.fn();
        });
        return select_result{index, ok};
    }

    // A non-blocking select may run otherwise() only if there was one instant at which no case
    // was ready (Go's TestNonblockSelectRace: c1 holds a value, a peer sends on c2 and then
    // takes c1; a pass that looks at c2 before the send and at c1 after the take saw neither
    // ready, yet one always was). One pass of lock-free attempts is no such instant: each ring
    // is looked at once, at a different time, and values move through the rings without any
    // lock, so holding the channel locks would not freeze them either.
    //
    // So a double collect: read every lock-free ring's head and tail, then read them all again.
    // Both indices change only by seq_cst RMWs and never return to an old value (they only grow;
    // close() sets a mark bit for good), and our seq_cst loads sit in the same total order. If
    // every index reads the same twice, no push, pop or close touched any of these rings
    // between its two reads, so at the instant the first collect ended every ring held exactly
    // what was read; the readiness computed from those indices is then a consistent snapshot.
    // The locked channels of a mixed select are frozen by their locks while link() holds them,
    // which covers that instant too. False if an index moved or a case was ready: the caller
    // tries the cases again (some other thread made progress, so this cannot go on for long
    // unless those rings are busy for as long).
    bool confirmed_none_ready() noexcept {
        std::array<ring_indices, n> first{};
        for (std::size_t j = 0; j < live_; ++j)
            on_channel_case(order_[j], [&](auto& c) {
                if (c.lock_free())
                    first[j] = c.indices();
            });
        bool none_ready = true;
        for (std::size_t j = 0; j < live_ && none_ready; ++j)
            on_channel_case(order_[j], [&](auto& c) {
                if (c.lock_free())
                    none_ready = c.indices() == first[j] && !c.ready_at(first[j]);
            });
        return none_ready;
    }

    // Runs `fn(case)` on the channel case at `index` (a no-op for other cases).
    template <class Fn>
    void on_channel_case(std::size_t index, Fn&& fn) {
        visit_case(all_, index, [&](auto& c) {
            if constexpr (std::remove_cvref_t<decltype(c)>::is_channel_case)
                fn(c);
        });
    }

    attempt try_alone(std::size_t index) {
        attempt a = attempt::not_ready;
        on_channel_case(index, [&](auto& c) {
            deferred_wake wake;
            std::lock_guard lock(c.mutex());
            a = c.try_op(wake);
        });
        if (a == attempt::done)
            on_channel_case(index, [](auto& c) { c.after_success(); });
        return a;
    }

    // A fresh random order for each pass, so no ready case starves.
    void shuffle() {
        if constexpr (n >= 2) { // (g++ 12 warns about the loop's bounds otherwise)
            auto& rng = fast_random::for_this_thread();
            for (std::size_t i = live_; i > 1; --i)
                std::swap(order_[i - 1], order_[rng.below(static_cast<std::uint32_t>(i))]);
            if constexpr (has_done)
                done_at_ = rng.below(static_cast<std::uint32_t>(live_ + 1));
        }
    }

    std::tuple<Cases&...> all_;
    std::size_t special_ = n;    // position of otherwise()/on_timeout(), if any
    std::size_t done_index_ = n; // position of on_done(), if any
    const context* done_ctx_ = nullptr;
    std::size_t done_at_ = 0; // where on_done() is tried in this pass: 0..live_
    std::chrono::steady_clock::time_point deadline_{};
    std::array<std::uint8_t, n> order_{};
    std::size_t live_ = 0;
    bool all_lock_free_ = false;
    bool linked_ = false;
    bool self_claimed_ = false;
    std::array<waiter, n> waiters_{};
};

} // namespace weft::detail
