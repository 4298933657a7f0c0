// weft::detail::cancel_source — the list of waits a context's cancellation must end, and how
// a wait joins and leaves it.
//
// Every wait given a context (a channel operation, a select, a sleep, ...) links one
// cancel_watch, living in the waiter's own frame, for as long as it sleeps; cancelling the
// context runs each watch's callback once (which claims the waiter's wait_context, see
// wait_limit.hpp). This is std::stop_callback's contract, written for this one use because the
// standard one costs a futex wake per callback in libstdc++ (its "callback finished" semaphore)
// and an allocation per context for its shared state: cancelling 100k waiting tasks took 3x
// longer through it.
//
// Invariants (the lock is `mutex_`, a spin lock held for a few pointer writes):
//   1. `fired_` goes false -> true once, under the lock. After that no watch is linked: add()
//      refuses, and fire() took the whole list out at once.
//   2. A watch is linked (in the list) or it is not, under the lock. fire() unlinks the whole
//      list under the lock, then runs the callbacks without it, each exactly once, and after
//      the callback returns stores `done` (release) and never touches that watch again.
//   3. remove() finds a watch either still linked (unlinks it: its callback will never run) or
//      taken by fire() (then it waits for `done`: the callback is about to run or running), so
//      when remove() returns no callback runs on or after it — the watch's memory may go.
//   A callback must not remove its own watch (it would wait for itself); the claim callbacks
//   only signal, which never runs the woken waiter inline.
#pragma once

#include "spin_mutex.hpp"

#include <atomic>
#include <memory>
#include <mutex>

namespace weft::detail {

class cancel_source;

// One registration: a callback and its place in a cancel_source's list. Lives in the waiter.
struct cancel_watch {
    using callback = void (*)(cancel_watch&) noexcept;

    explicit cancel_watch(callback f) noexcept : fn(f) {}
    cancel_watch(const cancel_watch&) = delete;
    cancel_watch& operator=(const cancel_watch&) = delete;

    callback fn;
    cancel_watch* prev = nullptr; // guarded by the source's lock
    cancel_watch* next = nullptr; // guarded by the source's lock; read by fire() after taking
    bool linked = false;          // guarded by the source's lock
    bool taken = false;           // guarded by the source's lock: fire() took it to run
    // Set by fire() after the callback returned: remove() may return (invariant 3).
    std::atomic<bool> done{false};
};

class cancel_source {
public:
    cancel_source() = default;
    cancel_source(const cancel_source&) = delete;
    cancel_source& operator=(const cancel_source&) = delete;

    // One relaxed load: fire() has begun (a hint; add() answers exactly).
    bool fired() const noexcept {
        // relaxed: a hint for a retrying loop; add() decides under the lock.
        return fired_hint_.load(std::memory_order_relaxed);
    }

    // Links `w`; false (not linked) if the source has fired already: run the callback
    // yourself, or treat the wait as cancelled.
    bool add(cancel_watch& w) noexcept {
        std::lock_guard lock(mutex_);
        if (fired_)
            return false;
        w.prev = nullptr;
        w.next = head_;
        if (head_)
            head_->prev = &w;
        head_ = &w;
        w.linked = true;
        return true;
    }

    // Unlinks `w`, or waits until fire() has finished running its callback (invariant 3).
    void remove(cancel_watch& w) noexcept {
        {
            std::lock_guard lock(mutex_);
            if (w.linked) {
                if (w.prev)
                    w.prev->next = w.next;
                else
                    head_ = w.next;
                if (w.next)
                    w.next->prev = w.prev;
                w.linked = false;
                return;
            }
            if (!w.taken)
                return; // never linked (add() refused)
        }
        // acquire: pairs with fire()'s release store; after it the callback has returned.
        for (backoff spin; !w.done.load(std::memory_order_acquire);)
            spin.snooze();
    }

    // Runs every linked callback once, on this thread; later add()s are refused. Returns
    // false if it had fired before.
    bool fire() noexcept {
        cancel_watch* list;
        {
            std::lock_guard lock(mutex_);
            if (fired_)
                return false;
            fired_ = true;
            // relaxed: a hint (see fired()).
            fired_hint_.store(true, std::memory_order_relaxed);
            list = head_;
            head_ = nullptr;
            for (cancel_watch* w = list; w; w = w->next) {
                w->linked = false;
                w->taken = true;
            }
        }
        while (cancel_watch* w = list) {
            list = w->next; // read before the callback: afterwards the owner may free `w`
            w->fn(*w);
            // release: the callback's effects happen before remove() returns.
            w->done.store(true, std::memory_order_release);
        }
        return true;
    }

private:
    spin_mutex mutex_;
    bool fired_ = false;           // guarded by mutex_ (invariant 1)
    cancel_watch* head_ = nullptr; // guarded by mutex_
    std::atomic<bool> fired_hint_{false};
};

// std::stop_callback's shape on a cancel_source: runs `f` (noexcept) once when the source fires,
// or at once on this thread if it has fired already; the destructor unlinks it or waits for a
// run in progress. An empty cancel_ref arms nothing.
template <class F>
class cancel_callback {
public:
    cancel_callback(cancel_source& source, F f) : watch_(std::move(f)), source_(&source) {
        if (!source_->add(watch_)) {
            source_ = nullptr;
            watch_.f();
        }
    }
    cancel_callback(const cancel_callback&) = delete;
    cancel_callback& operator=(const cancel_callback&) = delete;
    ~cancel_callback() {
        if (source_)
            source_->remove(watch_);
    }

private:
    struct watch : cancel_watch {
        explicit watch(F fn) : cancel_watch(&run), f(std::move(fn)) {}
        static void run(cancel_watch& w) noexcept { static_cast<watch&>(w).f(); }
        F f;
    };
    watch watch_;
    cancel_source* source_; // null once nothing is linked
};

// What a wait holds on to: the context's cancel_source, shared with the context so that it
// outlives a wait whose context handle went away. Null for background(), which never fires.
class cancel_ref {
public:
    cancel_ref() noexcept = default;
    explicit cancel_ref(std::shared_ptr<cancel_source> source) noexcept
        : source_(std::move(source)) {}

    // std::stop_token's names: whether a cancellation can ever come, and whether it has.
    bool stop_possible() const noexcept { return source_ != nullptr; }
    bool stop_requested() const noexcept { return source_ && source_->fired(); }

    cancel_source* get() const noexcept { return source_.get(); }

private:
    std::shared_ptr<cancel_source> source_;
};

} // namespace weft::detail
