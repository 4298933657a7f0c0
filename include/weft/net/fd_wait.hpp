// weft::net::fd_watch and wait_readable / wait_writable — waits on file descriptors weft does
// not own (libpq's, libcurl's, c-ares's sockets), on the same poller as weft's own sockets.
//
//   net::fd_watch w(PQsocket(pg));                  // registers; never closes the fd
//   std::error_code e = co_await w.async_readable(ctx);
//
// A watch registers the fd once and is the cheap way to wait on it many times; destroy it
// before the fd is closed (the owner library closes it). The free functions register, wait once
// and unregister. A wait ends empty when the fd may be ready (it may also be a spurious wake:
// the caller's non-blocking call then says EAGAIN and it waits again), or with closed (the
// watch was closed), the context's error, or deadline_exceeded.
#pragma once

#include "detail/io_ops.hpp"
#include "error.hpp"

#include <optional>
#include <utility>

namespace weft::net {

class fd_watch {
public:
    fd_watch() noexcept = default;
    // Watches `fd` (which the caller keeps owning and must keep open while watched).
    explicit fd_watch(int fd)
        : handle_(weft::detail::io_registry::instance().add(fd, /*owns_fd=*/false)) {}
    fd_watch(fd_watch&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
    fd_watch& operator=(fd_watch&& other) noexcept {
        if (this != &other) {
            close();
            handle_ = std::exchange(other.handle_, {});
        }
        return *this;
    }
    fd_watch(const fd_watch&) = delete;
    fd_watch& operator=(const fd_watch&) = delete;
    ~fd_watch() { close(); }

    std::error_code readable(const context& ctx = background()) {
        return wait(ctx, weft::detail::io_dir::read);
    }
    std::error_code writable(const context& ctx = background()) {
        return wait(ctx, weft::detail::io_dir::write);
    }
    task<std::error_code> async_readable(context ctx = background()) {
        return async_wait(std::move(ctx), weft::detail::io_dir::read);
    }
    task<std::error_code> async_writable(context ctx = background()) {
        return async_wait(std::move(ctx), weft::detail::io_dir::write);
    }

    // Forgets the fd (without closing it); pending waits return closed. Idempotent.
    void close() noexcept {
        if (handle_.valid())
            weft::detail::io_registry::instance().close(handle_);
    }

private:
    // One wait: the first attempt says "would block", every later one "ready".
    struct once {
        bool waited = false;
        std::optional<std::error_code> operator()(int) {
            if (!std::exchange(waited, true))
                return std::nullopt;
            return std::error_code();
        }
        std::error_code finish(std::error_code e) const { return e; }
    };

    std::error_code wait(const context& ctx, weft::detail::io_dir dir) {
        once attempt;
        return weft::detail::net_run_thread(handle_, dir, ctx, attempt);
    }
    task<std::error_code> async_wait(context ctx, weft::detail::io_dir dir) {
        return weft::detail::net_run_task(handle_, dir, std::move(ctx), once{});
    }

    weft::detail::io_handle handle_;
};

// One wait on a foreign fd: registers it, waits, unregisters.
inline std::error_code wait_readable(int fd, const context& ctx = background()) {
    return fd_watch(fd).readable(ctx);
}
inline std::error_code wait_writable(int fd, const context& ctx = background()) {
    return fd_watch(fd).writable(ctx);
}
inline task<std::error_code> async_wait_readable(int fd, context ctx = background()) {
    fd_watch watch(fd);
    co_return co_await watch.async_readable(std::move(ctx));
}
inline task<std::error_code> async_wait_writable(int fd, context ctx = background()) {
    fd_watch watch(fd);
    co_return co_await watch.async_writable(std::move(ctx));
}

} // namespace weft::net
