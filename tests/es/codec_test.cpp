// weft::es codecs in general (codec.hpp): upcaster chains, the check that each step raises the
// version, describe() naming an event, and the codec concept.
#include "catch_compat.hpp"

#include <weft/es/codec.hpp>

#include <stdexcept>
#include <string>

TEST_CASE("an upcaster that does not raise the version is reported, not looped") {
    weft::es::upcasters up;
    up.add("x", 1, [](weft::es::encoded_event e) { return e; });
    CHECK_THROWS_AS(up.apply(weft::es::encoded_event{"x", 1, ""}), std::logic_error);
}

namespace {
weft::es::encoded_event ev(std::string type, int version, std::string payload = "") {
    return weft::es::encoded_event{std::move(type), version, std::move(payload)};
}
} // namespace

TEST_CASE("upcasters chain v1 to v2 to v3 and leave other events alone") {
    weft::es::upcasters up;
    CHECK(up.empty());
    up.add("deposited", 1, [](weft::es::encoded_event e) {
        e.payload += "+currency";
        e.schema_version = 2;
        return e;
    });
    up.add("deposited", 2, [](weft::es::encoded_event e) {
        e.payload += "+renamed";
        e.schema_version = 3;
        return e;
    });
    CHECK_FALSE(up.empty());
    const weft::es::encoded_event v3 = up.apply(ev("deposited", 1, "v1"));
    CHECK(v3.type == "deposited");
    CHECK(v3.schema_version == 3);
    CHECK(v3.payload == "v1+currency+renamed");
    // From the middle of the chain, and past its end: only the steps still due run.
    CHECK(up.apply(ev("deposited", 2, "v2")).payload == "v2+renamed");
    CHECK(up.apply(ev("deposited", 3, "v3")).payload == "v3");
    CHECK(up.apply(ev("withdrawn", 1, "w")).payload == "w");
}

TEST_CASE("an upcaster may rename the event type, and the new name's steps follow") {
    weft::es::upcasters up;
    up.add("money_added", 1, [](weft::es::encoded_event e) {
        e.type = "deposited"; // same version, new name: allowed, it is a different step
        return e;
    });
    up.add("deposited", 1, [](weft::es::encoded_event e) {
        e.schema_version = 2;
        return e;
    });
    const weft::es::encoded_event e = up.apply(ev("money_added", 1));
    CHECK(e.type == "deposited");
    CHECK(e.schema_version == 2);
}

TEST_CASE("upcasters that rename in a circle are reported as a loop") {
    weft::es::upcasters up;
    up.add("a", 1, [](weft::es::encoded_event e) {
        e.type = "b";
        return e;
    });
    up.add("b", 1, [](weft::es::encoded_event e) {
        e.type = "a";
        return e;
    });
    try {
        (void)up.apply(ev("a", 1));
        FAIL("no error for a loop of renames");
    } catch (const std::logic_error& e) {
        CHECK(std::string(e.what()).find("loop") != std::string::npos);
    }
}

TEST_CASE("adding a step for the same type and version replaces the earlier one") {
    weft::es::upcasters up;
    auto to = [](std::string payload) {
        return [payload](weft::es::encoded_event e) {
            e.payload = payload;
            e.schema_version = 2;
            return e;
        };
    };
    up.add("x", 1, to("first"));
    up.add("x", 1, to("second"));
    CHECK(up.apply(ev("x", 1)).payload == "second");
}

TEST_CASE("a recorded event is upcast from its type, schema version and payload") {
    weft::es::upcasters up;
    up.add("x", 1, [](weft::es::encoded_event e) {
        e.payload = "[" + e.payload + "]";
        e.schema_version = 2;
        return e;
    });
    weft::es::recorded_event r;
    r.type = "x";
    r.schema_version = 1;
    r.payload = "p";
    CHECK(up.apply(r).payload == "[p]");
}

TEST_CASE("describe names an event's type, version, stream and position") {
    weft::es::recorded_event r;
    r.stream = "account-7";
    r.version = 3;
    r.position = 99;
    r.type = "money_withdrawn";
    r.schema_version = 2;
    CHECK(weft::es::describe(r) == "event money_withdrawn v2 at account-7@3 (position 99)");
}

namespace {
struct int_codec {
    weft::es::encoded_event encode(const int& i) const { return {"int", 1, std::to_string(i)}; }
    int decode(const weft::es::recorded_event& r) const { return std::stoi(r.payload); }
};
struct half_codec {
    weft::es::encoded_event encode(const int& i) const { return {"int", 1, std::to_string(i)}; }
};
} // namespace

TEST_CASE("the codec concept wants encode and decode with the right types") {
    STATIC_REQUIRE(weft::es::codec<int_codec, int>);
    STATIC_REQUIRE_FALSE(weft::es::codec<half_codec, int>);
    STATIC_REQUIRE_FALSE(weft::es::codec<int_codec, long>);
}
