// slowcalls_tcp: the seed article's n slow third-party calls, over real TCP on loopback, client
// and server in one process, on a 2-worker weft::scheduler; as golang/slowcalls_tcp. The soft
// RLIMIT_NOFILE is raised to the hard limit first (both ends: 2n descriptors). A listener on
// 127.0.0.1:0 with an accept-loop task (async_accept; started before the clock) that starts a
// task per connection with weft::go: async_read_exact of a 16-byte request, co_await
// weft::sleep_for(call_ms) (the slow service), async_write_all of a 16-byte response, close. n
// client tasks, all started at once under when_all(vector): each async_dial's, writes its
// request (async_write_all), reads the response (async_read_exact), checks it, closes. Request
// of call i: i, then key = splitmix64(seed i).next(); response: i, then splitmix64(seed i ^
// key).next() (little-endian uint64s). wall_ms: from starting the clients to the last
// response read. Reported: wall time, peak OS threads (/proc/self/status Threads polled every
// 10 ms by a sampler thread, which is not counted), peak RSS (VmHWM), most calls sleeping at
// once on the server side, last_sent_ms (when the last request was written, from the clock's
// start: the dials' and writes' share of the wall time), the descriptor limit. Check: all n
// responses right, no error on either side, every server task finished, wall time at least
// call_ms. With -limit=L > 0 (workload slowcalls_tcp_limited) at most L calls are in flight: a
// channel of L slots as Go's counting semaphore (a send takes a slot before a call starts, the
// call's task gives it back with a receive after closing its connection); then at most L sleep
// at once on the server side and the wall time is at least ceil(n/L) x call_ms.
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
#include <vector>

namespace {

namespace net = weft::net;

using message = std::array<std::byte, 16>;

void put64(message& m, std::size_t at, std::uint64_t v) {
    for (std::size_t b = 0; b < 8; ++b)
        m[at + b] = std::byte(static_cast<unsigned char>(v >> (8 * b)));
}
std::uint64_t get64(const message& m, std::size_t at) {
    std::uint64_t v = 0;
    for (std::size_t b = 0; b < 8; ++b)
        v |= static_cast<std::uint64_t>(m[at + b]) << (8 * b);
    return v;
}

// What the server answers for a request (index, key).
std::uint64_t checksum(std::uint64_t index, std::uint64_t key) {
    return harness::splitmix64(index ^ key).next();
}

// Raises `a` to `v`.
void atomic_max(std::atomic<std::int64_t>& a, std::int64_t v) {
    std::int64_t seen = a.load();
    while (v > seen && !a.compare_exchange_weak(seen, v)) {
    }
}

// Counted on both sides; read after the joins.
struct counters {
    std::atomic<std::int64_t> in_flight{0}, max_in_flight{0}, accepted{0}, server_errors{0};
    std::atomic<std::int64_t> good{0}, client_errors{0};
    std::atomic<std::int64_t> last_sent_ns{0}; // after `start`
    harness::clk::time_point start;
    void begin() { atomic_max(max_in_flight, in_flight.fetch_add(1) + 1); }
    void end() { in_flight.fetch_sub(1); }
};

weft::task<void> serve(net::conn c, std::chrono::milliseconds d, counters& n,
                       weft::wait_group& served) {
    message req{}, resp{};
    if (!co_await c.async_read_exact(req)) {
        n.server_errors.fetch_add(1, std::memory_order_relaxed);
    } else {
        const std::uint64_t index = get64(req, 0), key = get64(req, 8);
        n.begin();
        co_await weft::sleep_for(d); // the slow service
        n.end();
        put64(resp, 0, index);
        put64(resp, 8, checksum(index, key));
        if (!co_await c.async_write_all(resp))
            n.server_errors.fetch_add(1, std::memory_order_relaxed);
    }
    c.close();
    served.done();
}

weft::task<void> accept_loop(net::listener& l, std::chrono::milliseconds d, counters& n,
                             weft::wait_group& served) {
    for (;;) {
        net::result<net::conn> c = co_await l.async_accept();
        if (!c)
            co_return; // closed
        n.accepted.fetch_add(1, std::memory_order_relaxed);
        served.add(1);
        weft::go(serve(std::move(*c), d, n, served));
    }
}

weft::task<void> client(std::string address, std::uint64_t i, counters& n) {
    net::result<net::conn> c = co_await net::async_dial(address);
    if (!c) {
        n.client_errors.fetch_add(1, std::memory_order_relaxed);
        co_return;
    }
    message req{}, resp{};
    const std::uint64_t key = harness::splitmix64(i).next();
    put64(req, 0, i);
    put64(req, 8, key);
    if (!co_await c->async_write_all(req)) {
        n.client_errors.fetch_add(1, std::memory_order_relaxed);
        co_return;
    }
    atomic_max(n.last_sent_ns,
               std::chrono::duration_cast<std::chrono::nanoseconds>(harness::clk::now() - n.start)
                   .count());
    if (!co_await c->async_read_exact(resp) || get64(resp, 0) != i ||
        get64(resp, 8) != checksum(i, key)) {
        n.client_errors.fetch_add(1, std::memory_order_relaxed);
        co_return;
    }
    n.good.fetch_add(1, std::memory_order_relaxed);
    c->close();
}

weft::task<void> all_clients(std::string address, std::int64_t count, counters& n) {
    std::vector<weft::task<void>> calls;
    calls.reserve(static_cast<std::size_t>(count));
    for (std::int64_t i = 0; i < count; ++i)
        calls.push_back(client(address, static_cast<std::uint64_t>(i), n));
    co_await weft::when_all(std::move(calls));
}

struct slot {};

weft::task<void> client_holding(std::string address, std::uint64_t i, counters& n,
                                weft::channel<slot> sem) {
    co_await client(std::move(address), i, n); // its connection is closed when it returns
    (void)co_await sem.async_recv();           // give the slot back
}

// At most `limit` calls in flight: Go's buffered channel used as a counting semaphore.
weft::task<void> limited_clients(std::string address, std::int64_t count, std::int64_t limit,
                                 counters& n) {
    weft::channel<slot> sem(static_cast<std::size_t>(limit));
    weft::task_group calls;
    for (std::int64_t i = 0; i < count; ++i) {
        co_await sem.async_send(slot{}); // take a slot; suspends while all are taken
        calls.spawn(client_holding(address, static_cast<std::uint64_t>(i), n, sem));
    }
    co_await calls.wait();
}

} // namespace

int main(int argc, char** argv) {
    harness::flags f(argc, argv);
    const std::int64_t n = f.get("n", 1000);
    const std::chrono::milliseconds d(f.get("call_ms", 200));
    const std::int64_t limit = f.get("limit", std::int64_t{0}); // 0: all at once
    const std::int64_t workers = f.get("workers", 2);
    const std::string variant = f.variant({"tasks"});
    const char* workload = limit > 0 ? "slowcalls_tcp_limited" : "slowcalls_tcp";

    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
    ::getrlimit(RLIMIT_NOFILE, &rl);

    weft::scheduler s(static_cast<std::size_t>(workers)); // started before the clock
    net::result<net::listener> l = net::listen("127.0.0.1:0", {.backlog = 4096});
    if (!l) {
        std::fprintf(stderr, "listen: %s\n", l.error().message().c_str());
        return 1;
    }
    const std::string address = l->local_address()->to_string();
    counters c;
    weft::wait_group served;
    s.spawn(accept_loop(*l, d, c, served));

    harness::thread_sampler sampler;
    harness::timer t;
    c.start = t.start;
    if (limit > 0)
        weft::sync_wait(s, limited_clients(address, n, limit, c));
    else
        weft::sync_wait(s, all_clients(address, n, c));
    t.stop();
    const std::int64_t threads = sampler.stop();
    served.wait(); // every server task has closed its end (outside the clock)
    l->close();

    const std::int64_t good = c.good.load(), accepted = c.accepted.load();
    const std::int64_t cerr = c.client_errors.load(), serr = c.server_errors.load();
    // One call's time, or n/limit waves of it.
    const double lower_ms = static_cast<double>(d.count()) *
                            (limit > 0 ? static_cast<double>((n + limit - 1) / limit) : 1.0);
    std::string why;
    if (good != n || cerr != 0 || serr != 0 || accepted != n)
        why = std::to_string(good) + " right responses of " + std::to_string(n) + ", " +
              std::to_string(accepted) + " accepted, errors: client " + std::to_string(cerr) +
              ", server " + std::to_string(serr) + " (fd limit " +
              std::to_string(static_cast<std::int64_t>(rl.rlim_cur)) + ")";
    else if (limit > 0 && c.max_in_flight.load() > limit)
        why = std::to_string(c.max_in_flight.load()) + " calls in flight at once, limit " +
              std::to_string(limit);
    else if (t.wall_ms < lower_ms * 0.95)
        why = "took " + std::to_string(t.wall_ms) + " ms, less than the lower bound " +
              std::to_string(lower_ms) + " ms";
    return harness::report(workload, variant, workers, t, why.empty(), why,
                           {{"n", n},
                            {"peak_threads", threads},
                            {"peak_rss_mb", harness::mb(harness::status_field("VmHWM"))},
                            {"max_in_flight", c.max_in_flight.load()},
                            {"last_sent_ms", static_cast<double>(c.last_sent_ns.load()) / 1e6},
                            {"fd_limit", static_cast<std::int64_t>(rl.rlim_cur)}});
}
