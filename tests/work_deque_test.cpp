// Behaviours of weft::detail::work_deque, a scheduler worker's Chase-Lev deque: LIFO for the
// owner, FIFO for thieves, a hard capacity, and under contention every task taken exactly once,
// the last one included, which the owner's pop and the thieves' steals race for.
//
// The concurrent cases run WEFT_STRESS_ITERS rounds (default 3, what CI runs under the
// sanitizers); a long local soak is `WEFT_STRESS_ITERS=1000 ./build/dev/tests/work_deque_test`.
#include "catch_compat.hpp"
#include "test_support.hpp"

#include <weft/detail/spin_mutex.hpp>
#include <weft/detail/work_deque.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

using weft::detail::steal_status;
using weft::detail::work_deque;

// Catch2's assertions are not thread-safe: worker threads record into atomics and the test
// thread asserts after joining them.

namespace {

using weft_test::stress_rounds;

// A task stand-in. The owner writes `payload` (a plain field) before pushing and whoever takes
// the task checks it: a publication bug shows as a wrong payload here and as a data race under
// ThreadSanitizer. `taken_by` is plain too, so a task taken twice is a race TSan reports as well
// as a count of 2 in `takes`.
struct task {
    std::uint64_t payload = 0;
    int taken_by = -1;
    std::atomic<int> takes{0};
};

constexpr std::uint64_t payload_for(std::size_t index) {
    return index * 0x9e3779b97f4a7c15ULL + 1;
}

constexpr int owner_id = -2;

// What the taking threads saw; read by the test thread after joining them.
struct tally {
    std::atomic<std::size_t> stolen{0};
    std::atomic<std::size_t> lost_races{0};
    std::atomic<std::size_t> bad_payloads{0};

    void take(std::vector<task>& tasks, task* t, int who) {
        const auto index = static_cast<std::size_t>(t - tasks.data());
        // relaxed: counters, read after join.
        if (t->payload != payload_for(index))
            bad_payloads.fetch_add(1, std::memory_order_relaxed);
        t->taken_by = who;
        t->takes.fetch_add(1, std::memory_order_relaxed);
    }

    // How many tasks were taken exactly once.
    std::size_t taken_once(const std::vector<task>& tasks) const {
        std::size_t once = 0;
        for (const task& t : tasks)
            once += t.takes.load(std::memory_order_relaxed) == 1;
        return once;
    }
};

// Thieves steal until `done`, then make one more pass so nothing published before it is left.
std::vector<std::thread> start_thieves(int count, work_deque<task*>& q, std::vector<task>& tasks,
                                       tally& seen, std::atomic<bool>& done) {
    std::vector<std::thread> thieves;
    for (int id = 0; id < count; ++id)
        thieves.emplace_back([&, id] {
            unsigned misses = 0;
            for (;;) {
                // acquire: pairs with the owner's release store of done after its last pop.
                const bool finishing = done.load(std::memory_order_acquire);
                const auto r = q.steal();
                if (r) {
                    seen.take(tasks, r.value, id);
                    seen.stolen.fetch_add(1, std::memory_order_relaxed); // relaxed: a counter
                } else if (r.status == steal_status::lost_race) {
                    seen.lost_races.fetch_add(1, std::memory_order_relaxed); // relaxed: a counter
                } else if (finishing) {
                    return;
                } else if (++misses % 64 != 0) {
                    // Keep reaching for the owner's next task, so steals meet its pops...
                    weft::detail::cpu_relax();
                } else {
                    std::this_thread::yield(); // ...but on two cores leave it room to push
                }
            }
        });
    return thieves;
}

} // namespace

TEST_CASE("capacity rounds up to a power of two, 256 by default") {
    CHECK(work_deque<int*>().capacity() == 256);
    CHECK(work_deque<int*>(0).capacity() == 1);
    CHECK(work_deque<int*>(1).capacity() == 1);
    CHECK(work_deque<int*>(3).capacity() == 4);
    CHECK(work_deque<int*>(64).capacity() == 64);
    CHECK(work_deque<int*>(65).capacity() == 128);
    REQUIRE_THROWS_AS(work_deque<int*>(work_deque<int*>::max_capacity() + 1), std::length_error);
}

TEST_CASE("owner push and pop are LIFO") {
    std::vector<int> xs(5);
    work_deque<int*> q(8);
    for (int& x : xs)
        REQUIRE(q.push(&x));
    CHECK(q.size_hint() == 5);
    for (std::size_t i = xs.size(); i-- > 0;) {
        const auto v = q.pop();
        REQUIRE(v);
        CHECK(*v == &xs[i]);
    }
    CHECK_FALSE(q.pop());
    CHECK(q.size_hint() == 0);
}

TEST_CASE("steal takes the oldest first (FIFO) and reports empty when drained") {
    std::vector<int> xs(5);
    work_deque<int*> q(8);
    CHECK(q.steal().status == steal_status::empty);
    for (int& x : xs)
        REQUIRE(q.push(&x));
    for (std::size_t i = 0; i < xs.size(); ++i) {
        const auto r = q.steal();
        REQUIRE(r.status == steal_status::stolen);
        CHECK(r);
        CHECK(r.value == &xs[i]);
    }
    const auto r = q.steal();
    CHECK(r.status == steal_status::empty);
    CHECK_FALSE(r);
    CHECK_FALSE(q.pop());
}

TEST_CASE("pop and steal take from opposite ends") {
    std::vector<int> xs(4);
    work_deque<int*> q(4);
    for (int& x : xs)
        REQUIRE(q.push(&x));
    CHECK(q.steal().value == &xs[0]);
    CHECK(q.pop() == &xs[3]);
    CHECK(q.steal().value == &xs[1]);
    CHECK(q.size_hint() == 1);
    CHECK(q.pop() == &xs[2]);
    CHECK_FALSE(q.pop());
    CHECK(q.steal().status == steal_status::empty);
}

TEST_CASE("push fails exactly at capacity and succeeds again after a pop or a steal") {
    std::vector<int> xs(6);
    work_deque<int*> q(4);
    for (std::size_t i = 0; i < 4; ++i)
        REQUIRE(q.push(&xs[i]));
    CHECK_FALSE(q.push(&xs[4]));
    CHECK(q.size_hint() == 4);

    CHECK(q.pop() == &xs[3]);
    REQUIRE(q.push(&xs[4]));
    CHECK_FALSE(q.push(&xs[5]));

    CHECK(q.steal().value == &xs[0]);
    REQUIRE(q.push(&xs[5]));
    CHECK_FALSE(q.push(&xs[3]));

    // A failed push changed nothing: top to bottom the deque holds 1, 2, 4, 5.
    CHECK(q.steal().value == &xs[1]);
    CHECK(q.steal().value == &xs[2]);
    CHECK(q.pop() == &xs[5]);
    CHECK(q.pop() == &xs[4]);
    CHECK_FALSE(q.pop());

    SECTION("capacity 1") {
        work_deque<int*> one(1);
        REQUIRE(one.push(&xs[0]));
        CHECK_FALSE(one.push(&xs[1]));
        CHECK(one.steal().value == &xs[0]);
        REQUIRE(one.push(&xs[1]));
        CHECK_FALSE(one.push(&xs[2]));
        CHECK(one.pop() == &xs[1]);
        REQUIRE(one.push(&xs[2]));
    }
}

TEST_CASE("push, pop and steal match a std::deque model over many laps of the ring") {
    std::vector<int> xs(100);
    work_deque<int*> q(8);
    std::deque<int*> model;
    std::minstd_rand rng(42);
    std::size_t next = 0;
    for (int step = 0; step < 20000; ++step) {
        INFO("step " << step);
        // Pushes outnumber takes 3 to 2, so the deque often fills and its indices lap the ring
        // about a thousand times.
        switch (rng() % 5) {
        case 0:
        case 1:
        case 2: {
            int* v = &xs[next++ % xs.size()];
            const bool pushed = q.push(v);
            REQUIRE(pushed == (model.size() < q.capacity()));
            if (pushed)
                model.push_back(v);
            break;
        }
        case 3: {
            const auto v = q.pop();
            REQUIRE(v.has_value() == !model.empty());
            if (v) {
                REQUIRE(*v == model.back());
                model.pop_back();
            }
            break;
        }
        default: {
            const auto r = q.steal();
            REQUIRE(r.status == (model.empty() ? steal_status::empty : steal_status::stolen));
            if (r) {
                REQUIRE(r.value == model.front());
                model.pop_front();
            }
            break;
        }
        }
        REQUIRE(q.size_hint() == model.size());
    }
}

TEST_CASE("owner pushes and pops while thieves steal: every task is taken exactly once") {
    constexpr int thief_count = 3;
    constexpr std::size_t task_count = 20000;
    constexpr std::size_t drain_every = 1024;
    const int rounds = stress_rounds();
    for (int round = 0; round < rounds; ++round) {
        INFO("round " << round);
        std::vector<task> tasks(task_count);
        work_deque<task*> q(64); // small, so pushes often find it full
        tally seen;
        std::atomic<bool> done{false};
        auto thieves = start_thieves(thief_count, q, tasks, seen, done);

        std::minstd_rand rng(static_cast<unsigned>(round) + 1);
        std::size_t popped = 0;
        std::size_t full = 0;
        std::size_t stuck = 0;
        auto pop_one = [&] {
            const auto t = q.pop();
            if (t) {
                seen.take(tasks, *t, owner_id);
                ++popped;
            }
            return t.has_value();
        };
        for (std::size_t i = 0; i < task_count; ++i) {
            tasks[i].payload = payload_for(i);
            // Full: run one of our own tasks to make room, as a worker would before overflowing.
            // A pop that finds nothing means the thieves emptied the deque, so the push must
            // then succeed; if it does not, the indices are corrupt and spinning would hang.
            bool pushed = q.push(&tasks[i]);
            while (!pushed) {
                ++full;
                const bool made_room = pop_one();
                pushed = q.push(&tasks[i]);
                if (!pushed && !made_room)
                    break;
            }
            if (!pushed) {
                ++stuck;
                break;
            }
            if (rng() % 4 == 0)
                pop_one();
            // Now and then leave the whole deque to the thieves, so steals certainly happen
            // (and race each other down to the last task) however the threads are scheduled.
            if (i % drain_every == drain_every - 1)
                while (q.size_hint() != 0)
                    std::this_thread::yield();
        }
        // An empty pop means every task is claimed: one the owner misses here a thief has CASed.
        while (pop_one())
            ;
        // release: pairs with the thieves' acquire; they stop once they then find the deque empty.
        done.store(true, std::memory_order_release);
        for (auto& t : thieves)
            t.join();

        INFO("stolen " << seen.stolen.load() << ", popped " << popped << ", lost races "
                       << seen.lost_races.load() << ", pushes that found the deque full " << full);
        CHECK(stuck == 0);
        CHECK(seen.taken_once(tasks) == task_count);
        CHECK(seen.bad_payloads.load() == 0);
        CHECK(seen.stolen.load() + popped == task_count);
        // Each drain of a non-empty deque needs at least one steal.
        CHECK(seen.stolen.load() >= task_count / drain_every);
    }
}

TEST_CASE("the last tasks go to exactly one of the owner's pops and the thieves' steals") {
    constexpr int thief_count = 3;
    constexpr std::size_t race_count = 5000;
    const int rounds = stress_rounds();
    for (int round = 0; round < rounds; ++round) {
        INFO("round " << round);
        // Each race queues one, two or three tasks (one in three races a single task), then the
        // owner pops until empty while the thieves steal. With one task the pop's CAS races the
        // steals'; with more, the owner takes a task without a CAS, which is safe only because of
        // the seq_cst fences in pop and steal.
        auto batch_of = [](std::size_t race) { return 1 + race / 4 % 3; };
        std::size_t task_count = 0;
        for (std::size_t race = 0; race < race_count; ++race)
            task_count += batch_of(race);
        std::vector<task> tasks(task_count);
        work_deque<task*> q;
        tally seen;
        std::atomic<bool> done{false};
        auto thieves = start_thieves(thief_count, q, tasks, seen, done);

        std::size_t queued = 0;
        std::size_t owner_won = 0;
        std::size_t owner_lost = 0; // races where the owner's first pop found nothing
        std::size_t wrong_pops = 0;
        std::size_t failed_pushes = 0;
        for (std::size_t race = 0; race < race_count; ++race) {
            const std::size_t first = queued;
            const std::size_t batch = batch_of(race);
            for (std::size_t i = first; i < first + batch; ++i) {
                tasks[i].payload = payload_for(i);
                failed_pushes += !q.push(&tasks[i]); // cannot fail: the deque was empty
            }
            queued += batch;
            // Vary how long the tasks sit before the owner reaches for them, so its pops meet the
            // thieves' steals at different points; every fourth time the thieves surely win.
            switch (race % 4) {
            case 0:
                break;
            case 1:
                for (int spin = 0; spin < 64; ++spin)
                    weft::detail::cpu_relax();
                break;
            case 2:
                std::this_thread::yield();
                break;
            default:
                while (q.size_hint() != 0)
                    std::this_thread::yield();
                break;
            }
            // The owner takes newest first, so its pops count down from the newest task.
            std::size_t below = queued;
            bool first_pop = true;
            while (const auto t = q.pop()) {
                const auto index = static_cast<std::size_t>(*t - tasks.data());
                wrong_pops += index < first || index >= below;
                below = index;
                seen.take(tasks, *t, owner_id);
                ++owner_won;
                first_pop = false;
            }
            owner_lost += first_pop;
        }
        // release: pairs with the thieves' acquire; every task is claimed by now.
        done.store(true, std::memory_order_release);
        for (auto& t : thieves)
            t.join();

        INFO("tasks " << queued << ", owner took " << owner_won << ", found none in " << owner_lost
                      << " races, thieves' lost races " << seen.lost_races.load());
        CHECK(failed_pushes == 0);
        CHECK(wrong_pops == 0);
        CHECK(queued == task_count);
        CHECK(seen.taken_once(tasks) == task_count);
        CHECK(seen.bad_payloads.load() == 0);
        CHECK(owner_won + seen.stolen.load() == task_count);
        CHECK(owner_lost >= race_count / 4);
    }
}
