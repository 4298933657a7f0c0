// weft::es::detail append rules (es/detail/append_rules.hpp) on their own, with a lookup that
// records what it is asked: what a new store (one that looks ids up one by one) can rely on.
// The stores' behaviour under these rules is checked by store_conformance.hpp.
#include "catch_compat.hpp"

#include <weft/es/detail/append_rules.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace es = weft::es;
using es::detail::stored_event_location;

namespace {

es::event_data with_id(std::string id) {
    return es::event_data{.type = "e", .event_id = std::move(id)};
}

// A store's id index as find_repeat sees it; remembers each id it was asked for, in order.
struct fake_index {
    struct entry {
        std::string stream;
        es::stream_version version;
        es::log_position position;
    };
    std::map<std::string, entry> stored;
    std::vector<std::string> asked;

    std::optional<stored_event_location> operator()(const std::string& id) {
        asked.push_back(id);
        auto it = stored.find(id);
        if (it == stored.end())
            return std::nullopt;
        return stored_event_location{.stream = it->second.stream,
                                     .version = it->second.version,
                                     .position = it->second.position};
    }
};

std::string message_of(const std::vector<es::event_data>& batch, fake_index& index,
                       const std::string& stream = "s") {
    try {
        (void)es::detail::find_repeat(stream, batch, index);
    } catch (const es::invalid_append& e) {
        return e.what();
    }
    return "none";
}

} // namespace

TEST_CASE("append rules: a batch of new ids is new, each id asked once in batch order") {
    fake_index index;
    const std::vector<es::event_data> batch{with_id("a"), with_id(""), with_id("b")};
    CHECK_FALSE(es::detail::find_repeat("s", batch, index).has_value());
    // A blank id is made by the store: it is never stored, so it is not asked.
    CHECK(index.asked == std::vector<std::string>{"a", "b"});
}

TEST_CASE("append rules: a batch stored at consecutive versions of its stream is a duplicate "
          "answered from the first append") {
    fake_index index;
    index.stored = {{"a", {"s", 4, 10}}, {"b", {"s", 5, 12}}, {"c", {"s", 6, 13}}};
    const auto r = es::detail::find_repeat("s", {with_id("b"), with_id("c")}, index);
    REQUIRE(r.has_value());
    CHECK(r->status == es::append_status::ok);
    CHECK(r->duplicate);
    CHECK(r->version == 6);
    CHECK(r->first_position == 12);
    CHECK(r->last_position == 13);
}

TEST_CASE("append rules: partial repeats, foreign streams and another order are invalid") {
    fake_index index;
    index.stored = {{"a", {"s", 1, 1}}, {"b", {"s", 2, 2}}, {"x", {"t", 1, 3}}};
    CHECK(message_of({with_id("a"), with_id("n")}, index) ==
          "weft::es: batch for stream s repeats some stored event ids but not all");
    // Some stored, some not: the partial repeat is reported, even if a stored one is foreign.
    CHECK(message_of({with_id("x"), with_id("n")}, index) ==
          "weft::es: batch for stream s repeats some stored event ids but not all");
    CHECK(message_of({with_id("a"), with_id("")}, index) ==
          "weft::es: batch for stream s repeats some stored event ids but not all");
    CHECK(message_of({with_id("b"), with_id("a")}, index) ==
          "weft::es: event id a is already stored elsewhere than this batch of s");
    CHECK(message_of({with_id("a"), with_id("x")}, index) ==
          "weft::es: event id x is already stored elsewhere than this batch of s");
    CHECK(message_of({with_id("a"), with_id("b")}, index, "t") ==
          "weft::es: event id a is already stored elsewhere than this batch of t");
}

TEST_CASE("append rules: repeated ids and empty stream names are refused before any lookup") {
    const std::vector<es::event_data> twice{with_id("q"), with_id("r"), with_id("q")};
    CHECK_THROWS_AS(es::detail::check_ids_unique("s", twice), es::invalid_append);
    CHECK_THROWS_WITH(es::detail::check_ids_unique("s", twice),
                      "weft::es: event id q appears twice in one batch for stream s");
    CHECK_NOTHROW(es::detail::check_ids_unique("s", {with_id(""), with_id(""), with_id("q")}));
    CHECK_THROWS_AS(es::detail::check_stream_name(""), es::invalid_append);
    CHECK_THROWS_WITH(es::detail::check_stream_name(""),
                      "weft::es: append to a stream with an empty name");
}

TEST_CASE("append rules: the expected version decides before an empty batch does") {
    using es::expected_version;
    const auto wrong = es::detail::check_expected_version(expected_version::exactly(2), 3, 0);
    REQUIRE(wrong.has_value());
    CHECK(wrong->status == es::append_status::wrong_expected_version);
    CHECK(wrong->version == 3);
    const auto empty = es::detail::check_expected_version(expected_version::any(), 3, 0);
    REQUIRE(empty.has_value());
    CHECK(empty->status == es::append_status::ok);
    CHECK(empty->version == 3);
    CHECK(empty->first_position == 0);
    CHECK_FALSE(empty->duplicate);
    CHECK_FALSE(es::detail::check_expected_version(expected_version::no_stream(), 0, 2));
}
