// weft::detail waiters — how a blocked operation sleeps in a wait queue and is woken.
//
// A blocking operation (a send, a recv, every case of one select, a wait_group wait, a sender
// waiting for room in an actor's mailbox) owns one wait_context and one waiter per queue it
// waits in. Each waiter is an intrusive node in one queue, guarded by its owner's lock (a
// channel's, a wait_group's, an actor's). Whoever completes the operation (a peer on the
// channel, close(), the owner's own deadline, or the owner's re-check after linking, see "the
// retry handshake" below) first *claims* the context with a CAS on `selected`; only the claimant
// may touch the owner's value storage, so a select that loses a race consumes nothing. The
// claimant then records the outcome and signals the context, after which it must not touch the
// waiter or context again: the owner may return and free them.
//
// A thread owner's context signals its parked thread (thread_parker); a task's context installs
// `resume` instead (task_wakeup, task_park.hpp), which reschedules the task on its scheduler.
// Both kinds sit in the same queues.
#pragma once

#include "spin_mutex.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

namespace weft::detail {

// What happened to a waiter, written by the claimant before it signals.
enum class wait_outcome : std::uint8_t {
    pending,   // still waiting
    completed, // the value was handed over (sent, or received into the owner's storage)
    closed,    // the channel was closed; a send's value was left untouched
    retry,     // the owner runs its operation again: the claimant's hand-off threw, a
               // lock-free channel gained a value or a slot or was closed, or the owner
               // claimed itself after seeing such a change in its re-check
};

// Per-thread sleeping place. A thread waits on one context at a time, so one parker per
// thread serves every wait; `signalled` is reset at the start of each wait. It cannot see a
// stale signal from an earlier wait because an owner never returns from a claimed wait until
// that claim's signal has arrived.
struct thread_parker {
    std::mutex mutex;
    std::condition_variable cv;
    // Set to 1 under `mutex` by the claimant; read without the lock while spinning.
    std::atomic<std::uint32_t> signalled{0};

    static thread_parker& current() noexcept {
        thread_local thread_parker parker;
        return parker;
    }

    // Claimant side. `signalled` is stored and the cv notified while holding `mutex`, and the
    // owner takes `mutex` before it returns, so the parker (and the context that points to it)
    // is not abandoned while we still use it.
    void signal() noexcept {
        std::lock_guard lock(mutex);
        // release: publishes the claimant's writes (outcome, value) to the owner's acquire load.
        signalled.store(1, std::memory_order_release);
        cv.notify_one();
    }
};

struct wait_context {
    static constexpr int k_waiting = -1;
    static constexpr int k_timed_out = -2; // claimed by a deadline (wait_limit.hpp)
    static constexpr int k_cancelled = -3; // claimed by a stop request (wait_limit.hpp)

    // Which case completed: k_waiting until somebody claims the context.
    std::atomic<int> selected{k_waiting};
    // Where a thread owner sleeps; null when `resume` is used instead.
    thread_parker* parker = nullptr;
    // Coroutine owners: called by the claimant instead of signalling a parker.
    void (*resume)(wait_context&) noexcept = nullptr;
    void* resume_arg = nullptr;

    wait_context() = default;
    wait_context(const wait_context&) = delete;
    wait_context& operator=(const wait_context&) = delete;

    // For a thread owner: sleeps on `p` (this thread's parker), reset here.
    explicit wait_context(thread_parker& p) noexcept : parker(&p) {
        // relaxed: only this thread touches the parker until the context is published under
        // a channel lock, whose release orders this store before any claimant's signal.
        p.signalled.store(0, std::memory_order_relaxed);
    }

    // Claimant side: true when this caller won the right to complete case `index`.
    bool try_claim(int index) noexcept {
        int expected = k_waiting;
        // acq_rel: acquire sees the owner's setup; release orders the claim before the
        // claimant's later writes as seen by other claimants that fail and skip.
        return selected.compare_exchange_strong(expected, index, std::memory_order_acq_rel,
                                                std::memory_order_relaxed);
    }

    // Claimant side, last touch: wake the owner.
    void signal() noexcept {
        if (resume)
            resume(*this);
        else
            parker->signal();
    }

    // Owner side, thread: sleep until signalled. Spins briefly first: a peer often answers
    // within a microsecond, and parking costs two system calls.
    void wait() noexcept {
        if (spin_until_signalled())
            return;
        std::unique_lock lock(parker->mutex);
        // acquire: pairs with the release store in thread_parker::signal().
        while (parker->signalled.load(std::memory_order_acquire) == 0)
            parker->cv.wait(lock);
    }

    // Owner side, thread: sleep until signalled or `deadline`. Returns false only when the
    // deadline passed *and* the owner claimed the context for the timeout; if a claimant won
    // the race, waits for its signal and returns true.
    template <class Clock, class Duration>
    bool wait_until(const std::chrono::time_point<Clock, Duration>& deadline) noexcept {
        if (spin_until_signalled())
            return true;
        std::unique_lock lock(parker->mutex);
        // acquire: pairs with the release store in thread_parker::signal().
        while (parker->signalled.load(std::memory_order_acquire) == 0) {
            if (parker->cv.wait_until(lock, deadline) != std::cv_status::timeout)
                continue;
            if (parker->signalled.load(std::memory_order_acquire) != 0)
                break;
            if (try_claim(k_timed_out))
                return false;
            // A claimant is mid-hand-off; its signal needs the mutex we release in wait().
            while (parker->signalled.load(std::memory_order_acquire) == 0)
                parker->cv.wait(lock);
        }
        return true;
    }

private:
    bool spin_until_signalled() noexcept {
        // 192 pause spins (about a microsecond), then a few yields: on a loaded machine each
        // yield can cost a time slice, so only a few before parking.
        for (int i = 0; i < 200; ++i) {
            // acquire: pairs with the release store in thread_parker::signal().
            if (parker->signalled.load(std::memory_order_acquire) != 0) {
                // The claimant may still be inside signal(); wait until it lets go of the
                // mutex so it never touches a parker whose owner has moved on.
                std::lock_guard lock(parker->mutex);
                return true;
            }
            if (i < 192)
                cpu_relax();
            else
                std::this_thread::yield();
        }
        return false;
    }
};

struct wait_queue;

// One waiting operation on one channel.
struct waiter {
    waiter* prev = nullptr;
    waiter* next = nullptr;
    // The queue this waiter is linked in, or null. Guarded by the channel's lock.
    wait_queue* queue = nullptr;
    // Send: the owner's T to move from. Recv: the owner's std::optional<T> to emplace into.
    void* value = nullptr;
    wait_context* ctx = nullptr;
    int case_index = 0;
    // Written by the claimant before signal(); read by the owner after.
    wait_outcome outcome = wait_outcome::pending;
    // Link in a deferred_wake list, used after the waiter has left its queue.
    waiter* wake_next = nullptr;
};

// FIFO of waiters. Not thread-safe: the owning channel's lock guards it.
struct wait_queue {
    waiter* head = nullptr;
    waiter* tail = nullptr;
    // Linked waiters. Written under the owner's lock; read without it by lock-free fast paths
    // (after a seq_cst fence) to skip the lock when nobody waits.
    std::atomic<std::uint32_t> length{0};

    bool empty() const noexcept { return head == nullptr; }

    void push_back(waiter* w) noexcept {
        // relaxed: single writer under the lock; the fast paths order reads with fences.
        length.store(length.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        w->queue = this;
        w->next = nullptr;
        w->prev = tail;
        if (tail)
            tail->next = w;
        else
            head = w;
        tail = w;
    }

    void remove(waiter* w) noexcept {
        // relaxed: as in push_back.
        length.store(length.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
        if (w->prev)
            w->prev->next = w->next;
        else
            head = w->next;
        if (w->next)
            w->next->prev = w->prev;
        else
            tail = w->prev;
        w->prev = w->next = nullptr;
        w->queue = nullptr;
    }

    // Unlinks and returns the first waiter whose context this caller could claim. Waiters of a
    // select that already fired elsewhere are skipped, not unlinked: their owner unlinks them.
    waiter* claim_first() noexcept {
        for (waiter* w = head; w; w = w->next) {
            if (w->ctx->try_claim(w->case_index)) {
                remove(w);
                return w;
            }
        }
        return nullptr;
    }
};

// Takes `w` out of its queue unless a claimant already did. With the queue's lock held.
inline void unlink(waiter& w) noexcept {
    if (w.queue)
        w.queue->remove(&w);
}

// Waiters claimed under a lock, signalled after the lock is released (declare it before the
// lock guard so it runs after the unlock, also when an exception unwinds).
class deferred_wake {
public:
    deferred_wake() = default;
    deferred_wake(const deferred_wake&) = delete;
    deferred_wake& operator=(const deferred_wake&) = delete;
    ~deferred_wake() { flush(); }

    void add(waiter* w, wait_outcome outcome) noexcept {
        w->outcome = outcome;
        w->wake_next = head_;
        head_ = w;
    }

    void flush() noexcept {
        while (waiter* w = head_) {
            // Read everything we need first: after signal() the owner may free `w`.
            head_ = w->wake_next;
            w->ctx->signal();
        }
    }

private:
    waiter* head_ = nullptr;
};

// --- The retry handshake -------------------------------------------------------------------
//
// Some waiters are handed nothing: they are only told to look again (wait_outcome::retry). A
// lock-free channel's waiters are (its ring changes without the lock), and so are an actor's
// senders waiting for room. Whoever makes a change such a waiter could use (a value, a free
// slot, a close) then calls wake_one_to_retry; a waiter links itself with link_unless_ready. Each
// side fences (seq_cst) between its write and its read, so one always sees the other: either the
// waker sees the waiter linked and wakes it, or the waiter sees the change and does not sleep.

// Waker side, after the change: wakes the first claimable waiter of `queue` (guarded by
// `mutex`) to retry. Costs a fence and a load when nobody waits; takes the lock only if someone
// does.
inline void wake_one_to_retry(wait_queue& queue, spin_mutex& mutex) {
    // seq_cst: pairs with the fence in link_unless_ready(): either we see its link, or it
    // sees our change.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    // relaxed: ordered by the fence above.
    if (queue.length.load(std::memory_order_relaxed) == 0)
        return;
    deferred_wake wake;
    std::lock_guard lock(mutex);
    if (waiter* w = queue.claim_first())
        wake.add(w, wait_outcome::retry);
}

// Waiter side: links `w` (its ctx set) to `queue` (guarded by `mutex`), fences, and asks
// `ready()` whether a retry could succeed now. If so, and nobody claimed `w` meanwhile, takes
// `w` back out and returns false: do not sleep, retry. True: `w` is linked; sleep until a
// claimant signals (if `ready()` was true but a claimant came first, its signal is on its way).
template <class Ready>
bool link_unless_ready(wait_queue& queue, spin_mutex& mutex, waiter& w, Ready ready) {
    {
        std::lock_guard lock(mutex);
        queue.push_back(&w);
    }
    // seq_cst: pairs with the fence in wake_one_to_retry().
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (ready() && w.ctx->try_claim(0)) {
        std::lock_guard lock(mutex);
        unlink(w);
        return false;
    }
    return true;
}

} // namespace weft::detail
