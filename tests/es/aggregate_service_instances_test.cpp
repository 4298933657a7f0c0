// weft::es::aggregate_service: two service instances on one store (two processes, in effect).
// Each decides on the state it loaded, which the other may have moved on since:
// - a decision that writes nothing (a rejection, or no events) is checked against the
//   stream's head before it is answered, and decided again on the new state if it moved;
// - a command id accepted on one instance is answered from that first result on the other,
//   whatever the cache size (0, 1, default) and however many events the command appended.
// Every test runs on memory_store and (where built with SQLite) on sqlite_store.
#include "bank_domain.hpp"
#include "catch_compat.hpp"
#include "test_support.hpp"

#include <weft/es/aggregate_service.hpp>
#include <weft/es/memory_store.hpp>
#ifdef WEFT_TEST_SQLITE
#include "sqlite_test_support.hpp"

#include <weft/es/sqlite_store.hpp>
#endif

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

using weft::es::command_result;
using weft::es::command_status;

namespace {

// A counter whose commands append any number of events: add{n} appends n `added` events
// (n == 0: accepted with none), take{n} appends one `taken` or is rejected below n.
struct tally {
    struct add {
        std::size_t n;
    };
    struct take {
        std::int64_t n;
    };
    struct added {};
    struct taken {
        std::int64_t n;
    };
    using command = std::variant<add, take>;
    using event = std::variant<added, taken>;
    using state = std::int64_t;

    state initial() const { return 0; }
    weft::es::decision<event> decide(const command& c, state s) const {
        if (const auto* a = std::get_if<add>(&c))
            return std::vector<event>(a->n, added{});
        const take& t = std::get<take>(c);
        if (t.n > s)
            return weft::es::rejection{"only " + std::to_string(s)};
        return {taken{t.n}};
    }
    state evolve(state s, const event& e) const {
        if (const auto* t = std::get_if<taken>(&e))
            return s - t->n;
        return s + 1;
    }
};

struct tally_codec {
    weft::es::encoded_event encode(const tally::event& e) const {
        if (const auto* t = std::get_if<tally::taken>(&e))
            return {"taken", 1, std::to_string(t->n)};
        return {"added", 1, ""};
    }
    tally::event decode(const weft::es::recorded_event& e) const {
        if (e.type == "taken")
            return tally::taken{std::stoll(e.payload)};
        return tally::added{};
    }
};

// The stores the tests run on, each a fresh empty one per call.
struct memory_store_kind {
    using store = weft::es::memory_store;
    static constexpr const char* name = "memory_store";
    std::unique_ptr<store> open() { return std::make_unique<store>(); }
};

#ifdef WEFT_TEST_SQLITE
struct sqlite_store_kind {
    using store = weft::es::sqlite_store;
    static constexpr const char* name = "sqlite_store";
    weft_test::temp_db_file file;
    std::unique_ptr<store> open() {
        weft::es::sqlite_options o;
        o.durability = weft::es::durability::off; // a temp file: nothing to survive
        return std::make_unique<store>(file.path, o);
    }
};
#endif

template <class Store>
using bank_service = weft::es::aggregate_service<bank::account, Store, bank::account_codec>;
template <class Store>
using tally_service = weft::es::aggregate_service<tally, Store, tally_codec>;

weft::es::aggregate_options<tally::state> remembering(std::size_t n) {
    weft::es::aggregate_options<tally::state> o;
    o.remembered_commands = n;
    return o;
}

// --- a decision that writes nothing ----------------------------------------------------------

template <class Kind>
void stale_rejection_is_decided_again() {
    Kind kind;
    auto store = kind.open();
    weft::scheduler s(2);
    bank_service<typename Kind::store> a(s, *store);
    bank_service<typename Kind::store> b(s, *store);
    REQUIRE(a.handle("acc-1", bank::open_account{"ann"}).get());
    REQUIRE(a.state_of("acc-1").get().version == 1); // a holds it at version 1, balance 0
    REQUIRE(b.handle("acc-1", bank::deposit{100'00}).get().version == 2);

    const command_result r = a.handle("acc-1", bank::withdraw{50'00}).get();
    CHECK(r.status == command_status::accepted);
    CHECK(r.reason == "");
    CHECK(r.version == 3);
    CHECK(r.events == 1);
    // A rejection that is right on the head is still a rejection, at the head's version.
    REQUIRE(b.handle("acc-1", bank::deposit{1'00}).get().version == 4);
    const command_result no = a.handle("acc-1", bank::withdraw{60'00}).get();
    CHECK(no.status == command_status::rejected);
    CHECK(no.reason == "insufficient balance (51.00)");
    CHECK(no.version == 4);
    CHECK(store->version_of("acc-1") == 4);
}

template <class Kind>
void stale_empty_decision_reports_the_head() {
    Kind kind;
    auto store = kind.open();
    weft::scheduler s(2);
    tally_service<typename Kind::store> a(s, *store);
    tally_service<typename Kind::store> b(s, *store);
    REQUIRE(a.handle("t", tally::add{1}).get().version == 1);
    REQUIRE(b.handle("t", tally::add{5}).get().version == 6);
    // Accepted with no events: the stream's version after it is 6, not the 1 a loaded.
    const command_result r = a.handle("t", tally::add{0}).get();
    CHECK(r.status == command_status::accepted);
    CHECK(r.version == 6);
    CHECK(r.events == 0);
    CHECK(a.state_of("t").get().state == 6);
}

// --- a command id retried on another instance --------------------------------------------------

// Command "cmd" appends `n` events through `a`; then it is retried on `a` (after its result was
// evicted where the cache is small) and on `b`, which loaded the stream before `a` wrote it.
template <class Kind>
void retry_on_either_instance(std::size_t cache, std::size_t n) {
    INFO(Kind::name << ", remembered_commands " << cache << ", " << n << " events per command");
    Kind kind;
    auto store = kind.open();
    weft::scheduler s(2);
    tally_service<typename Kind::store> a(s, *store, {}, {}, remembering(cache));
    tally_service<typename Kind::store> b(s, *store, {}, {}, remembering(cache));
    REQUIRE(b.state_of("t").get().version == 0); // b's state goes stale from here

    const command_result first = a.handle("t", tally::add{n}, {.command_id = "cmd"}).get();
    REQUIRE(first.status == command_status::accepted);
    REQUIRE(first.version == n);
    REQUIRE(first.events == n);
    // Two more commands evict "cmd" from a cache of 1.
    REQUIRE(a.handle("t", tally::add{1}, {.command_id = "later-1"}).get());
    REQUIRE(a.handle("t", tally::add{1}, {.command_id = "later-2"}).get());
    const weft::es::log_position head = store->head_position();
    REQUIRE(head == n + 2);

    int answered_first = 0;
    for (auto* svc : {&a, &b, &a, &b}) {
        const command_result again = svc->handle("t", tally::add{n}, {.command_id = "cmd"}).get();
        CHECK(again.status == command_status::accepted);
        CHECK(again.duplicate);
        CHECK(again.version == first.version);
        CHECK(again.position == first.position);
        CHECK(again.events == first.events);
        answered_first += again.duplicate && again.version == first.version &&
                          again.events == first.events && again.position == first.position;
    }
    CHECK(answered_first == 4);
    CHECK(store->head_position() == head); // nothing stored twice
    CHECK(store->version_of("t") == n + 2);
    // A new command on b (one that writes nothing) catches b up to the head.
    CHECK(b.handle("t", tally::add{0}).get().version == n + 2);
    CHECK(a.state_of("t").get().state == static_cast<std::int64_t>(n + 2));
    CHECK(b.state_of("t").get().state == static_cast<std::int64_t>(n + 2));
}

template <class Kind>
void retries_on_every_cache_size_and_batch_size() {
    for (const std::size_t cache : {std::size_t{0}, std::size_t{1}, std::size_t{256}})
        for (const std::size_t n : {std::size_t{1}, std::size_t{100}, std::size_t{1000}})
            retry_on_either_instance<Kind>(cache, n);
}

// The story with the bank: a deposit accepted by a, retried on b, which loaded the
// account before it was opened, and with no cache on either.
template <class Kind>
void bank_retry_on_stale_instance() {
    Kind kind;
    auto store = kind.open();
    weft::scheduler s(2);
    weft::es::aggregate_options<bank::account::state> none;
    none.remembered_commands = 0;
    bank_service<typename Kind::store> a(s, *store, {}, {}, none);
    bank_service<typename Kind::store> b(s, *store, {}, {}, none);
    REQUIRE(b.state_of("acc-1").get().version == 0);
    REQUIRE(a.handle("acc-1", bank::open_account{"ann"}, {.command_id = "open"}).get());
    const command_result paid =
        a.handle("acc-1", bank::deposit{100'00}, {.command_id = "pay"}).get();
    const command_result took =
        a.handle("acc-1", bank::withdraw{100'00}, {.command_id = "take"}).get();
    REQUIRE(paid.version == 2);
    REQUIRE(took.version == 3);

    for (auto* svc : {&b, &a}) {
        const command_result p =
            svc->handle("acc-1", bank::deposit{100'00}, {.command_id = "pay"}).get();
        CHECK(p.status == command_status::accepted);
        CHECK(p.reason == "");
        CHECK(p.duplicate);
        CHECK(p.version == 2);
        CHECK(p.position == paid.position);
        const command_result t =
            svc->handle("acc-1", bank::withdraw{100'00}, {.command_id = "take"}).get();
        CHECK(t.status == command_status::accepted);
        CHECK(t.reason == "");
        CHECK(t.duplicate);
        CHECK(t.version == 3);
    }
    CHECK(store->version_of("acc-1") == 3);
}

// Both instances get the same command at once, round after round: it is stored once, both
// answer with its one result, and exactly one of the two answers is the first.
template <class Kind>
void same_command_on_both_instances_at_once() {
    Kind kind;
    auto store = kind.open();
    weft::scheduler s(2);
    tally_service<typename Kind::store> a(s, *store, {}, {}, remembering(1));
    tally_service<typename Kind::store> b(s, *store, {}, {}, remembering(1));
    const int rounds = 20 * weft_test::stress_rounds();
    int same = 0, firsts = 0, accepted = 0;
    for (int i = 0; i < rounds; ++i) {
        const weft::es::command_options o{.command_id = "r-" + std::to_string(i)};
        auto fa = a.handle("t", tally::add{3}, o);
        auto fb = b.handle("t", tally::add{3}, o);
        const command_result ra = fa.get();
        const command_result rb = fb.get();
        accepted += ra.status == command_status::accepted;
        accepted += rb.status == command_status::accepted;
        same += ra.version == rb.version && ra.position == rb.position && ra.events == 3 &&
                rb.events == 3;
        firsts += !ra.duplicate;
        firsts += !rb.duplicate;
    }
    CHECK(accepted == 2 * rounds);
    CHECK(same == rounds);
    CHECK(firsts == rounds);
    CHECK(store->version_of("t") == static_cast<std::uint64_t>(3 * rounds));
    CHECK(store->head_position() == static_cast<std::uint64_t>(3 * rounds));
}

// A memory_store with another writer in it: `before_version_of` and `before_append` run (on
// the inner store) just before the service's version_of and async_append reach it, so a test
// can move the stream at exactly that point.
class racing_store {
public:
    using store = weft::es::memory_store;
    explicit racing_store(store& s) : s_(s) {}

    weft::es::append_result append(const std::string& stream, weft::es::expected_version e,
                                   std::vector<weft::es::event_data> events) {
        return s_.append(stream, e, std::move(events));
    }
    weft::future<weft::es::append_result> async_append(const std::string& stream,
                                                       weft::es::expected_version e,
                                                       std::vector<weft::es::event_data> events) {
        if (before_append)
            before_append(s_);
        return s_.async_append(stream, e, std::move(events));
    }
    std::vector<weft::es::recorded_event> read_stream(const std::string& stream,
                                                      weft::es::stream_version from,
                                                      weft::es::read_direction d,
                                                      std::size_t max) const {
        return s_.read_stream(stream, from, d, max);
    }
    std::vector<weft::es::recorded_event> read_all(weft::es::log_position from,
                                                   std::size_t max) const {
        return s_.read_all(from, max);
    }
    weft::es::log_position head_position() const { return s_.head_position(); }
    weft::es::stream_version version_of(const std::string& stream) const {
        ++version_reads;
        if (before_version_of)
            before_version_of(s_);
        return s_.version_of(stream);
    }
    weft::es::subscription subscribe_all(weft::es::log_position from) {
        return s_.subscribe_all(from);
    }
    std::optional<weft::es::recorded_event> find_event(const std::string& id) const {
        return s_.find_event(id);
    }
    void set_stream_metadata(const std::string& stream, weft::es::stream_metadata m) {
        s_.set_stream_metadata(stream, std::move(m));
    }
    weft::es::stream_metadata stream_metadata_of(const std::string& stream) const {
        return s_.stream_metadata_of(stream);
    }
    void save_snapshot(weft::es::snapshot snap) { s_.save_snapshot(std::move(snap)); }
    std::optional<weft::es::snapshot> load_snapshot(const std::string& stream) const {
        return s_.load_snapshot(stream);
    }

    // Set before the first command; version_reads is read by the test thread after the
    // command's future is ready (the future orders it).
    std::function<void(store&)> before_version_of{};
    std::function<void(store&)> before_append{};
    mutable int version_reads = 0;

private:
    store& s_;
};
static_assert(weft::es::event_store<racing_store>);

} // namespace

TEST_CASE("a rejection on a stream that moves before every answer ends as conflict after "
          "max_conflict_retries") {
    weft::es::memory_store inner;
    racing_store store(inner);
    // Each look at the version finds one more event.
    store.before_version_of = [](weft::es::memory_store& m) {
        std::vector<weft::es::event_data> one(1);
        one[0].type = "added";
        m.append("t", weft::es::expected_version::any(), std::move(one));
    };
    weft::scheduler s(2);
    weft::es::aggregate_options<tally::state> two_retries;
    two_retries.max_conflict_retries = 2;
    tally_service<racing_store> a(s, store, {}, {}, two_retries);
    // take{100} is rejected on every state the stream passes through (it gains 1 per look).
    const command_result r = a.handle("t", tally::take{100}).get();
    CHECK(r.status == command_status::conflict);
    CHECK(r.reason == "stream t changed during each of 3 attempts (now at version 3)");
    CHECK(store.version_reads == 3);
    CHECK(r.version == 3);
    CHECK(inner.version_of("t") == 3);
}

TEST_CASE("a command stored by another instance with fewer events, between the lookup and the "
          "append, is answered from that first result") {
    weft::es::memory_store inner;
    racing_store store(inner);
    // The other instance decided "cmd" on an older state as one event; ours decides three.
    store.before_append = [](weft::es::memory_store& m) {
        if (m.find_event("cmd#0"))
            return;
        std::vector<weft::es::event_data> theirs(1);
        theirs[0].type = "added";
        theirs[0].event_id = "cmd#0";
        m.append("t", weft::es::expected_version::any(), std::move(theirs));
    };
    weft::scheduler s(2);
    tally_service<racing_store> a(s, store);
    const command_result r = a.handle("t", tally::add{3}, {.command_id = "cmd"}).get();
    CHECK(r.status == command_status::accepted);
    CHECK(r.duplicate);
    CHECK(r.events == 1);
    CHECK(r.version == 1);
    CHECK(r.position == 1);
    CHECK(inner.head_position() == 1);
    CHECK(a.state_of("t").get().state == 1);
}

#define WEFT_INSTANCES_TESTS(kind, tag)                                                            \
    TEST_CASE(tag ": a rejection decided on a stale state is decided again on the new one") {      \
        stale_rejection_is_decided_again<kind>();                                                  \
    }                                                                                              \
    TEST_CASE(tag ": an empty decision on a stale state reports the stream's head version") {      \
        stale_empty_decision_reports_the_head<kind>();                                             \
    }                                                                                              \
    TEST_CASE(tag ": a retried command id gets its first result on either instance, for 1, "       \
                  "100 and 1000 events and caches of 0, 1 and 256") {                              \
        retries_on_every_cache_size_and_batch_size<kind>();                                        \
    }                                                                                              \
    TEST_CASE(tag ": a deposit retried on an instance that never saw the account open gets "       \
                  "its first result") {                                                            \
        bank_retry_on_stale_instance<kind>();                                                      \
    }                                                                                              \
    TEST_CASE(tag ": one command sent to two instances at once is stored once and answered "       \
                  "the same by both") {                                                            \
        same_command_on_both_instances_at_once<kind>();                                            \
    }

WEFT_INSTANCES_TESTS(memory_store_kind, "memory_store")
#ifdef WEFT_TEST_SQLITE
WEFT_INSTANCES_TESTS(sqlite_store_kind, "sqlite_store")
#endif
