// The event store conformance suite: the guarantees of weft::es::event_store (store.hpp),
// checked the same way for every store. A store's test file runs it once:
//
//   #include "catch_compat.hpp"
//   #include "store_conformance.hpp"
//
//   #include <weft/es/memory_store.hpp>
//
//   WEFT_STORE_CONFORMANCE_TESTS("memory_store", std::make_unique<weft::es::memory_store>())
//
// The first argument is a string literal that starts every test name ("memory_store: append
// ..."); the rest is an expression evaluated whenever a test needs a fresh, empty store. It
// must yield an owning pointer (std::unique_ptr or std::shared_ptr) to a type that models
// weft::es::event_store; one test resets that pointer to check that destroying the store ends
// its subscriptions. A store kept in a file makes a new file per call, e.g.
//
//   WEFT_STORE_CONFORMANCE_TESTS("sqlite_store", open_in_temp_file())
//
// The suite uses only the concept's API. What it allows a store beyond what the concept says:
// - save_snapshot may complete after it returns: the suite polls load_snapshot until it shows
//   the snapshot it saved, for at most k_patience.
// - Every wait for a store (a subscription's next event, a snapshot, a clock reading) ends after
//   k_patience, so a broken store fails a test instead of hanging it.
// - recorded_at comes from the system clock (weft::es::now_utc()): the envelope test wants it
//   within a second of the append, the max_age test polls now_utc() until an event is too old.
// And what it asks beyond the concept's comments, as memory_store does it: read_stream's `max`
// counts the events it shows (not the ones stream metadata hides); an empty batch appends
// nothing and reports the stream's version (positions 0); stored event ids repeated for another
// stream or in another order throw invalid_append; setting stream metadata does not create the
// stream.
//
// No test sleeps to synchronize; other threads collect what they saw and the test thread checks
// it after join. The whole suite takes about a second for memory_store under ThreadSanitizer.
#pragma once

#include "catch_compat.hpp"

#include <weft/es/event.hpp>
#include <weft/es/store.hpp>
#include <weft/es/subscription.hpp>
#include <weft/scheduler.hpp>
#include <weft/task.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <latch>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace weft_conformance {

namespace es = weft::es;
using namespace std::chrono_literals;

// The longest the suite waits for a store to do something it should do at once.
inline constexpr std::chrono::seconds k_patience{5};

template <class Make>
using store_of = std::remove_reference_t<decltype(*std::declval<Make&>()())>;

// ---------------------------------------------------------------------------------------------
// Helpers

inline es::event_data event(std::string type, std::string payload = "{}") {
    es::event_data e;
    e.type = std::move(type);
    e.payload = std::move(payload);
    return e;
}

// `n` events without ids (the store makes them), typed "<type>-1", "<type>-2"...
inline std::vector<es::event_data> events(std::size_t n, const std::string& type = "e") {
    std::vector<es::event_data> out;
    for (std::size_t i = 1; i <= n; ++i)
        out.push_back(event(type + "-" + std::to_string(i)));
    return out;
}

// `n` events with fresh ids, for tests that need to know the ids.
inline std::vector<es::event_data> events_with_ids(std::size_t n, const std::string& type = "e") {
    std::vector<es::event_data> out = events(n, type);
    for (es::event_data& e : out)
        e.event_id = es::new_event_id();
    return out;
}

inline std::vector<std::uint64_t> positions(const std::vector<es::recorded_event>& events) {
    std::vector<std::uint64_t> out;
    for (const es::recorded_event& e : events)
        out.push_back(e.position);
    return out;
}

inline std::vector<std::uint64_t> versions(const std::vector<es::recorded_event>& events) {
    std::vector<std::uint64_t> out;
    for (const es::recorded_event& e : events)
        out.push_back(e.version);
    return out;
}

// first, first + 1, ..., last (ascending) or first, first - 1, ..., last (descending).
inline std::vector<std::uint64_t> run(std::uint64_t first, std::uint64_t last) {
    std::vector<std::uint64_t> out;
    if (first <= last)
        for (std::uint64_t v = first; v <= last; ++v)
            out.push_back(v);
    else
        for (std::uint64_t v = first; v >= last; --v)
            out.push_back(v);
    return out;
}

inline bool looks_like_uuid(const std::string& id) {
    if (id.size() != 36)
        return false;
    for (std::size_t i = 0; i < id.size(); ++i) {
        const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        const char c = id[i];
        const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (dash ? c != '-' : !hex)
            return false;
    }
    return true;
}

// Polls `done` (yielding, not sleeping) until it holds or k_patience has passed.
template <class Pred>
bool poll_until(Pred done) {
    const auto deadline = std::chrono::steady_clock::now() + k_patience;
    for (;;) {
        if (done())
            return true;
        if (std::chrono::steady_clock::now() >= deadline)
            return false;
        std::this_thread::yield();
    }
}

// Lets another thread that announced it is about to block (in next()) get there. Only makes
// the interesting interleaving likely: every test that calls it passes either way.
inline void let_other_thread_block() {
    const auto until = std::chrono::steady_clock::now() + 20ms;
    while (std::chrono::steady_clock::now() < until)
        std::this_thread::yield();
}

// Reads a subscription until it has delivered `want` events in all or a next_for came back
// empty (closed, or k_patience without an event).
inline std::vector<es::recorded_event> take(es::subscription& sub, std::size_t want,
                                            std::size_t max = 256) {
    std::vector<es::recorded_event> got;
    while (got.size() < want) {
        std::vector<es::recorded_event> batch = sub.next_for(k_patience, max);
        if (batch.empty())
            break;
        for (es::recorded_event& e : batch)
            got.push_back(std::move(e));
    }
    return got;
}

template <class Store>
std::vector<std::string> ids_in_log(const Store& s) {
    std::vector<std::string> out;
    for (const es::recorded_event& e : s.read_all(1, s.head_position() + 1))
        out.push_back(e.event_id);
    return out;
}

inline std::vector<std::string> ids(const std::vector<es::recorded_event>& events) {
    std::vector<std::string> out;
    for (const es::recorded_event& e : events)
        out.push_back(e.event_id);
    return out;
}

// ---------------------------------------------------------------------------------------------
// Appends and expected versions

template <class Make>
void expected_version_table(Make make) {
    static_assert(es::event_store<store_of<Make>>);
    auto store = make();
    auto& s = *store;

    struct row {
        const char* name;
        es::expected_version expected;
        bool appends_to_missing;
        bool appends_to_version_2;
    };
    const std::vector<row> table{
        {"any", es::expected_version::any(), true, true},
        {"no_stream", es::expected_version::no_stream(), true, false},
        {"stream_exists", es::expected_version::stream_exists(), false, true},
        {"exactly(0)", es::expected_version::exactly(0), true, false},
        {"exactly(1)", es::expected_version::exactly(1), false, false},
        {"exactly(2)", es::expected_version::exactly(2), false, true},
        {"exactly(3)", es::expected_version::exactly(3), false, false},
    };
    // Each row gets its own streams: "missing-i" never written, "two-i" at version 2. A stream
    // "other" first, so positions and versions differ.
    REQUIRE(s.append("other", es::expected_version::no_stream(), events(1)));
    for (std::size_t i = 0; i < table.size(); ++i)
        REQUIRE(s.append("two-" + std::to_string(i), es::expected_version::no_stream(), events(2)));

    for (std::size_t i = 0; i < table.size(); ++i) {
        const row& r = table[i];
        for (const bool to_missing : {true, false}) {
            const std::string stream = (to_missing ? "missing-" : "two-") + std::to_string(i);
            const bool should_append = to_missing ? r.appends_to_missing : r.appends_to_version_2;
            INFO("expected " << r.name << ", stream " << stream);
            const es::log_position head_before = s.head_position();
            const es::stream_version version_before = s.version_of(stream);
            REQUIRE(version_before == (to_missing ? 0u : 2u));
            std::vector<es::event_data> batch = events_with_ids(1);
            const std::string id = batch[0].event_id;

            const es::append_result result = s.append(stream, r.expected, std::move(batch));
            if (should_append) {
                CHECK(bool(result));
                CHECK(result.status == es::append_status::ok);
                CHECK(result.version == version_before + 1);
                CHECK(result.first_position == head_before + 1);
                CHECK(result.last_position == head_before + 1);
                CHECK_FALSE(result.duplicate);
                CHECK(s.head_position() == head_before + 1);
                CHECK(s.version_of(stream) == version_before + 1);
                CHECK(s.find_event(id).has_value());
            } else {
                CHECK_FALSE(bool(result));
                CHECK(result.status == es::append_status::wrong_expected_version);
                CHECK(result.version == version_before); // the actual version
                // Nothing written.
                CHECK(s.head_position() == head_before);
                CHECK(s.version_of(stream) == version_before);
                CHECK(s.read_stream(stream, 1, es::read_direction::forward, 100).size() ==
                      version_before);
                CHECK_FALSE(s.find_event(id).has_value());
            }
        }
    }
}

// exactly(n) means "the stream is at version n", for every n: the values next to the ends of
// stream_version (where a store could overflow, or confuse n with any / stream_exists) are
// conflicts like any other wrong version, on a missing stream and on streams at 3 and 4.
template <class Make>
void expected_version_edges(Make make) {
    auto store = make();
    auto& s = *store;
    constexpr es::stream_version top = std::numeric_limits<es::stream_version>::max();
    REQUIRE(s.append("three", es::expected_version::no_stream(), events(3)));
    REQUIRE(s.append("four", es::expected_version::no_stream(), events(4)));
    const es::log_position head = s.head_position();

    const std::vector<es::stream_version> wrong{
        top, top - 1, top - 2, top - 3, top / 2, 1u << 31, 1ull << 63, (1ull << 63) - 1, 5, 2};
    std::size_t conflicts = 0;
    for (const std::string stream : {"missing", "three", "four"}) {
        const es::stream_version actual = s.version_of(stream);
        for (const es::stream_version v : wrong) {
            if (v == actual)
                continue;
            INFO("stream " << stream << " at " << actual << ", expected exactly(" << v << ")");
            const es::append_result r =
                s.append(stream, es::expected_version::exactly(v), events_with_ids(1));
            CHECK(r.status == es::append_status::wrong_expected_version);
            CHECK(r.version == actual);
            conflicts += r.status == es::append_status::wrong_expected_version;
            // The same through async_append.
            const es::append_result a =
                s.async_append(stream, es::expected_version::exactly(v), events(1)).get();
            CHECK(a.status == es::append_status::wrong_expected_version);
            conflicts += a.status == es::append_status::wrong_expected_version;
        }
    }
    CHECK(conflicts == 2 * 3 * wrong.size());
    CHECK(s.head_position() == head); // nothing written
    CHECK(s.version_of("missing") == 0);
    CHECK(s.version_of("three") == 3);
    CHECK(s.version_of("four") == 4);

    // The special values keep their meaning, and are not equal to any exactly(n).
    CHECK(es::expected_version::exactly(top) != es::expected_version::any());
    CHECK(es::expected_version::exactly(top - 1) != es::expected_version::stream_exists());
    CHECK(es::expected_version::exactly(0) == es::expected_version::no_stream());
    CHECK(es::expected_version::exactly(top).describe() == std::to_string(top));
    CHECK(es::expected_version::any().describe() == "any");
    CHECK(es::expected_version::stream_exists().describe() == "stream exists");
    CHECK(s.append("three", es::expected_version::any(), events(1)).version == 4);
    CHECK(s.append("four", es::expected_version::stream_exists(), events(1)).version == 5);
    CHECK(s.append("missing", es::expected_version::exactly(0), events(1)).version == 1);
    CHECK(s.append("three", es::expected_version::exactly(4), events(1)).version == 5);
}

template <class Make>
void empty_batch(Make make) {
    auto store = make();
    auto& s = *store;

    es::append_result r = s.append("a", es::expected_version::no_stream(), {});
    CHECK(r.status == es::append_status::ok);
    CHECK(r.version == 0);
    CHECK(r.first_position == 0);
    CHECK(r.last_position == 0);
    CHECK_FALSE(r.duplicate);
    CHECK(s.head_position() == 0);
    CHECK(s.version_of("a") == 0);

    REQUIRE(s.append("b", es::expected_version::no_stream(), events(2)));
    r = s.append("b", es::expected_version::exactly(2), {});
    CHECK(r.status == es::append_status::ok);
    CHECK(r.version == 2);
    CHECK(r.first_position == 0);
    CHECK(r.last_position == 0);

    // An empty batch is still checked against the expected version.
    r = s.append("b", es::expected_version::no_stream(), {});
    CHECK(r.status == es::append_status::wrong_expected_version);
    CHECK(r.version == 2);
    r = s.append("a", es::expected_version::stream_exists(), {});
    CHECK(r.status == es::append_status::wrong_expected_version);
    CHECK(r.version == 0);

    CHECK(s.head_position() == 2);
    CHECK(s.version_of("b") == 2);
    // The empty batch did not create "a".
    r = s.append("a", es::expected_version::no_stream(), events(1));
    CHECK(r.status == es::append_status::ok);
    CHECK(r.version == 1);
    CHECK(r.first_position == 3);
}

template <class Make>
void empty_stream_name(Make make) {
    auto store = make();
    auto& s = *store;
    CHECK_THROWS_AS(s.append("", es::expected_version::any(), events(1)), es::invalid_append);
    CHECK(s.head_position() == 0);
    CHECK(s.read_all(1, 10).empty());
}

template <class Make>
void append_result_positions(Make make) {
    auto store = make();
    auto& s = *store;

    const es::append_result a1 = s.append("a", es::expected_version::no_stream(), events(2, "a"));
    CHECK(a1.status == es::append_status::ok);
    CHECK(a1.version == 2);
    CHECK(a1.first_position == 1);
    CHECK(a1.last_position == 2);
    CHECK_FALSE(a1.duplicate);

    const es::append_result b1 = s.append("b", es::expected_version::no_stream(), events(3, "b"));
    CHECK(b1.version == 3);
    CHECK(b1.first_position == 3);
    CHECK(b1.last_position == 5);

    const es::append_result a2 = s.append("a", es::expected_version::exactly(2), events(1, "a3"));
    CHECK(a2.version == 3);
    CHECK(a2.first_position == 6);
    CHECK(a2.last_position == 6);

    const std::vector<es::recorded_event> all = s.read_all(1, 100);
    REQUIRE(all.size() == 6);
    CHECK(positions(all) == run(1, 6));
    const std::vector<std::pair<std::string, es::stream_version>> want{
        {"a", 1}, {"a", 2}, {"b", 1}, {"b", 2}, {"b", 3}, {"a", 3}};
    const std::vector<std::string> types{"a-1", "a-2", "b-1", "b-2", "b-3", "a3-1"};
    for (std::size_t i = 0; i < all.size(); ++i) {
        INFO("position " << i + 1);
        CHECK(all[i].stream == want[i].first);
        CHECK(all[i].version == want[i].second);
        CHECK(all[i].type == types[i]);
    }
}

template <class Make>
void interleaved_streams(Make make) {
    auto store = make();
    auto& s = *store;
    const std::vector<std::string> streams{"x", "y", "z"};
    std::map<std::string, es::stream_version> expected_version;
    es::log_position head = 0;
    for (std::size_t round = 0; round < 12; ++round) {
        const std::string& stream = streams[(round * 7) % streams.size()];
        const std::size_t n = 1 + round % 3;
        const es::append_result r = s.append(stream, es::expected_version::any(), events(n));
        REQUIRE(r);
        expected_version[stream] += n;
        CHECK(r.version == expected_version[stream]);
        CHECK(r.first_position == head + 1);
        CHECK(r.last_position == head + n);
        head += n;
    }
    CHECK(s.head_position() == head);
    CHECK(positions(s.read_all(1, 1000)) == run(1, head));
    for (const std::string& stream : streams) {
        INFO("stream " << stream);
        const std::vector<es::recorded_event> in_stream =
            s.read_stream(stream, 1, es::read_direction::forward, 1000);
        CHECK(versions(in_stream) == run(1, expected_version[stream]));
        CHECK(std::is_sorted(in_stream.begin(), in_stream.end(),
                             [](const auto& l, const auto& r) { return l.position < r.position; }));
        CHECK(s.version_of(stream) == expected_version[stream]);
    }
}

// Checks every field of `e` against what was appended and where it should be.
inline void check_envelope(const es::recorded_event& e, const es::event_data& d,
                           const std::string& stream, es::stream_version version,
                           es::log_position position, es::timestamp before, es::timestamp after) {
    CHECK(e.stream == stream);
    CHECK(e.version == version);
    CHECK(e.position == position);
    CHECK(e.event_id == d.event_id);
    CHECK(e.type == d.type);
    CHECK(e.schema_version == d.schema_version);
    CHECK(e.payload.size() == d.payload.size());
    CHECK(e.payload == d.payload);
    CHECK(e.correlation_id == d.correlation_id);
    CHECK(e.causation_id == d.causation_id);
    CHECK(e.metadata == d.metadata);
    CHECK(e.recorded_at >= before - 1s);
    CHECK(e.recorded_at <= after + 1s);
}

template <class Make>
void envelope_round_trip(Make make) {
    auto store = make();
    auto& s = *store;

    es::event_data full;
    full.type = "deposited";
    // Bytes a text column would mangle: NUL, invalid UTF-8, a trailing NUL.
    static constexpr char bytes[] = "\0\x01{\"amount\":5000}\xff\xfe\x80\0";
    full.payload = std::string(bytes, sizeof bytes); // the literal's own NUL too
    full.schema_version = 3;
    full.event_id = es::new_event_id();
    full.correlation_id = "request-17";
    full.causation_id = "command-42";
    full.metadata = R"({"user":"ann","ip":"10.0.0.1"})";
    es::event_data minimal; // every optional field empty
    minimal.type = "closed";
    minimal.event_id = es::new_event_id();

    REQUIRE(s.append("other", es::expected_version::any(), events(1)));
    const std::vector<es::event_data> sent{full, minimal};
    const es::timestamp before = es::now_utc();
    const es::append_result r = s.append("account-42", es::expected_version::no_stream(), sent);
    const es::timestamp after = es::now_utc();
    REQUIRE(r);

    auto check_both = [&](const std::vector<es::recorded_event>& got, const char* how) {
        INFO("read by " << how);
        REQUIRE(got.size() == 2);
        check_envelope(got[0], full, "account-42", 1, 2, before, after);
        check_envelope(got[1], minimal, "account-42", 2, 3, before, after);
    };
    check_both(s.read_stream("account-42", 1, es::read_direction::forward, 10), "read_stream");
    check_both(s.read_all(2, 10), "read_all");
    std::vector<es::recorded_event> found;
    for (const std::string& id : {full.event_id, minimal.event_id})
        if (std::optional<es::recorded_event> e = s.find_event(id))
            found.push_back(std::move(*e));
    check_both(found, "find_event");
    es::subscription sub = s.subscribe_all(2);
    check_both(take(sub, 2), "subscription");
}

template <class Make>
void generated_event_ids(Make make) {
    auto store = make();
    auto& s = *store;
    REQUIRE(s.append("a", es::expected_version::any(), events(3)));
    REQUIRE(s.append("b", es::expected_version::any(), events(2)));
    std::vector<es::event_data> mixed = events(2);
    mixed[0].event_id = es::new_event_id();
    const std::string given = mixed[0].event_id;
    REQUIRE(s.append("a", es::expected_version::any(), std::move(mixed)));

    const std::vector<es::recorded_event> all = s.read_all(1, 100);
    REQUIRE(all.size() == 7);
    CHECK(all[5].event_id == given); // a given id is kept
    std::set<std::string> distinct;
    for (const es::recorded_event& e : all) {
        INFO("position " << e.position << ", id '" << e.event_id << "'");
        CHECK(looks_like_uuid(e.event_id));
        distinct.insert(e.event_id);
        const std::optional<es::recorded_event> found = s.find_event(e.event_id);
        REQUIRE(found.has_value());
        CHECK(found->position == e.position);
    }
    CHECK(distinct.size() == all.size());
}

// ---------------------------------------------------------------------------------------------
// Idempotent appends

template <class Make>
void repeated_batch_is_duplicate(Make make) {
    auto store = make();
    auto& s = *store;
    const std::vector<es::event_data> batch = events_with_ids(2);
    REQUIRE(s.append("before", es::expected_version::any(), events(1)));
    const es::append_result first = s.append("s", es::expected_version::exactly(0), batch);
    REQUIRE(first);
    CHECK(first.first_position == 2);
    REQUIRE(s.append("after", es::expected_version::any(), events(3)));
    const es::log_position head = s.head_position();

    const es::append_result again = s.append("s", es::expected_version::any(), batch);
    CHECK(again.status == es::append_status::ok);
    CHECK(again.duplicate);
    CHECK(again.version == first.version);
    CHECK(again.first_position == first.first_position);
    CHECK(again.last_position == first.last_position);
    CHECK(s.head_position() == head);
    CHECK(s.version_of("s") == 2);
    CHECK(s.read_all(1, 100).size() == head);

    // Still the first append's result after the stream moved on.
    REQUIRE(s.append("s", es::expected_version::exactly(2), events(1)));
    const es::append_result later = s.append("s", es::expected_version::any(), batch);
    CHECK(later.status == es::append_status::ok);
    CHECK(later.duplicate);
    CHECK(later.version == 2);
    CHECK(later.first_position == first.first_position);
    CHECK(later.last_position == first.last_position);
    CHECK(s.head_position() == head + 1);
    CHECK(s.version_of("s") == 3);
}

template <class Make>
void repeated_batch_ignores_expected_version(Make make) {
    auto store = make();
    auto& s = *store;
    const std::vector<es::event_data> batch = events_with_ids(3);
    const es::append_result first = s.append("s", es::expected_version::no_stream(), batch);
    REQUIRE(first);
    const es::log_position head = s.head_position();

    // A retry after a lost reply: the expected version that made the first append is now wrong.
    for (const es::expected_version expected :
         {es::expected_version::no_stream(), es::expected_version::exactly(1),
          es::expected_version::exactly(7)}) {
        INFO("expected " << expected.describe());
        const es::append_result again = s.append("s", expected, batch);
        CHECK(again.status == es::append_status::ok);
        CHECK(again.duplicate);
        CHECK(again.version == 3);
        CHECK(again.first_position == first.first_position);
        CHECK(again.last_position == first.last_position);
    }
    CHECK(s.head_position() == head);
    CHECK(s.version_of("s") == 3);
}

template <class Make>
void partly_stored_batch_throws(Make make) {
    auto store = make();
    auto& s = *store;
    const std::vector<es::event_data> stored = events_with_ids(2);
    REQUIRE(s.append("s", es::expected_version::any(), stored));

    std::vector<es::event_data> partial{stored[0], event("new")};
    partial[1].event_id = es::new_event_id();
    const std::string new_id = partial[1].event_id;
    CHECK_THROWS_AS(s.append("s", es::expected_version::any(), partial), es::invalid_append);
    // New first, stored second.
    std::vector<es::event_data> reversed{partial[1], stored[1]};
    CHECK_THROWS_AS(s.append("s", es::expected_version::any(), reversed), es::invalid_append);
    // A stored id with one the store would make.
    std::vector<es::event_data> with_blank{stored[0], event("blank")};
    CHECK_THROWS_AS(s.append("s", es::expected_version::any(), with_blank), es::invalid_append);

    CHECK(s.head_position() == 2);
    CHECK(s.version_of("s") == 2);
    CHECK_FALSE(s.find_event(new_id).has_value());
}

template <class Make>
void id_twice_in_batch_throws(Make make) {
    auto store = make();
    auto& s = *store;
    std::vector<es::event_data> batch = events_with_ids(3);
    batch[2].event_id = batch[0].event_id;
    CHECK_THROWS_AS(s.append("s", es::expected_version::any(), batch), es::invalid_append);
    std::vector<es::event_data> pair = events_with_ids(2);
    pair[1].event_id = pair[0].event_id;
    CHECK_THROWS_AS(s.append("s", es::expected_version::no_stream(), pair), es::invalid_append);

    CHECK(s.head_position() == 0);
    CHECK(s.version_of("s") == 0);
    CHECK_FALSE(s.find_event(batch[0].event_id).has_value());
    CHECK_FALSE(s.find_event(batch[1].event_id).has_value());
    CHECK_FALSE(s.find_event(pair[0].event_id).has_value());
}

template <class Make>
void stored_ids_elsewhere_throw(Make make) {
    auto store = make();
    auto& s = *store;
    const std::vector<es::event_data> stored = events_with_ids(2);
    REQUIRE(s.append("s", es::expected_version::any(), stored));

    CHECK_THROWS_AS(s.append("t", es::expected_version::any(), stored), es::invalid_append);
    const std::vector<es::event_data> swapped{stored[1], stored[0]};
    CHECK_THROWS_AS(s.append("s", es::expected_version::any(), swapped), es::invalid_append);

    CHECK(s.head_position() == 2);
    CHECK(s.version_of("t") == 0);
    CHECK(s.version_of("s") == 2);
}

// ---------------------------------------------------------------------------------------------
// Reads

// "s" at versions 1..5 interleaved with "o": s1 o1 s2 s3 o2 s4 s5 (positions 1..7).
template <class Store>
void write_interleaved(Store& s) {
    for (const char* stream : {"s", "o", "s", "s", "o", "s", "s"})
        REQUIRE(s.append(stream, es::expected_version::any(), events(1, stream)));
}

template <class Make>
void read_stream_forward(Make make) {
    auto store = make();
    auto& s = *store;
    write_interleaved(s);
    constexpr auto fwd = es::read_direction::forward;

    const std::vector<es::recorded_event> all = s.read_stream("s", 1, fwd, 100);
    CHECK(versions(all) == run(1, 5));
    CHECK(positions(all) == std::vector<std::uint64_t>{1, 3, 4, 6, 7});
    for (const es::recorded_event& e : all)
        CHECK(e.stream == "s");
    CHECK(versions(s.read_stream("s", 3, fwd, 100)) == run(3, 5));
    CHECK(versions(s.read_stream("s", 5, fwd, 100)) == run(5, 5));
    CHECK(versions(s.read_stream("s", 2, fwd, 2)) == run(2, 3));
    CHECK(versions(s.read_stream("s", 1, fwd, 1)) == run(1, 1));
    CHECK(s.read_stream("s", 6, fwd, 100).empty());
    CHECK(s.read_stream("s", 1000, fwd, 100).empty());
    CHECK(s.read_stream("s", 1, fwd, 0).empty());
    CHECK(s.read_stream("missing", 1, fwd, 100).empty());
}

template <class Make>
void read_stream_backward(Make make) {
    auto store = make();
    auto& s = *store;
    write_interleaved(s);
    constexpr auto back = es::read_direction::backward;

    const std::vector<es::recorded_event> all = s.read_stream("s", es::stream_end, back, 100);
    CHECK(versions(all) == run(5, 1));
    CHECK(positions(all) == std::vector<std::uint64_t>{7, 6, 4, 3, 1});
    CHECK(versions(s.read_stream("s", 5, back, 100)) == run(5, 1));
    CHECK(versions(s.read_stream("s", 3, back, 100)) == run(3, 1));
    CHECK(versions(s.read_stream("s", 4, back, 2)) == run(4, 3));
    CHECK(versions(s.read_stream("s", es::stream_end, back, 1)) == run(5, 5));
    CHECK(versions(s.read_stream("s", 1, back, 100)) == run(1, 1));
    CHECK(s.read_stream("s", es::stream_end, back, 0).empty());
    CHECK(s.read_stream("missing", es::stream_end, back, 100).empty());
}

template <class Make>
void read_all_ranges(Make make) {
    auto store = make();
    auto& s = *store;
    CHECK(s.read_all(1, 100).empty());
    write_interleaved(s);

    const std::vector<es::recorded_event> all = s.read_all(1, 100);
    CHECK(positions(all) == run(1, 7));
    const std::vector<std::string> streams{"s", "o", "s", "s", "o", "s", "s"};
    for (std::size_t i = 0; i < all.size() && i < streams.size(); ++i)
        CHECK(all[i].stream == streams[i]);
    CHECK(positions(s.read_all(4, 100)) == run(4, 7));
    CHECK(positions(s.read_all(4, 2)) == run(4, 5));
    CHECK(positions(s.read_all(1, 3)) == run(1, 3));
    CHECK(positions(s.read_all(7, 100)) == run(7, 7));
    CHECK(s.read_all(8, 100).empty());
    CHECK(s.read_all(1000, 100).empty());
    CHECK(s.read_all(1, 0).empty());
}

// ---------------------------------------------------------------------------------------------
// Stream metadata

template <class Make>
void truncate_before_hides_from_read_stream(Make make) {
    auto store = make();
    auto& s = *store;
    write_interleaved(s);
    es::stream_metadata meta;
    meta.truncate_before = 3;
    s.set_stream_metadata("s", meta);
    constexpr auto fwd = es::read_direction::forward;
    constexpr auto back = es::read_direction::backward;

    CHECK(versions(s.read_stream("s", 1, fwd, 100)) == run(3, 5));
    CHECK(versions(s.read_stream("s", 1, fwd, 2)) == run(3, 4)); // max counts shown events
    CHECK(versions(s.read_stream("s", 4, fwd, 100)) == run(4, 5));
    CHECK(versions(s.read_stream("s", es::stream_end, back, 100)) == run(5, 3));
    CHECK(s.read_stream("s", 2, back, 100).empty());
    // The global log keeps them, and the stream's version does not change.
    std::vector<es::stream_version> in_log;
    for (const es::recorded_event& e : s.read_all(1, 100))
        if (e.stream == "s")
            in_log.push_back(e.version);
    CHECK(in_log == run(1, 5));
    CHECK(s.version_of("s") == 5);
    CHECK(versions(s.read_stream("o", 1, fwd, 100)) == run(1, 2)); // other streams unaffected

    REQUIRE(s.append("s", es::expected_version::exactly(5), events(1)));
    CHECK(versions(s.read_stream("s", 1, fwd, 100)) == run(3, 6));
}

// Polls now_utc() until it is past `t` (a loop on the clock: the store compares the same clock).
inline bool wait_until_utc_past(es::timestamp t) {
    return poll_until([&] { return es::now_utc() > t; });
}

template <class Make>
void max_age_hides_from_read_stream(Make make) {
    auto store = make();
    auto& s = *store;
    constexpr auto fwd = es::read_direction::forward;
    constexpr auto back = es::read_direction::backward;

    // "old": every event older than 1 ms once the clock has passed it.
    REQUIRE(s.append("old", es::expected_version::no_stream(), events(2)));
    es::stream_metadata tiny;
    tiny.max_age = 1ms;
    s.set_stream_metadata("old", tiny);
    const std::vector<es::recorded_event> stored = s.read_all(1, 10);
    REQUIRE(stored.size() == 2);
    REQUIRE(wait_until_utc_past(stored[1].recorded_at + 1ms));
    CHECK(s.read_stream("old", 1, fwd, 100).empty());
    CHECK(s.read_stream("old", es::stream_end, back, 100).empty());
    CHECK(s.read_all(1, 10).size() == 2);
    CHECK(s.version_of("old") == 2);

    // "young": an hour is plenty, everything shows.
    es::stream_metadata hour;
    hour.max_age = std::chrono::hours(1);
    s.set_stream_metadata("young", hour);
    REQUIRE(s.append("young", es::expected_version::no_stream(), events(2)));
    CHECK(versions(s.read_stream("young", 1, fwd, 100)) == run(1, 2));

    // "mixed": version 1 has aged past 50 ms, version 2 is new.
    const auto age = 50ms;
    es::stream_metadata fifty;
    fifty.max_age = age;
    s.set_stream_metadata("mixed", fifty);
    REQUIRE(s.append("mixed", es::expected_version::no_stream(), events(1)));
    const std::vector<es::recorded_event> v1 = s.read_all(5, 1);
    REQUIRE(v1.size() == 1);
    REQUIRE(v1[0].stream == "mixed");
    REQUIRE(wait_until_utc_past(v1[0].recorded_at + age));
    REQUIRE(s.append("mixed", es::expected_version::exactly(1), events(1)));
    const std::vector<es::recorded_event> shown = s.read_stream("mixed", 1, fwd, 100);
    const es::timestamp read_done = es::now_utc();
    CHECK(std::none_of(shown.begin(), shown.end(), [](const auto& e) { return e.version == 1; }));
    const std::vector<es::recorded_event> v2 = s.read_all(6, 1);
    REQUIRE(v2.size() == 1);
    // Version 2 must show if the read finished before it aged (a slow machine may not).
    if (read_done <= v2[0].recorded_at + age)
        CHECK(versions(shown) == run(2, 2));
    CHECK(s.read_all(1, 100).size() == 6);
}

// Hidden events still count: truncate_before and max_age change what read_stream shows, never
// the stream's version, so every expected version is checked against the version of the last
// event appended, shown or not (as EventStoreDB's $tb: a truncated stream still exists).
template <class Make>
void expected_versions_count_hidden_events(Make make) {
    auto store = make();
    auto& s = *store;
    constexpr auto fwd = es::read_direction::forward;
    REQUIRE(s.append("cut", es::expected_version::no_stream(), events(3)));
    REQUIRE(s.append("aged", es::expected_version::no_stream(), events(2)));
    es::stream_metadata past_the_end;
    past_the_end.truncate_before = 10; // hides versions 1-9: everything there is
    s.set_stream_metadata("cut", past_the_end);
    es::stream_metadata tiny;
    tiny.max_age = 1ms;
    s.set_stream_metadata("aged", tiny);
    const std::vector<es::recorded_event> stored = s.read_all(1, 10);
    REQUIRE(stored.size() == 5);
    REQUIRE(wait_until_utc_past(stored[4].recorded_at + 1ms));

    for (const auto& [stream, version] :
         std::vector<std::pair<std::string, es::stream_version>>{{"cut", 3}, {"aged", 2}}) {
        INFO("stream " << stream << ", every event hidden");
        REQUIRE(s.read_stream(stream, 1, fwd, 100).empty());
        CHECK(s.version_of(stream) == version);
        const es::log_position head = s.head_position();
        // The stream exists: no_stream, exactly(0) and exactly(shown events) are conflicts.
        for (const es::expected_version e :
             {es::expected_version::no_stream(), es::expected_version::exactly(0),
              es::expected_version::exactly(version - 1),
              es::expected_version::exactly(version + 1)}) {
            INFO("expected " << e.describe());
            const es::append_result r = s.append(stream, e, events(1));
            CHECK(r.status == es::append_status::wrong_expected_version);
            CHECK(r.version == version);
        }
        CHECK(s.head_position() == head);
        // exactly(last version), stream_exists and any append after the hidden events.
        CHECK(s.append(stream, es::expected_version::exactly(version), events(1)).version ==
              version + 1);
        CHECK(s.append(stream, es::expected_version::stream_exists(), events(1)).version ==
              version + 2);
        CHECK(s.append(stream, es::expected_version::any(), events(1)).version == version + 3);
        CHECK(s.version_of(stream) == version + 3);
    }
    // The new versions of "cut" (4-6) are below truncate_before 10: hidden too.
    CHECK(s.read_stream("cut", 1, fwd, 100).empty());
    CHECK(s.read_all(1, 100).size() == 11);
}

template <class Make>
void stream_metadata_round_trip(Make make) {
    auto store = make();
    auto& s = *store;
    CHECK(s.stream_metadata_of("nobody") == es::stream_metadata{});

    es::stream_metadata meta;
    meta.max_age = std::chrono::minutes(5);
    meta.truncate_before = 7;
    s.set_stream_metadata("s", meta);
    CHECK(s.stream_metadata_of("s") == meta);
    CHECK(s.stream_metadata_of("nobody") == es::stream_metadata{});
    // Setting metadata does not create the stream.
    CHECK(s.version_of("s") == 0);
    CHECK(s.head_position() == 0);

    // ... and it applies to the stream once created: truncate_before 7 hides version 1.
    const es::append_result r = s.append("s", es::expected_version::no_stream(), events(1));
    CHECK(r.status == es::append_status::ok);
    CHECK(r.version == 1);
    CHECK(s.read_stream("s", 1, es::read_direction::forward, 100).empty());
    CHECK(s.stream_metadata_of("s") == meta);

    es::stream_metadata only_truncate;
    only_truncate.truncate_before = 1;
    s.set_stream_metadata("s", only_truncate);
    CHECK(s.stream_metadata_of("s") == only_truncate);
    CHECK_FALSE(s.stream_metadata_of("s").max_age.has_value());
    CHECK(versions(s.read_stream("s", 1, es::read_direction::forward, 100)) == run(1, 1));

    s.set_stream_metadata("s", es::stream_metadata{});
    CHECK(s.stream_metadata_of("s") == es::stream_metadata{});
}

// ---------------------------------------------------------------------------------------------
// Lookups

template <class Make>
void find_event_by_id(Make make) {
    auto store = make();
    auto& s = *store;
    CHECK_FALSE(s.find_event(es::new_event_id()).has_value());
    write_interleaved(s);
    const std::vector<es::event_data> batch = events_with_ids(3, "found");
    REQUIRE(s.append("f", es::expected_version::no_stream(), batch));

    const std::optional<es::recorded_event> middle = s.find_event(batch[1].event_id);
    REQUIRE(middle.has_value());
    CHECK(middle->stream == "f");
    CHECK(middle->version == 2);
    CHECK(middle->position == 9);
    CHECK(middle->event_id == batch[1].event_id);
    CHECK(middle->type == "found-2");
    CHECK(middle->payload == batch[1].payload);
    CHECK_FALSE(s.find_event("no-such-id").has_value());
    CHECK_FALSE(s.find_event("").has_value());
}

template <class Make>
void version_and_head(Make make) {
    auto store = make();
    auto& s = *store;
    CHECK(s.head_position() == 0);
    CHECK(s.version_of("a") == 0);
    REQUIRE(s.append("a", es::expected_version::any(), events(2)));
    CHECK(s.head_position() == 2);
    CHECK(s.version_of("a") == 2);
    CHECK(s.version_of("b") == 0);
    REQUIRE(s.append("b", es::expected_version::any(), events(3)));
    CHECK(s.head_position() == 5);
    CHECK(s.version_of("a") == 2);
    CHECK(s.version_of("b") == 3);
    CHECK_FALSE(s.append("a", es::expected_version::exactly(1), events(1)));
    CHECK(s.head_position() == 5);
    CHECK(s.version_of("a") == 2);
}

// ---------------------------------------------------------------------------------------------
// Snapshots

// load_snapshot(stream) once it shows `version` (a save may complete after it returns).
template <class Store>
std::optional<es::snapshot> snapshot_at(const Store& s, const std::string& stream,
                                        es::stream_version version) {
    std::optional<es::snapshot> got;
    poll_until([&] {
        got = s.load_snapshot(stream);
        return got && got->version == version;
    });
    return got;
}

template <class Make>
void snapshots_keep_the_latest(Make make) {
    auto store = make();
    auto& s = *store;
    REQUIRE(s.append("acc-1", es::expected_version::no_stream(), events(5)));
    REQUIRE(s.append("acc-2", es::expected_version::no_stream(), events(1)));
    CHECK_FALSE(s.load_snapshot("acc-1").has_value());

    static constexpr char bytes[] = "state\0\xff\x01";
    const std::string binary(bytes, sizeof bytes - 1);
    s.save_snapshot(es::snapshot{"acc-1", 3, 1, binary});
    std::optional<es::snapshot> got = snapshot_at(s, "acc-1", 3);
    REQUIRE(got.has_value());
    CHECK(got->stream == "acc-1");
    CHECK(got->version == 3);
    CHECK(got->schema_version == 1);
    CHECK(got->payload == binary);

    s.save_snapshot(es::snapshot{"acc-1", 5, 2, "state-5"});
    got = snapshot_at(s, "acc-1", 5);
    REQUIRE(got.has_value());
    CHECK(got->version == 5);
    CHECK(got->schema_version == 2);
    CHECK(got->payload == "state-5");

    CHECK_FALSE(s.load_snapshot("acc-2").has_value());
    s.save_snapshot(es::snapshot{"acc-2", 1, 1, "two"});
    got = snapshot_at(s, "acc-2", 1);
    REQUIRE(got.has_value());
    CHECK(got->payload == "two");
    got = s.load_snapshot("acc-1");
    REQUIRE(got.has_value());
    CHECK(got->version == 5);
}

// ---------------------------------------------------------------------------------------------
// Concurrency

// 8 writers: each appends to its own stream with exact versions (never a conflict), to one
// shared stream with any(), and to one contended stream with exact versions, retrying on
// conflict. 2 readers follow the log meanwhile. Every append is counted and checked afterwards.
template <class Make>
void concurrent_appends(Make make) {
    auto store = make();
    auto& s = *store;
    constexpr int k_writers = 8;
    constexpr int k_rounds = 45;
    constexpr int k_readers = 2;

    struct appended {
        std::string stream;
        std::vector<std::string> ids;
        es::append_result result;
    };
    struct writer_log {
        std::vector<appended> appends;
        std::size_t conflicts = 0;
        std::vector<std::string> errors;
    };
    struct reader_log {
        std::vector<std::string> ids; // ids[p - 1]: the event this reader saw at position p
        std::size_t reads = 0;
        std::vector<std::string> errors;
    };
    std::vector<writer_log> writers(k_writers);
    std::vector<reader_log> readers(k_readers);
    std::atomic<int> writers_left{k_writers};
    std::latch start(k_writers + k_readers);

    auto write = [&](int w) {
        writer_log& log = writers[static_cast<std::size_t>(w)];
        const std::string own = "own-" + std::to_string(w);
        es::stream_version own_version = 0;
        es::stream_version contended_version = 0;
        try {
            start.arrive_and_wait();
            for (int i = 0; i < k_rounds; ++i) {
                std::vector<es::event_data> batch =
                    events_with_ids(1 + static_cast<std::size_t>((i + w) % 2));
                appended a;
                for (const es::event_data& e : batch)
                    a.ids.push_back(e.event_id);
                if (i % 3 == 0) {
                    a.stream = own;
                    a.result = s.append(own, es::expected_version::exactly(own_version), batch);
                    if (!a.result)
                        log.errors.push_back(own + ": conflict on a stream nobody else writes");
                    own_version = a.result.version;
                } else if (i % 3 == 1) {
                    a.stream = "shared";
                    a.result = s.append("shared", es::expected_version::any(), batch);
                } else {
                    a.stream = "contended";
                    // Start from the version this writer last left it at: stale whenever
                    // another writer got in between, so conflicts and retries are common.
                    es::stream_version v = contended_version;
                    for (int tries = 0;; ++tries) {
                        a.result = s.append("contended", es::expected_version::exactly(v), batch);
                        if (a.result || tries == 1000)
                            break;
                        ++log.conflicts;
                        v = a.result.version; // the actual version: retry against it
                    }
                    contended_version = a.result.version;
                }
                if (a.result)
                    log.appends.push_back(std::move(a));
                else
                    log.errors.push_back(a.stream + ": append did not succeed");
            }
        } catch (const std::exception& e) {
            log.errors.push_back(std::string("threw: ") + e.what());
        }
        // release: the reader that sees 0 (acquire) starts its final pass after every append.
        writers_left.fetch_sub(1, std::memory_order_release);
    };

    auto follow = [&](int r) {
        reader_log& log = readers[static_cast<std::size_t>(r)];
        try {
            start.arrive_and_wait();
            es::log_position seen_head = 0;
            for (bool last_pass = false;;) {
                // acquire: pairs with the writers' release; read it before the head.
                last_pass = writers_left.load(std::memory_order_acquire) == 0;
                const es::log_position head = s.head_position();
                ++log.reads;
                if (head < seen_head)
                    log.errors.push_back("head went back from " + std::to_string(seen_head) +
                                         " to " + std::to_string(head));
                seen_head = std::max(seen_head, head);
                // Follow the log like a projection: what comes back starts where we are, is
                // contiguous, and reaches at least the head read before.
                const es::log_position next = log.ids.size() + 1;
                const std::vector<es::recorded_event> batch = s.read_all(next, 64);
                for (std::size_t i = 0; i < batch.size(); ++i) {
                    if (batch[i].position != next + i) {
                        log.errors.push_back(
                            "read_all(" + std::to_string(next) + ") returned position " +
                            std::to_string(batch[i].position) + " at index " + std::to_string(i));
                        break;
                    }
                    log.ids.push_back(batch[i].event_id);
                }
                if (next <= head && batch.size() < std::min<es::log_position>(64, head - next + 1))
                    log.errors.push_back("head was " + std::to_string(head) + " but read_all(" +
                                         std::to_string(next) + ") returned only " +
                                         std::to_string(batch.size()));
                // Now and then, re-read everything up to the head seen: nothing below it may
                // have appeared, vanished or changed.
                if (log.reads % 8 == 0 && seen_head > 0) {
                    const std::vector<es::recorded_event> again = s.read_all(1, seen_head);
                    if (again.size() != seen_head)
                        log.errors.push_back("re-read up to " + std::to_string(seen_head) +
                                             " returned " + std::to_string(again.size()));
                    for (std::size_t i = 0; i < again.size(); ++i) {
                        if (again[i].position != i + 1 ||
                            (i < log.ids.size() && again[i].event_id != log.ids[i])) {
                            log.errors.push_back("re-read: position " + std::to_string(i + 1) +
                                                 " changed");
                            break;
                        }
                    }
                }
                if (!log.errors.empty() || (last_pass && log.ids.size() >= head))
                    break;
            }
        } catch (const std::exception& e) {
            log.errors.push_back(std::string("threw: ") + e.what());
        }
    };

    std::vector<std::thread> threads;
    for (int w = 0; w < k_writers; ++w)
        threads.emplace_back(write, w);
    for (int r = 0; r < k_readers; ++r)
        threads.emplace_back(follow, r);
    for (std::thread& t : threads)
        t.join();

    // Every append accounted for.
    std::size_t appends = 0;
    std::size_t total = 0;
    std::size_t conflicts = 0;
    std::map<std::string, es::stream_version> stream_size;
    for (const writer_log& w : writers) {
        for (const std::string& e : w.errors)
            FAIL_CHECK("writer: " << e);
        appends += w.appends.size();
        conflicts += w.conflicts;
        for (const appended& a : w.appends) {
            total += a.ids.size();
            stream_size[a.stream] += a.ids.size();
        }
    }
    INFO(appends << " appends of " << total << " events, " << conflicts << " conflicts retried");
    CHECK(conflicts > 0); // the contended stream's stale versions must have been refused
    CHECK(appends == std::size_t{k_writers} * k_rounds);
    CHECK(s.head_position() == total);

    // Positions exactly 1..total.
    const std::vector<es::recorded_event> all = s.read_all(1, total + 10);
    REQUIRE(all.size() == total);
    CHECK(positions(all) == run(1, total));

    // Every event id present once, each append's events at its positions, in order.
    std::map<std::string, std::size_t> count;
    for (const es::recorded_event& e : all)
        ++count[e.event_id];
    CHECK(count.size() == total);
    for (const writer_log& w : writers) {
        for (const appended& a : w.appends) {
            INFO(a.stream << " append at " << a.result.first_position << ".."
                          << a.result.last_position);
            CHECK_FALSE(a.result.duplicate);
            REQUIRE(a.result.first_position >= 1);
            REQUIRE(a.result.last_position == a.result.first_position + a.ids.size() - 1);
            REQUIRE(a.result.last_position <= total);
            for (std::size_t i = 0; i < a.ids.size(); ++i) {
                const es::recorded_event& e = all[a.result.first_position - 1 + i];
                CHECK(count[a.ids[i]] == 1);
                CHECK(e.event_id == a.ids[i]);
                CHECK(e.stream == a.stream);
                CHECK(e.version == a.result.version - (a.ids.size() - 1 - i));
            }
        }
    }

    // Each stream's versions contiguous 1..n in position order.
    std::map<std::string, es::stream_version> last_version;
    for (const es::recorded_event& e : all) {
        INFO("position " << e.position << " in " << e.stream);
        CHECK(e.version == last_version[e.stream] + 1);
        last_version[e.stream] = e.version;
    }
    CHECK(last_version == stream_size);
    for (const auto& [stream, n] : stream_size) {
        INFO("stream " << stream);
        CHECK(s.version_of(stream) == n);
        CHECK(versions(s.read_stream(stream, 1, es::read_direction::forward, total)) == run(1, n));
    }

    // The readers saw the same log, with no gap or change along the way.
    const std::vector<std::string> final_ids = ids(all);
    for (const reader_log& r : readers) {
        for (const std::string& e : r.errors)
            FAIL_CHECK("reader: " << e);
        CHECK(r.reads > 0);
        CHECK(r.ids == final_ids);
    }
}

// ---------------------------------------------------------------------------------------------
// Subscriptions

template <class Make>
void subscription_catch_up_then_live(Make make) {
    auto store = make();
    auto& s = *store;
    REQUIRE(s.append("a", es::expected_version::any(), events(3)));
    REQUIRE(s.append("b", es::expected_version::any(), events(2)));

    es::subscription sub = s.subscribe_all(1);
    const std::vector<es::recorded_event> caught_up = take(sub, 5);
    CHECK(positions(caught_up) == run(1, 5));
    CHECK(ids(caught_up) == ids_in_log(s));
    CHECK(sub.position() == 6);

    std::vector<es::append_result> results;
    std::string error;
    std::thread writer([&] {
        try {
            for (int i = 0; i < 3; ++i)
                results.push_back(s.append("live", es::expected_version::any(), events(1)));
        } catch (const std::exception& e) {
            error = e.what();
        }
    });
    const std::vector<es::recorded_event> live = take(sub, 3);
    writer.join();
    CHECK(error.empty());
    CHECK(results.size() == 3);
    CHECK(positions(live) == run(6, 8));
    CHECK(versions(live) == run(1, 3));
    for (const es::recorded_event& e : live)
        CHECK(e.stream == "live");
    CHECK(sub.position() == 9);
}

template <class Make>
void subscription_across_the_boundary(Make make) {
    auto store = make();
    auto& s = *store;
    // 60 stored events, then a writer appends 240 more while the subscription catches up in
    // batches of at most 7: it crosses from catch-up to live while the log grows.
    for (int i = 0; i < 30; ++i)
        REQUIRE(
            s.append("stored-" + std::to_string(i % 4), es::expected_version::any(), events(2)));
    constexpr std::size_t k_stored = 60;
    constexpr std::size_t k_live = 240;

    es::subscription sub = s.subscribe_all(1);
    std::latch start(2);
    std::size_t appended = 0;
    std::string error;
    std::thread writer([&] {
        try {
            start.arrive_and_wait();
            for (std::size_t i = 0; appended < k_live; ++i) {
                const std::size_t n = 1 + i % 2;
                if (!s.append("live-" + std::to_string(i % 3), es::expected_version::any(),
                              events(n)))
                    throw std::runtime_error("append with any() did not succeed");
                appended += n;
            }
        } catch (const std::exception& e) {
            error = e.what();
        }
    });
    start.arrive_and_wait();
    const std::vector<es::recorded_event> got = take(sub, k_stored + k_live, 7);
    writer.join();
    CHECK(error.empty());
    CHECK(appended == k_live);
    CHECK(s.head_position() == k_stored + k_live);
    CHECK(got.size() == k_stored + k_live);
    CHECK(positions(got) == run(1, k_stored + k_live)); // nothing lost or repeated
    CHECK(ids(got) == ids_in_log(s));
    // Nothing more to come.
    CHECK(sub.next_for(1ms).empty());
}

template <class Make>
void subscription_from_position(Make make) {
    auto store = make();
    auto& s = *store;
    REQUIRE(s.append("a", es::expected_version::any(), events(10)));

    es::subscription from_4 = s.subscribe_all(4);
    CHECK(from_4.position() == 4);
    CHECK(positions(take(from_4, 7)) == run(4, 10));

    es::subscription at_head = s.subscribe_all(11);
    CHECK(at_head.next_for(1ms).empty());
    REQUIRE(s.append("b", es::expected_version::any(), events(2)));
    CHECK(positions(take(at_head, 2)) == run(11, 12));
}

template <class Make>
void next_for_times_out(Make make) {
    auto store = make();
    auto& s = *store;
    es::subscription sub = s.subscribe_all(1);
    const auto timeout = 30ms;
    auto t0 = std::chrono::steady_clock::now();
    CHECK(sub.next_for(timeout).empty());
    CHECK(std::chrono::steady_clock::now() - t0 >= timeout);
    CHECK_FALSE(sub.closed());

    // Also after it has delivered everything there is.
    REQUIRE(s.append("a", es::expected_version::any(), events(2)));
    CHECK(positions(take(sub, 2)) == run(1, 2));
    t0 = std::chrono::steady_clock::now();
    CHECK(sub.next_for(timeout).empty());
    CHECK(std::chrono::steady_clock::now() - t0 >= timeout);
    CHECK_FALSE(sub.closed());
}

// Runs `sub.next()` on another thread, calls `end()` on this one once that thread is about to
// block, and returns what next() returned and whether it did so within k_patience. If it did
// not, `unstick()` is called so the test can fail instead of hang.
template <class End, class Unstick>
std::pair<std::vector<es::recorded_event>, bool> next_ended_by(es::subscription& sub, End end,
                                                               Unstick unstick) {
    std::vector<es::recorded_event> got;
    std::atomic<bool> waiting{false};
    std::atomic<bool> returned{false};
    std::thread waiter([&] {
        // release/acquire: plain flags between this thread and the test thread.
        waiting.store(true, std::memory_order_release);
        got = sub.next();
        returned.store(true, std::memory_order_release);
    });
    while (!waiting.load(std::memory_order_acquire))
        std::this_thread::yield();
    let_other_thread_block();
    end();
    const bool in_time = poll_until([&] { return returned.load(std::memory_order_acquire); });
    if (!in_time)
        unstick();
    waiter.join();
    return {std::move(got), in_time};
}

template <class Make>
void close_wakes_next(Make make) {
    auto store = make();
    auto& s = *store;
    REQUIRE(s.append("a", es::expected_version::any(), events(1)));
    es::subscription sub = s.subscribe_all(1);
    REQUIRE(take(sub, 1).size() == 1);

    auto [got, in_time] = next_ended_by(
        sub, [&] { sub.close(); },
        [&] { (void)s.append("unstick", es::expected_version::any(), events(1)); });
    CHECK(in_time);
    CHECK(got.empty());
    CHECK(sub.closed());
    // A closed subscription returns at once, even with events to read.
    REQUIRE(s.append("b", es::expected_version::any(), events(1)));
    CHECK(sub.next().empty());
}

template <class Make>
void destroying_store_wakes_next(Make make) {
    auto store = make();
    REQUIRE(store->append("a", es::expected_version::any(), events(2)));
    es::subscription sub = store->subscribe_all(1);
    REQUIRE(take(sub, 2).size() == 2);

    auto [got, in_time] = next_ended_by(
        sub, [&] { store.reset(); }, [&] { sub.close(); });
    CHECK(in_time);
    CHECK(got.empty());
    CHECK(sub.closed());
    CHECK(sub.next().empty());
}

template <class Make>
void async_next_in_task(Make make) {
    auto store = make();
    auto& s = *store;
    weft::scheduler sched(2);
    constexpr std::size_t k_events = 20;
    es::subscription sub = s.subscribe_all(1);
    REQUIRE(s.append("first", es::expected_version::any(), events(1)));
    std::atomic<bool> caught_up{false};
    std::atomic<bool> finished{false};

    auto consume = [&]() -> weft::task<std::vector<es::recorded_event>> {
        std::vector<es::recorded_event> got;
        while (got.size() < k_events) {
            std::vector<es::recorded_event> batch = co_await sub.async_next(8);
            if (batch.empty())
                break; // closed
            for (es::recorded_event& e : batch)
                got.push_back(std::move(e));
            // release: the writer starts appending once the task has had its first batch.
            caught_up.store(true, std::memory_order_release);
        }
        finished.store(true, std::memory_order_release);
        co_return got;
    };
    std::string error;
    std::thread writer([&] {
        try {
            if (!poll_until([&] { return caught_up.load(std::memory_order_acquire); }))
                throw std::runtime_error("the task never received the stored event");
            for (std::size_t i = 1; i < k_events; ++i)
                if (!s.append("live", es::expected_version::any(), events(1)))
                    throw std::runtime_error("append with any() did not succeed");
            // If the task never gets everything, close so sync_wait returns and the test fails.
            if (!poll_until([&] { return finished.load(std::memory_order_acquire); }))
                sub.close();
        } catch (const std::exception& e) {
            error = e.what();
            sub.close();
        }
    });
    const std::vector<es::recorded_event> got = weft::sync_wait(sched, consume());
    writer.join();
    CHECK(error.empty());
    CHECK(positions(got) == run(1, k_events));
    CHECK(ids(got) == ids_in_log(s));
}

// ---------------------------------------------------------------------------------------------
// async_append

template <class Make>
void async_append_from_task_and_thread(Make make) {
    auto store = make();
    auto& s = *store;
    weft::scheduler sched(2);

    // The same three appends (new, repeated, conflicting) and an invalid one, on one stream.
    struct outcome {
        std::vector<es::append_result> results;
        bool invalid_threw = false;
    };
    auto in_task = [&]() -> weft::task<outcome> {
        outcome out;
        std::vector<es::event_data> batch = events_with_ids(2);
        std::vector<es::event_data> again = batch;
        std::vector<es::event_data> late = events(1);
        std::vector<es::event_data> invalid = events_with_ids(2);
        invalid[1].event_id = invalid[0].event_id;
        es::append_result r = co_await s.async_append(
            "from-task", es::expected_version::no_stream(), std::move(batch));
        out.results.push_back(r);
        r = co_await s.async_append("from-task", es::expected_version::no_stream(),
                                    std::move(again));
        out.results.push_back(r);
        r = co_await s.async_append("from-task", es::expected_version::no_stream(),
                                    std::move(late));
        out.results.push_back(r);
        try {
            r = co_await s.async_append("from-task", es::expected_version::any(),
                                        std::move(invalid));
        } catch (const es::invalid_append&) {
            out.invalid_threw = true;
        }
        co_return out;
    };
    const outcome task_side = weft::sync_wait(sched, in_task());

    outcome thread_side;
    std::string error;
    std::thread t([&] {
        try {
            std::vector<es::event_data> batch = events_with_ids(2);
            std::vector<es::event_data> again = batch;
            std::vector<es::event_data> invalid = events_with_ids(2);
            invalid[1].event_id = invalid[0].event_id;
            thread_side.results.push_back(
                s.async_append("from-thread", es::expected_version::no_stream(), batch).get());
            thread_side.results.push_back(
                s.async_append("from-thread", es::expected_version::no_stream(), again).get());
            thread_side.results.push_back(
                s.async_append("from-thread", es::expected_version::no_stream(), events(1)).get());
            try {
                (void)s.async_append("from-thread", es::expected_version::any(), invalid).get();
            } catch (const es::invalid_append&) {
                thread_side.invalid_threw = true;
            }
        } catch (const std::exception& e) {
            error = e.what();
        }
    });
    t.join();
    CHECK(error.empty());

    const outcome* const sides[] = {&task_side, &thread_side};
    for (const outcome* o : sides) {
        const bool task = o == &task_side;
        INFO((task ? "from a task" : "from a thread"));
        const es::log_position base = task ? 0 : 2;
        REQUIRE(o->results.size() == 3);
        const es::append_result& added = o->results[0];
        CHECK(added.status == es::append_status::ok);
        CHECK(added.version == 2);
        CHECK(added.first_position == base + 1);
        CHECK(added.last_position == base + 2);
        CHECK_FALSE(added.duplicate);
        const es::append_result& repeated = o->results[1];
        CHECK(repeated.status == es::append_status::ok);
        CHECK(repeated.duplicate);
        CHECK(repeated.version == 2);
        CHECK(repeated.first_position == base + 1);
        CHECK(repeated.last_position == base + 2);
        const es::append_result& conflict = o->results[2];
        CHECK(conflict.status == es::append_status::wrong_expected_version);
        CHECK(conflict.version == 2);
        CHECK(o->invalid_threw);
        CHECK(versions(s.read_stream(task ? "from-task" : "from-thread", 1,
                                     es::read_direction::forward, 10)) == run(1, 2));
    }
    CHECK(s.head_position() == 4);
}

} // namespace weft_conformance

// One conformance test case: "<tag>: <behaviour>", running weft_conformance::<body>.
#define WEFT_CONFORMANCE_CASE(tag, behaviour, body, ...)                                           \
    TEST_CASE(tag ": " behaviour, "[es][conformance]") {                                           \
        weft_conformance::body([&] { return __VA_ARGS__; });                                       \
    }

// Every conformance test case for one store; see the top of this file.
#define WEFT_STORE_CONFORMANCE_TESTS(tag, ...)                                                     \
    WEFT_CONFORMANCE_CASE(tag,                                                                     \
                          "append checks each expected version against a missing stream and a "    \
                          "stream at version 2 and a conflict writes nothing",                     \
                          expected_version_table, __VA_ARGS__)                                     \
    WEFT_CONFORMANCE_CASE(tag,                                                                     \
                          "exactly(n) near the top of stream_version is a conflict unless the "    \
                          "stream is at n",                                                        \
                          expected_version_edges, __VA_ARGS__)                                     \
    WEFT_CONFORMANCE_CASE(tag,                                                                     \
                          "an empty batch writes nothing but is checked against the expected "     \
                          "version",                                                               \
                          empty_batch, __VA_ARGS__)                                                \
    WEFT_CONFORMANCE_CASE(tag, "an append to a stream with an empty name throws invalid_append",   \
                          empty_stream_name, __VA_ARGS__)                                          \
    WEFT_CONFORMANCE_CASE(tag,                                                                     \
                          "append returns the new version and the batch's first and last "         \
                          "positions, gapless across streams",                                     \
                          append_result_positions, __VA_ARGS__)                                    \
    WEFT_CONFORMANCE_CASE(tag,                                                                     \
                          "interleaved streams get versions 1..n each and positions 1..N in all",  \
                          interleaved_streams, __VA_ARGS__)                                        \
    WEFT_CONFORMANCE_CASE(tag,                                                                     \
                          "a recorded event keeps every field appended, binary payload "           \
                          "included, and a recorded_at of now",                                    \
                          envelope_round_trip, __VA_ARGS__)                                        \
    WEFT_CONFORMANCE_CASE(tag, "an event appended without an id gets a unique UUID",               \
                          generated_event_ids, __VA_ARGS__)                                        \
    WEFT_CONFORMANCE_CASE(tag,                                                                     \
                          "appending a stored batch again returns the first result marked "        \
                          "duplicate and writes nothing",                                          \
                          repeated_batch_is_duplicate, __VA_ARGS__)                                \
    WEFT_CONFORMANCE_CASE(tag,                                                                     \
                          "a repeated batch is a duplicate even when its expected version is "     \
                          "now wrong",                                                             \
                          repeated_batch_ignores_expected_version, __VA_ARGS__)                    \
    WEFT_CONFORMANCE_CASE(tag,                                                                     \
                          "a batch mixing stored and new event ids throws invalid_append and "     \
                          "writes nothing",                                                        \
                          partly_stored_batch_throws, __VA_ARGS__)                                 \
    WEFT_CONFORMANCE_CASE(tag,                                                                     \
                          "a batch repeating an event id within itself throws invalid_append "     \
                          "and writes nothing",                                                    \
                          id_twice_in_batch_throws, __VA_ARGS__)                                   \
    WEFT_CONFORMANCE_CASE(tag,                                                                     \
                          "stored event ids repeated for another stream or in another order "      \
                          "throw invalid_append",                                                  \
                          stored_ids_elsewhere_throw, __VA_ARGS__)                                 \
    WEFT_CONFORMANCE_CASE(tag,                                                                     \
                          "read_stream forward returns versions from the start version up to "     \
                          "max",                                                                   \
                          read_stream_forward, __VA_ARGS__)                                        \
    WEFT_CONFORMANCE_CASE(tag,                                                                     \
                          "read_stream backward returns versions down from the start version "     \
                          "or from stream_end",                                                    \
                          read_stream_backward, __VA_ARGS__)                                       \
    WEFT_CONFORMANCE_CASE(tag,                                                                     \
                          "read_all returns the log in position order from any position up to "    \
                          "max",                                                                   \
                          read_all_ranges, __VA_ARGS__)                                            \
    WEFT_CONFORMANCE_CASE(tag,                                                                     \
                          "truncate_before hides earlier versions from read_stream but not from "  \
                          "read_all",                                                              \
                          truncate_before_hides_from_read_stream, __VA_ARGS__)                     \
    WEFT_CONFORMANCE_CASE(tag,                                                                     \
                          "max_age hides older events from read_stream but not from read_all",     \
                          max_age_hides_from_read_stream, __VA_ARGS__)                             \
    WEFT_CONFORMANCE_CASE(tag,                                                                     \
                          "expected versions count events that truncate_before or max_age hide",   \
                          expected_versions_count_hidden_events, __VA_ARGS__)                      \
    WEFT_CONFORMANCE_CASE(tag,                                                                     \
                          "stream metadata round-trips and applies to a stream created after it "  \
                          "was set",                                                               \
                          stream_metadata_round_trip, __VA_ARGS__)                                 \
    WEFT_CONFORMANCE_CASE(tag,                                                                     \
                          "find_event returns the stored envelope by id and nothing for an "       \
                          "unknown id",                                                            \
                          find_event_by_id, __VA_ARGS__)                                           \
    WEFT_CONFORMANCE_CASE(tag, "version_of and head_position follow appends and start at 0",       \
                          version_and_head, __VA_ARGS__)                                           \
    WEFT_CONFORMANCE_CASE(tag,                                                                     \
                          "load_snapshot returns nothing before a save and the latest snapshot "   \
                          "after two",                                                             \
                          snapshots_keep_the_latest, __VA_ARGS__)                                  \
    WEFT_CONFORMANCE_CASE(tag,                                                                     \
                          "8 threads appending concurrently get gapless positions and "            \
                          "contiguous versions while readers never see a gap",                     \
                          concurrent_appends, __VA_ARGS__)                                         \
    WEFT_CONFORMANCE_CASE(tag,                                                                     \
                          "subscribe_all(1) delivers the stored events then live appends in "      \
                          "order",                                                                 \
                          subscription_catch_up_then_live, __VA_ARGS__)                            \
    WEFT_CONFORMANCE_CASE(tag,                                                                     \
                          "a subscription loses and repeats nothing across catch-up and live "     \
                          "while a writer appends",                                                \
                          subscription_across_the_boundary, __VA_ARGS__)                           \
    WEFT_CONFORMANCE_CASE(tag, "subscribe_all(k) starts at position k",                            \
                          subscription_from_position, __VA_ARGS__)                                 \
    WEFT_CONFORMANCE_CASE(tag, "next_for returns an empty batch when nothing comes in time",       \
                          next_for_times_out, __VA_ARGS__)                                         \
    WEFT_CONFORMANCE_CASE(tag,                                                                     \
                          "close from another thread wakes a blocked next which returns an "       \
                          "empty batch",                                                           \
                          close_wakes_next, __VA_ARGS__)                                           \
    WEFT_CONFORMANCE_CASE(tag, "destroying the store wakes a waiting next with an empty batch",    \
                          destroying_store_wakes_next, __VA_ARGS__)                                \
    WEFT_CONFORMANCE_CASE(tag, "async_next in a task receives live events in order",               \
                          async_next_in_task, __VA_ARGS__)                                         \
    WEFT_CONFORMANCE_CASE(tag,                                                                     \
                          "async_append gives the same results co_awaited in a task and got on "   \
                          "a thread",                                                              \
                          async_append_from_task_and_thread, __VA_ARGS__)
