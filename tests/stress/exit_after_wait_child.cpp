// exit_after_wait_child — a Go-shaped program that returns from main right after wg.wait(),
// while the tasks that called wg.done() as their last statement may still be finishing:
//
//   exit_after_wait_child <shape> <tasks>
//
// Shapes (each counts the tasks that ran and exits 1 on a wrong count, 0 otherwise):
//   main      go() from main (the default scheduler), wg.done() last
//   main_co   the same with coroutine tasks that suspend (yield, a channel) before wg.done()
//   nested    go() from a task on the default scheduler, which spawns the others with go()
//   own       a task on main's own scheduler calls go() (since go() stays on the calling
//             task's scheduler, the others run there too; before, on the default one)
//   own_co    `own` with coroutine tasks that wait on a channel first
//   global    a task on a scheduler that is a global (destroyed after main, like the default
//             one) spawns on default_scheduler(), as go() in a task did before; the default
//             scheduler is started after the global one, so it used to be destroyed first
//   feed      as `global`, and the global scheduler's task goes on feeding the default
//             scheduler (spawn, yield, again) while main returns
// exit_after_wait_test runs it many times under load; a crash at exit fails that test.
#include <weft/channel.hpp>
#include <weft/sync.hpp>
#include <weft/task.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace {

std::atomic<int> g_ran{0};

// For `global`: constructed before main, destroyed after every later static.
weft::scheduler& global_scheduler() {
    static weft::scheduler s(2);
    return s;
}

int check(int tasks) {
    // relaxed: read after wg.wait(), which orders every task's increment before it.
    const int ran = g_ran.load(std::memory_order_relaxed);
    if (ran != tasks) {
        std::fprintf(stderr, "exit_after_wait_child: %d of %d tasks ran\n", ran, tasks);
        return 1;
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: exit_after_wait_child <shape> <tasks>\n");
        return 2;
    }
    const std::string_view shape = argv[1];
    const int tasks = std::atoi(argv[2]);
    if (shape == "global" || shape == "feed")
        (void)global_scheduler(); // started first, so destroyed last
    weft::wait_group wg;
    wg.add(tasks);
    auto plain = [&wg] {
        g_ran.fetch_add(1, std::memory_order_relaxed); // relaxed: see check()
        wg.done();
    };
    if (shape == "main") {
        for (int i = 0; i < tasks; ++i)
            weft::go(plain);
        wg.wait();
        return check(tasks);
    }
    if (shape == "main_co") {
        weft::channel<int> ch(static_cast<std::size_t>(tasks));
        for (int i = 0; i < tasks; ++i)
            weft::go([&wg, ch]() mutable -> weft::task<void> {
                co_await weft::yield();
                if (co_await ch.async_recv())
                    g_ran.fetch_add(1, std::memory_order_relaxed); // relaxed: see check()
                wg.done();
            });
        for (int i = 0; i < tasks; ++i)
            ch.send(i);
        wg.wait();
        return check(tasks);
    }
    if (shape == "nested") {
        weft::go([&] {
            for (int i = 0; i < tasks; ++i)
                weft::go(plain);
        });
        wg.wait();
        return check(tasks);
    }
    if (shape == "own" || shape == "own_co") {
        weft::scheduler s(2);
        weft::channel<int> ch(0);
        s.spawn([&] {
            for (int i = 0; i < tasks; ++i) {
                if (shape == "own")
                    weft::go(plain);
                else
                    weft::go([&wg, ch]() mutable -> weft::task<void> {
                        if (co_await ch.async_recv())
                            g_ran.fetch_add(1, std::memory_order_relaxed); // relaxed: as above
                        wg.done();
                    });
            }
        });
        if (shape == "own_co")
            for (int i = 0; i < tasks; ++i)
                ch.send(i);
        wg.wait();
        return check(tasks);
    }
    if (shape == "global") {
        global_scheduler().spawn([&] {
            for (int i = 0; i < tasks; ++i)
                weft::default_scheduler().spawn(plain);
        });
        wg.wait();
        return check(tasks);
    }
    if (shape == "feed") {
        global_scheduler().spawn([&]() -> weft::task<void> {
            for (int i = 0; i < tasks; ++i)
                weft::default_scheduler().spawn(plain);
            for (;;) { // until the global scheduler stops it, after main has returned
                weft::default_scheduler().spawn([] {});
                co_await weft::yield();
            }
        });
        wg.wait();
        return check(tasks);
    }
    std::fprintf(stderr, "exit_after_wait_child: unknown shape %s\n", argv[1]);
    return 2;
}
