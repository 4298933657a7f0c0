// weft::detail::live_tasks — the scheduler's list of spawned tasks that have not finished, so
// its destructor can destroy their frames wherever they are suspended (nothing leaks).
//
// Invariants: a spawned task's frame is in the list from spawn until its frame is destroyed
// (it finished, or destroy_all took it); each link is in one shard, the one its address picks.
// Locks: each shard's `mutex` guards its list (the `prev`/`next` links of its tasks). The list is
// split in shards by frame address, so spawns on different workers (and actors' drain jobs)
// rarely meet on one lock.
#pragma once

#include "spin_mutex.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>

namespace weft::detail {

// A spawned task's place in the list; its promise derives from it.
struct live_link {
    live_link* prev = nullptr;
    live_link* next = nullptr;
};

class live_tasks {
public:
    void track(live_link& t) {
        shard& s = shard_of(t);
        std::lock_guard lock(s.mutex);
        t.prev = nullptr;
        t.next = s.head;
        if (s.head)
            s.head->prev = &t;
        s.head = &t;
    }

    void untrack(live_link& t) noexcept {
        shard& s = shard_of(t);
        std::lock_guard lock(s.mutex);
        unlink(s, t);
    }

    // After the workers are gone: takes every task out and calls `destroy(link)` on it, outside
    // the lock (destroying a frame may untrack others).
    template <class Destroy>
    void destroy_all(Destroy destroy) {
        for (shard& s : shards_) {
            for (;;) {
                live_link* t = nullptr;
                {
                    std::lock_guard lock(s.mutex);
                    t = s.head;
                    if (t)
                        unlink(s, *t);
                }
                if (!t)
                    break;
                destroy(*t);
            }
        }
    }

private:
    struct shard {
        spin_mutex mutex;
        live_link* head = nullptr;
    };
    static constexpr std::size_t k_shards = 16;

    shard& shard_of(const live_link& t) noexcept {
        // The low bits of a frame address carry little (alignment): skip them.
        return shards_[(reinterpret_cast<std::uintptr_t>(&t) >> 6) % k_shards];
    }

    static void unlink(shard& s, live_link& t) noexcept {
        if (t.prev)
            t.prev->next = t.next;
        else
            s.head = t.next;
        if (t.next)
            t.next->prev = t.prev;
    }

    std::array<shard, k_shards> shards_;
};

} // namespace weft::detail
