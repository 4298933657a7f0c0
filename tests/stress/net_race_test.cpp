// Races on weft::net: close() racing a readiness event while the fd number is reused at once,
// and cancellation racing the arrival of data. Every byte is counted: a cancelled read consumed
// nothing, a read on a closed connection returns closed, a new connection on a reused number
// gets exactly its own bytes, and nothing hangs.
#include "../catch_compat.hpp"
#include "../net_support.hpp"
#include "../test_support.hpp"

#include <weft/context.hpp>
#include <weft/net.hpp>
#include <weft/scheduler.hpp>
#include <weft/task.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
namespace net = weft::net;
using weft::task;

TEST_CASE("close racing readiness with the fd number reused at once never misdelivers") {
    weft::scheduler s(2);
    weft_test::loopback lo({.backlog = 1024});
    const int rounds = 40 * weft_test::stress_rounds();
    int closed_reads = 0, data_reads = 0, reused = 0, fresh_ok = 0;
    for (int round = 0; round < rounds; ++round) {
        auto ab = weft_test::connected_pair(lo.listener, lo.address); // lambdas capture a, b
        net::result<net::conn>& a = ab.first;
        net::result<net::conn>& b = ab.second;
        REQUIRE(a);
        REQUIRE(b);
        const int old_fd = a->native_handle();
        char buf[4];
        weft::future<net::io_result> reading =
            weft_test::spawn_future(s, a->async_read(net::buffer(buf)));
        std::thread writer([&b] { (void)b->write_all(net::buffer(std::string_view("x"))); });
        weft_test::cancel_at_random_moments(1, static_cast<unsigned>(round),
                                            [&](std::size_t) { a->close(); }, 20000);
        writer.join();
        REQUIRE(weft_test::ready_within(reading, 10s));
        const net::io_result r = reading.get();
        if (r.error == net::errc::closed)
            ++closed_reads;
        else if (r.bytes == 1 && buf[0] == 'x')
            ++data_reads;
        // A new connection right away, most often on the number just closed: its read gets its
        // own byte, and a stale event for the old one (if any was in flight) is dropped.
        auto [c, d] = weft_test::connected_pair(lo.listener, lo.address);
        REQUIRE(c);
        REQUIRE(d);
        reused += c->native_handle() == old_fd || d->native_handle() == old_fd;
        char got[4] = {};
        weft::future<net::io_result> fresh =
            weft_test::spawn_future(s, c->async_read(net::buffer(got)));
        REQUIRE(d->write_all(net::buffer(std::string_view("yz"))));
        REQUIRE(weft_test::ready_within(fresh, 10s));
        const net::io_result f = fresh.get();
        fresh_ok += f.bytes >= 1 && got[0] == 'y';
    }
    CHECK(closed_reads + data_reads == rounds); // each read ended one of the two ways
    CHECK(fresh_ok == rounds);
    CHECK(reused > 0); // the race was really run on reused numbers
}

TEST_CASE("cancellation racing arriving data loses no byte and reads none twice") {
    weft::scheduler s(2);
    weft_test::loopback lo;
    auto ab = weft_test::connected_pair(lo.listener, lo.address); // lambdas capture a, b
    net::result<net::conn>& a = ab.first;
    net::result<net::conn>& b = ab.second;
    REQUIRE(a);
    REQUIRE(b);
    const int rounds = 200 * weft_test::stress_rounds();
    int cancelled = 0;
    std::string received;
    for (int round = 0; round < rounds; ++round) {
        weft::cancellable_context made = weft::with_cancel(weft::background());
        char buf[8];
        weft::future<net::io_result> reading =
            weft_test::spawn_future(s, a->async_read(made.ctx, net::buffer(buf)));
        const char byte = static_cast<char>('a' + round % 26);
        std::thread writer([&b, byte] { (void)b->write_all(net::buffer(std::string_view(&byte, 1))); });
        weft_test::cancel_at_random_moments(1, static_cast<unsigned>(round),
                                            [&](std::size_t) { made.cancel(); }, 20000);
        writer.join();
        REQUIRE(weft_test::ready_within(reading, 10s));
        const net::io_result r = reading.get();
        if (r)
            received.append(buf, r.bytes);
        else if (r.error == weft::context_errc::cancelled)
            ++cancelled;
    }
    // What the cancelled reads left behind is still there, in order.
    b->close();
    char rest[4096];
    for (;;) {
        const net::io_result r = a->read(net::buffer(rest));
        if (!r)
            break;
        received.append(rest, r.bytes);
    }
    std::string sent;
    for (int round = 0; round < rounds; ++round)
        sent += static_cast<char>('a' + round % 26);
    INFO("cancelled reads: " << cancelled);
    CHECK(received == sent);
}
