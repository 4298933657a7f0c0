// weft::es deciders (decider.hpp), without a store: the bank account decider (five withdrawals
// of 30.00 from 100.00: three succeed, two are refused with the balance), decision values and
// fold.
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
