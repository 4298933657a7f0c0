// idleconn: n idle TCP connections over loopback, both ends in this process (2n descriptors),
// each server end with a task blocked in co_await async_read (into a 512-byte buffer in its
// frame), on a 2-worker scheduler; as golang/idleconn. The soft RLIMIT_NOFILE is raised to the
// hard limit first; when that cannot hold 2n descriptors plus 200 spare, n is lowered to the
// largest multiple of 1000 that fits (n_asked says what was asked). An accept-loop task
// (async_accept) starts one reader task per connection with weft::go; one task dials the n
// connections one after another (async_dial), as Go's main goroutine does. Reported: bytes_per
// = (VmRSS when all are connected and blocked - VmRSS before the first dial) / n, both ends and
// the reader included (the vector of client conns is allocated before the baseline; a 20 ms
// pause lets the last readers reach their read); wall_ms / cpu_ms = a 500 ms idle window after
// that (cpu_ms = the process's CPU time in it: the cost of n idle connections); setup_ms =
// dials and accepts. Then a task writes one byte (i % 251) on every client and closes it; each
// reader reads it, then eof. Check: all n readers finished, the bytes sum right, no errors.
#include "common.hpp"

#include <weft/net.hpp>
#include <weft/weft.hpp>

#include <sys/resource.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace net = weft::net;

struct counters {
    weft::wait_group started, done;
    std::atomic<std::int64_t> sum{0}, finished{0}, errors{0};
};

weft::task<void> reader(net::conn c, counters& n) {
    std::array<std::byte, 512> buf{};
    n.started.done();
    const net::io_result r = co_await c.async_read(buf);
    if (!r || r.bytes != 1) {
        n.errors.fetch_add(1, std::memory_order_relaxed);
    } else if (const net::io_result end = co_await c.async_read(buf); end.error != net::errc::eof) {
        n.errors.fetch_add(1, std::memory_order_relaxed);
    } else {
        n.sum.fetch_add(static_cast<std::int64_t>(buf[0]), std::memory_order_relaxed);
        n.finished.fetch_add(1, std::memory_order_relaxed);
    }
    c.close();
    n.done.done();
}

weft::task<void> accept_n(net::listener& l, std::int64_t count, counters& n) {
    for (std::int64_t i = 0; i < count; ++i) {
        net::result<net::conn> c = co_await l.async_accept();
        if (!c) {
            n.errors.fetch_add(1, std::memory_order_relaxed);
            n.started.done();
            n.done.done();
            continue;
        }
        weft::go(reader(std::move(*c), n));
    }
}

weft::task<std::int64_t> dial_all(std::string address, std::vector<net::conn>& clients) {
    std::int64_t failed = 0;
    for (net::conn& c : clients) {
        net::result<net::conn> d = co_await net::async_dial(address);
        if (!d)
            ++failed;
        else
            c = std::move(*d);
    }
    co_return failed;
}

weft::task<std::int64_t> release_all(std::vector<net::conn>& clients) {
    std::int64_t failed = 0;
    for (std::size_t i = 0; i < clients.size(); ++i) {
        const std::array<std::byte, 1> one{std::byte(static_cast<unsigned char>(i % 251))};
        if (!co_await clients[i].async_write_all(one))
            ++failed;
        clients[i].close();
    }
    co_return failed;
}

} // namespace

int main(int argc, char** argv) {
    harness::flags f(argc, argv);
    std::int64_t n = f.get("n", 10'000);
    const std::int64_t idle_ms = f.get("idle_ms", 500);
    const std::int64_t workers = f.get("workers", 2);
    const std::string variant = f.variant({"tasks"});

    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
    ::getrlimit(RLIMIT_NOFILE, &rl);
    const std::int64_t asked = n;
    if (const auto fit = (static_cast<std::int64_t>(rl.rlim_cur) - 200) / 2; n > fit)
        n = fit / 1000 * 1000;

    weft::scheduler s(static_cast<std::size_t>(workers));
    net::result<net::listener> l = net::listen("127.0.0.1:0", {.backlog = 4096});
    if (!l) {
        std::fprintf(stderr, "listen: %s\n", l.error().message().c_str());
        return 1;
    }
    const std::string address = l->local_address()->to_string();
    std::vector<net::conn> clients(static_cast<std::size_t>(n)); // not connected, touched
    counters c;
    const std::int64_t before = harness::status_field("VmRSS");

    c.started.add(n);
    c.done.add(n);
    harness::timer setup;
    s.spawn(accept_n(*l, n, c));
    std::int64_t errors = weft::sync_wait(s, dial_all(address, clients));
    c.started.wait();
    setup.stop();
    std::this_thread::sleep_for(std::chrono::milliseconds(20)); // the last readers reach their read
    const std::int64_t after = harness::status_field("VmRSS");
    const std::int64_t threads = harness::status_field("Threads");

    harness::timer idle;
    std::this_thread::sleep_for(std::chrono::milliseconds(idle_ms));
    idle.stop();

    harness::timer release;
    errors += weft::sync_wait(s, release_all(clients));
    c.done.wait();
    release.stop();
    l->close();

    std::int64_t want = 0;
    for (std::int64_t i = 0; i < n; ++i)
        want += i % 251;
    errors += c.errors.load();
    const std::int64_t finished = c.finished.load(), sum = c.sum.load();
    return harness::report(
        "idleconn", variant, workers, idle, finished == n && sum == want && errors == 0,
        std::to_string(finished) + " finished of " + std::to_string(n) + ", sum " +
            std::to_string(sum) + ", want " + std::to_string(want) + ", " + std::to_string(errors) +
            " errors",
        {{"n", n},
         {"n_asked", asked},
         {"fd_limit", static_cast<std::int64_t>(rl.rlim_cur)},
         {"bytes_per", static_cast<double>(after - before) * 1024.0 / static_cast<double>(n)},
         {"rss_before_mb", harness::mb(before)},
         {"rss_idle_mb", harness::mb(after)},
         {"threads", threads},
         {"setup_ms", setup.wall_ms},
         {"release_ms", release.wall_ms}});
}
