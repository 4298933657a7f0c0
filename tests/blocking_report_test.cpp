// weft::blocking_report: a blocking call that is about to park a scheduler worker is reported
// once per call site, naming the operation; calls that do not block, plain threads and
// spawn_blocking's threads are not reported. Each test feeds the blocked call only after the
// handler has seen the report (the report comes just before the thread parks), so nothing
// here sleeps to synchronize.
#include "catch_compat.hpp"

#include <weft/actor.hpp>
#include <weft/blocking_report.hpp>
#include <weft/channel.hpp>
#include <weft/future.hpp>
#include <weft/scheduler.hpp>
#include <weft/select.hpp>
#include <weft/spawn_blocking.hpp>
#include <weft/sync.hpp>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#if !WEFT_BLOCKING_REPORT
#error                                                                                             \
    "blocking_report_test needs the report compiled in (a build without NDEBUG, or WEFT_BLOCKING_REPORT=1)"
#endif

namespace {

// Records every report; installed for one test, then the default handler is restored.
class recorder {
public:
    recorder() {
        weft::set_blocking_report_handler([this](const weft::blocking_report& r) {
            std::lock_guard lock(mutex_);
            reports_.push_back(r);
            changed_.notify_all();
        });
    }
    ~recorder() { weft::set_blocking_report_handler({}); }

    // Blocks (this is a plain thread) until `n` reports have arrived.
    void wait_for(std::size_t n) {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return reports_.size() >= n; });
    }
    std::vector<weft::blocking_report> reports() {
        std::lock_guard lock(mutex_);
        return reports_;
    }

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<weft::blocking_report> reports_;
};

// Runs `body` on one of the scheduler's workers; the returned future is ready when it is done.
std::future<void> on_worker(weft::scheduler& s, std::function<void()> body) {
    auto done = std::make_shared<std::promise<void>>();
    std::future<void> f = done->get_future();
    s.spawn([body = std::move(body), done] {
        body();
        done->set_value();
    });
    return f;
}

bool named(const weft::blocking_report& r, const char* op) {
    return std::strcmp(r.operation, op) == 0;
}

} // namespace

TEST_CASE("a blocking recv on a worker is reported once per call site") {
    recorder rec;
    weft::scheduler s(2);
    weft::channel<int> ch(0);
    long received = 0;
    int values = 0;
    auto recv_here = [&] { // one call site, used twice
        std::optional<int> v = ch.recv();
        received += v.value_or(0);
        values += v ? 1 : 0;
    };
    std::future<void> done = on_worker(s, [&] {
        recv_here();
        recv_here();
        std::optional<int> v = ch.recv(); // a second site
        received += v.value_or(0);
        values += v ? 1 : 0;
    });
    rec.wait_for(1);
    CHECK(ch.send(1));
    CHECK(ch.send(2));
    rec.wait_for(2); // the second site blocks: nobody sends until it has reported
    CHECK(ch.send(3));
    done.get();
    CHECK(values == 3);
    CHECK(received == 6);
    const auto reports = rec.reports();
    REQUIRE(reports.size() == 2);
    for (const auto& r : reports) {
        CHECK(named(r, "weft::channel::recv"));
        REQUIRE(r.file != nullptr);
        CHECK(std::string(r.file).find("blocking_report_test.cpp") != std::string::npos);
        CHECK(std::string(r.instead) == "co_await ch.async_recv()");
    }
    CHECK(reports[0].line != reports[1].line);
}

TEST_CASE("a recv that finds a value on a worker is not reported") {
    recorder rec;
    weft::scheduler s(2);
    weft::channel<int> ch(4);
    REQUIRE(ch.send(5));
    REQUIRE(ch.send(6));
    int sum = 0;
    on_worker(s, [&] {
        sum += ch.recv().value_or(0);
        sum += ch.recv().value_or(0);
    }).get();
    CHECK(sum == 11);
    CHECK(rec.reports().empty());
}

TEST_CASE("blocking calls on plain threads and spawn_blocking threads are not reported") {
    recorder rec;
    weft::scheduler s(2);
    weft::channel<int> empty(1);
    // recv_for on an empty channel parks until its deadline, once its short spin is over: the
    // deadline is long enough that the spin never outlasts it, even on a loaded machine.
    // (Catch's assertions run on this thread only: it is not thread-safe.)
    const auto timeout = std::chrono::milliseconds(50);
    CHECK(empty.recv_for(timeout).status() == weft::status::timeout);
    weft::status on_thread = weft::status::ok;
    std::thread t([&] { on_thread = empty.recv_for(timeout).status(); });
    t.join();
    CHECK(on_thread == weft::status::timeout);
    auto f = weft::spawn_blocking([&] { return empty.recv_for(timeout).status(); });
    CHECK(f.get() == weft::status::timeout);
    CHECK(rec.reports().empty());
    // The same call on a worker is reported (so the checks above could fail).
    weft::status on_worker_thread = weft::status::ok;
    on_worker(s, [&] { on_worker_thread = empty.recv_for(timeout).status(); }).get();
    CHECK(on_worker_thread == weft::status::timeout);
    const auto reports = rec.reports();
    REQUIRE(reports.size() == 1);
    CHECK(named(reports[0], "weft::channel::recv_for/recv_until"));
}

TEST_CASE("each blocking operation on a worker is reported under its own name") {
    recorder rec;
    weft::scheduler s(2);

    SECTION("send on a full channel") {
        weft::channel<int> ch(1);
        REQUIRE(ch.send(1));
        bool sent = false;
        auto done = on_worker(s, [&] { sent = ch.send(2); });
        rec.wait_for(1);
        CHECK(ch.recv() == 1);
        done.get();
        CHECK(sent);
        CHECK(ch.recv() == 2);
        REQUIRE(rec.reports().size() == 1);
        CHECK(named(rec.reports()[0], "weft::channel::send"));
        CHECK(rec.reports()[0].file != nullptr);
    }
    SECTION("select") {
        weft::channel<int> ch(0);
        int got = 0;
        auto done = on_worker(s, [&] { weft::select(weft::on_recv(ch, [&](int v) { got = v; })); });
        rec.wait_for(1);
        CHECK(ch.send(7));
        done.get();
        CHECK(got == 7);
        REQUIRE(rec.reports().size() == 1);
        CHECK(named(rec.reports()[0], "weft::select"));
        CHECK(rec.reports()[0].file == nullptr);
        CHECK(std::string(rec.reports()[0].function).find("select") != std::string::npos);
    }
    SECTION("select with otherwise never blocks") {
        weft::channel<int> ch(0);
        bool other = false;
        on_worker(s, [&] {
            weft::select(weft::on_recv(ch), weft::otherwise([&] { other = true; }));
        }).get();
        CHECK(other);
        CHECK(rec.reports().empty());
    }
    SECTION("wait_group::wait") {
        weft::wait_group wg;
        wg.add(1);
        auto done = on_worker(s, [&] { wg.wait(); });
        rec.wait_for(1);
        wg.done();
        done.get();
        REQUIRE(rec.reports().size() == 1);
        CHECK(named(rec.reports()[0], "weft::wait_group::wait"));
    }
    SECTION("an actor's ask(...).get()") {
        struct gatekeeper {
            weft::channel<int> gate;
            weft::task<int> handle(int x) {
                std::optional<int> g = co_await gate.async_recv(); // suspends, never blocks
                co_return x + g.value_or(0);
            }
        };
        weft::channel<int> gate(0);
        auto ref = weft::spawn_actor<gatekeeper>(s, weft::actor_options{}, gatekeeper{gate});
        int answer = 0;
        auto done = on_worker(s, [&] { answer = ref.ask(40).get(); });
        rec.wait_for(1);
        CHECK(gate.send(2));
        done.get();
        CHECK(answer == 42);
        REQUIRE(rec.reports().size() == 1);
        CHECK(named(rec.reports()[0], "weft::future::get"));
    }
}

TEST_CASE("set_blocking_report(false) silences the report and the call still blocks") {
    recorder rec;
    weft::scheduler s(2);
    weft::set_blocking_report(false);
    weft::channel<int> empty(1);
    weft::status got = weft::status::ok;
    on_worker(s, [&] { got = empty.recv_for(std::chrono::milliseconds(50)).status(); }).get();
    weft::set_blocking_report(true);
    CHECK(got == weft::status::timeout);
    CHECK(rec.reports().empty());
}
