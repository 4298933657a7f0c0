// weft::detail::channel_state<T> — what every handle of one channel shares: its flavor (see
// channel_flavor.hpp), chosen once when the channel is made, and the one place that asks which
// flavor it is (visit).
#pragma once

#include "atomic_ring.hpp"
#include "channel_flavor.hpp"
#include "channel_locked.hpp"
#include "channel_ring.hpp"
#include "spin_mutex.hpp"
#include "task_park.hpp"
#include "waiter.hpp"

#include <cstddef>
#include <memory>
#include <type_traits>
#include <utility>

namespace weft::detail {

// A task waiting on the channel holds a reference too (shared_from_this), as a blocked
// goroutine keeps its channel alive in Go: its handles may all be gone before the task is woken
// or destroyed.
template <class T>
class channel_state : public std::enable_shared_from_this<channel_state<T>> {
    // The lock-free ring needs a nothrow move: a slot it reserved must be filled.
    static constexpr bool k_ring_capable = std::is_nothrow_move_constructible_v<T>;
    struct no_ring {};
    using ring_type = std::conditional_t<k_ring_capable, ring_channel<T>, no_ring>;
    static_assert(channel_flavor<locked_channel<T>, T>);
    static_assert(!k_ring_capable || channel_flavor<ring_type, T>);

public:
    // Buffered channels of a T with a nothrow move get the ring; the others (capacity 0, or a
    // move that may throw) the locked flavor.
    explicit channel_state(std::size_t capacity) : ring_(k_ring_capable && capacity > 0) {
        if constexpr (k_ring_capable)
            if (ring_) {
                std::construct_at(&flavors_.ring, capacity);
                return;
            }
        std::construct_at(&flavors_.locked, capacity);
    }
    channel_state(const channel_state&) = delete;
    channel_state& operator=(const channel_state&) = delete;
    ~channel_state() {
        visit([](auto& flavor) { std::destroy_at(&flavor); });
    }

    // Calls fn(flavor) with this channel's flavor: ring_channel<T>& or locked_channel<T>&. The
    // only branch on the flavor, one predictable test of a constant; both calls are inlined.
    template <class Fn>
    decltype(auto) visit(Fn&& fn) {
        if constexpr (k_ring_capable)
            if (ring_)
                return fn(flavors_.ring);
        return fn(flavors_.locked);
    }

    // The flavor interface, dispatched (what each does: channel_flavor.hpp).
    template <class Dir, class Slot>
    attempt try_now(Dir dir, Slot& slot) {
        return visit([&](auto& f) { return f.try_now(dir, slot); });
    }
    template <class Dir, class Slot, class Deadline, class AboutToPark>
    park_step wait(Dir dir, Slot& slot, const Deadline& deadline, AboutToPark about_to_park) {
        return visit([&](auto& f) { return f.wait(dir, slot, deadline, about_to_park); });
    }
    template <class Dir, class Slot>
    park_step step(Dir dir, Slot& slot, waiter& w) {
        return visit([&](auto& f) { return f.step(dir, slot, w); });
    }
    // task_park's owner interface: a waiting task's frame dies, or its deadline passed.
    void cancel(waiter& w) noexcept {
        visit([&](auto& f) { f.cancel(w); });
    }
    bool close() {
        return visit([](auto& f) { return f.close(); });
    }
    std::size_t size() {
        return visit([](auto& f) { return f.size(); });
    }
    std::size_t capacity() noexcept {
        return visit([](auto& f) { return f.capacity(); });
    }
    bool wake_finishes() noexcept {
        return visit([](auto& f) { return f.wake_finishes(); });
    }

private:
    union flavors {
        flavors() noexcept {}
        ~flavors() {}
        locked_channel<T> locked;
        ring_type ring;
    };

    const bool ring_; // which member of flavors_ lives; set once
    flavors flavors_;
};

} // namespace weft::detail
