// weft::es::detail — which of projection_target's members a type has (projection.hpp documents
// each one), for the concept and for projection_runner::add; and the checks that make a
// misshapen target a compile error with a message, not a member the runner silently leaves
// unused.
#pragma once

#include "../event.hpp"

#include <concepts>
#include <vector>

namespace weft::es {

struct dead_letter; // projection.hpp

namespace detail {

// Present: the runner can call it as documented.
template <class T>
concept target_has_handle = requires(T& t, const recorded_event& e) {
    t.handle(e);
};
template <class T>
concept target_has_load_checkpoint = requires(T& t) {
    { t.load_checkpoint() } -> std::convertible_to<log_position>;
};
template <class T>
concept target_has_save_checkpoint = requires(T& t, log_position p) {
    t.save_checkpoint(p);
};
template <class T>
concept target_has_transactions = requires(T& t, log_position p) {
    t.begin_batch();
    t.commit_batch(p);
    t.rollback_batch();
};
template <class T>
concept target_has_reset = requires(T& t, log_position from) {
    t.reset(from);
};
template <class T>
concept target_has_park = requires(T& t, const dead_letter& d) {
    t.park(d);
};
template <class T>
concept target_has_load_dead_letters = requires(T& t) {
    { t.load_dead_letters() } -> std::convertible_to<std::vector<dead_letter>>;
};
template <class T>
concept target_has_retry_dead_letter = requires(T& t, const recorded_event& e) {
    t.retry_dead_letter(e);
};

// The transaction members come all three or none: a begin without a commit would leave every
// batch open, a commit without a begin would commit what the handlers did not do in it. So a
// member of one of their names (probed as &T::name) makes a target need all three.
template <class T>
concept target_transactions_whole = target_has_transactions<T> ||
    !((requires { &T::begin_batch; }) || (requires { &T::commit_batch; }) ||
      (requires { &T::rollback_batch; }));

// Each other optional member is callable as documented, or there is no member of its name
// (probed as &T::name, which overloaded and template members escape: those are found by the
// call alone). Otherwise a slip in a signature would leave the member unused, silently.
template <class T>
concept target_members_fit =
    (target_has_load_checkpoint<T> || !requires { &T::load_checkpoint; }) &&
    (target_has_save_checkpoint<T> || !requires { &T::save_checkpoint; }) &&
    (target_has_reset<T> || !requires { &T::reset; }) &&
    (target_has_park<T> || !requires { &T::park; }) &&
    (target_has_load_dead_letters<T> || !requires { &T::load_dead_letters; }) &&
    (target_has_retry_dead_letter<T> || !requires { &T::retry_dead_letter; });

// What projection_runner::add asserts of a target type: each rule of projection_target with a
// message (the compiler's notes on target_members_fit name the member that does not fit).
template <class T>
constexpr void check_target() {
    static_assert(target_has_handle<T>,
                  "weft::es: a projection target needs a member handle(const recorded_event&)");
    static_assert(target_transactions_whole<T>,
                  "weft::es: a projection target with one of begin_batch(), "
                  "commit_batch(log_position), rollback_batch() needs all three");
    static_assert(target_members_fit<T>,
                  "weft::es: a projection target has a member named like one of "
                  "projection_target's that cannot be called as projection.hpp documents it");
}

} // namespace detail

} // namespace weft::es
