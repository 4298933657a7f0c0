// weft::es::sqlite_store append(ctx): cancelled when the context is done before the batch is
// queued (nothing stored, guaranteed), in_doubt when it is done while the writer has the batch
// (it may or may not commit; appending the same batch again, same event ids, says which).
// Raced: every batch ends ok, cancelled or in_doubt; ok ones are stored, cancelled ones are
// not, in_doubt ones are resolved by the retry; the log holds exactly the stored ones.
#include "catch_compat.hpp"
#include "sqlite_test_support.hpp"
#include "test_support.hpp"

#include <weft/context.hpp>
#include <weft/es/sqlite_store.hpp>
#include <weft/es/subscription.hpp>

#include <atomic>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace es = weft::es;

namespace {

std::vector<es::event_data> event_with_id(const std::string& id) {
    return {es::event_data{.type = "e", .payload = "x", .event_id = id}};
}

} // namespace

TEST_CASE("sqlite_store append(ctx) on a done context stores nothing, on a live one commits") {
    weft_test::temp_db_file file;
    es::sqlite_store store(file.path);
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    cancel();
    es::append_result r = store.append(ctx, "s", es::expected_version::any(), event_with_id("a"));
    CHECK(r.status == es::append_status::cancelled);
    CHECK(store.version_of("s") == 0);
    CHECK_FALSE(store.find_event("a"));
    auto [live, cancel_live] = weft::with_cancel(weft::background());
    es::append_result ok = store.append(live, "s", es::expected_version::any(), event_with_id("b"));
    REQUIRE(ok);
    CHECK(store.find_event("b"));
    cancel_live();
}

TEST_CASE("sqlite_store append(ctx) racing cancellation: ok stored, cancelled not, in_doubt "
          "resolved by a retry") {
    weft_test::temp_db_file file;
    es::sqlite_store store(file.path);
    const int batches = 40 * weft_test::stress_rounds();
    std::mt19937 rng(3);
    std::vector<std::string> stored, not_stored;
    int in_doubt = 0;
    for (int i = 0; i < batches; ++i) {
        const std::string id = "evt-" + std::to_string(i);
        auto [ctx, cancel] = weft::with_cancel(weft::background());
        const unsigned delay = static_cast<unsigned>(rng() % 400000);
        std::thread canceller([cancel = cancel, delay] {
            for (unsigned spin = delay; spin > 0; --spin)
                std::atomic_signal_fence(std::memory_order_seq_cst);
            cancel();
        });
        es::append_result r =
            store.append(ctx, "s", es::expected_version::any(), event_with_id(id));
        canceller.join();
        switch (r.status) {
        case es::append_status::ok:
            stored.push_back(id);
            break;
        case es::append_status::cancelled:
            not_stored.push_back(id);
            break;
        case es::append_status::in_doubt: {
            ++in_doubt;
            // The retry's answer is the truth: a duplicate if the first commit happened.
            es::append_result again =
                store.append("s", es::expected_version::any(), event_with_id(id));
            REQUIRE(again);
            stored.push_back(id);
            break;
        }
        default:
            FAIL("unexpected append status");
        }
    }
    for (const std::string& id : stored)
        CHECK(store.find_event(id));
    for (const std::string& id : not_stored)
        CHECK_FALSE(store.find_event(id));
    CHECK(stored.size() + not_stored.size() == static_cast<std::size_t>(batches));
    CHECK(store.version_of("s") == stored.size()); // each stored once
    CHECK(store.head_position() == stored.size());
    INFO("in doubt: " << in_doubt);
}

TEST_CASE("a sqlite_store subscription's next(ctx) returns cancelled, then the next commit") {
    weft_test::temp_db_file file;
    es::sqlite_store store(file.path);
    es::subscription sub = store.subscribe_all(1);
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    std::thread canceller([cancel = cancel] { cancel(); });
    CHECK(sub.next(ctx).status() == weft::status::cancelled);
    canceller.join();
    REQUIRE(store.append("s", es::expected_version::any(), event_with_id("x")));
    auto batch = sub.next(weft::background());
    REQUIRE(batch);
    CHECK(batch->size() == 1);
}
