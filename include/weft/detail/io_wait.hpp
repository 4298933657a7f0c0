// weft::detail io waits — how one operation on a registered fd waits for it to become ready:
// a task through its scheduler's io_driver (io_driver.hpp), a plain thread with poll(2) on the
// fd and its own eventfd.
//
// An operation holds an io_call for its whole length (invariant 2 of io_registry.hpp: the fd
// stays open under it), tries its system call, and on EAGAIN waits once and tries again. A wait
// ends `done`/`again` (look again: an edge came, the deadline moved, the driver went away),
// `closed`, `timed_out` (the fd's deadline for that direction passed) or `cancelled` (the
// context).
//
// A thread's waiter sits in the same slot as a task's, so close(), a deadline change and the
// driver's readiness claims reach it too; its wait_context's `resume` writes the thread's
// eventfd, which its poll() watches beside the fd. Deadlines are poll's timeout, cancellation
// a cancel_claim. When a claimant other than the thread itself won, the thread reads the
// eventfd before it returns: that write is the claimant's last touch, so the context on the
// thread's stack is not abandoned while still in use.
#pragma once

#include "io_driver.hpp"
#include "task_host.hpp"
#include "task_park.hpp"
#include "wait_limit.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <optional>

namespace weft::detail {

// One operation's reference on an entry: the fd is not closed under it.
class io_call {
public:
    io_call(io_handle h) noexcept : entry_(io_registry::instance().find(h)), handle_(h) {
        if (entry_ && !entry_->begin_call(h))
            entry_ = nullptr;
    }
    io_call(const io_call&) = delete;
    io_call& operator=(const io_call&) = delete;
    ~io_call() {
        if (entry_)
            entry_->end_call();
    }

    // False when the handle was closed (or never valid): the operation reports `closed`.
    explicit operator bool() const noexcept { return entry_ != nullptr; }
    io_entry& entry() const noexcept { return *entry_; }
    io_handle handle() const noexcept { return handle_; }
    int fd() const noexcept { return entry_->fd(); }

private:
    io_entry* entry_;
    io_handle handle_;
};

// The limit of one wait in `dir`: the fd's deadline for it, and the context's cancellation.
inline wait_limit io_limit(const io_call& call, io_dir dir, const cancel_ref& stop) {
    return {call.entry().deadline(dir), stop};
}

// task_park's owner for a task's wait on one direction of one fd.
struct io_wait_target {
    io_entry* entry;
    io_handle handle;
    io_dir dir;
    io_driver* driver; // the waiting task's scheduler's

    // Consumes an edge that came while nobody waited (done: try again now), refuses a closing
    // entry (closed), or links the waiter (parked). Binds the fd to `driver` first if it is in
    // no set; an fd epoll refuses (a regular file) is always ready (done).
    static park_step step(io_wait_target& t, waiter& w, void*) {
        std::lock_guard lock(t.entry->mutex);
        if (!t.entry->live(t.handle))
            return park_step::closed;
        if (!t.driver->bind(*t.entry))
            return park_step::done;
        io_slot& slot = t.entry->slot(t.dir);
        if (slot.ready) {
            slot.ready = false;
            return park_step::done;
        }
        slot.waiters.push_back(&w);
        return park_step::parked;
    }
    // task_park's clean-up: a limit claimed us, or the frame is destroyed mid-wait.
    void cancel(waiter& w) noexcept {
        std::lock_guard lock(entry->mutex);
        unlink(w);
    }
};

// The eventfd a plain thread's io waits sleep on beside the fd; made on first use, closed when
// the thread ends.
class thread_io_waker {
public:
    static thread_io_waker& current() {
        thread_local thread_io_waker waker;
        return waker;
    }
    thread_io_waker(const thread_io_waker&) = delete;
    thread_io_waker& operator=(const thread_io_waker&) = delete;
    ~thread_io_waker() {
        if (fd_ >= 0)
            ::close(fd_);
    }

    int fd() {
        if (fd_ < 0) {
            fd_ = ::eventfd(0, EFD_CLOEXEC); // blocking: see absorb()
            if (fd_ < 0)
                throw std::system_error(errno, std::generic_category(), "weft: eventfd");
        }
        return fd_;
    }

    // wait_context::resume for a thread's io wait: the claimant's last touch.
    static void signal(wait_context& ctx) noexcept {
        const int fd = static_cast<thread_io_waker*>(ctx.resume_arg)->fd_;
        const std::uint64_t one = 1;
        (void)!::write(fd, &one, sizeof one);
    }

    // Waits for the claimant's signal (it may still be on its way) and consumes it.
    void absorb() noexcept {
        std::uint64_t count;
        while (::read(fd_, &count, sizeof count) < 0 && errno == EINTR) {
        }
    }

private:
    thread_io_waker() = default;
    int fd_ = -1;
};

// A plain thread's wait on one direction of `call`'s fd, within `limit`.
inline park_step io_wait_thread(const io_call& call, io_dir dir, const wait_limit& limit) {
    thread_io_waker& waker = thread_io_waker::current();
    wait_context ctx;
    ctx.resume = &thread_io_waker::signal;
    ctx.resume_arg = &waker;
    waiter w;
    w.ctx = &ctx;
    io_entry& e = call.entry();
    pollfd fds[2] = {
        {e.fd(), static_cast<short>(dir == io_dir::read ? POLLIN | POLLRDHUP : POLLOUT), 0},
        {waker.fd(), POLLIN, 0}};
    {
        std::lock_guard lock(e.mutex);
        if (!e.live(call.handle()))
            return park_step::closed;
        io_slot& slot = e.slot(dir);
        if (slot.ready) {
            slot.ready = false;
            return park_step::done;
        }
        slot.waiters.push_back(&w);
    }
    auto unlink_self = [&] {
        std::lock_guard lock(e.mutex);
        unlink(w);
    };
    std::optional<cancel_claim> stop;
    if (limit.stop.stop_possible())
        stop.emplace(ctx, limit.stop);
    for (;;) {
        int timeout_ms = -1;
        if (limit.deadline) {
            const auto left = *limit.deadline - std::chrono::steady_clock::now();
            timeout_ms =
                left <= left.zero()
                    ? 0
                    : static_cast<int>(std::min<std::int64_t>(
                          std::chrono::ceil<std::chrono::milliseconds>(left).count(), 1 << 30));
        }
        const int r = ::poll(fds, 2, timeout_ms);
        if (r < 0 && errno == EINTR)
            continue;
        // acquire: pairs with a claimant's acq_rel CAS.
        if (ctx.selected.load(std::memory_order_acquire) != wait_context::k_waiting)
            break; // a claimant won: its signal is on the eventfd
        if (r > 0 && fds[1].revents != 0) {
            waker.absorb(); // not ours (no claim yet): drop it rather than spin on it
            continue;
        }
        const bool passed = limit.deadline && std::chrono::steady_clock::now() >= *limit.deadline;
        if (r > 0 && (fds[0].revents != 0)) {
            if (ctx.try_claim(0)) { // the fd is ready: look again
                stop.reset();
                unlink_self();
                return park_step::again;
            }
            break;
        }
        if (passed) {
            if (ctx.try_claim(wait_context::k_timed_out)) {
                stop.reset();
                unlink_self();
                return park_step::timed_out;
            }
            break;
        }
    }
    waker.absorb(); // the claimant's write: after it, nobody touches ctx or w
    stop.reset();
    // acquire: as above.
    const int selected = ctx.selected.load(std::memory_order_acquire);
    if (const auto limited = limit_outcome(selected)) {
        unlink_self(); // a limit's claimant cannot unlink us
        return *limited;
    }
    return park_step::again; // readiness, close, a deadline change: unlinked by the claimant
}

// Whether a wait on `dir` would end at once: the fd's deadline passed (timed_out) or the context
// is cancelled (cancelled). Checked after an attempt would block, before waiting.
inline std::optional<park_step> io_passed(const io_call& call, io_dir dir, const cancel_ref& stop) {
    return limit_passed(io_limit(call, dir, stop));
}

// A task's wait on one direction of `call`'s fd; declare it as a named local in the loop and
// `co_await` it once. Its result is io_wait_thread's.
class io_task_wait {
public:
    io_task_wait(const io_call& call, io_dir dir, const cancel_ref& stop)
        : target_{&call.entry(), call.handle(), dir, &current_host().io()},
          limit_(io_limit(call, dir, stop)),
          park_(target_, &io_wait_target::step, nullptr, blocked_on::io, &limit_) {}
    io_task_wait(const io_task_wait&) = delete;
    io_task_wait& operator=(const io_task_wait&) = delete;

    bool await_ready() { return park_.await_ready(); }
    bool await_suspend(std::coroutine_handle<> h) noexcept { return park_.await_suspend(h); }
    park_step await_resume() noexcept { return park_.await_resume(); }

private:
    io_wait_target target_;
    wait_limit limit_;
    task_park<io_wait_target> park_;
};

} // namespace weft::detail
