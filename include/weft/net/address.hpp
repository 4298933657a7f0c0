// weft::net::endpoint — a socket address (IPv4, IPv6 or a Unix socket path), and how text
// becomes one.
//
//   endpoint::parse("127.0.0.1:8080"), parse("[::1]:8080"), parse(":8080") (every interface),
//   parse("unix:/run/app.sock")  -> result<endpoint>, numeric only, never blocks
//   resolve("example.com:443")   -> result<std::vector<endpoint>>: getaddrinfo, blocks the
//                                   calling thread (async_resolve runs it on spawn_blocking)
#pragma once

#include "../spawn_blocking.hpp"
#include "../task.hpp"
#include "error.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <charconv>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace weft::net {

class endpoint {
public:
    endpoint() noexcept = default;
    // A copy of `addr` (`size` bytes), as accept() or getpeername() give it.
    endpoint(const sockaddr* addr, socklen_t size) noexcept;

    // A numeric address: "a.b.c.d:port", "[v6]:port", ":port" (IPv6 any, which also accepts
    // IPv4 on Linux's default), "unix:/path" or "unix:@abstract". bad_address otherwise.
    static result<endpoint> parse(std::string_view text);

    int family() const noexcept { return storage_.ss_family; }
    std::uint16_t port() const noexcept; // 0 for a Unix socket
    const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
    socklen_t size() const noexcept { return size_; }

    // "127.0.0.1:8080", "[::1]:8080", "unix:/path".
    std::string to_string() const;

private:
    sockaddr_storage storage_{};
    socklen_t size_ = 0;
};

// Splits "host:port" ("[v6]:port" too) and resolves the host with getaddrinfo (numeric hosts
// and "unix:" paths without it). Blocks the calling thread: in a task use async_resolve.
// host_not_found when the name has no address, bad_address when the text does not parse.
result<std::vector<endpoint>> resolve(std::string_view address);

// resolve() on the blocking pool (spawn_blocking): the task waits, its worker does not.
task<result<std::vector<endpoint>>> async_resolve(std::string address);

// ---- implementation ------------------------------------------------------------------------

inline endpoint::endpoint(const sockaddr* addr, socklen_t size) noexcept
    : size_(std::min<socklen_t>(size, sizeof storage_)) {
    std::memcpy(&storage_, addr, size_);
}

inline std::uint16_t endpoint::port() const noexcept {
    if (family() == AF_INET)
        return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
    if (family() == AF_INET6)
        return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
    return 0;
}

inline std::string endpoint::to_string() const {
    char text[INET6_ADDRSTRLEN] = {};
    if (family() == AF_INET) {
        ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, text,
                    sizeof text);
        return std::string(text) + ":" + std::to_string(port());
    }
    if (family() == AF_INET6) {
        ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, text,
                    sizeof text);
        return "[" + std::string(text) + "]:" + std::to_string(port());
    }
    if (family() == AF_UNIX) {
        const auto* un = reinterpret_cast<const sockaddr_un*>(&storage_);
        const std::size_t path_size = size_ - offsetof(sockaddr_un, sun_path);
        if (path_size > 0 && un->sun_path[0] == '\0')
            return "unix:@" + std::string(un->sun_path + 1, path_size - 1);
        return "unix:" + std::string(un->sun_path, ::strnlen(un->sun_path, path_size));
    }
    return "(unknown address family)";
}

} // namespace weft::net

namespace weft::detail {

// "host:port" -> {host, port}; the host without brackets. False if it does not split.
inline bool split_host_port(std::string_view text, std::string_view& host, std::uint16_t& port) {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos)
        return false;
    host = text.substr(0, colon);
    const std::string_view digits = text.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    else if (host.find(':') != std::string_view::npos)
        return false; // an IPv6 host needs brackets
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    return ec == std::errc() && end == digits.data() + digits.size() && !digits.empty() &&
           value <= 65535 && (port = static_cast<std::uint16_t>(value), true);
}

inline net::result<net::endpoint> parse_unix(std::string_view path) {
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof un.sun_path)
        return net::errc::bad_address;
    std::memcpy(un.sun_path, path.data(), path.size());
    if (path.front() == '@')
        un.sun_path[0] = '\0'; // Linux's abstract namespace
    const auto size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() +
                                             (path.front() == '@' ? 0 : 1));
    return net::endpoint(reinterpret_cast<const sockaddr*>(&un), size);
}

// A numeric host and a port, or nullopt if the host is a name.
inline std::optional<net::endpoint> numeric(std::string_view host, std::uint16_t port) {
    const std::string h(host);
    sockaddr_in v4{};
    v4.sin_family = AF_INET;
    v4.sin_port = htons(port);
    if (::inet_pton(AF_INET, h.c_str(), &v4.sin_addr) == 1)
        return net::endpoint(reinterpret_cast<const sockaddr*>(&v4), sizeof v4);
    sockaddr_in6 v6{};
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(port);
    if (h.empty() || ::inet_pton(AF_INET6, h.c_str(), &v6.sin6_addr) == 1) // "" = in6addr_any
        return net::endpoint(reinterpret_cast<const sockaddr*>(&v6), sizeof v6);
    return std::nullopt;
}

} // namespace weft::detail

namespace weft::net {

inline result<endpoint> endpoint::parse(std::string_view text) {
    if (text.starts_with("unix:"))
        return weft::detail::parse_unix(text.substr(5));
    std::string_view host;
    std::uint16_t port = 0;
    if (!weft::detail::split_host_port(text, host, port))
        return errc::bad_address;
    if (auto e = weft::detail::numeric(host, port))
        return *e;
    return errc::bad_address;
}

inline result<std::vector<endpoint>> resolve(std::string_view address) {
    if (address.starts_with("unix:")) {
        auto e = endpoint::parse(address);
        if (!e)
            return e.error();
        return std::vector<endpoint>{*e};
    }
    std::string_view host;
    std::uint16_t port = 0;
    if (!weft::detail::split_host_port(address, host, port))
        return errc::bad_address;
    if (auto e = weft::detail::numeric(host, port))
        return std::vector<endpoint>{*e};
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    addrinfo* found = nullptr;
    const std::string name(host);
    if (::getaddrinfo(name.c_str(), nullptr, &hints, &found) != 0 || !found)
        return errc::host_not_found;
    std::vector<endpoint> out;
    for (addrinfo* a = found; a; a = a->ai_next) {
        if (a->ai_family == AF_INET)
            reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_port = htons(port);
        else if (a->ai_family == AF_INET6)
            reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_port = htons(port);
        else
            continue;
        out.emplace_back(a->ai_addr, static_cast<socklen_t>(a->ai_addrlen));
    }
    ::freeaddrinfo(found);
    if (out.empty())
        return errc::host_not_found;
    return out;
}

inline task<result<std::vector<endpoint>>> async_resolve(std::string address) {
    co_return co_await spawn_blocking([&address] { return resolve(address); });
}

} // namespace weft::net
