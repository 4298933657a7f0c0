// weft::es read models: keyed_read_model ends with exact values under concurrent writers of
// distinct and of shared keys, and its readers never see a value halfway through an update;
// erase/clear/size/for_each/snapshot count what is there. snapshot_read_model readers see
// whole versions only, in publication order, while a writer publishes; writers are serialized;
// a throwing update publishes nothing.
//
// Concurrency tests run readers until the writers are done (at least one pass each), collect
// what they saw into per-thread counters and assert on the test thread after join.
#include "catch_compat.hpp"

#include <weft/es/read_model.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

// Written with a == b always; a reader that sees a != b saw a torn value.
struct pair_value {
    std::int64_t a = 0;
    std::int64_t b = 0;
    std::string text; // not trivially copyable: a torn copy could also crash
};

void bump(pair_value& v) {
    ++v.a;
    v.text = std::to_string(v.a);
    ++v.b;
}

bool torn(const pair_value& v) {
    return v.a != v.b || v.text != std::to_string(v.a);
}

// Releases every thread at once, so that they really overlap.
struct start_line {
    std::atomic<bool> go{false};
    void wait() const {
        while (!go.load()) // seq_cst: a test, not a hot path
            std::this_thread::yield();
    }
};

struct reader_tally {
    std::int64_t reads = 0;
    std::int64_t found = 0;
    std::int64_t torn = 0;
    std::int64_t went_back = 0; // a key's value smaller than one this reader saw before
};

} // namespace

TEST_CASE("keyed_read_model: writers of distinct keys and readers end with exact values") {
    constexpr int writers = 4, readers = 4, keys_per_writer = 200, rounds = 25;
    constexpr int keys = writers * keys_per_writer;
    weft::es::keyed_read_model<int, pair_value> model;
    start_line start;
    std::atomic<int> writers_left{writers};
    std::vector<reader_tally> tallies(readers);
    std::vector<std::thread> pool;

    // Writer w owns keys k with k % writers == w, like a projection partitioned by stream.
    for (int w = 0; w < writers; ++w)
        pool.emplace_back([&, w] {
            start.wait();
            for (int r = 0; r < rounds; ++r)
                for (int k = w; k < keys; k += writers)
                    model.update(k, bump);
            writers_left.fetch_sub(1); // seq_cst: readers stop after the last writer's updates
        });
    for (int t = 0; t < readers; ++t)
        pool.emplace_back([&, t] {
            start.wait();
            reader_tally& tally = tallies[static_cast<std::size_t>(t)];
            std::vector<std::int64_t> last(keys, 0);
            bool more = true;
            while (more) {
                more = writers_left.load() > 0; // one full pass after the writers finished
                for (int i = 0; i < keys; ++i) {
                    const int k = (i * 7 + t * 131) % keys;
                    ++tally.reads;
                    // Alternate the copying and the in-place read.
                    std::optional<pair_value> v;
                    if (i % 2 == 0)
                        v = model.get(k);
                    else
                        v = model.read(k, [](const pair_value* p) {
                            return p ? std::optional<pair_value>(*p) : std::nullopt;
                        });
                    if (!v)
                        continue;
                    ++tally.found;
                    tally.torn += torn(*v);
                    tally.went_back += v->a < last[static_cast<std::size_t>(k)];
                    last[static_cast<std::size_t>(k)] = v->a;
                }
            }
        });
    start.go = true;
    for (auto& th : pool)
        th.join();

    std::int64_t reads = 0, found = 0, torn_seen = 0, went_back = 0;
    for (const reader_tally& t : tallies) {
        reads += t.reads;
        found += t.found;
        torn_seen += t.torn;
        went_back += t.went_back;
    }
    CHECK(reads >= std::int64_t{readers} * keys);
    CHECK(found > 0);
    CHECK(torn_seen == 0);
    CHECK(went_back == 0);

    CHECK(model.size() == static_cast<std::size_t>(keys));
    int wrong = 0;
    for (int k = 0; k < keys; ++k) {
        const std::optional<pair_value> v = model.get(k);
        wrong += !v || v->a != rounds || torn(*v);
    }
    CHECK(wrong == 0);
}

TEST_CASE("keyed_read_model: writers of the same keys lose no update") {
    constexpr int writers = 4, keys = 64, rounds = 200;
    weft::es::keyed_read_model<std::string, std::int64_t> model(4); // few shards: contention
    start_line start;
    std::vector<std::thread> pool;
    for (int w = 0; w < writers; ++w)
        pool.emplace_back([&, w] {
            start.wait();
            for (int r = 0; r < rounds; ++r)
                for (int i = 0; i < keys; ++i) {
                    const int k = (i + w * 17) % keys;
                    model.update("key-" + std::to_string(k), [](std::int64_t& v) { ++v; });
                }
        });
    start.go = true;
    for (auto& th : pool)
        th.join();

    std::int64_t total = 0;
    int wrong = 0;
    for (const auto& [key, value] : model.snapshot()) {
        total += value;
        wrong += value != std::int64_t{writers} * rounds;
    }
    CHECK(wrong == 0);
    CHECK(total == std::int64_t{writers} * rounds * keys);
    CHECK(model.size() == static_cast<std::size_t>(keys));
}

TEST_CASE("keyed_read_model: erase, clear and size count what is there") {
    weft::es::keyed_read_model<int, std::string> model;
    CHECK(model.empty());
    CHECK_FALSE(model.get(1).has_value());
    CHECK_FALSE(model.contains(1));
    CHECK_FALSE(model.erase(1));

    for (int k = 0; k < 1000; ++k)
        model.update(k, [k](std::string& v) { v = "v" + std::to_string(k); });
    CHECK(model.size() == 1000);
    CHECK(model.get(7) == std::optional<std::string>("v7"));
    CHECK(model.contains(999));

    CHECK(model.erase(7));
    CHECK_FALSE(model.erase(7));
    CHECK_FALSE(model.contains(7));
    CHECK(model.size() == 999);

    // update of an erased key starts again from a default-constructed value.
    model.update(7, [](std::string& v) { v += "again"; });
    CHECK(model.get(7) == std::optional<std::string>("again"));
    CHECK(model.size() == 1000);

    model.clear();
    CHECK(model.size() == 0);
    CHECK(model.empty());
    CHECK_FALSE(model.get(0).has_value());
    int visited = 0;
    model.for_each([&](const int&, const std::string&) { ++visited; });
    CHECK(visited == 0);
}

TEST_CASE("keyed_read_model: for_each and snapshot visit every value exactly once") {
    constexpr int keys = 5000;
    weft::es::keyed_read_model<int, std::int64_t> model;
    for (int k = 0; k < keys; ++k)
        model.update(k, [k](std::int64_t& v) { v = std::int64_t{k} * 3; });

    std::int64_t visits = 0, key_sum = 0, value_sum = 0, wrong = 0;
    std::set<int> seen;
    model.for_each([&](const int& k, const std::int64_t& v) {
        ++visits;
        key_sum += k;
        value_sum += v;
        wrong += v != std::int64_t{k} * 3;
        seen.insert(k);
    });
    const std::int64_t want_key_sum = std::int64_t{keys} * (keys - 1) / 2;
    CHECK(visits == keys);
    CHECK(seen.size() == static_cast<std::size_t>(keys));
    CHECK(key_sum == want_key_sum);
    CHECK(value_sum == want_key_sum * 3);
    CHECK(wrong == 0);

    const auto snap = model.snapshot();
    CHECK(snap.size() == static_cast<std::size_t>(keys));
    std::set<int> snap_keys;
    std::int64_t snap_wrong = 0;
    for (const auto& [k, v] : snap) {
        snap_keys.insert(k);
        snap_wrong += v != std::int64_t{k} * 3;
    }
    CHECK(snap_keys.size() == static_cast<std::size_t>(keys));
    CHECK(snap_wrong == 0);
}

TEST_CASE("keyed_read_model: read and update return what the callback returns") {
    weft::es::keyed_read_model<std::string, std::vector<int>> model;
    CHECK(model.read("a", [](const std::vector<int>* v) { return v == nullptr; }));
    const std::size_t n = model.update("a", [](std::vector<int>& v) {
        v.push_back(1);
        v.push_back(2);
        return v.size();
    });
    CHECK(n == 2);
    CHECK(model.read("a", [](const std::vector<int>* v) { return v ? v->back() : -1; }) == 2);
}

TEST_CASE("keyed_read_model: an update that throws removes the value it created") {
    weft::es::keyed_read_model<int, int> model;
    REQUIRE_THROWS_AS(model.update(1, [](int&) { throw std::runtime_error("no"); }),
                      std::runtime_error);
    CHECK_FALSE(model.contains(1));
    CHECK(model.size() == 0);

    // An existing value stays, with what the callback did before it threw.
    model.update(2, [](int& v) { v = 5; });
    REQUIRE_THROWS_AS(model.update(2,
                                   [](int& v) {
                                       v = 6;
                                       throw std::runtime_error("no");
                                   }),
                      std::runtime_error);
    CHECK(model.get(2) == std::optional<int>(6));
}

TEST_CASE("keyed_read_model: the shard count is rounded up to a power of two") {
    CHECK(weft::es::keyed_read_model<int, int>(0).shard_count() == 1);
    CHECK(weft::es::keyed_read_model<int, int>(1).shard_count() == 1);
    CHECK(weft::es::keyed_read_model<int, int>(100).shard_count() == 128);
    CHECK(weft::es::keyed_read_model<int, int>().shard_count() == 64);

    // One shard still holds every key.
    weft::es::keyed_read_model<int, int> one(1);
    for (int k = 0; k < 100; ++k)
        one.update(k, [k](int& v) { v = k; });
    CHECK(one.size() == 100);
    CHECK(one.get(42) == std::optional<int>(42));
}

namespace {

// A version whose every cell holds its number: a reader that sees two numbers saw a mix.
struct board {
    std::int64_t version = 0;
    std::array<std::int64_t, 32> cells{};
    std::string label = "0";
};

bool consistent(const board& b) {
    for (std::int64_t c : b.cells)
        if (c != b.version)
            return false;
    return b.label == std::to_string(b.version);
}

} // namespace

TEST_CASE("snapshot_read_model: readers see whole versions in order while a writer publishes") {
    constexpr int readers = 4, updates = 2000;
    weft::es::snapshot_read_model<board> model;
    start_line start;
    std::atomic<bool> writer_done{false};
    std::vector<reader_tally> tallies(readers);
    std::vector<std::int64_t> last_seen(readers, -1);
    std::vector<std::thread> pool;

    pool.emplace_back([&] {
        start.wait();
        for (int i = 1; i <= updates; ++i)
            model.update([i](board& b) {
                // A batch of changes to one copy; readers see none of them or all.
                b.version = i;
                for (std::int64_t& c : b.cells)
                    c = i;
                b.label = std::to_string(i);
            });
        writer_done.store(true); // seq_cst: readers make one more pass after this
    });
    for (int t = 0; t < readers; ++t)
        pool.emplace_back([&, t] {
            start.wait();
            reader_tally& tally = tallies[static_cast<std::size_t>(t)];
            std::int64_t last = -1;
            // Half the readers load the shared pointer each time, half keep a reader handle.
            std::optional<weft::es::snapshot_read_model<board>::reader> handle;
            if (t % 2 == 1)
                handle.emplace(model);
            bool more = true;
            while (more) {
                more = !writer_done.load();
                const std::shared_ptr<const board> b = handle ? handle->current() : model.current();
                ++tally.reads;
                tally.torn += !consistent(*b);
                tally.went_back += b->version < last;
                last = b->version;
            }
            last_seen[static_cast<std::size_t>(t)] = last;
        });
    start.go = true;
    for (auto& th : pool)
        th.join();

    std::int64_t reads = 0, torn_seen = 0, went_back = 0;
    for (const reader_tally& t : tallies) {
        reads += t.reads;
        torn_seen += t.torn;
        went_back += t.went_back;
    }
    CHECK(reads >= readers);
    CHECK(torn_seen == 0);
    CHECK(went_back == 0);
    // The last pass of every reader came after the writer's last update.
    int stale = 0;
    for (std::int64_t v : last_seen)
        stale += v != updates;
    CHECK(stale == 0);
    CHECK(model.version() == static_cast<std::uint64_t>(updates));
    CHECK(model.current()->version == updates);
    CHECK(consistent(*model.current()));
}

TEST_CASE("snapshot_read_model: concurrent writers are serialized and lose no update") {
    constexpr int writers = 4, updates = 500;
    weft::es::snapshot_read_model<std::vector<int>> model;
    start_line start;
    std::vector<std::thread> pool;
    for (int w = 0; w < writers; ++w)
        pool.emplace_back([&, w] {
            start.wait();
            for (int i = 0; i < updates; ++i)
                model.update([&](std::vector<int>& v) { v.push_back(w * updates + i); });
        });
    start.go = true;
    for (auto& th : pool)
        th.join();

    const std::shared_ptr<const std::vector<int>> v = model.current();
    CHECK(v->size() == static_cast<std::size_t>(writers * updates));
    CHECK(std::set<int>(v->begin(), v->end()).size() ==
          static_cast<std::size_t>(writers * updates));
    CHECK(model.version() == static_cast<std::uint64_t>(writers * updates));
}

TEST_CASE("snapshot_read_model: a held version never changes and a throwing update publishes "
          "nothing") {
    weft::es::snapshot_read_model<std::vector<int>> model(std::vector<int>{1, 2, 3});
    const std::shared_ptr<const std::vector<int>> before = model.current();
    CHECK(model.version() == 0);

    const std::size_t n = model.update([](std::vector<int>& v) {
        v.push_back(4);
        return v.size();
    });
    CHECK(n == 4);
    CHECK(before->size() == 3);
    CHECK(model.current()->size() == 4);
    CHECK(model.version() == 1);

    REQUIRE_THROWS_AS(model.update([](std::vector<int>& v) {
        v.clear();
        throw std::runtime_error("no");
    }),
                      std::runtime_error);
    CHECK(model.current()->size() == 4);
    CHECK(model.version() == 1);

    model.replace(std::vector<int>{9});
    CHECK(*model.current() == std::vector<int>{9});
    CHECK(model.version() == 2);

    weft::es::snapshot_read_model<std::vector<int>>::reader r(model);
    CHECK(r->size() == 1);
    model.update([](std::vector<int>& v) { v.push_back(10); });
    CHECK(r->size() == 2);
    CHECK((*r)[1] == 10);
}
