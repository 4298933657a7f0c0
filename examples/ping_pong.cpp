// Ping-pong: two players, one ball, two unbuffered channels, and a select that notices when the
// other player has walked away.
//
//   ping ──(to_pong)──► pong
//   ping ◄──(to_ping)── pong
//
// Each hit increments the ball's count and sends it across; with unbuffered channels a send
// completes only when the other player catches the ball, so exactly one player holds it at any
// moment. Played three ways:
//
//   1. two weft tasks, with co_await async_send / async_recv: a waiting player is a suspended
//      task, not a blocked thread. Ping plays N rounds, then closes its channel; pong's receive
//      returns nullopt and pong stops. The first hits are printed.
//   2. two plain threads, with blocking send / recv: the same game, the same rules. The times
//      are printed for the curious (not checked): a hand-off between tasks is a resumption on a
//      worker, one between threads a wake-up through the kernel.
//   3. Go's select with a timeout: ping plays a few rounds and simply stops, closing nothing.
//      Pong waits for the ball in weft::select(on_recv(ball), on_timeout(50 ms)) and, after
//      50 ms with no ball, concludes that the other player has left. Once with threads and
//      select, once with tasks and co_await async_select.
#include <weft/weft.hpp>

#include <fmt/core.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <tuple>

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

struct ball {
    int hits = 0;
};

constexpr int k_rounds = 1000;    // rounds in games 1 and 2
constexpr int k_short_rounds = 5; // rounds before ping leaves, game 3
constexpr int k_shown_hits = 6;   // hits printed in game 1
constexpr auto k_patience = 50ms; // how long pong waits for the ball before giving up
constexpr auto k_give_up = 2s;    // ping's safety net: pong should always be there in time

double ms_since(clock_type::time_point start) {
    return std::chrono::duration<double, std::milli>(clock_type::now() - start).count();
}

// --- 1. tasks -------------------------------------------------------------------------------

// Serves, then returns the ball `rounds` times; closes `to_pong` when done. Returns rounds played.
weft::task<int> ping_task(weft::sender<ball> to_pong, weft::receiver<ball> to_ping, int rounds) {
    ball b;
    int played = 0;
    for (int round = 1; round <= rounds; ++round) {
        ++b.hits;
        if (b.hits <= k_shown_hits)
            fmt::print("  ping (hit {})\n", b.hits);
        co_await to_pong.async_send(std::move(b));
        std::optional<ball> back = co_await to_ping.async_recv();
        if (!back)
            break;
        b = *back;
        played = round;
    }
    to_pong.close(); // game over: pong's receive returns nullopt
    co_return played;
}

// Returns every ball until the channel is closed. Returns how many it returned.
weft::task<int> pong_task(weft::receiver<ball> to_pong, weft::sender<ball> to_ping) {
    int returned = 0;
    while (std::optional<ball> b = co_await to_pong.async_recv()) {
        ++b->hits;
        if (b->hits <= k_shown_hits)
            fmt::print("  pong (hit {})\n", b->hits);
        co_await to_ping.async_send(std::move(*b));
        ++returned;
    }
    co_return returned;
}

weft::task<std::tuple<int, int>> play_tasks(int rounds) {
    weft::channel<ball> to_pong(0), to_ping(0);
    auto [pinged, ponged] =
        co_await weft::when_all(ping_task(to_pong, to_ping, rounds), pong_task(to_pong, to_ping));
    co_return std::tuple<int, int>{pinged, ponged};
}

// --- 2. threads -----------------------------------------------------------------------------

std::tuple<int, int> play_threads(int rounds) {
    weft::channel<ball> to_pong(0), to_ping(0);
    int ponged = 0;
    std::thread pong(
        [&ponged, in = weft::receiver<ball>(to_pong), out = weft::sender<ball>(to_ping)]() mutable {
            while (std::optional<ball> b = in.recv()) {
                ++b->hits;
                out.send(std::move(*b));
                ++ponged;
            }
        });
    ball b;
    int pinged = 0;
    for (int round = 1; round <= rounds; ++round) {
        ++b.hits;
        to_pong.send(std::move(b));
        std::optional<ball> back = to_ping.recv();
        if (!back)
            break;
        b = *back;
        pinged = round;
    }
    to_pong.close();
    pong.join();
    return {pinged, ponged};
}

// --- 3. select with a timeout -----------------------------------------------------------------

// How a game with a leaving player ended.
struct walkout {
    int rounds_played = 0;   // by ping, before it left
    int balls_returned = 0;  // by pong
    bool timed_out = false;  // pong's select took the timeout case
    bool ping_stuck = false; // ping found nobody to take the ball (pong left early)
};

walkout play_threads_until_silence(int rounds) {
    weft::channel<ball> to_pong(0), to_ping(0);
    walkout w;
    std::thread pong(
        [&w, in = weft::receiver<ball>(to_pong), out = weft::sender<ball>(to_ping)]() mutable {
            bool playing = true;
            while (playing) {
                weft::select(weft::on_recv(in,
                                           [&](ball b) {
                                               ++b.hits;
                                               out.send(std::move(b));
                                               ++w.balls_returned;
                                           }),
                             weft::on_timeout(k_patience, [&] {
                                 w.timed_out = true; // no ball for 50 ms: the other player is gone
                                 playing = false;
                             }));
            }
        });
    ball b;
    for (int round = 1; round <= rounds; ++round) {
        ++b.hits;
        if (to_pong.send_for(std::move(b), k_give_up) != weft::status::ok) {
            w.ping_stuck = true;
            break;
        }
        b = *to_ping.recv();
        w.rounds_played = round;
    }
    // Ping walks away: no close, no message. Only the silence tells pong.
    pong.join();
    return w;
}

weft::task<int> ping_then_leave(weft::sender<ball> to_pong, weft::receiver<ball> to_ping,
                                int rounds, walkout& w) {
    ball b;
    for (int round = 1; round <= rounds; ++round) {
        ++b.hits;
        const weft::status sent = co_await to_pong.async_send_for(std::move(b), k_give_up);
        if (sent != weft::status::ok) {
            w.ping_stuck = true;
            break;
        }
        std::optional<ball> back = co_await to_ping.async_recv();
        b = *back;
        w.rounds_played = round;
    }
    co_return w.rounds_played; // and leaves, closing nothing
}

weft::task<int> pong_until_silence(weft::receiver<ball> to_pong, weft::sender<ball> to_ping,
                                   walkout& w) {
    for (;;) {
        std::optional<ball> caught;
        // A handler cannot co_await, so it only keeps the ball; we return it below.
        co_await weft::async_select(weft::on_recv(to_pong, [&](ball b) { caught = b; }),
                                    weft::on_timeout(k_patience, [&] { w.timed_out = true; }));
        if (!caught)
            break; // the timeout fired: no ball for 50 ms
        ++caught->hits;
        co_await to_ping.async_send(std::move(*caught));
        ++w.balls_returned;
    }
    co_return w.balls_returned;
}

weft::task<walkout> play_tasks_until_silence(int rounds) {
    weft::channel<ball> to_pong(0), to_ping(0);
    walkout w;
    co_await weft::when_all(ping_then_leave(to_pong, to_ping, rounds, w),
                            pong_until_silence(to_pong, to_ping, w));
    co_return w;
}

// Prints how a walkout game went; true if pong noticed by the timeout after every round.
bool report(const char* who, const walkout& w, int rounds) {
    const bool ok =
        w.timed_out && !w.ping_stuck && w.rounds_played == rounds && w.balls_returned == rounds;
    fmt::print("{}: ping played {} rounds and left; pong returned {} balls, then {}\n", who,
               w.rounds_played, w.balls_returned,
               w.timed_out ? fmt::format("no ball for {} ms: timeout fired, other player gone",
                                         k_patience.count())
                           : std::string("never timed out"));
    if (!ok)
        fmt::print("FAILED: expected {} rounds, {} returns and the timeout\n", rounds, rounds);
    return ok;
}

int main() {
    weft::scheduler sched; // one worker per hardware thread
    bool ok = true;

    fmt::print("tasks, {} rounds over two unbuffered channels:\n", k_rounds);
    auto start = clock_type::now();
    const auto [task_pings, task_pongs] = weft::sync_wait(sched, play_tasks(k_rounds));
    const double task_ms = ms_since(start);
    fmt::print("  ...\ntasks: {} rounds, ping hit {} times, pong {} times ({:.1f} ms, {:.1f} us a "
               "round)\n",
               task_pings, task_pings, task_pongs, task_ms, task_ms * 1000 / k_rounds);
    ok = ok && task_pings == k_rounds && task_pongs == k_rounds;

    start = clock_type::now();
    const auto [thread_pings, thread_pongs] = play_threads(k_rounds);
    const double thread_ms = ms_since(start);
    fmt::print("threads: {} rounds, ping hit {} times, pong {} times ({:.1f} ms, {:.1f} us a "
               "round)\n",
               thread_pings, thread_pings, thread_pongs, thread_ms, thread_ms * 1000 / k_rounds);
    ok = ok && thread_pings == k_rounds && thread_pongs == k_rounds;
    if (!ok)
        fmt::print("FAILED: expected {} rounds each\n", k_rounds);

    const walkout by_threads = play_threads_until_silence(k_short_rounds);
    ok = report("select (threads)", by_threads, k_short_rounds) && ok;
    const walkout by_tasks = weft::sync_wait(sched, play_tasks_until_silence(k_short_rounds));
    ok = report("async_select (tasks)", by_tasks, k_short_rounds) && ok;
    return ok ? 0 : 1;
}
