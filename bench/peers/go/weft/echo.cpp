// echo: TCP echo over loopback, client and server in one process, as golang/echo: a listener
// on 127.0.0.1:0 whose accept loop starts one server per connection (read exactly -size bytes,
// write them back, until eof); -conns clients each dial and do -rounds round trips: write
// -size bytes, read exactly -size bytes and compare them with what was sent. Each client times
// its round trips (write start to echo read) for p50_us / p99_us. The message of connection c
// in round r: byte i = c*31 + i, the first 8 bytes then overwritten with c<<32 | r
// (little-endian). wall_ms: from starting the clients (dials included) until every client and
// every server has finished. Check: every echo equal to its message, no error on either side,
// the servers echoed conns*rounds*size bytes. The RESULT line's workload is "echo" and the
// connection count (run.sh's echo100, echo1000). Variants:
//   tasks  weft::net on a 2-worker weft::scheduler: an accept-loop task (async_accept) that
//          starts a task per connection with weft::go (async_read_exact, async_write_all);
//          the clients are tasks (async_dial, async_write_all, async_read_exact) awaited
//          with when_all(vector) under sync_wait; the main thread then waits for the servers
//          on a wait_group. The scheduler is started before the clock, as Go's runtime is.
//   asio   Boost.Asio (not weft), C++20 coroutines (awaitable, co_spawn, use_awaitable,
//          redirect_error): -asio_contexts io_contexts (default 2, one thread each; 1: one
//          io_context run by 2 threads), started before the clock. The acceptor is on the first
//          context and deals the accepted sockets out round robin over the contexts (accept
//          with a per-socket io_context); client c runs on context c % contexts. TCP_NODELAY on
//          both ends, as Go and weft::net set it by default. 2 contexts was the faster
//          configuration on the 2-core VM (see the README).
#include "common.hpp"

#include <weft/net.hpp>
#include <weft/weft.hpp>

#include <boost/asio.hpp>
#include <boost/asio/redirect_error.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace net = weft::net;
namespace asio = boost::asio;
using asio::ip::tcp;

struct params {
    std::int64_t conns, rounds, size;
};

// What both variants count; relaxed: read after the joins.
struct counters {
    std::atomic<std::int64_t> good{0}, client_errors{0}, server_bytes{0}, server_errors{0};
};

// The client's message: byte i = id*31 + i, then round() stamps the first 8 bytes.
void fill(std::vector<std::byte>& out, std::int64_t id) {
    for (std::size_t i = 0; i < out.size(); ++i)
        out[i] = std::byte(static_cast<unsigned char>(id * 31 + static_cast<std::int64_t>(i)));
}
void stamp(std::vector<std::byte>& out, std::int64_t id, std::int64_t r) {
    const std::uint64_t v = static_cast<std::uint64_t>(id) << 32 | static_cast<std::uint64_t>(r);
    for (int b = 0; b < 8 && b < static_cast<int>(out.size()); ++b)
        out[static_cast<std::size_t>(b)] = std::byte(static_cast<unsigned char>(v >> (8 * b)));
}

std::int64_t ns_since(harness::clk::time_point t0) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(harness::clk::now() - t0).count();
}

// --- tasks: weft::net ----------------------------------------------------------------------------

weft::task<void> serve(net::conn c, std::size_t size, counters& n, weft::wait_group& served) {
    std::vector<std::byte> buf(size);
    for (;;) {
        const net::io_result r = co_await c.async_read_exact(buf);
        if (!r) {
            // eof with nothing read: the client is done (io.ReadFull's io.EOF)
            if (!(r.error == net::errc::eof && r.bytes == 0))
                n.server_errors.fetch_add(1, std::memory_order_relaxed);
            break;
        }
        const net::io_result w = co_await c.async_write_all(buf);
        if (!w) {
            n.server_errors.fetch_add(1, std::memory_order_relaxed);
            break;
        }
        n.server_bytes.fetch_add(static_cast<std::int64_t>(size), std::memory_order_relaxed);
    }
    c.close();
    served.done();
}

weft::task<void> accept_loop(net::listener& l, std::size_t size, counters& n,
                             weft::wait_group& served) {
    for (;;) {
        net::result<net::conn> c = co_await l.async_accept();
        if (!c)
            co_return; // closed
        served.add(1);
        weft::go(serve(std::move(*c), size, n, served));
    }
}

weft::task<void> client(std::string address, std::int64_t id, params p, counters& n,
                        std::vector<std::int64_t>& lat) {
    net::result<net::conn> c = co_await net::async_dial(address);
    if (!c) {
        n.client_errors.fetch_add(1, std::memory_order_relaxed);
        co_return;
    }
    std::vector<std::byte> out(static_cast<std::size_t>(p.size)), in(out.size());
    fill(out, id);
    for (std::int64_t r = 0; r < p.rounds; ++r) {
        stamp(out, id, r);
        const auto t0 = harness::clk::now();
        if (!co_await c->async_write_all(out) || !co_await c->async_read_exact(in)) {
            n.client_errors.fetch_add(1, std::memory_order_relaxed);
            co_return;
        }
        lat[static_cast<std::size_t>(r)] = ns_since(t0);
        if (std::memcmp(in.data(), out.data(), out.size()) != 0) {
            n.client_errors.fetch_add(1, std::memory_order_relaxed);
            co_return;
        }
        n.good.fetch_add(1, std::memory_order_relaxed);
    }
    c->close();
}

void run_tasks(params p, std::int64_t workers, counters& n,
               std::vector<std::vector<std::int64_t>>& lat, harness::timer& t) {
    weft::scheduler s(static_cast<std::size_t>(workers)); // started before the clock
    net::result<net::listener> l = net::listen("127.0.0.1:0", {.backlog = 4096});
    if (!l) {
        std::fprintf(stderr, "listen: %s\n", l.error().message().c_str());
        std::exit(1);
    }
    const std::string address = l->local_address()->to_string();
    weft::wait_group served;

    t = harness::timer();
    s.spawn(accept_loop(*l, static_cast<std::size_t>(p.size), n, served));
    std::vector<weft::task<void>> clients;
    clients.reserve(static_cast<std::size_t>(p.conns));
    for (std::int64_t id = 0; id < p.conns; ++id)
        clients.push_back(client(address, id, p, n, lat[static_cast<std::size_t>(id)]));
    weft::sync_wait(s, [](std::vector<weft::task<void>> all) -> weft::task<void> {
        co_await weft::when_all(std::move(all));
    }(std::move(clients)));
    served.wait(); // every server saw its client close
    t.stop();
    l->close();
}

// --- asio: Boost.Asio with C++20 coroutines ----------------------------------------------------

// Counts the running servers (a wait_group without weft).
struct served_count {
    std::mutex m;
    std::condition_variable cv;
    std::int64_t live = 0;
    void add() {
        std::lock_guard lock(m);
        ++live;
    }
    void done() {
        std::lock_guard lock(m);
        if (--live == 0)
            cv.notify_all();
    }
    void wait() {
        std::unique_lock lock(m);
        cv.wait(lock, [&] { return live == 0; });
    }
};

asio::awaitable<void> asio_serve(tcp::socket sock, std::size_t size, counters& n,
                                 served_count& served) {
    std::vector<std::byte> buf(size);
    boost::system::error_code ec;
    for (;;) {
        const std::size_t got = co_await asio::async_read(
            sock, asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            if (!(ec == asio::error::eof && got == 0))
                n.server_errors.fetch_add(1, std::memory_order_relaxed);
            break;
        }
        co_await asio::async_write(sock, asio::buffer(buf),
                                   asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            n.server_errors.fetch_add(1, std::memory_order_relaxed);
            break;
        }
        n.server_bytes.fetch_add(static_cast<std::int64_t>(size), std::memory_order_relaxed);
    }
    sock.close(ec);
    served.done();
}

asio::awaitable<void> asio_accept(tcp::acceptor& acceptor,
                                  std::vector<std::unique_ptr<asio::io_context>>& ctxs,
                                  std::size_t size, counters& n, served_count& served) {
    for (std::size_t i = 0;; ++i) {
        asio::io_context& ctx = *ctxs[i % ctxs.size()];
        boost::system::error_code ec;
        tcp::socket sock =
            co_await acceptor.async_accept(ctx, asio::redirect_error(asio::use_awaitable, ec));
        if (ec)
            co_return; // closed
        sock.set_option(tcp::no_delay(true), ec);
        served.add();
        asio::co_spawn(ctx, asio_serve(std::move(sock), size, n, served), asio::detached);
    }
}

asio::awaitable<void> asio_client(tcp::endpoint server, std::int64_t id, params p, counters& n,
                                  std::vector<std::int64_t>& lat) {
    tcp::socket sock(co_await asio::this_coro::executor);
    boost::system::error_code ec;
    co_await sock.async_connect(server, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
        n.client_errors.fetch_add(1, std::memory_order_relaxed);
        co_return;
    }
    sock.set_option(tcp::no_delay(true), ec);
    std::vector<std::byte> out(static_cast<std::size_t>(p.size)), in(out.size());
    fill(out, id);
    for (std::int64_t r = 0; r < p.rounds; ++r) {
        stamp(out, id, r);
        const auto t0 = harness::clk::now();
        co_await asio::async_write(sock, asio::buffer(out),
                                   asio::redirect_error(asio::use_awaitable, ec));
        if (!ec)
            co_await asio::async_read(sock, asio::buffer(in),
                                      asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            n.client_errors.fetch_add(1, std::memory_order_relaxed);
            co_return;
        }
        lat[static_cast<std::size_t>(r)] = ns_since(t0);
        if (std::memcmp(in.data(), out.data(), out.size()) != 0) {
            n.client_errors.fetch_add(1, std::memory_order_relaxed);
            co_return;
        }
        n.good.fetch_add(1, std::memory_order_relaxed);
    }
    sock.close(ec);
}

void run_asio(params p, std::int64_t contexts, counters& n,
              std::vector<std::vector<std::int64_t>>& lat, harness::timer& t) {
    // 1 context: run by 2 threads; 2 contexts: one thread each.
    const int threads_per = contexts == 1 ? 2 : 1;
    std::vector<std::unique_ptr<asio::io_context>> ctxs;
    using guard = asio::executor_work_guard<asio::io_context::executor_type>;
    std::vector<guard> guards;
    for (std::int64_t i = 0; i < contexts; ++i) {
        ctxs.push_back(std::make_unique<asio::io_context>(threads_per));
        guards.push_back(asio::make_work_guard(*ctxs.back()));
    }
    std::vector<std::thread> threads;
    for (auto& ctx : ctxs)
        for (int k = 0; k < threads_per; ++k)
            threads.emplace_back([&c = *ctx] { c.run(); });

    tcp::acceptor acceptor(*ctxs[0]);
    const tcp::endpoint any(asio::ip::make_address("127.0.0.1"), 0);
    acceptor.open(any.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind(any);
    acceptor.listen(4096);
    const tcp::endpoint server = acceptor.local_endpoint();
    served_count served;
    std::atomic<std::int64_t> clients_left{p.conns};
    std::mutex m;
    std::condition_variable cv;

    t = harness::timer();
    asio::co_spawn(*ctxs[0],
                   asio_accept(acceptor, ctxs, static_cast<std::size_t>(p.size), n, served),
                   asio::detached);
    for (std::int64_t id = 0; id < p.conns; ++id)
        asio::co_spawn(*ctxs[static_cast<std::size_t>(id) % ctxs.size()],
                       asio_client(server, id, p, n, lat[static_cast<std::size_t>(id)]),
                       [&](std::exception_ptr) {
                           if (clients_left.fetch_sub(1) == 1) {
                               std::lock_guard lock(m);
                               cv.notify_all();
                           }
                       });
    {
        std::unique_lock lock(m);
        cv.wait(lock, [&] { return clients_left.load() == 0; });
    }
    served.wait(); // every server saw its client close
    t.stop();

    asio::post(*ctxs[0], [&] {
        boost::system::error_code ec;
        acceptor.close(ec);
    });
    guards.clear();
    for (std::thread& th : threads)
        th.join();
}

} // namespace

int main(int argc, char** argv) {
    harness::flags f(argc, argv);
    const params p{f.get("conns", 100), f.get("rounds", 2000), f.get("size", 512)};
    const std::int64_t workers = f.get("workers", 2);
    const std::int64_t contexts = f.get("asio_contexts", 2);
    const std::string variant = f.variant({"tasks", "asio"});

    counters n;
    std::vector<std::vector<std::int64_t>> lat(
        static_cast<std::size_t>(p.conns),
        std::vector<std::int64_t>(static_cast<std::size_t>(p.rounds)));
    harness::timer t;
    if (variant == "tasks")
        run_tasks(p, workers, n, lat, t);
    else
        run_asio(p, contexts, n, lat, t);

    std::vector<std::int64_t> all;
    all.reserve(static_cast<std::size_t>(p.conns * p.rounds));
    for (const auto& l : lat)
        all.insert(all.end(), l.begin(), l.end());
    std::sort(all.begin(), all.end());
    auto pct = [&](double q) {
        if (all.empty())
            return 0.0;
        return static_cast<double>(
                   all[static_cast<std::size_t>(q * static_cast<double>(all.size() - 1))]) /
               1e3;
    };
    const std::int64_t want = p.conns * p.rounds;
    const std::int64_t good = n.good.load(), bytes = n.server_bytes.load();
    const std::int64_t cerr = n.client_errors.load(), serr = n.server_errors.load();
    const bool asio_variant = variant == "asio";
    const std::string workload = "echo" + std::to_string(p.conns); // run.sh's echo100, echo1000
    return harness::report(
        workload.c_str(), variant, asio_variant ? contexts * (contexts == 1 ? 2 : 1) : workers, t,
        good == want && bytes == want * p.size && cerr == 0 && serr == 0,
        std::to_string(good) + " good round trips of " + std::to_string(want) + ", server echoed " +
            std::to_string(bytes) + " bytes of " + std::to_string(want * p.size) +
            ", errors: client " + std::to_string(cerr) + ", server " + std::to_string(serr),
        {{"conns", p.conns},
         {"rounds", p.rounds},
         {"roundtrips_per_s", static_cast<double>(good) / (t.wall_ms / 1e3)},
         {"p50_us", pct(0.50)},
         {"p99_us", pct(0.99)},
         {"peak_rss_mb", harness::mb(harness::status_field("VmHWM"))},
         {"lib", asio_variant ? "boost.asio-" BOOST_LIB_VERSION : "weft.net"},
         {"asio_contexts", asio_variant ? std::to_string(contexts) : std::string("-")}});
}
