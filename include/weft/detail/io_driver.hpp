// weft::detail::io_driver — a scheduler's epoll set (Go's netpoller, Tokio's I/O driver).
//
// Each scheduler owns one. An fd joins the set of the scheduler whose task first waits on it
// (edge-triggered, both directions, its io_handle as the event's data), and stays until it is
// closed or the driver goes away (then the next task wait binds it to its own scheduler's set).
//
// Who polls (scheduler.hpp, park and find_work): one worker at a time holds the poll token. An
// idle worker that gets it blocks in epoll_wait instead of sleeping on the event count; the
// others sleep as before. A busy worker polls with a zero timeout every 61 tasks when fds are
// registered, so I/O is not starved by CPU work. Work arriving for a scheduler whose only
// sleeper is the poller writes the eventfd (wake()), once per sleep.
//
// Dispatch: for each event, the entry is looked up and its generation compared under its lock
// (io_registry.hpp, invariant 1); the waiters of each ready direction are claimed with outcome
// `retry` and signalled after the lock, or the slot is marked ready when nobody waits.
#pragma once

#include "io_registry.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <system_error>

namespace weft::detail {

class io_driver : public io_poll_set {
public:
    io_driver() {
        epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
        if (epoll_fd < 0)
            throw std::system_error(errno, std::generic_category(), "weft: epoll_create1");
        wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (wake_fd_ < 0) {
            const int e = errno;
            ::close(epoll_fd);
            throw std::system_error(e, std::generic_category(), "weft: eventfd");
        }
        epoll_event ev{};
        ev.events = EPOLLIN; // level-triggered: drained after each wake-up
        ev.data.u64 = k_wake_token;
        ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, wake_fd_, &ev);
    }
    io_driver(const io_driver&) = delete;
    io_driver& operator=(const io_driver&) = delete;

    // Unbinds every fd still in the set (their waiters, tasks of other schedulers or threads,
    // are woken to look again and bind elsewhere), then closes the set. After the workers are
    // gone and the scheduler's own tasks destroyed.
    ~io_driver() {
        io_registry::instance().for_each([this](io_entry& e) {
            deferred_wake wake;
            std::lock_guard lock(e.mutex);
            if (e.driver != this)
                return;
            ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, e.fd(), nullptr);
            e.driver = nullptr;
            for (io_dir d : {io_dir::read, io_dir::write})
                while (waiter* w = e.slot(d).waiters.claim_first())
                    wake.add(w, wait_outcome::retry);
        });
        ::close(wake_fd_);
        ::close(epoll_fd);
    }

    // Under e.mutex: puts e's fd in this set if it is in none. False if epoll refused it (a
    // regular file, say: then the caller treats it as always ready).
    bool bind(io_entry& e) noexcept {
        if (e.driver)
            return true;
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        ev.data.u64 = e.handle().token();
        if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, e.fd(), &ev) != 0)
            return false;
        e.driver = this;
        // relaxed: a hint for the busy workers' poll.
        registered.fetch_add(1, std::memory_order_relaxed);
        return true;
    }

    // The poll token: whoever holds it may call poll().
    bool try_lock_poll() noexcept {
        // relaxed: a cheap look first. acquire: the previous holder's dispatch happened before.
        return !polling_.load(std::memory_order_relaxed) &&
               !polling_.exchange(true, std::memory_order_acquire);
    }
    void unlock_poll() noexcept {
        polling_.store(false, std::memory_order_release); // release: pairs with the exchange
    }

    // With the token: waits up to `timeout_ms` (-1: until an event or wake()) and wakes the
    // waiters of every ready fd. Returns the number of fd events handled.
    int poll(int timeout_ms) noexcept {
        const int n = ::epoll_wait(epoll_fd, events_, k_batch, timeout_ms);
        int handled = 0;
        for (int i = 0; i < n; ++i) {
            if (events_[i].data.u64 == k_wake_token) {
                std::uint64_t count;
                (void)!::read(wake_fd_, &count, sizeof count); // drain first, then re-arm
                // release: pairs with wake()'s exchange; a wake() after this writes again.
                kicked_.store(false, std::memory_order_release);
                continue;
            }
            dispatch(io_handle::from_token(events_[i].data.u64), events_[i].events);
            ++handled;
        }
        return handled;
    }

    // Makes a poll() blocked in another thread return (at most one write per blocked spell).
    void wake() noexcept {
        // acq_rel: pairs with the store in poll().
        if (!kicked_.exchange(true, std::memory_order_acq_rel)) {
            const std::uint64_t one = 1;
            (void)!::write(wake_fd_, &one, sizeof one);
        }
    }

    bool has_registrations() const noexcept {
        return registered.load(std::memory_order_relaxed) != 0; // relaxed: a hint
    }

private:
    static constexpr std::uint64_t k_wake_token = ~std::uint64_t(0);
    static constexpr int k_batch = 256;

    static void dispatch(io_handle h, std::uint32_t events) noexcept {
        io_entry* e = io_registry::instance().find(h);
        if (!e)
            return;
        const bool readable = events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR);
        const bool writable = events & (EPOLLOUT | EPOLLHUP | EPOLLERR);
        deferred_wake wake;
        std::lock_guard lock(e->mutex);
        if (!e->same_life(h))
            return; // stale: the fd was closed (and maybe reused) since this event was queued
        auto fire = [&](io_slot& slot) {
            bool woke = false;
            while (waiter* w = slot.waiters.claim_first()) {
                wake.add(w, wait_outcome::retry);
                woke = true;
            }
            if (!woke)
                slot.ready = true;
        };
        if (readable)
            fire(e->slot(io_dir::read));
        if (writable)
            fire(e->slot(io_dir::write));
    }

    int wake_fd_ = -1;
    std::atomic<bool> polling_{false};
    std::atomic<bool> kicked_{false};
    epoll_event events_[k_batch]; // the token holder's
};

} // namespace weft::detail
