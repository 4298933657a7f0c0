// weft::net from plain threads (the thread forms), and fd_watch / wait_readable on descriptors
// weft does not own, from threads and tasks.
#include "catch_compat.hpp"
#include "net_support.hpp"

#include <weft/context.hpp>
#include <weft/net.hpp>
#include <weft/scheduler.hpp>
#include <weft/task.hpp>

#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

using namespace std::chrono_literals;
namespace net = weft::net;
using weft::task;

TEST_CASE("thread forms: a thread client and a thread server echo every byte") {
    weft_test::loopback lo;
    std::size_t served = 0;
    std::thread server([&] {
        net::result<net::conn> c = lo.listener.accept();
        if (!c)
            return;
        char buf[1000];
        for (;;) {
            const net::io_result r = c->read(net::buffer(buf));
            if (!r)
                break;
            served += r.bytes;
            if (!c->write_all(
                    std::span<const std::byte>(reinterpret_cast<std::byte*>(buf), r.bytes)))
                break;
        }
    });
    std::size_t echoed = 0;
    {
        net::result<net::conn> c = net::dial(lo.address);
        REQUIRE(c);
        for (int i = 0; i < 200; ++i) {
            const std::string msg(1 + i * 13 % 900, static_cast<char>('a' + i % 26));
            REQUIRE(c->write_all(net::buffer(std::string_view(msg))));
            std::string back(msg.size(), '\0');
            REQUIRE(c->read_exact(net::buffer(back)));
            CHECK(back == msg);
            echoed += back.size();
        }
    }
    server.join();
    CHECK(served == echoed);
}

TEST_CASE("thread forms: a waiting read ends with the context's cancellation or its deadline") {
    weft_test::loopback lo;
    net::result<net::conn> client = net::dial(lo.address);
    net::result<net::conn> server = lo.listener.accept();
    REQUIRE(client);
    REQUIRE(server);
    char buf[8];
    SECTION("cancelled from another thread") {
        auto [ctx, cancel] = weft::with_cancel(weft::background());
        std::thread canceller([cancel = cancel] { cancel(); });
        const net::io_result r = client->read(ctx, net::buffer(buf));
        canceller.join();
        CHECK(r.error == weft::context_errc::cancelled);
    }
    SECTION("the context's deadline") {
        auto [ctx, cancel] = weft::with_timeout(weft::background(), 30ms);
        CHECK(client->read(ctx, net::buffer(buf)).error == weft::context_errc::deadline_exceeded);
    }
    SECTION("the connection's read deadline") {
        client->set_read_deadline(std::chrono::steady_clock::now() + 30ms);
        CHECK(client->read(net::buffer(buf)).error == net::errc::deadline_exceeded);
    }
    SECTION("close() from another thread") {
        std::thread closer([&] { client->close(); });
        const net::io_result r = client->read(net::buffer(buf));
        closer.join();
        CHECK(r.error == net::errc::closed);
    }
    SECTION("a task and a thread share one connection: the thread writes, the task reads") {
        weft::scheduler s(1);
        weft::future<net::io_result> reading =
            weft_test::spawn_future(s, client->async_read(net::buffer(buf)));
        CHECK(server->write_all(net::buffer(std::string_view("hey"))));
        REQUIRE(weft_test::ready_within(reading, 10s));
        CHECK(reading.get().bytes == 3);
    }
}

TEST_CASE("fd_watch wakes a task and a thread when a pipe they do not own becomes readable") {
    int p[2];
    REQUIRE(::pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0);
    weft::scheduler s(2);
    {
        net::fd_watch watch(p[0]);
        weft::future<std::error_code> waiting = weft_test::spawn_future(s, watch.async_readable());
        CHECK(::write(p[1], "x", 1) == 1);
        REQUIRE(weft_test::ready_within(waiting, 10s));
        CHECK_FALSE(waiting.get());
        char c;
        CHECK(::read(p[0], &c, 1) == 1);
        // The thread form, and a cancelled wait.
        CHECK(::write(p[1], "y", 1) == 1);
        CHECK_FALSE(watch.readable());
        CHECK(::read(p[0], &c, 1) == 1);
        auto [ctx, cancel] = weft::with_timeout(weft::background(), 20ms);
        CHECK(watch.readable(ctx) == weft::context_errc::deadline_exceeded);
    }
    // The one-shot forms; the watch is gone and the pipe is still ours to use and close.
    CHECK(::write(p[1], "z", 1) == 1);
    CHECK_FALSE(weft::sync_wait(s, net::async_wait_readable(p[0])));
    CHECK_FALSE(net::wait_writable(p[1]));
    ::close(p[0]);
    ::close(p[1]);
}
