// weft::spawn_blocking: a blocking call runs on the elastic pool, not on a worker, so the
// worker keeps running tasks; results and exceptions reach the awaiting task or a thread's
// get(); many calls run at once; a call nobody awaits still runs; a scheduler destroyed while
// a task awaits a call never resumes the freed task.
#include "catch_compat.hpp"

#include <weft/channel.hpp>
#include <weft/spawn_blocking.hpp>
#include <weft/sync.hpp>
#include <weft/task.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

using namespace std::chrono_literals;

TEST_CASE("spawn_blocking returns the call's value and rethrows its exception") {
    weft::scheduler s(1);
    auto run = [&]() -> weft::task<int> {
        const int v = co_await weft::spawn_blocking([] { return 41; });
        co_await weft::spawn_blocking([] {}); // void
        try {
            co_await weft::spawn_blocking(
                []() -> int { throw std::runtime_error("disk on fire"); });
        } catch (const std::runtime_error& e) {
            if (std::string(e.what()) == "disk on fire")
                co_return v + 1;
        }
        co_return -1;
    };
    CHECK(weft::sync_wait(s, run()) == 42);
}

TEST_CASE("a blocking call does not hold the worker: a task on the same worker unblocks it") {
    // One worker. The blocking call waits (as a plain thread) for a value that only another
    // task of this scheduler sends; had the call run on the worker, that task could not run.
    weft::scheduler s(1);
    weft::channel<int> ch(0);
    auto blocked = [&]() -> weft::task<int> {
        co_return co_await weft::spawn_blocking([&] {
            auto r = ch.recv_for(30s);
            return r ? *r : -1;
        });
    };
    auto sender = [&]() -> weft::task<void> { co_await ch.async_send(7); };
    auto both = [&]() -> weft::task<int> {
        auto [got, none] = co_await weft::when_all(blocked(), sender());
        (void)none;
        co_return got;
    };
    CHECK(weft::sync_wait(s, both()) == 7);
}

TEST_CASE("50 blocking calls run at the same time on the elastic pool") {
    // Each call arrives at a wait_group and waits for all 50: only possible if all 50 are
    // running at once.
    weft::scheduler s(1);
    weft::wait_group all_in;
    all_in.add(50);
    auto run = [&]() -> weft::task<int> {
        std::vector<weft::blocking_call<bool>> calls;
        for (int i = 0; i < 50; ++i)
            calls.push_back(weft::spawn_blocking([&] {
                all_in.done();
                return all_in.wait_for(30s);
            }));
        int together = 0;
        for (auto& c : calls)
            together += (co_await std::move(c)) ? 1 : 0;
        co_return together;
    };
    CHECK(weft::sync_wait(s, run()) == 50);
}

TEST_CASE("get() waits on a plain thread, and a call nobody awaits still runs") {
    auto call = weft::spawn_blocking([] { return std::string("done"); });
    CHECK(call.get() == "done");

    weft::wait_group finished;
    finished.add(1);
    std::atomic<bool> ran{false};
    {
        auto dropped = weft::spawn_blocking([&] {
            ran = true;
            finished.done();
        });
    }
    CHECK(finished.wait_for(30s));
    CHECK(ran);
}

TEST_CASE("a scheduler destroyed while a task awaits a blocking call never resumes it") {
    // The call is still running when the scheduler goes; when it ends it must not touch the
    // destroyed task (ASan would see it).
    weft::channel<int> release(0);
    std::atomic<bool> awaiting{false};
    weft::wait_group call_done;
    call_done.add(1);
    {
        weft::scheduler s(1);
        auto waits = [&]() -> weft::task<void> {
            awaiting = true;
            co_await weft::spawn_blocking([&] {
                (void)release.recv();
                call_done.done();
            });
        };
        s.spawn(waits);
        while (!awaiting)
            std::this_thread::yield();
    }
    release.close();
    CHECK(call_done.wait_for(30s));
}
