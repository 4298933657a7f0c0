// The bank account as an event-sourced aggregate: commands, events, and the decider that turns
// one into the other. Shared by examples/bank_es.cpp, the weft::es tests and bench/es_bench.
//
// Money is in cents (std::int64_t) so that 3 x 30.00 from 100.00 leaves exactly 10.00.
#pragma once

#include <weft/es/decider.hpp>
#include <weft/es/json_codec.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace bank {

// "10.00" for 1000 cents.
inline std::string money(std::int64_t cents) {
    char text[32];
    std::snprintf(text, sizeof text, "%s%lld.%02lld", cents < 0 ? "-" : "",
                  static_cast<long long>((cents < 0 ? -cents : cents) / 100),
                  static_cast<long long>((cents < 0 ? -cents : cents) % 100));
    return text;
}

// Commands: what a caller asks for.
// (A constructor, not an aggregate: g++ 12 destroys an aggregate with a string member twice
// when `co_await bank.handle(id, open_account{"ada"})` creates it; see README.md.)
struct open_account {
    open_account(std::string name) : owner(std::move(name)) {}
    std::string owner;
};
struct deposit {
    std::int64_t cents;
};
struct withdraw {
    std::int64_t cents;
};

// Events: what happened, stored forever.
struct opened {
    static constexpr std::string_view type_name = "account_opened";
    std::string owner;
};
struct deposited {
    static constexpr std::string_view type_name = "money_deposited";
    std::int64_t cents = 0;
};
struct withdrawn {
    static constexpr std::string_view type_name = "money_withdrawn";
    std::int64_t cents = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(opened, owner)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(deposited, cents)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(withdrawn, cents)

struct account {
    using command = std::variant<open_account, deposit, withdraw>;
    using event = std::variant<opened, deposited, withdrawn>;
    struct state {
        bool open = false;
        std::int64_t balance = 0; // cents
    };

    state initial() const { return {}; }

    weft::es::decision<event> decide(const command& c, const state& s) const {
        using weft::es::rejection;
        if (const auto* o = std::get_if<open_account>(&c)) {
            if (s.open)
                return rejection{"account already open"};
            return {opened{o->owner}};
        }
        if (!s.open)
            return rejection{"account not open"};
        if (const auto* d = std::get_if<deposit>(&c)) {
            if (d->cents <= 0)
                return rejection{"deposit must be positive (" + money(d->cents) + ")"};
            return {deposited{d->cents}};
        }
        const auto& w = std::get<withdraw>(c);
        if (w.cents <= 0)
            return rejection{"withdrawal must be positive (" + money(w.cents) + ")"};
        if (w.cents > s.balance)
            return rejection{"insufficient balance (" + money(s.balance) + ")"};
        return {withdrawn{w.cents}};
    }

    state evolve(state s, const event& e) const {
        std::visit(
            [&](const auto& x) {
                using T = std::decay_t<decltype(x)>;
                if constexpr (std::is_same_v<T, opened>)
                    s.open = true;
                else if constexpr (std::is_same_v<T, deposited>)
                    s.balance += x.cents;
                else
                    s.balance -= x.cents;
            },
            e);
        return s;
    }
};

using account_codec = weft::es::json_codec<account::event>;

// Snapshots of the state, as JSON.
inline std::string encode_state(const account::state& s) {
    return nlohmann::json{{"open", s.open}, {"balance", s.balance}}.dump();
}
inline std::optional<account::state> decode_state(std::string_view text) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded())
        return std::nullopt;
    return account::state{j.value("open", false), j.value("balance", std::int64_t{0})};
}

} // namespace bank
