// The balances read model several SQLite tests of weft::es project into (not part of the
// library): a `balances(account, cents, events)` table that each deposit event adds its
// payload (cents) to, and what it must hold, computed from the log.
#pragma once

#include <weft/es/event.hpp>
#include <weft/es/sqlite_read_model.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <utility>

namespace weft_test {

// account -> (cents, events)
using balances = std::map<std::string, std::pair<std::int64_t, std::int64_t>>;

inline void create_balances(weft::es::sqlite_read_model& model) {
    model.write([](weft::es::sql_connection& db) {
        db.exec("CREATE TABLE IF NOT EXISTS balances(account TEXT PRIMARY KEY, "
                "cents INTEGER NOT NULL, events INTEGER NOT NULL)");
    });
}

// Not idempotent on purpose: an event applied twice shows in `events` and `cents`.
inline void apply_deposit(weft::es::sql_connection& db, const weft::es::recorded_event& e) {
    db.exec("INSERT INTO balances(account, cents, events) VALUES (?1, ?2, 1) "
            "ON CONFLICT(account) DO UPDATE SET cents = cents + excluded.cents, "
            "events = events + 1",
            e.stream, std::stoll(e.payload));
}

inline balances read_balances(const weft::es::sqlite_read_model& model) {
    return model.read([](weft::es::sql_connection& db) {
        balances out;
        for (auto& [account, cents, events] : db.query<std::string, std::int64_t, std::int64_t>(
                 "SELECT account, cents, events FROM balances"))
            out[account] = {cents, events};
        return out;
    });
}

// What the balances table must hold after the events up to `up_to`, computed from the log.
template <class Store>
balances expected_balances(const Store& store, weft::es::log_position up_to) {
    balances out;
    for (const weft::es::recorded_event& e : store.read_all(1, up_to)) {
        auto& [cents, events] = out[e.stream];
        cents += std::stoll(e.payload);
        ++events;
    }
    return out;
}

} // namespace weft_test
