// weft::net::conn — a stream connection (TCP or Unix socket) whose waits suspend a task, not
// its worker (Go's net.Conn on the netpoller).
//
//   net::io_result r = co_await c.async_read(ctx, buf);   // some bytes, or an error
//   co_await c.async_write_all(net::buffer(reply));        // all of it, or an error
//   c.set_read_deadline(now + 5s);  // also for a read pending now (Go's SetReadDeadline)
//
// Every operation has a thread form (read, write_all, ...: blocks the calling thread) and a
// task form (async_...), each with and without a context. Errors are values (error.hpp):
// eof, closed (also for an operation pending when close() is called), deadline_exceeded, the
// context's error, or the system's (connection_reset, broken_pipe, ...). One reader and one
// writer may work at once, from any threads or tasks; close() may come from anywhere.
#pragma once

#include "address.hpp"
#include "detail/io_ops.hpp"
#include "error.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <string_view>
#include <type_traits>
#include <utility>

namespace weft::detail {
struct net_handle_tag {}; // conn's constructor for the rooms of weft::net
} // namespace weft::detail

namespace weft::net {

using time_point = std::chrono::steady_clock::time_point;

// Bytes of anything contiguous and trivially copyable: a std::string, a vector, an array, a
// span, a string_view (const: for writes).
template <class Range>
std::span<std::byte> buffer(Range& r) noexcept
    requires(!std::is_const_v<std::remove_reference_t<decltype(*std::data(r))>>) {
    return std::as_writable_bytes(std::span(std::data(r), std::size(r)));
}
template <class Range>
std::span<const std::byte> buffer(const Range& r) noexcept {
    return std::as_bytes(std::span(std::data(r), std::size(r)));
}
inline std::span<const std::byte> buffer(std::string_view s) noexcept {
    return std::as_bytes(std::span(s.data(), s.size()));
}

class conn {
public:
    // Not connected: every operation returns closed.
    conn() noexcept = default;
    // Adopts a connected stream socket (made non-blocking here); the conn closes it.
    explicit conn(int fd);
    // weft::net's own: takes over an entry made for a socket.
    conn(weft::detail::net_handle_tag, weft::detail::io_handle h) noexcept : handle_(h) {}
    conn(conn&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
    conn& operator=(conn&& other) noexcept;
    conn(const conn&) = delete;
    conn& operator=(const conn&) = delete;
    ~conn() { close(); }

    // Some bytes (at least one), or an error (eof once the peer closed its side).
    io_result read(std::span<std::byte> into) { return read(background(), into); }
    io_result read(const context& ctx, std::span<std::byte> into);
    task<io_result> async_read(std::span<std::byte> into) { return async_read(background(), into); }
    task<io_result> async_read(const context& ctx, std::span<std::byte> into);

    // All of `into`, or an error with the bytes read before it.
    io_result read_exact(std::span<std::byte> into) { return read_exact(background(), into); }
    io_result read_exact(const context& ctx, std::span<std::byte> into);
    task<io_result> async_read_exact(std::span<std::byte> into) {
        return async_read_exact(background(), into);
    }
    task<io_result> async_read_exact(const context& ctx, std::span<std::byte> into);

    // All of `bytes`, or an error with the bytes written before it. The caller keeps `bytes`
    // alive until the operation returns.
    io_result write_all(std::span<const std::byte> bytes) { return write_all(background(), bytes); }
    io_result write_all(const context& ctx, std::span<const std::byte> bytes);
    task<io_result> async_write_all(std::span<const std::byte> bytes) {
        return async_write_all(background(), bytes);
    }
    task<io_result> async_write_all(const context& ctx, std::span<const std::byte> bytes);

    // Go's deadlines: absolute, for every later operation in that direction and for one pending
    // now; nullopt removes it. An operation past its deadline returns deadline_exceeded.
    void set_deadline(std::optional<time_point> t) noexcept {
        set_read_deadline(t);
        set_write_deadline(t);
    }
    void set_read_deadline(std::optional<time_point> t) noexcept;
    void set_write_deadline(std::optional<time_point> t) noexcept;

    // Half-close: the peer reads eof; this end may still read.
    std::error_code shutdown_write() noexcept;
    // Closes the connection; pending operations return closed. Idempotent.
    void close() noexcept;
    bool is_open() const noexcept;

    // TCP_NODELAY (on by default for TCP, as in Go).
    std::error_code set_no_delay(bool on) noexcept;

    result<endpoint> local_address() const;
    result<endpoint> remote_address() const;
    // The socket, for options weft has no call for; -1 when closed. Do not close it.
    int native_handle() const noexcept;

private:
    detail::io_handle handle_;
};

// ---- implementation ------------------------------------------------------------------------

} // namespace weft::net

namespace weft::detail {

// Makes `fd` non-blocking and gives it an entry; TCP sockets get TCP_NODELAY (Go's default).
inline io_handle net_adopt(int fd) {
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0 && !(flags & O_NONBLOCK))
        ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); // fails harmlessly on Unix
    return io_registry::instance().add(fd, true);
}

// getsockname/getpeername on a live handle.
template <class Get>
net::result<net::endpoint> net_address(io_handle h, Get get) {
    io_call call(h);
    if (!call)
        return net::errc::closed;
    sockaddr_storage addr{};
    socklen_t size = sizeof addr;
    if (get(call.fd(), reinterpret_cast<sockaddr*>(&addr), &size) != 0)
        return std::error_code(errno, std::system_category());
    return net::endpoint(reinterpret_cast<const sockaddr*>(&addr), size);
}

} // namespace weft::detail

namespace weft::net {

inline conn::conn(int fd) : handle_(weft::detail::net_adopt(fd)) {}

inline conn& conn::operator=(conn&& other) noexcept {
    if (this != &other) {
        close();
        handle_ = std::exchange(other.handle_, {});
    }
    return *this;
}

inline io_result conn::read(const context& ctx, std::span<std::byte> into) {
    weft::detail::net_read_some attempt{into};
    return weft::detail::net_run_thread(handle_, weft::detail::io_dir::read, ctx, attempt);
}
inline task<io_result> conn::async_read(const context& ctx, std::span<std::byte> into) {
    return weft::detail::net_run_task(handle_, weft::detail::io_dir::read, ctx,
                                      weft::detail::net_read_some{into});
}
inline io_result conn::read_exact(const context& ctx, std::span<std::byte> into) {
    weft::detail::net_read_exact attempt{into};
    return weft::detail::net_run_thread(handle_, weft::detail::io_dir::read, ctx, attempt);
}
inline task<io_result> conn::async_read_exact(const context& ctx, std::span<std::byte> into) {
    return weft::detail::net_run_task(handle_, weft::detail::io_dir::read, ctx,
                                      weft::detail::net_read_exact{into});
}
inline io_result conn::write_all(const context& ctx, std::span<const std::byte> bytes) {
    weft::detail::net_write_all attempt{bytes};
    return weft::detail::net_run_thread(handle_, weft::detail::io_dir::write, ctx, attempt);
}
inline task<io_result> conn::async_write_all(const context& ctx, std::span<const std::byte> bytes) {
    return weft::detail::net_run_task(handle_, weft::detail::io_dir::write, ctx,
                                      weft::detail::net_write_all{bytes});
}

inline void conn::set_read_deadline(std::optional<time_point> t) noexcept {
    if (auto* e = weft::detail::io_registry::instance().find(handle_))
        weft::detail::io_registry::set_deadline(*e, handle_, weft::detail::io_dir::read, t);
}
inline void conn::set_write_deadline(std::optional<time_point> t) noexcept {
    if (auto* e = weft::detail::io_registry::instance().find(handle_))
        weft::detail::io_registry::set_deadline(*e, handle_, weft::detail::io_dir::write, t);
}

inline std::error_code conn::shutdown_write() noexcept {
    weft::detail::io_call call(handle_);
    if (!call)
        return errc::closed;
    if (::shutdown(call.fd(), SHUT_WR) != 0)
        return {errno, std::system_category()};
    return {};
}

// The handle stays (stale): close() may race with an operation that reads it.
inline void conn::close() noexcept {
    if (handle_.valid())
        weft::detail::io_registry::instance().close(handle_);
}

inline bool conn::is_open() const noexcept {
    const auto* e = weft::detail::io_registry::instance().find(handle_);
    return e && e->live(handle_);
}

inline std::error_code conn::set_no_delay(bool on) noexcept {
    weft::detail::io_call call(handle_);
    if (!call)
        return errc::closed;
    const int value = on ? 1 : 0;
    if (::setsockopt(call.fd(), IPPROTO_TCP, TCP_NODELAY, &value, sizeof value) != 0)
        return {errno, std::system_category()};
    return {};
}

inline result<endpoint> conn::local_address() const {
    return weft::detail::net_address(handle_, ::getsockname);
}
inline result<endpoint> conn::remote_address() const {
    return weft::detail::net_address(handle_, ::getpeername);
}

inline int conn::native_handle() const noexcept {
    const weft::detail::io_call call(handle_); // the fd cannot be closed while we read it
    return call ? call.fd() : -1;
}

} // namespace weft::net
