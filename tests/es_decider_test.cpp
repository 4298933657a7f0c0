// weft::es deciders, the JSON codec and upcasters, without a store: the bank account decider
// (five withdrawals of 30.00 from 100.00: three succeed, two are refused with the balance),
// decision values, fold, encode/decode round trips and the errors for events this program
// cannot read.
#include "bank_domain.hpp"
#include "catch_compat.hpp"

#include <weft/es/codec.hpp>
#include <weft/es/decider.hpp>

#include <string>
#include <variant>
#include <vector>

using bank::account;
using weft::es::decision;

static_assert(weft::es::decider<account>);
static_assert(weft::es::codec<bank::account_codec, account::event>);

TEST_CASE("five withdrawals of 30 from 100 give three events and two rejections") {
    const account a;
    account::state s = weft::es::fold(
        a, std::vector<account::event>{bank::opened{"ada"}, bank::deposited{100'00}});
    REQUIRE(s.balance == 100'00);
    std::vector<account::event> events;
    std::vector<std::string> refusals;
    for (int i = 0; i < 5; ++i) {
        decision<account::event> d = a.decide(bank::withdraw{30'00}, s);
        if (!d) {
            refusals.push_back(d.reason());
            continue;
        }
        for (const auto& e : d.events()) {
            events.push_back(e);
            s = a.evolve(s, e);
        }
    }
    CHECK(events.size() == 3);
    REQUIRE(refusals.size() == 2);
    CHECK(refusals[0] == "insufficient balance (10.00)");
    CHECK(refusals[1] == "insufficient balance (10.00)");
    CHECK(s.balance == 10'00);
}

TEST_CASE("a decision is either events or a rejection") {
    decision<int> accepted{1, 2};
    CHECK(accepted.accepted());
    CHECK(accepted.events() == std::vector<int>{1, 2});
    CHECK(accepted.reason().empty());
    decision<int> none = std::vector<int>{};
    CHECK(none.accepted());
    CHECK(none.events().empty());
    decision<int> refused = decision<int>::reject("no");
    CHECK_FALSE(refused);
    CHECK(refused.events().empty());
    CHECK(refused.reason() == "no");
}

TEST_CASE("the bank decider refuses commands to an account that is not open") {
    const account a;
    CHECK(a.decide(bank::deposit{5}, a.initial()).reason() == "account not open");
    account::state open = a.evolve(a.initial(), bank::opened{"bo"});
    CHECK(a.decide(bank::open_account{"bo"}, open).reason() == "account already open");
    CHECK(a.decide(bank::deposit{-5}, open).reason() == "deposit must be positive (-0.05)");
    CHECK(a.decide(bank::deposit{5}, open).accepted());
}

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

TEST_CASE("an upcaster that does not raise the version is reported, not looped") {
    weft::es::upcasters up;
    up.add("x", 1, [](weft::es::encoded_event e) { return e; });
    CHECK_THROWS_AS(up.apply(weft::es::encoded_event{"x", 1, ""}), std::logic_error);
}
