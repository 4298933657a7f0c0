// Helpers for the weft::net tests: descriptor counts, CPU time, a listener on loopback.
#pragma once

#include <weft/context.hpp>
#include <weft/future.hpp>
#include <weft/net.hpp>
#include <weft/scheduler.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace weft_test {

// Open descriptors of this process (/proc/self/fd, less the one the listing itself opens).
inline std::size_t open_fds() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd"))
        ++n;
    return n - 1;
}

// Raises the soft descriptor limit to the hard one; returns the soft limit now.
inline std::size_t raise_fd_limit() {
    rlimit r{};
    ::getrlimit(RLIMIT_NOFILE, &r);
    r.rlim_cur = r.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &r);
    ::getrlimit(RLIMIT_NOFILE, &r);
    return static_cast<std::size_t>(r.rlim_cur);
}

// CPU time (user + system) this process has used.
inline std::chrono::microseconds cpu_time() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    auto us = [](const timeval& t) {
        return std::chrono::seconds(t.tv_sec) + std::chrono::microseconds(t.tv_usec);
    };
    return std::chrono::duration_cast<std::chrono::microseconds>(us(u.ru_utime) + us(u.ru_stime));
}

// A connected pair {accepted, dialled} made with the thread forms (the kernel completes the
// handshake before accept).
inline std::pair<weft::net::result<weft::net::conn>, weft::net::result<weft::net::conn>>
connected_pair(weft::net::listener& l, const std::string& address) {
    weft::net::result<weft::net::conn> dialled = weft::net::dial(address);
    weft::net::result<weft::net::conn> accepted = l.accept();
    return {std::move(accepted), std::move(dialled)};
}

// A listener on a free loopback port, and its address.
struct loopback {
    weft::net::listener listener;
    std::string address;

    explicit loopback(weft::net::listen_options options = {}) {
        auto l = weft::net::listen("127.0.0.1:0", options);
        if (!l)
            throw std::runtime_error("listen on loopback: " + l.error().message());
        listener = std::move(*l);
        address = listener.local_address()->to_string();
    }
};

// Runs `t` on `s`; its result arrives through the future.
template <class T>
weft::future<T> spawn_future(weft::scheduler& s, weft::task<T> t) {
    weft::promise<T> p;
    weft::future<T> f = p.get_future();
    s.spawn([](weft::task<T> t, weft::promise<T> p) -> weft::task<void> {
        p.set_value(co_await std::move(t));
    }(std::move(t), std::move(p)));
    return f;
}

// Whether `f` has its result within `d` (a bound on a wait that should end much sooner).
template <class T>
bool ready_within(weft::future<T>& f, std::chrono::steady_clock::duration d) {
    auto [ctx, cancel] = weft::with_timeout(weft::background(), d);
    return f.wait(ctx) == weft::status::ok;
}

} // namespace weft_test
