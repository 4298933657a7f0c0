// weft::net's private room: the loop every network operation runs (try the system call; on
// EAGAIN wait for the fd, within the context and the fd's deadline; try again), in a thread form
// and a task form, and the attempts (read, read_exact, write_all) the connections use.
//
// An attempt is a callable `std::optional<std::error_code>(int fd)`: nullopt when the call
// would block, else how it ended (empty: done); its `finish(error)` makes the operation's
// result.
#pragma once

#include "../../blocking_report.hpp"
#include "../../context.hpp"
#include "../../detail/io_wait.hpp"
#include "../../task.hpp"
#include "../error.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <optional>
#include <span>
#include <system_error>

namespace weft::detail {

// Why a wait ended without the fd becoming ready, as the operation reports it.
inline std::error_code net_wait_error(park_step s, const context& ctx) {
    switch (s) {
    case park_step::timed_out:
        return net::errc::deadline_exceeded;
    case park_step::cancelled: {
        const std::error_code e = ctx.err();
        return e ? e : make_error_code(context_errc::cancelled);
    }
    default:
        return net::errc::closed;
    }
}

inline bool net_wait_again(park_step s) noexcept {
    return s == park_step::done || s == park_step::again;
}

// errno after a failed call: nullopt for "would block" (wait), else the error.
inline std::optional<std::error_code> net_errno() noexcept {
    const int e = errno;
    if (e == EAGAIN || e == EWOULDBLOCK)
        return std::nullopt;
    return std::error_code(e, std::system_category());
}

// The thread form: blocks the calling thread between attempts.
template <class Attempt>
auto net_run_thread(io_handle h, io_dir dir, const context& ctx, Attempt& attempt) {
    io_call call(h);
    if (!call)
        return attempt.finish(net::errc::closed);
    const cancel_ref stop = cancellation_of(ctx);
    for (;;) {
        if (!call.entry().live(call.handle())) // close() came while we waited
            return attempt.finish(net::errc::closed);
        if (auto r = attempt(call.fd()))
            return attempt.finish(*r);
        if (auto passed = io_passed(call, dir, stop))
            return attempt.finish(net_wait_error(*passed, ctx));
        note_blocking({"a weft::net thread-form operation (read, write_all, accept, dial)",
                       "its async_ form: co_await conn.async_read(...)"});
        const wait_limit limit = io_limit(call, dir, stop);
        const park_step s = io_wait_thread(call, dir, limit);
        if (!net_wait_again(s))
            return attempt.finish(net_wait_error(s, ctx));
    }
}

// The task form: suspends the task (not its worker) between attempts. Takes everything by value:
// the frame keeps it for the operation's length.
template <class Attempt>
auto net_run_task(io_handle h, io_dir dir, context ctx, Attempt attempt)
    -> task<decltype(attempt.finish(std::error_code()))> {
    io_call call(h);
    if (!call)
        co_return attempt.finish(net::errc::closed);
    const cancel_ref stop = cancellation_of(ctx);
    for (;;) {
        if (!call.entry().live(call.handle())) // close() came while we waited
            co_return attempt.finish(net::errc::closed);
        if (auto r = attempt(call.fd()))
            co_return attempt.finish(*r);
        if (auto passed = io_passed(call, dir, stop))
            co_return attempt.finish(net_wait_error(*passed, ctx));
        io_task_wait wait(call, dir, stop);
        const park_step s = co_await wait;
        if (!net_wait_again(s))
            co_return attempt.finish(net_wait_error(s, ctx));
    }
}

// Reads what is there, at least one byte (or none into an empty buffer); eof when the peer
// has closed its side.
struct net_read_some {
    std::span<std::byte> buffer;
    std::size_t bytes = 0;

    std::optional<std::error_code> operator()(int fd) {
        for (;;) {
            const ssize_t n = ::read(fd, buffer.data(), buffer.size());
            if (n > 0) {
                bytes = static_cast<std::size_t>(n);
                return std::error_code();
            }
            if (n == 0)
                return buffer.empty() ? std::error_code() : make_error_code(net::errc::eof);
            if (errno != EINTR)
                return net_errno();
        }
    }
    net::io_result finish(std::error_code e) const { return {bytes, e}; }
};

// Fills the whole buffer; eof (with the bytes read so far) if the peer closes first.
struct net_read_exact {
    std::span<std::byte> buffer;
    std::size_t bytes = 0;

    std::optional<std::error_code> operator()(int fd) {
        while (bytes < buffer.size()) {
            const ssize_t n = ::read(fd, buffer.data() + bytes, buffer.size() - bytes);
            if (n > 0)
                bytes += static_cast<std::size_t>(n);
            else if (n == 0)
                return make_error_code(net::errc::eof);
            else if (errno != EINTR)
                return net_errno();
        }
        return std::error_code();
    }
    net::io_result finish(std::error_code e) const { return {bytes, e}; }
};

// Writes the whole buffer (Go's Write); MSG_NOSIGNAL: a peer gone is broken_pipe, not SIGPIPE.
struct net_write_all {
    std::span<const std::byte> buffer;
    std::size_t bytes = 0;

    std::optional<std::error_code> operator()(int fd) {
        while (bytes < buffer.size()) {
            const ssize_t n =
                ::send(fd, buffer.data() + bytes, buffer.size() - bytes, MSG_NOSIGNAL);
            if (n >= 0)
                bytes += static_cast<std::size_t>(n);
            else if (errno != EINTR)
                return net_errno();
        }
        return std::error_code();
    }
    net::io_result finish(std::error_code e) const { return {bytes, e}; }
};

} // namespace weft::detail
