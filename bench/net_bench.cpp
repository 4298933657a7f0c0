// net_bench — weft::net next to its peers, same workload, same process: TCP echo over loopback.
//
// Each benchmark, with C concurrent connections (the argument: 1 or 100), sets up once, outside
// the timed loop: a listener on 127.0.0.1:0, C client connections, and a server per connection
// that reads exactly 512 bytes and writes them back until its client closes. One iteration is a
// batch of k_batch ping-pong round trips on every connection, all connections at once: the
// client writes 512 bytes, reads exactly 512 back and compares them with what it sent (the
// first 8 bytes of each message carry the connection and round numbers, so a stale or
// misrouted echo fails). items/s counts round trips (C * k_batch per iteration), over wall
// time. At the end the clients close, every server must see a clean eof, and any error or
// mismatched byte on either side fails the row.
//
// Rows (each with /1 and /100 connections):
//   BM_echo_weft_tasks   weft::net on a 2-worker weft::scheduler: a task per server connection
//                        (started with weft::go; async_read_exact, async_write_all), clients
//                        dialled with async_dial; an iteration is one task per client, awaited
//                        together with when_all under sync_wait.
//   BM_echo_asio         Boost.Asio with C++20 coroutines (awaitable, co_spawn,
//                        use_awaitable): 2 io_contexts, one thread each; connection c (client
//                        and server side) on context c % 2; an iteration co_spawns one
//                        coroutine per client and the caller waits on a countdown. Built only
//                        where <boost/asio.hpp> is found and has co_await.
//   BM_echo_threads      the naive peer: blocking POSIX sockets, a std::thread per server
//                        connection and one per client; an iteration releases the clients
//                        through a std::barrier and waits on it for them to finish.
// TCP_NODELAY on both ends everywhere (weft::net's default, as in Go).
//
// Counters besides time:
//   p50_us, p99_us   round-trip latency (client's write start to the end of its echo read),
//                    percentiles over every round trip of the run
//
// After the run, a table per connection count: each variant's round trips/s and p99 (medians
// of its runs) and weft's ratio to each peer. Go runs the same workload in bench/peers/go
// (echo100, echo1000: Go, weft and Asio side by side in one run).
//
//   net_bench --benchmark_filter=/100 --benchmark_repetitions=3
#include "bench_support.hpp"

#include <weft/net.hpp>
#include <weft/scheduler.hpp>
#include <weft/sync.hpp>
#include <weft/task.hpp>

#include <benchmark/benchmark.h>

#if __has_include(<boost/asio.hpp>)
#include <boost/asio.hpp>
#if defined(BOOST_ASIO_HAS_CO_AWAIT)
#include <boost/asio/redirect_error.hpp>
#define WEFT_NET_BENCH_ASIO 1
#endif
#endif

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace {

namespace net = weft::net;
using clk = std::chrono::steady_clock;

constexpr std::size_t k_size = 512; // bytes a message
constexpr int k_batch = 8;          // round trips per connection per iteration

// --- what every variant shares ----------------------------------------------------------------

// One client connection's buffers and record; `Conn` is the variant's socket.
template <class Conn>
struct client_state {
    Conn conn;
    std::int64_t id = 0;
    std::int64_t round = 0;
    std::vector<std::byte> out = std::vector<std::byte>(k_size);
    std::vector<std::byte> in = std::vector<std::byte>(k_size);
    std::vector<std::int64_t> latency_ns;
    std::string error; // empty while all is well

    client_state(Conn c, std::int64_t client_id) : conn(std::move(c)), id(client_id) {
        for (std::size_t i = 0; i < out.size(); ++i)
            out[i] = std::byte(static_cast<unsigned char>(id * 31 + static_cast<std::int64_t>(i)));
    }

    // Stamps the next round's message: the first 8 bytes are id << 32 | round.
    void next_message() {
        const std::uint64_t v =
            static_cast<std::uint64_t>(id) << 32 | static_cast<std::uint64_t>(round++);
        for (std::size_t b = 0; b < 8; ++b)
            out[b] = std::byte(static_cast<unsigned char>(v >> (8 * b)));
    }
    // After a round trip started at t0: records its latency; false (and an error) on a mismatch.
    bool check_echo(clk::time_point t0) {
        latency_ns.push_back(
            std::chrono::duration_cast<std::chrono::nanoseconds>(clk::now() - t0).count());
        if (std::memcmp(in.data(), out.data(), out.size()) == 0)
            return true;
        error = "echo differs from the message";
        return false;
    }
};

// The first client error, if any (empty: none).
template <class Client>
std::string first_error(const std::vector<Client>& clients) {
    for (const Client& c : clients)
        if (!c.error.empty())
            return c.error;
    return {};
}

// What a row measured, kept for the ratio table printed after the run: its round trips/s and
// p99 per run (several with --benchmark_repetitions; the table takes medians).
struct row_figures {
    std::vector<double> rate, p99_us;
};
std::map<std::pair<std::string, std::int64_t>, row_figures> g_rows; // {variant, conns}

// items/s = round trips; p50_us and p99_us over every round trip of every client. `looped`:
// the timed loop's wall time, for the ratio table.
template <class Client>
void report(benchmark::State& state, const std::vector<Client>& clients, const char* variant,
            clk::duration looped) {
    const std::int64_t round_trips =
        state.iterations() * static_cast<std::int64_t>(clients.size()) * k_batch;
    state.SetItemsProcessed(round_trips);
    std::vector<std::int64_t> all;
    for (const Client& c : clients)
        all.insert(all.end(), c.latency_ns.begin(), c.latency_ns.end());
    if (all.empty())
        return;
    std::sort(all.begin(), all.end());
    auto percentile_us = [&](double q) {
        const auto at = static_cast<std::size_t>(q * static_cast<double>(all.size() - 1));
        return static_cast<double>(all[at]) / 1e3;
    };
    state.counters["p50_us"] = percentile_us(0.50);
    state.counters["p99_us"] = percentile_us(0.99);
    const double seconds = std::chrono::duration<double>(looped).count();
    if (seconds > 0) {
        row_figures& row = g_rows[{variant, static_cast<std::int64_t>(clients.size())}];
        row.rate.push_back(static_cast<double>(round_trips) / seconds);
        row.p99_us.push_back(percentile_us(0.99));
    }
}

double median(std::vector<double> v) {
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// After the run: per connection count, each variant's round trips/s and p99 (medians of its
// runs) and weft's ratio to each peer (weft/peer: above 1, weft did more round trips). Go's row
// of the same workload is in bench/peers/go (echo100, echo1000), which runs Go, weft and Asio
// side by side.
void print_ratios() {
    if (g_rows.empty())
        return;
    std::printf("\nTCP echo, %zu-byte ping-pong, round trips/s (p99 us), medians of the runs:\n",
                k_size);
    std::printf("%6s %22s %22s %22s %10s %13s\n", "conns", "weft", "asio", "threads", "weft/asio",
                "weft/threads");
    for (std::int64_t conns : {1, 100}) {
        auto cell = [&](const char* variant) -> std::string {
            auto it = g_rows.find({variant, conns});
            if (it == g_rows.end())
                return "-";
            char text[48];
            std::snprintf(text, sizeof text, "%.0f (%.0f)", median(it->second.rate),
                          median(it->second.p99_us));
            return text;
        };
        auto ratio = [&](const char* peer) -> std::string {
            auto w = g_rows.find({"weft", conns});
            auto p = g_rows.find({peer, conns});
            if (w == g_rows.end() || p == g_rows.end())
                return "-";
            char text[16];
            std::snprintf(text, sizeof text, "%.2f",
                          median(w->second.rate) / median(p->second.rate));
            return text;
        };
        std::printf("%6lld %22s %22s %22s %10s %13s\n", static_cast<long long>(conns),
                    cell("weft").c_str(), cell("asio").c_str(), cell("threads").c_str(),
                    ratio("asio").c_str(), ratio("threads").c_str());
    }
}

// --- weft: weft::net tasks on a 2-worker scheduler ----------------------------------------------

using weft_client = client_state<net::conn>;

// Echoes until the client closes; a clean eof is the only good end.
weft::task<void> weft_serve(net::conn c, weft::wait_group& served,
                            std::atomic<std::int64_t>& server_errors) {
    std::vector<std::byte> buf(k_size);
    for (;;) {
        const net::io_result r = co_await c.async_read_exact(buf);
        if (!r) {
            if (!(r.error == net::errc::eof && r.bytes == 0))
                // relaxed: read by the caller after served.wait(), whose lock orders it
                server_errors.fetch_add(1, std::memory_order_relaxed);
            break;
        }
        const net::io_result w = co_await c.async_write_all(buf);
        if (!w) {
            server_errors.fetch_add(1, std::memory_order_relaxed); // relaxed: as above
            break;
        }
    }
    c.close();
    served.done();
}

// Dials the C clients one by one, accepting each and starting its server.
weft::task<std::string> weft_connect(net::listener& l, std::string address,
                                     std::vector<weft_client>& clients, std::int64_t conns,
                                     weft::wait_group& served,
                                     std::atomic<std::int64_t>& server_errors) {
    for (std::int64_t id = 0; id < conns; ++id) {
        net::result<net::conn> c = co_await net::async_dial(address);
        if (!c)
            co_return "dial: " + c.error().message();
        net::result<net::conn> accepted = co_await l.async_accept();
        if (!accepted)
            co_return "accept: " + accepted.error().message();
        served.add(1);
        weft::go(weft_serve(std::move(*accepted), served, server_errors));
        clients.emplace_back(std::move(*c), id);
    }
    co_return std::string();
}

weft::task<void> weft_rounds(weft_client& cl) {
    for (int k = 0; k < k_batch; ++k) {
        cl.next_message();
        const clk::time_point t0 = clk::now();
        const net::io_result w = co_await cl.conn.async_write_all(cl.out);
        if (!w) {
            cl.error = "write: " + w.error.message();
            co_return;
        }
        const net::io_result r = co_await cl.conn.async_read_exact(cl.in);
        if (!r) {
            cl.error = "read: " + r.error.message();
            co_return;
        }
        if (!cl.check_echo(t0))
            co_return;
    }
}

weft::task<void> weft_all(std::vector<weft::task<void>> tasks) {
    co_await weft::when_all(std::move(tasks));
}

void BM_echo_weft_tasks(benchmark::State& state) {
    const std::int64_t conns = state.range(0);
    weft::scheduler s(2);
    net::result<net::listener> l = net::listen("127.0.0.1:0");
    if (!l) {
        state.SkipWithError(("listen: " + l.error().message()).c_str());
        return;
    }
    const std::string address = l->local_address()->to_string();
    weft::wait_group served;
    std::atomic<std::int64_t> server_errors{0};
    std::vector<weft_client> clients;
    clients.reserve(static_cast<std::size_t>(conns));
    std::string error =
        weft::sync_wait(s, weft_connect(*l, address, clients, conns, served, server_errors));

    const clk::time_point loop_begin = clk::now();
    if (error.empty()) {
        for (auto _ : state) {
            std::vector<weft::task<void>> batch;
            batch.reserve(clients.size());
            for (weft_client& cl : clients)
                batch.push_back(weft_rounds(cl));
            weft::sync_wait(s, weft_all(std::move(batch)));
            error = first_error(clients);
            if (!error.empty())
                break;
        }
    }
    const clk::duration looped = clk::now() - loop_begin;

    for (weft_client& cl : clients)
        cl.conn.close();
    served.wait(); // every server saw its client close
    l->close();
    // relaxed: served.wait() ordered the servers' increments before this
    if (error.empty() && server_errors.load(std::memory_order_relaxed) != 0)
        error = "a server failed";
    if (!error.empty()) {
        state.SkipWithError(error.c_str());
        return;
    }
    report(state, clients, "weft", looped);
}

// --- countdown: a thread waits for the work added to finish (asio; a wait_group without weft) --

class countdown {
public:
    void add(std::int64_t n) {
        std::lock_guard lock(m_);
        left_ += n;
    }
    void done() {
        std::lock_guard lock(m_); // notified under the lock: the waiter may destroy us next
        if (--left_ == 0)
            cv_.notify_all();
    }
    void wait() {
        std::unique_lock lock(m_);
        cv_.wait(lock, [&] { return left_ == 0; });
    }

private:
    std::mutex m_;
    std::condition_variable cv_;
    std::int64_t left_ = 0;
};

// --- asio: Boost.Asio with C++20 coroutines, 2 io_contexts ---------------------------------------

#if WEFT_NET_BENCH_ASIO
namespace asio = boost::asio;
using asio::ip::tcp;
using asio_client = client_state<tcp::socket>;

asio::awaitable<void> asio_serve(tcp::socket sock, countdown& served,
                                 std::atomic<std::int64_t>& server_errors) {
    std::vector<std::byte> buf(k_size);
    boost::system::error_code ec;
    for (;;) {
        const std::size_t got = co_await asio::async_read(
            sock, asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            if (!(ec == asio::error::eof && got == 0))
                // relaxed: read by the caller after served.wait(), whose lock orders it
                server_errors.fetch_add(1, std::memory_order_relaxed);
            break;
        }
        co_await asio::async_write(sock, asio::buffer(buf),
                                   asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            server_errors.fetch_add(1, std::memory_order_relaxed); // relaxed: as above
            break;
        }
    }
    sock.close(ec);
    served.done();
}

// Accepts until the acceptor closes; connection i is served on context i % contexts.
asio::awaitable<void> asio_accept(tcp::acceptor& acceptor,
                                  std::vector<std::unique_ptr<asio::io_context>>& ctxs,
                                  countdown& served, std::atomic<std::int64_t>& server_errors) {
    for (std::size_t i = 0;; ++i) {
        asio::io_context& ctx = *ctxs[i % ctxs.size()];
        boost::system::error_code ec;
        tcp::socket sock =
            co_await acceptor.async_accept(ctx, asio::redirect_error(asio::use_awaitable, ec));
        if (ec)
            co_return; // closed
        sock.set_option(tcp::no_delay(true), ec);
        served.add(1);
        asio::co_spawn(ctx, asio_serve(std::move(sock), served, server_errors), asio::detached);
    }
}

asio::awaitable<void> asio_rounds(asio_client& cl) {
    boost::system::error_code ec;
    for (int k = 0; k < k_batch; ++k) {
        cl.next_message();
        const clk::time_point t0 = clk::now();
        co_await asio::async_write(cl.conn, asio::buffer(cl.out),
                                   asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            cl.error = "write: " + ec.message();
            co_return;
        }
        co_await asio::async_read(cl.conn, asio::buffer(cl.in),
                                  asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            cl.error = "read: " + ec.message();
            co_return;
        }
        if (!cl.check_echo(t0))
            co_return;
    }
}

void BM_echo_asio(benchmark::State& state) {
    const std::int64_t conns = state.range(0);
    constexpr std::size_t k_contexts = 2;
    std::vector<std::unique_ptr<asio::io_context>> ctxs;
    using guard = asio::executor_work_guard<asio::io_context::executor_type>;
    std::vector<guard> guards;
    for (std::size_t i = 0; i < k_contexts; ++i) {
        ctxs.push_back(std::make_unique<asio::io_context>(1));
        guards.push_back(asio::make_work_guard(*ctxs.back()));
    }
    tcp::acceptor acceptor(*ctxs[0]);
    const tcp::endpoint any(asio::ip::make_address("127.0.0.1"), 0);
    boost::system::error_code listen_ec;
    acceptor.open(any.protocol(), listen_ec);
    if (!listen_ec)
        acceptor.set_option(tcp::acceptor::reuse_address(true), listen_ec);
    if (!listen_ec)
        acceptor.bind(any, listen_ec);
    if (!listen_ec)
        acceptor.listen(4096, listen_ec);
    const tcp::endpoint server = acceptor.local_endpoint(listen_ec);
    if (listen_ec) {
        state.SkipWithError(("listen: " + listen_ec.message()).c_str());
        return; // no thread started yet
    }
    std::vector<std::thread> threads;
    for (auto& ctx : ctxs)
        threads.emplace_back([&c = *ctx] { c.run(); });
    countdown served; // the servers accepted and not yet finished
    std::atomic<std::int64_t> server_errors{0};
    asio::co_spawn(*ctxs[0], asio_accept(acceptor, ctxs, served, server_errors), asio::detached);

    // Connected from this thread (blocking): no operation of theirs is pending yet.
    std::vector<asio_client> clients;
    clients.reserve(static_cast<std::size_t>(conns));
    std::string error;
    for (std::int64_t id = 0; id < conns && error.empty(); ++id) {
        tcp::socket sock(*ctxs[static_cast<std::size_t>(id) % k_contexts]);
        boost::system::error_code ec;
        sock.connect(server, ec);
        if (ec) {
            error = "connect: " + ec.message();
            break;
        }
        sock.set_option(tcp::no_delay(true), ec);
        clients.emplace_back(std::move(sock), id);
    }

    countdown batch;
    const clk::time_point loop_begin = clk::now();
    if (error.empty()) {
        for (auto _ : state) {
            batch.add(conns);
            for (asio_client& cl : clients)
                asio::co_spawn(cl.conn.get_executor(), asio_rounds(cl),
                               [&batch, &cl](std::exception_ptr e) {
                                   if (e)
                                       cl.error = "exception in a client";
                                   batch.done();
                               });
            batch.wait();
            error = first_error(clients);
            if (!error.empty())
                break;
        }
    }
    const clk::duration looped = clk::now() - loop_begin;

    // Each client closed on its own context; its server then reads eof.
    for (asio_client& cl : clients)
        asio::post(cl.conn.get_executor(), [&cl] {
            boost::system::error_code ignored;
            cl.conn.close(ignored);
        });
    served.wait();
    asio::post(*ctxs[0], [&acceptor] {
        boost::system::error_code ignored;
        acceptor.close(ignored);
    });
    guards.clear();
    for (std::thread& t : threads)
        t.join();

    // relaxed: served.wait() and the joins ordered the servers' increments before this
    if (error.empty() && server_errors.load(std::memory_order_relaxed) != 0)
        error = "a server failed";
    if (!error.empty()) {
        state.SkipWithError(error.c_str());
        return;
    }
    report(state, clients, "asio", looped);
}
#endif

// --- threads: blocking POSIX sockets, a thread per connection -----------------------------------

// A socket descriptor that closes itself.
class fd_owner {
public:
    explicit fd_owner(int fd = -1) noexcept : fd_(fd) {}
    fd_owner(fd_owner&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    fd_owner& operator=(fd_owner&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    ~fd_owner() { reset(); }
    int get() const noexcept { return fd_; }
    void reset() noexcept {
        if (fd_ >= 0)
            ::close(std::exchange(fd_, -1));
    }

private:
    int fd_;
};

std::string errno_text(const char* what) {
    return std::string(what) + ": " + std::system_category().message(errno);
}

// Reads all of [p, p+n): n on success, fewer on eof (errno 0), -1 on an error (errno set).
std::ptrdiff_t read_full(int fd, std::byte* p, std::size_t n) {
    std::size_t done = 0;
    while (done < n) {
        const ssize_t r = ::read(fd, p + done, n - done);
        if (r > 0) {
            done += static_cast<std::size_t>(r);
        } else if (r == 0) {
            errno = 0;
            break;
        } else if (errno != EINTR) {
            return -1;
        }
    }
    return static_cast<std::ptrdiff_t>(done);
}

// Writes all of [p, p+n); false on an error (errno set).
bool write_full(int fd, const std::byte* p, std::size_t n) {
    std::size_t done = 0;
    while (done < n) {
        const ssize_t w = ::send(fd, p + done, n - done, MSG_NOSIGNAL);
        if (w >= 0)
            done += static_cast<std::size_t>(w);
        else if (errno != EINTR)
            return false;
    }
    return true;
}

void set_no_delay(int fd) {
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void thread_serve(fd_owner fd, std::atomic<std::int64_t>& server_errors) {
    std::vector<std::byte> buf(k_size);
    for (;;) {
        const std::ptrdiff_t got = read_full(fd.get(), buf.data(), buf.size());
        if (got != static_cast<std::ptrdiff_t>(buf.size())) {
            if (got != 0) // 0: a clean eof, the client is done
                // relaxed: read by the caller after joining this thread
                server_errors.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        if (!write_full(fd.get(), buf.data(), buf.size())) {
            server_errors.fetch_add(1, std::memory_order_relaxed); // relaxed: as above
            return;
        }
    }
}

using thread_client = client_state<fd_owner>;

void thread_rounds(thread_client& cl) {
    for (int k = 0; k < k_batch; ++k) {
        cl.next_message();
        const clk::time_point t0 = clk::now();
        if (!write_full(cl.conn.get(), cl.out.data(), cl.out.size())) {
            cl.error = errno_text("write");
            return;
        }
        const std::ptrdiff_t got = read_full(cl.conn.get(), cl.in.data(), cl.in.size());
        if (got != static_cast<std::ptrdiff_t>(cl.in.size())) {
            cl.error = got < 0 ? errno_text("read") : std::string("read: eof");
            return;
        }
        if (!cl.check_echo(t0))
            return;
    }
}

void BM_echo_threads(benchmark::State& state) {
    const std::int64_t conns = state.range(0);
    fd_owner listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t addr_size = sizeof addr;
    if (listener.get() < 0 ||
        ::bind(listener.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener.get(), 4096) != 0 ||
        ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &addr_size) != 0) {
        state.SkipWithError(errno_text("listen").c_str());
        return;
    }

    std::atomic<std::int64_t> server_errors{0};
    std::vector<std::thread> servers;
    std::vector<thread_client> clients;
    clients.reserve(static_cast<std::size_t>(conns));
    std::string error;
    for (std::int64_t id = 0; id < conns; ++id) {
        fd_owner c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (c.get() < 0 ||
            ::connect(c.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
            error = errno_text("connect");
            break;
        }
        fd_owner accepted(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (accepted.get() < 0) {
            error = errno_text("accept");
            break;
        }
        set_no_delay(c.get());
        set_no_delay(accepted.get());
        servers.emplace_back(thread_serve, std::move(accepted), std::ref(server_errors));
        clients.emplace_back(std::move(c), id);
    }

    // Each phase of `sync` is a start (clients go) or an end (clients done); the caller is one
    // of its participants.
    std::barrier<> sync(static_cast<std::ptrdiff_t>(clients.size()) + 1);
    // relaxed: stored before the caller arrives at a start phase, read by the clients after
    // it; the barrier's phase completion orders the two.
    std::atomic<bool> stop{false};
    std::vector<std::thread> client_threads;
    client_threads.reserve(clients.size());
    for (thread_client& cl : clients)
        client_threads.emplace_back([&sync, &stop, &cl] {
            for (;;) {
                sync.arrive_and_wait(); // start
                if (stop.load(std::memory_order_relaxed))
                    return;
                if (cl.error.empty())
                    thread_rounds(cl);
                sync.arrive_and_wait(); // end
            }
        });

    const clk::time_point loop_begin = clk::now();
    if (error.empty()) {
        for (auto _ : state) {
            sync.arrive_and_wait(); // start
            sync.arrive_and_wait(); // end: the clients' records are ours to read
            error = first_error(clients);
            if (!error.empty())
                break;
        }
    }
    const clk::duration looped = clk::now() - loop_begin;

    stop.store(true, std::memory_order_relaxed);
    sync.arrive_and_wait();
    for (std::thread& t : client_threads)
        t.join();
    for (thread_client& cl : clients)
        cl.conn.reset(); // the server reads eof
    for (std::thread& t : servers)
        t.join();
    // relaxed: the joins ordered the servers' increments before this
    if (error.empty() && server_errors.load(std::memory_order_relaxed) != 0)
        error = "a server failed";
    if (!error.empty()) {
        state.SkipWithError(error.c_str());
        return;
    }
    report(state, clients, "threads", looped);
}

void register_benchmarks() {
    benchmark::RegisterBenchmark("BM_echo_weft_tasks", BM_echo_weft_tasks)
        ->Arg(1)
        ->Arg(100)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
#if WEFT_NET_BENCH_ASIO
    benchmark::RegisterBenchmark("BM_echo_asio", BM_echo_asio)
        ->Arg(1)
        ->Arg(100)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
#endif
    benchmark::RegisterBenchmark("BM_echo_threads", BM_echo_threads)
        ->Arg(1)
        ->Arg(100)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
}

} // namespace

int main(int argc, char** argv) {
    return weft_bench::run_benchmarks(argc, argv, register_benchmarks, print_ratios);
}
