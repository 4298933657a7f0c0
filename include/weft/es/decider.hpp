// weft::es::decider — one aggregate type as three pure functions (Jérémie Chassaing's decider):
//
//   struct account {
//       using command = std::variant<open, deposit, withdraw>;
//       using event = std::variant<opened, deposited, withdrawn>;
//       struct state { bool open = false; std::int64_t cents = 0; };
//
//       state initial() const { return {}; }
//       weft::es::decision<event> decide(const command& c, const state& s) const;
//       state evolve(state s, const event& e) const;
//   };
//
// decide() answers a command with the events it causes, or with a rejection that says why
// ("insufficient balance (10.00)"): an expected outcome, so a value, not an exception.
// evolve() folds one event into the state. Neither does I/O, so a decider is tested with plain
// calls: given these events, when this command, then these events (or this rejection).
#pragma once

#include <concepts>
#include <initializer_list>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace weft::es {

// Why a command was refused. Shown to the caller as it is: name the thing and the numbers.
struct rejection {
    std::string reason;
};

// What decide() returns: the events a command causes (possibly none), or a rejection.
template <class Event>
class decision {
public:
    decision(std::vector<Event> events) : outcome_(std::move(events)) {} // NOLINT: implicit
    decision(std::initializer_list<Event> events) : outcome_(std::vector<Event>(events)) {}
    decision(rejection r) : outcome_(std::move(r)) {} // NOLINT: implicit

    static decision reject(std::string reason) { return decision(rejection{std::move(reason)}); }

    bool accepted() const noexcept { return outcome_.index() == 0; }
    explicit operator bool() const noexcept { return accepted(); }

    // The events (empty when rejected).
    const std::vector<Event>& events() const& {
        static const std::vector<Event> none;
        return accepted() ? std::get<0>(outcome_) : none;
    }
    std::vector<Event> events() && {
        return accepted() ? std::move(std::get<0>(outcome_)) : std::vector<Event>{};
    }
    // The rejection's reason (empty when accepted).
    const std::string& reason() const {
        static const std::string none;
        return accepted() ? none : std::get<1>(outcome_).reason;
    }

private:
    std::variant<std::vector<Event>, rejection> outcome_;
};

template <class D>
concept decider = requires(const D& d, const typename D::command& c, const typename D::state& s,
                           const typename D::event& e) {
    typename D::command;
    typename D::event;
    typename D::state;
    { d.initial() } -> std::convertible_to<typename D::state>;
    { d.decide(c, s) } -> std::convertible_to<decision<typename D::event>>;
    { d.evolve(s, e) } -> std::convertible_to<typename D::state>;
};

// The state after `events`, starting from `from` (initial() by default).
template <decider D, class Range>
typename D::state fold(const D& d, const Range& events, typename D::state from) {
    for (const auto& e : events)
        from = d.evolve(std::move(from), e);
    return from;
}
template <decider D, class Range>
typename D::state fold(const D& d, const Range& events) {
    return fold(d, events, d.initial());
}

} // namespace weft::es
