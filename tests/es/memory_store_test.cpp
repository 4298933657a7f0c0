// weft::es::memory_store: the store conformance suite (store_conformance.hpp), then what memory
// adds: appends and snapshot saves complete before the call returns, an invalid batch given to
// async_append fails its future rather than the call, and a subscription outlives its store.
#include "catch_compat.hpp"
#include "store_conformance.hpp"

#include <weft/es/memory_store.hpp>

#include <memory>
#include <string>
#include <vector>

static_assert(weft::es::event_store<weft::es::memory_store>);

WEFT_STORE_CONFORMANCE_TESTS("memory_store", std::make_unique<weft::es::memory_store>())

namespace es = weft::es;

TEST_CASE("memory_store: async_append's future is ready when the call returns") {
    es::memory_store store;
    auto f =
        store.async_append("s", es::expected_version::no_stream(), weft_conformance::events(2));
    CHECK(f.ready());
    // Written already, before anyone reads the future.
    CHECK(store.head_position() == 2);
    const es::append_result r = f.get();
    CHECK(r.status == es::append_status::ok);
    CHECK(r.version == 2);
}

TEST_CASE("memory_store: an invalid batch fails async_append's future, not the call") {
    es::memory_store store;
    std::vector<es::event_data> batch = weft_conformance::events_with_ids(2);
    batch[1].event_id = batch[0].event_id;
    auto f = store.async_append("s", es::expected_version::any(), batch);
    CHECK(f.ready());
    CHECK_THROWS_AS(f.get(), es::invalid_append);
    auto unnamed = store.async_append("", es::expected_version::any(), weft_conformance::events(1));
    CHECK_THROWS_AS(unnamed.get(), es::invalid_append);
    CHECK(store.head_position() == 0);
}

TEST_CASE("memory_store: a saved snapshot loads as soon as save_snapshot returns") {
    es::memory_store store;
    store.save_snapshot(es::snapshot{"acc", 4, 1, "state"});
    const std::optional<es::snapshot> got = store.load_snapshot("acc");
    REQUIRE(got.has_value());
    CHECK(got->version == 4);
    CHECK(got->payload == "state");
}

TEST_CASE("memory_store: a subscription outlives its store and reports closed") {
    auto store = std::make_unique<es::memory_store>();
    REQUIRE(store->append("s", es::expected_version::any(), weft_conformance::events(3)));
    es::subscription sub = store->subscribe_all(2);
    store.reset();
    // Closed before it read anything: no more events, even the ones that were stored.
    CHECK(sub.closed());
    CHECK(sub.next().empty());
    CHECK(sub.next_for(std::chrono::milliseconds(1)).empty());
}
