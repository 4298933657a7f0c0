// weft::es::json_codec (json_codec.hpp): encode/decode round trips by type name, schema
// versions, json_upcast steps from v1 to the current shape, and the decode_errors for events
// this program cannot read.
#include "bank_domain.hpp"
#include "catch_compat.hpp"

#include <weft/es/json_codec.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

using bank::account;

static_assert(weft::es::codec<bank::account_codec, account::event>);

namespace {
weft::es::recorded_event as_recorded(const weft::es::encoded_event& e) {
    weft::es::recorded_event r;
    r.stream = "account-1";
    r.version = 7;
    r.position = 42;
    r.type = e.type;
    r.schema_version = e.schema_version;
    r.payload = e.payload;
    return r;
}
} // namespace

TEST_CASE("json_codec round-trips every event type by its type name") {
    const bank::account_codec codec;
    const std::vector<account::event> events{bank::opened{"ada"}, bank::deposited{12'34},
                                             bank::withdrawn{5'00}};
    for (const account::event& e : events) {
        weft::es::encoded_event enc = codec.encode(e);
        CHECK(enc.schema_version == 1);
        account::event back = codec.decode(as_recorded(enc));
        REQUIRE(back.index() == e.index());
    }
    CHECK(codec.encode(events[1]).type == "money_deposited");
    CHECK(codec.encode(events[1]).payload == R"({"cents":1234})");
    CHECK(std::get<bank::opened>(codec.decode(as_recorded(codec.encode(events[0])))).owner ==
          "ada");
}

namespace {
// Version 3 of a deposit: v1 was {"amount": cents}, v2 added the currency, v3 renamed amount.
struct deposited_v3 {
    static constexpr std::string_view type_name = "money_deposited";
    static constexpr int schema_version = 3;
    std::int64_t cents = 0;
    std::string currency;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(deposited_v3, cents, currency)
using v3_event = std::variant<bank::opened, deposited_v3>;

weft::es::upcasters v1_to_v3() {
    weft::es::upcasters up;
    up.add("money_deposited", 1,
           weft::es::json_upcast(2, [](nlohmann::json& j) { j["currency"] = "EUR"; }));
    up.add("money_deposited", 2, weft::es::json_upcast(3, [](nlohmann::json& j) {
               j["cents"] = j["amount"];
               j.erase("amount");
           }));
    return up;
}
} // namespace

TEST_CASE("upcasters turn a v1 event into the current v3 while reading") {
    const weft::es::json_codec<v3_event> codec(v1_to_v3());
    weft::es::recorded_event old = as_recorded({"money_deposited", 1, R"({"amount":700})"});
    v3_event e = codec.decode(old);
    REQUIRE(std::holds_alternative<deposited_v3>(e));
    CHECK(std::get<deposited_v3>(e).cents == 700);
    CHECK(std::get<deposited_v3>(e).currency == "EUR");
    // A current event goes through untouched.
    weft::es::encoded_event now = codec.encode(deposited_v3{5, "USD"});
    CHECK(now.schema_version == 3);
    CHECK(std::get<deposited_v3>(codec.decode(as_recorded(now))).currency == "USD");
}

TEST_CASE("events this program cannot read are decode_errors that name the event") {
    const weft::es::json_codec<v3_event> no_upcasters;
    auto message_of = [&](const weft::es::recorded_event& r) {
        try {
            (void)no_upcasters.decode(r);
        } catch (const weft::es::decode_error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    const std::string missing = message_of(as_recorded({"money_deposited", 1, "{}"}));
    CHECK(missing.find("money_deposited v1 at account-1@7 (position 42)") != std::string::npos);
    CHECK(missing.find("upcaster from v1 is missing") != std::string::npos);
    CHECK(message_of(as_recorded({"account_closed", 1, "{}"}))
              .find("no event type named "
                    "account_closed") != std::string::npos);
    CHECK(message_of(as_recorded({"account_opened", 1, "{not json"})).find("cannot read") !=
          std::string::npos);
}

namespace {
struct plain {
    static constexpr std::string_view type_name = "plain";
    int n = 0;
};
struct versioned {
    static constexpr std::string_view type_name = "versioned";
    static constexpr int schema_version = 4;
    std::string text;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(plain, n)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(versioned, text)
using small_event = std::variant<plain, versioned>;
} // namespace

TEST_CASE("json_codec stores each type's schema_version, 1 when it declares none") {
    STATIC_REQUIRE(weft::es::schema_version_of<plain>() == 1);
    STATIC_REQUIRE(weft::es::schema_version_of<versioned>() == 4);
    const weft::es::json_codec<small_event> codec;
    CHECK(codec.encode(plain{3}).schema_version == 1);
    const weft::es::encoded_event v = codec.encode(versioned{"hi"});
    CHECK(v.type == "versioned");
    CHECK(v.schema_version == 4);
    CHECK(nlohmann::json::parse(v.payload) == nlohmann::json{{"text", "hi"}});
    CHECK(std::get<versioned>(codec.decode(as_recorded(v))).text == "hi");
}

TEST_CASE("json_codec refuses an event newer than the program reads, naming both versions") {
    const weft::es::json_codec<small_event> codec;
    try {
        (void)codec.decode(as_recorded({"versioned", 5, R"({"text":"from the future"})"}));
        FAIL("a v5 event was read by a program that knows v4");
    } catch (const weft::es::decode_error& e) {
        const std::string what = e.what();
        CHECK(what.find("versioned v5 at account-1@7") != std::string::npos);
        CHECK(what.find("this program reads v4") != std::string::npos);
    }
}

TEST_CASE("json_codec reports a payload of the wrong shape as a decode_error") {
    const weft::es::json_codec<small_event> codec;
    // Valid JSON, but "n" is a string where an int is wanted.
    CHECK_THROWS_AS(codec.decode(as_recorded({"plain", 1, R"({"n":"seven"})"})),
                    weft::es::decode_error);
    // A field missing altogether.
    CHECK_THROWS_AS(codec.decode(as_recorded({"plain", 1, "{}"})), weft::es::decode_error);
}

TEST_CASE("json_upcast edits the payload and sets the version it names") {
    weft::es::upcasters up;
    up.add("plain", 0, weft::es::json_upcast(1, [](nlohmann::json& j) {
               j["n"] = j["count"].get<int>() * 10;
               j.erase("count");
           }));
    const weft::es::json_codec<small_event> codec(std::move(up));
    const small_event e = codec.decode(as_recorded({"plain", 0, R"({"count":4})"}));
    CHECK(std::get<plain>(e).n == 40);
}
