// weft::net::dial — connect to a listening socket (Go's net.Dial / DialContext).
//
//   net::result<net::conn> c = co_await net::async_dial(ctx, "127.0.0.1:8080");
//   auto c = co_await net::async_dial(ctx, "example.com:80", {.timeout = 2s});
//
// The address is "host:port" ("[v6]:port") or "unix:/path". A host name is resolved with
// getaddrinfo on the blocking pool (the task waits, its worker does not), and its addresses are
// tried in order until one connects; the last error is returned if none does
// (connection_refused, network_unreachable, ...). The connect itself suspends the task until
// the socket is writable. `timeout` bounds the whole dial, resolution included; the context
// may end it earlier (its error is returned).
#pragma once

#include "address.hpp"
#include "conn.hpp"
#include "detail/io_ops.hpp"
#include "error.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace weft::net {

struct dial_options {
    // Bounds the whole dial (Go's Dialer.Timeout); none when zero.
    std::chrono::steady_clock::duration timeout{};
};

// Thread form: blocks the calling thread.
result<conn> dial(const context& ctx, std::string_view address, dial_options options = {});
inline result<conn> dial(std::string_view address, dial_options options = {}) {
    return dial(background(), address, options);
}

// Task form: suspends the task, not its worker.
task<result<conn>> async_dial(context ctx, std::string address, dial_options options = {});
inline task<result<conn>> async_dial(std::string address, dial_options options = {}) {
    return async_dial(background(), std::move(address), options);
}

// ---- implementation ------------------------------------------------------------------------

} // namespace weft::net

namespace weft::detail {

// Connects the socket of an entry: connect() once, then after each wake-up asks whether the
// connection is up (SO_ERROR for a failure, getpeername for success).
struct net_connect {
    net::endpoint target;
    bool started = false;

    std::optional<std::error_code> operator()(int fd) {
        if (!started) {
            started = true;
            while (::connect(fd, target.data(), target.size()) != 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EINPROGRESS || errno == EAGAIN)
                    return std::nullopt;
                return std::error_code(errno, std::system_category());
            }
            return std::error_code();
        }
        int error = 0;
        socklen_t size = sizeof error;
        if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0)
            return std::error_code(errno, std::system_category());
        if (error != 0)
            return std::error_code(error, std::system_category());
        sockaddr_storage peer{};
        socklen_t peer_size = sizeof peer;
        if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_size) == 0)
            return std::error_code();
        return std::nullopt; // still connecting: a spurious wake-up
    }
    std::error_code finish(std::error_code e) const { return e; }
};

// A socket for `target`, in an entry of its own (closed with it).
inline net::result<io_handle> net_socket_for(const net::endpoint& target) {
    const int fd = ::socket(target.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return std::error_code(errno, std::system_category());
    return net_adopt(fd);
}

// The context a dial runs under: `ctx`, or a child with the dial's timeout.
inline std::pair<context, std::optional<cancel_func>>
net_dial_context(const context& ctx, const net::dial_options& options) {
    if (options.timeout <= options.timeout.zero())
        return {ctx, std::nullopt};
    auto [child, cancel] = with_timeout(ctx, options.timeout);
    return {std::move(child), std::move(cancel)};
}

} // namespace weft::detail

namespace weft::net {

// The address without a lookup: host_not_found when the host is a name.
inline result<std::vector<endpoint>> resolve_numeric(std::string_view address) {
    if (address.starts_with("unix:") || endpoint::parse(address))
        return resolve(address);
    std::string_view host;
    std::uint16_t port = 0;
    if (!weft::detail::split_host_port(address, host, port))
        return errc::bad_address;
    return errc::host_not_found;
}

inline result<conn> dial(const context& ctx, std::string_view address, dial_options options) {
    auto [dial_ctx, cancel] = weft::detail::net_dial_context(ctx, options);
    result<std::vector<endpoint>> targets = resolve(address);
    if (!targets)
        return targets.error();
    std::error_code last = errc::host_not_found;
    for (const endpoint& target : *targets) {
        auto socket = weft::detail::net_socket_for(target);
        if (!socket) {
            last = socket.error();
            continue;
        }
        conn owner(weft::detail::net_handle_tag{}, *socket); // closes it unless connected
        weft::detail::net_connect attempt{target};
        last =
            weft::detail::net_run_thread(*socket, weft::detail::io_dir::write, dial_ctx, attempt);
        if (!last) {
            if (cancel)
                (*cancel)(); // releases the timeout's timer now
            return owner;
        }
        if (dial_ctx.err())
            break; // cancelled or timed out: no point trying the next address
    }
    if (cancel)
        (*cancel)();
    return last;
}

inline task<result<conn>> async_dial(context ctx, std::string address, dial_options options) {
    auto [dial_ctx, cancel] = weft::detail::net_dial_context(ctx, options);
    result<std::vector<endpoint>> targets = resolve_numeric(address);
    if (!targets && targets.error() == errc::host_not_found)
        targets = co_await async_resolve(address); // a name: getaddrinfo on the blocking pool
    if (!targets)
        co_return targets.error();
    std::error_code last = errc::host_not_found;
    for (const endpoint& target : *targets) {
        auto socket = weft::detail::net_socket_for(target);
        if (!socket) {
            last = socket.error();
            continue;
        }
        // The conn owns the socket from here: closed if the dial fails, or if the frame is
        // destroyed mid-dial (its scheduler shut down).
        conn owner(weft::detail::net_handle_tag{}, *socket);
        weft::detail::net_connect attempt{target}; // named: see listener.hpp
        last = co_await weft::detail::net_run_task(*socket, weft::detail::io_dir::write, dial_ctx,
                                                   std::move(attempt));
        if (!last) {
            if (cancel)
                (*cancel)(); // releases the timeout's timer now
            co_return std::move(owner);
        }
        if (dial_ctx.err())
            break;
    }
    if (cancel)
        (*cancel)();
    co_return last;
}

} // namespace weft::net
