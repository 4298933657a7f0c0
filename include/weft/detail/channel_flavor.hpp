// weft::detail channel flavors — what each implementation of a channel provides, so that
// channel_state (channel_state.hpp) can hold one and dispatch to it in one place.
//
// A flavor is one of (see channel.hpp for when each is used):
//   ring_channel<T>    channel_ring.hpp    lock-free ring; waiters are woken to retry
//   locked_channel<T>  channel_locked.hpp  one short lock, direct hand-off to waiters (Go's)
//
// Every operation names its direction with a tag, and the caller's storage (its slot) follows
// from it: `sending` moves from the caller's T (only once the send happens), `receiving` emplaces
// into the caller's std::optional<T>. `Deadline` is a time_point, a
// wait_limit (a deadline and/or a stop token), or no_deadline for ever (wait_limit.hpp).
#pragma once

#include "atomic_ring.hpp"
#include "task_park.hpp"
#include "wait_limit.hpp"
#include "waiter.hpp"

#include <concepts>
#include <cstddef>
#include <optional>
#include <type_traits>

namespace weft::detail {

struct sending {};
struct receiving {};

// The caller's storage for an operation in direction Dir.
template <class T, class Dir>
using slot_t = std::conditional_t<std::is_same_v<Dir, sending>, T, std::optional<T>>;

// The flavor interface. In each line Dir is sending (slot: T&) or receiving (slot:
// std::optional<T>&).
//
//   attempt try_now(Dir, slot)             Never blocks; wakes a waiting peer if that is due.
//   park_step wait(Dir, slot, deadline, about_to_park)
//                                          Blocks the calling thread: done, closed, timed_out or
//                                          cancelled.
//                                          Calls about_to_park() before it first sleeps.
//   park_step step(Dir, slot, waiter&)     One step of a task's operation (see task_park):
//                                          done, closed, parked (the waiter is linked) or again.
//   void cancel(waiter&)                   Takes a task's waiter out unless a claimant did.
//   bool close()                           Closes and wakes every waiter; false if closed before.
//   size(), capacity()                     Go's len and cap.
//   wake_finishes()                        A woken waiter's operation is over (done or closed),
//                                          never to be retried: a task then waits inline.
//   lock_free()                            Values move without mutex(); waiters only retry.
//
// For select, which holds the mutex() of every case while it tries them and links its waiters:
//   attempt try_held(Dir, slot, deferred_wake&)   try_now, except that wake-ups are deferred
//   void enqueue(Dir, slot, waiter&)               links the waiter
// and, after the locks are released:
//   void after_success(Dir)                        the wake-up try_held could not do
//   bool ready(Dir)                                a retry could make progress now
//   ring_indices indices(); bool ready_at(Dir, ring_indices)
//                                                  the same as of one reading (the double
//                                                  collect of a non-blocking select)
// The last three matter for lock-free flavors only; a locked flavor answers false (nothing
// changes without its lock, which select held while it looked).
template <class F, class T>
concept channel_flavor = requires(F& f, T& value, std::optional<T>& out, waiter& w,
                                  deferred_wake& wake, ring_indices at) {
    { f.try_now(sending{}, value) } -> std::same_as<attempt>;
    { f.try_now(receiving{}, out) } -> std::same_as<attempt>;
    {
        f.wait(sending{}, value, no_deadline{}, [] {})
        } -> std::same_as<park_step>;
    {
        f.wait(receiving{}, out, no_deadline{}, [] {})
        } -> std::same_as<park_step>;
    { f.step(sending{}, value, w) } -> std::same_as<park_step>;
    { f.step(receiving{}, out, w) } -> std::same_as<park_step>;
    f.cancel(w);
    { f.close() } -> std::same_as<bool>;
    { f.size() } -> std::same_as<std::size_t>;
    { f.capacity() } -> std::same_as<std::size_t>;
    { f.wake_finishes() } -> std::same_as<bool>;
    { f.lock_free() } -> std::same_as<bool>;
    { f.mutex() } -> std::same_as<spin_mutex&>;
    { f.try_held(sending{}, value, wake) } -> std::same_as<attempt>;
    { f.try_held(receiving{}, out, wake) } -> std::same_as<attempt>;
    f.enqueue(sending{}, value, w);
    f.enqueue(receiving{}, out, w);
    f.after_success(sending{});
    f.after_success(receiving{});
    { f.ready(sending{}) } -> std::same_as<bool>;
    { f.ready(receiving{}) } -> std::same_as<bool>;
    { f.indices() } -> std::same_as<ring_indices>;
    { f.ready_at(sending{}, at) } -> std::same_as<bool>;
    { f.ready_at(receiving{}, at) } -> std::same_as<bool>;
};

} // namespace weft::detail
