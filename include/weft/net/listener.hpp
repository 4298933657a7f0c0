// weft::net::listener — a listening stream socket (Go's net.Listen).
//
//   auto l = net::listen("127.0.0.1:0");           // result<listener>; port 0 picks one
//   net::result<net::conn> c = co_await l->async_accept(ctx);
//
// accept suspends the task until a connection comes, the context ends or close() is called
// (closed). Accepted sockets are non-blocking and close-on-exec (accept4). When the process is
// out of descriptors (EMFILE, ENFILE) or memory, accept waits and retries, backing off from
// 5 ms to 1 s (Go's http.Server does the same), instead of returning or spinning.
#pragma once

#include "../time.hpp"
#include "address.hpp"
#include "conn.hpp"
#include "detail/io_ops.hpp"
#include "error.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string_view>

namespace weft::net {

struct listen_options {
    int backlog = 4096;
    bool reuse_address = true; // SO_REUSEADDR: restart without waiting out TIME_WAIT
    bool reuse_port = false;   // SO_REUSEPORT: several listeners share the port
};

class listener {
public:
    listener() noexcept = default;
    listener(listener&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
    listener& operator=(listener&& other) noexcept;
    listener(const listener&) = delete;
    listener& operator=(const listener&) = delete;
    ~listener() { close(); }

    // The next connection, or an error: closed, the context's, or the system's.
    result<conn> accept() { return accept(background()); }
    result<conn> accept(const context& ctx);
    task<result<conn>> async_accept() { return async_accept(background()); }
    task<result<conn>> async_accept(context ctx);

    // Stops listening; a pending accept returns closed. Idempotent.
    void close() noexcept {
        if (handle_.valid())
            weft::detail::io_registry::instance().close(handle_);
    }
    // Where it listens (with the port the system picked for ":0").
    result<endpoint> local_address() const {
        return weft::detail::net_address(handle_, ::getsockname);
    }
    int native_handle() const noexcept {
        const weft::detail::io_call call(handle_); // the fd cannot close while we read it
        return call ? call.fd() : -1;
    }

private:
    friend result<listener> listen(std::string_view, listen_options);
    explicit listener(weft::detail::io_handle h) noexcept : handle_(h) {}

    weft::detail::io_handle handle_;
};

// Binds and listens on a numeric address ("127.0.0.1:8080", "[::]:0", ":8080", "unix:/path").
// Errors: bad_address, or the system's (address_in_use, permission_denied, ...).
result<listener> listen(std::string_view address, listen_options options = {});

// ---- implementation ------------------------------------------------------------------------

} // namespace weft::net

namespace weft::detail {

// One accept4 attempt; EMFILE and friends are errors here, the loops back off on them.
struct net_accept {
    std::optional<net::conn> accepted;

    std::optional<std::error_code> operator()(int fd) {
        for (;;) {
            const int c = ::accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (c >= 0) {
                accepted.emplace(c);
                return std::error_code();
            }
            if (errno == EINTR || errno == ECONNABORTED)
                continue; // the peer gave up before we took it: take the next
            return net_errno();
        }
    }
    net::result<net::conn> finish(std::error_code e) {
        if (e)
            return e;
        return std::move(*accepted);
    }
};

// Out of descriptors or memory: wait and retry rather than fail the server's accept loop.
inline bool net_accept_should_back_off(std::error_code e) noexcept {
    return e.category() == std::system_category() && (e.value() == EMFILE || e.value() == ENFILE ||
                                                      e.value() == ENOBUFS || e.value() == ENOMEM);
}

inline constexpr auto k_accept_backoff_first = std::chrono::milliseconds(5);
inline constexpr auto k_accept_backoff_max = std::chrono::seconds(1);

} // namespace weft::detail

namespace weft::net {

inline listener& listener::operator=(listener&& other) noexcept {
    if (this != &other) {
        close();
        handle_ = std::exchange(other.handle_, {});
    }
    return *this;
}

inline result<conn> listener::accept(const context& ctx) {
    auto backoff = weft::detail::k_accept_backoff_first;
    for (;;) {
        weft::detail::net_accept attempt;
        result<conn> r =
            weft::detail::net_run_thread(handle_, weft::detail::io_dir::read, ctx, attempt);
        if (r || !weft::detail::net_accept_should_back_off(r.error()))
            return r;
        if (this_thread::sleep_for(ctx, backoff) != status::ok)
            return weft::detail::net_wait_error(weft::detail::park_step::cancelled, ctx);
        backoff =
            std::min<std::chrono::milliseconds>(backoff * 2, weft::detail::k_accept_backoff_max);
    }
}

inline task<result<conn>> listener::async_accept(context ctx) {
    auto backoff = weft::detail::k_accept_backoff_first;
    for (;;) {
        weft::detail::net_accept attempt; // named: g++ 12 and aggregates in co_await (README)
        result<conn> r = co_await weft::detail::net_run_task(handle_, weft::detail::io_dir::read,
                                                             ctx, std::move(attempt));
        if (r || !weft::detail::net_accept_should_back_off(r.error()))
            co_return r;
        const status slept = co_await sleep_for(ctx, backoff);
        if (slept != status::ok)
            co_return weft::detail::net_wait_error(weft::detail::park_step::cancelled, ctx);
        backoff =
            std::min<std::chrono::milliseconds>(backoff * 2, weft::detail::k_accept_backoff_max);
    }
}

inline result<listener> listen(std::string_view address, listen_options options) {
    result<endpoint> where = endpoint::parse(address);
    if (!where)
        return where.error();
    const int fd = ::socket(where->family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return std::error_code(errno, std::system_category());
    auto fail = [fd] {
        const std::error_code e(errno, std::system_category());
        ::close(fd);
        return e;
    };
    const int one = 1;
    if (where->family() != AF_UNIX) {
        if (options.reuse_address &&
            ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
            return fail();
        if (options.reuse_port && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
            return fail();
    }
    if (::bind(fd, where->data(), where->size()) != 0 || ::listen(fd, options.backlog) != 0)
        return fail();
    return listener(weft::detail::io_registry::instance().add(fd, true));
}

} // namespace weft::net
