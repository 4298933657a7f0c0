// weft::detail io registry — the process's table of the file descriptors tasks and threads wait
// on (Go's pollDesc cache), and how a wait on one of them is linked and woken.
//
// Invariants, each relied on below:
//  1. Entries are never freed: they live in chunks that never move, and a closed entry is
//     recycled with its generation incremented. An io_handle is {index, generation}; every use
//     checks the generation, so neither a handle that outlived its fd nor a readiness event that
//     was in flight when the fd closed (epoll data carries the same pair) ever reaches the
//     entry's next user, even when the kernel hands out the same fd number again.
//  2. `state` counts the system calls in flight on the fd (Go's fdMutex): close() marks the
//     entry closing and wakes its waiters, and the fd is closed by whoever ends the last call,
//     so no read() ever runs on a number that was closed and reused under it.
//  3. `mutex` guards the two slots, the binding to a driver (the epoll set the fd is in) and the
//     deadlines' wake-ups. A readiness event that finds nobody waiting sets its slot's `ready`;
//     the next waiter consumes it instead of sleeping (edge-triggered epoll reports each change
//     once, so it must not be lost).
//  4. A waiter is a waiter (waiter.hpp) of a wait_context: readiness, close() and a deadline
//     change claim it with outcome `retry` (look again), a wait_limit claims it as timed out or
//     cancelled; the owner unlinks itself after a limit's claim, as everywhere in weft.
#pragma once

#include "spin_mutex.hpp"
#include "waiter.hpp"

#include <sys/epoll.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>

namespace weft::detail {

// What an entry knows of the epoll set its fd is in (a scheduler's io_driver, io_driver.hpp).
struct io_poll_set {
    int epoll_fd = -1;
    // Entries bound to this set: busy workers skip their periodic poll while it is 0.
    std::atomic<std::size_t> registered{0};
};

enum class io_dir : std::uint8_t { read = 0, write = 1 };

// One direction of one fd: who waits for it, and whether an edge came while nobody did.
struct io_slot {
    wait_queue waiters;
    bool ready = false;
};

// Which entry, and which of its lives: a stale generation means "closed".
struct io_handle {
    std::uint32_t index = std::numeric_limits<std::uint32_t>::max();
    std::uint32_t generation = 0;

    bool valid() const noexcept { return index != std::numeric_limits<std::uint32_t>::max(); }
    std::uint64_t token() const noexcept { return (std::uint64_t(generation) << 32) | index; }
    static io_handle from_token(std::uint64_t t) noexcept {
        return {static_cast<std::uint32_t>(t), static_cast<std::uint32_t>(t >> 32)};
    }
};

class io_entry {
public:
    using steady_time = std::chrono::steady_clock::time_point;

    // state = generation << 32 | calls in flight << 2 | k_finishing | k_closing.
    static constexpr std::uint64_t k_closing = 1;
    static constexpr std::uint64_t k_finishing = 2;
    static constexpr std::uint64_t k_call = 4;
    static constexpr std::uint64_t k_calls_mask = 0xFFFF'FFFCull;

    static std::uint32_t generation_of(std::uint64_t s) noexcept {
        return static_cast<std::uint32_t>(s >> 32);
    }

    // A system call on the fd begins: false (and nothing counted) if `h` is stale or closing.
    bool begin_call(io_handle h) noexcept {
        // relaxed: the CAS below decides.
        std::uint64_t s = state_.load(std::memory_order_relaxed);
        for (;;) {
            if (generation_of(s) != h.generation || (s & k_closing))
                return false;
            // acquire: sees the fd set up by whoever published the handle; pairs with the
            // release in end_call so the last call's effects precede the close.
            if (state_.compare_exchange_weak(s, s + k_call, std::memory_order_acquire,
                                             std::memory_order_relaxed))
                return true;
        }
    }
    // Ends a call begun with begin_call; the last call after close() closes the fd.
    void end_call() noexcept {
        // acq_rel: release orders our syscall before the close; acquire sees close()'s mark.
        const std::uint64_t s = state_.fetch_sub(k_call, std::memory_order_acq_rel) - k_call;
        if ((s & k_closing) && !(s & k_finishing) && (s & k_calls_mask) == 0)
            try_finish(s);
    }

    // Whether `h` names this entry's current life, closing or not (events, stale checks).
    bool same_life(io_handle h) const noexcept {
        // acquire: as in begin_call.
        return generation_of(state_.load(std::memory_order_acquire)) == h.generation;
    }
    // The handle of the current life.
    io_handle handle() const noexcept {
        // acquire: as in begin_call.
        return {index_, generation_of(state_.load(std::memory_order_acquire))};
    }

    int fd() const noexcept { return fd_; }
    bool owns_fd() const noexcept { return owns_fd_; }

    // True while `h` names this entry's current life and it is not closing.
    bool live(io_handle h) const noexcept {
        // acquire: as in begin_call.
        const std::uint64_t s = state_.load(std::memory_order_acquire);
        return generation_of(s) == h.generation && !(s & k_closing);
    }

    // The deadline of one direction (set_read_deadline / set_write_deadline), or nullopt.
    std::optional<steady_time> deadline(io_dir d) const noexcept {
        // relaxed: the waiter re-reads it after every wake-up, and set_deadline's wake-up
        // (through the mutex) orders the store before that re-read.
        const std::int64_t ns = deadline_ns_[index_of(d)].load(std::memory_order_relaxed);
        if (ns == k_no_deadline)
            return std::nullopt;
        return steady_time(std::chrono::nanoseconds(ns));
    }

    // The rest is for the registry, the driver and the waits (io_wait.hpp).
    spin_mutex mutex;

    io_slot& slot(io_dir d) noexcept { return slots_[index_of(d)]; }

    // Under `mutex`: the epoll set the fd is in (null: none yet, or its driver went away).
    io_poll_set* driver = nullptr;

private:
    friend class io_registry;
    static constexpr std::int64_t k_no_deadline = std::numeric_limits<std::int64_t>::max();
    static std::size_t index_of(io_dir d) noexcept { return static_cast<std::size_t>(d); }

    void try_finish(std::uint64_t s) noexcept;

    std::atomic<std::uint64_t> state_{0};
    int fd_ = -1;
    bool owns_fd_ = true;
    std::uint32_t index_ = 0;
    std::array<io_slot, 2> slots_;
    std::array<std::atomic<std::int64_t>, 2> deadline_ns_{k_no_deadline, k_no_deadline};
    io_entry* next_free_ = nullptr; // under the registry's mutex
};

// The table. Created on first use and never destroyed (entries may be touched by threads that
// outlive main's statics, as the timer service is).
class io_registry {
public:
    static io_registry& instance() {
        static io_registry* registry = new io_registry;
        return *registry;
    }

    // Takes an entry for `fd` (owned: closed when the entry is; foreign: only forgotten).
    io_handle add(int fd, bool owns_fd) {
        io_entry* e;
        {
            std::lock_guard lock(mutex_);
            e = free_;
            if (e) {
                free_ = e->next_free_;
            } else {
                e = grow();
            }
            ++live_;
        }
        e->fd_ = fd;
        e->owns_fd_ = owns_fd;
        // relaxed: a fresh entry's deadlines; published with the handle (below).
        e->deadline_ns_[0].store(io_entry::k_no_deadline, std::memory_order_relaxed);
        e->deadline_ns_[1].store(io_entry::k_no_deadline, std::memory_order_relaxed);
        // relaxed: the handle is published to other threads by whatever hands the conn over.
        const std::uint64_t s = e->state_.load(std::memory_order_relaxed);
        return {e->index_, io_entry::generation_of(s)};
    }

    // The entry of `h` (a stale generation is the caller's to check), or null for a bad index.
    io_entry* find(io_handle h) const noexcept {
        const std::uint32_t chunk = h.index / k_chunk;
        if (chunk >= k_max_chunks)
            return nullptr;
        // acquire: pairs with the release that published the chunk in grow().
        io_entry* c = chunks_[chunk].load(std::memory_order_acquire);
        return c ? &c[h.index % k_chunk] : nullptr;
    }

    // close(): marks `h` closing, wakes its waiters (they see `closed`), and closes the fd once
    // no call is in flight. False if it was closed already (or `h` is stale).
    bool close(io_handle h) noexcept {
        io_entry* e = find(h);
        if (!e)
            return false;
        // relaxed: the CAS decides.
        std::uint64_t s = e->state_.load(std::memory_order_relaxed);
        for (;;) {
            if (io_entry::generation_of(s) != h.generation || (s & io_entry::k_closing))
                return false;
            // acq_rel: release orders the caller's use before the close; acquire sees the
            // calls' ends.
            if (e->state_.compare_exchange_weak(s, s | io_entry::k_closing,
                                                std::memory_order_acq_rel,
                                                std::memory_order_relaxed))
                break;
        }
        wake_all(*e, h);
        if ((s & io_entry::k_calls_mask) == 0)
            e->try_finish(s | io_entry::k_closing);
        return true;
    }

    // Wakes every waiter of both directions to look again (close, a deadline change, a driver
    // going away). With `h` stale it does nothing.
    static void wake_all(io_entry& e, io_handle h) noexcept {
        deferred_wake wake;
        std::lock_guard lock(e.mutex);
        // acquire: as in begin_call.
        if (io_entry::generation_of(e.state_.load(std::memory_order_acquire)) != h.generation)
            return;
        for (io_dir d : {io_dir::read, io_dir::write})
            while (waiter* w = e.slot(d).waiters.claim_first())
                wake.add(w, wait_outcome::retry);
    }

    // Sets one direction's deadline and wakes that direction's waiters so they wait again with
    // it (Go: a new deadline also applies to a pending call).
    static void set_deadline(io_entry& e, io_handle h, io_dir d,
                             std::optional<io_entry::steady_time> t) noexcept {
        const std::int64_t ns =
            t ? std::chrono::duration_cast<std::chrono::nanoseconds>(t->time_since_epoch()).count()
              : io_entry::k_no_deadline;
        deferred_wake wake;
        std::lock_guard lock(e.mutex);
        // Under the lock, after the generation check: a stale handle must not set the deadline
        // of the entry's next life (its generation is bumped under this lock before reuse).
        // acquire: as in begin_call.
        if (io_entry::generation_of(e.state_.load(std::memory_order_acquire)) != h.generation)
            return;
        // relaxed: see io_entry::deadline.
        e.deadline_ns_[io_entry::index_of(d)].store(ns, std::memory_order_relaxed);
        while (waiter* w = e.slot(d).waiters.claim_first())
            wake.add(w, wait_outcome::retry);
    }

    // Entries in use (tests: nothing leaks).
    std::size_t live() const {
        std::lock_guard lock(mutex_);
        return live_;
    }

    // Calls `f(entry)` for every entry ever made (a driver going away looks for its own).
    template <class F>
    void for_each(F f) {
        for (std::uint32_t c = 0; c < k_max_chunks; ++c) {
            // acquire: as in find().
            io_entry* chunk = chunks_[c].load(std::memory_order_acquire);
            if (!chunk)
                return;
            for (std::uint32_t i = 0; i < k_chunk; ++i)
                f(chunk[i]);
        }
    }

    io_registry(const io_registry&) = delete;
    io_registry& operator=(const io_registry&) = delete;

private:
    friend class io_entry;
    static constexpr std::uint32_t k_chunk = 1024;
    static constexpr std::uint32_t k_max_chunks = 4096; // 4M descriptors at once

    io_registry() = default;

    // Under mutex_: a new chunk; returns its first entry and frees the rest.
    io_entry* grow() {
        if (chunk_count_ == k_max_chunks)
            throw std::length_error("weft: more than 4M file descriptors registered at once");
        auto* chunk = new io_entry[k_chunk];
        const std::uint32_t base = chunk_count_ * k_chunk;
        for (std::uint32_t i = 0; i < k_chunk; ++i)
            chunk[i].index_ = base + i;
        for (std::uint32_t i = k_chunk - 1; i > 0; --i) {
            chunk[i].next_free_ = free_;
            free_ = &chunk[i];
        }
        // release: publishes the entries' indexes to find()'s acquire.
        chunks_[chunk_count_++].store(chunk, std::memory_order_release);
        return &chunk[0];
    }

    void recycle(io_entry& e) noexcept {
        std::lock_guard lock(mutex_);
        e.next_free_ = free_;
        free_ = &e;
        --live_;
    }

    mutable std::mutex mutex_; // guards free_, live_, chunk_count_
    std::array<std::atomic<io_entry*>, k_max_chunks> chunks_{};
    std::uint32_t chunk_count_ = 0;
    io_entry* free_ = nullptr;
    std::size_t live_ = 0;
};

// The last step of close(): once no call is in flight, one caller unbinds and closes the fd and
// recycles the entry under a new generation.
inline void io_entry::try_finish(std::uint64_t s) noexcept {
    // acq_rel: exactly one caller moves closing-and-idle to finishing; acquire sees the calls'
    // effects (their release in end_call).
    if (!state_.compare_exchange_strong(s, s | k_finishing, std::memory_order_acq_rel,
                                        std::memory_order_relaxed))
        return;
    {
        std::lock_guard lock(mutex);
        if (driver) {
            // Also for an fd we close ourselves: a dup elsewhere would keep it in the set.
            ::epoll_ctl(driver->epoll_fd, EPOLL_CTL_DEL, fd_, nullptr);
            // relaxed: a hint for the busy workers' poll.
            driver->registered.fetch_sub(1, std::memory_order_relaxed);
            driver = nullptr;
        }
        for (io_slot& slot : slots_)
            slot.ready = false;
        if (owns_fd_)
            ::close(fd_);
        fd_ = -1;
        // release: the next life (and any stale handle's acquire) sees a clean entry.
        state_.store(std::uint64_t(generation_of(s) + 1) << 32, std::memory_order_release);
    }
    io_registry::instance().recycle(*this);
}

} // namespace weft::detail
