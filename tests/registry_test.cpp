// weft::registry: get_or_create makes exactly one actor per key under concurrent first use;
// tell/ask through the registry create on demand; idle actors are passivated and revived with
// their state (kept in memory, or saved by a hook and rebuilt by the factory); a kept
// actor_ref of a passivated actor refuses messages instead of losing them.
#include "catch_compat.hpp"
#include "test_support.hpp"

#include <weft/registry.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct deposit {
    long cents;
};
struct balance {};

struct account {
    long cents = 0;
    void handle(deposit d) { cents += d.cents; }
    long handle(balance) const { return cents; }
};

} // namespace

TEST_CASE("get_or_create from 16 threads creates exactly one actor per key") {
    weft::scheduler s(2);
    constexpr int keys = 10'000, threads = 16;
    std::vector<std::atomic<int>> created(keys);
    weft::registry<int, account> reg(s);
    std::vector<std::vector<weft::actor_ref<account>>> seen(threads);
    std::atomic<bool> go{false};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            while (!go.load())
                std::this_thread::yield();
            auto& mine = seen[static_cast<std::size_t>(t)];
            mine.reserve(keys);
            for (int k = 0; k < keys; ++k) {
                // Threads walk the keys from different starting points, so first uses collide.
                const int key = (k + t * 613) % keys;
                mine.push_back(reg.get_or_create(key, [&, key] {
                    created[static_cast<std::size_t>(key)].fetch_add(1);
                    return account{};
                }));
            }
        });
    go = true;
    for (auto& th : pool)
        th.join();
    int wrong_count = 0;
    for (auto& c : created)
        wrong_count += c.load() != 1;
    CHECK(wrong_count == 0);
    CHECK(reg.size() == static_cast<std::size_t>(keys));
    // Every thread got the same actor for the same key.
    int different = 0;
    for (int t = 1; t < threads; ++t)
        for (int k = 0; k < keys; ++k) {
            const auto& a = seen[static_cast<std::size_t>(t)][static_cast<std::size_t>(k)];
            const int key = (k + t * 613) % keys;
            const int k0 = key; // thread 0 visited `key` at position key
            different += !(a == seen[0][static_cast<std::size_t>(k0)]);
        }
    CHECK(different == 0);
}

TEST_CASE("tell and ask through the registry create the actor on first use") {
    weft::scheduler s(2);
    std::atomic<int> made{0};
    weft::registry<std::string, account> reg(s, [&](const std::string&) {
        ++made;
        return account{};
    });
    reg.tell("alice", deposit{100});
    reg.tell("alice", deposit{50});
    CHECK(reg.ask("alice", balance{}).get() == 150);
    CHECK(reg.ask("bob", balance{}).get() == 0);
    CHECK(made == 2);
    CHECK(reg.find("alice").has_value());
    CHECK_FALSE(reg.find("carol").has_value());
}

TEST_CASE("an idle actor is passivated with its state kept and revived on the next message") {
    weft::scheduler s(1);
    std::atomic<int> made{0};
    weft::registry<std::string, account> reg(s, [&](const std::string&) {
        ++made;
        return account{};
    });
    reg.tell("alice", deposit{70});
    auto direct = reg.get_or_create("alice");
    CHECK(direct.ask(balance{}).get() == 70); // the actor goes idle after its turn
    CHECK(weft_test::passivate_until(reg, 1) == 1);
    CHECK(reg.size() == 0);
    CHECK(reg.passivated() == 1);
    // A kept reference refuses instead of losing the message.
    CHECK_THROWS_AS(direct.tell(deposit{1}), weft::actor_stopped);
    // Through the registry the actor comes back with its state, without the factory.
    reg.tell("alice", deposit{5});
    CHECK(reg.ask("alice", balance{}).get() == 75);
    CHECK(made == 1);
    CHECK(reg.passivated() == 0);
}

TEST_CASE(
    "the sweeper passivates after the idle timeout, and a hook saves state the factory restores") {
    weft::scheduler s(1);
    std::mutex saved_mutex;
    std::map<std::string, long> saved; // "the database"
    weft::registry_options<std::string, account> options;
    options.idle_timeout = 20ms;
    options.on_passivate = [&](const std::string& id, account&& a) {
        std::lock_guard lock(saved_mutex);
        saved[id] = a.cents;
    };
    weft::registry<std::string, account> reg(
        s,
        [&](const std::string& id) {
            std::lock_guard lock(saved_mutex);
            auto it = saved.find(id);
            return account{it == saved.end() ? 0 : it->second};
        },
        options);
    reg.tell("alice", deposit{42});
    CHECK(reg.ask("alice", balance{}).get() == 42);
    // Wait (bounded) for the sweeper to passivate it: a condition, not a sleep.
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    bool passivated = false;
    while (!passivated && std::chrono::steady_clock::now() < deadline) {
        {
            std::lock_guard lock(saved_mutex);
            passivated = saved.count("alice") == 1;
        }
        std::this_thread::yield();
    }
    REQUIRE(passivated);
    CHECK(reg.passivated() == 0);                   // handed to the hook, not kept
    CHECK(reg.ask("alice", balance{}).get() == 42); // rebuilt by the factory from "the database"
}

TEST_CASE("a busy actor is not passivated") {
    weft::scheduler s(1);
    weft::channel<int> gate(0);
    struct slow {
        weft::channel<int> gate;
        weft::task<int> handle(int) {
            (void)co_await gate.async_recv();
            co_return 1;
        }
    };
    weft::registry<int, slow> reg(s, [&](int) { return slow{gate}; });
    auto reply = reg.ask(1, 0);
    CHECK(reg.passivate_idle(0s) == 0); // its handler is running (or queued)
    gate.close();
    CHECK(reply.get() == 1);
}
