// weft::detail::spin_mutex — a small lock for short critical sections.
//
// Channel operations hold their lock for a few dozen instructions, so a waiter usually gets the
// lock by spinning for a moment; when it does not, it parks on the lock word (futex-backed
// std::atomic::wait) so a contended lock never burns a core. Three states, after Drepper's
// "Futexes are tricky": 0 unlocked, 1 locked, 2 locked and somebody may be parked.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

namespace weft::detail {

// One CPU relax hint for spin loops. The builtin, not <immintrin.h>'s _mm_pause(): that header
// alone is ~47k preprocessed lines, half a second of every translation unit.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

// Spins with growing pauses, then yields, for the short windows where a peer is mid-write.
class backoff {
public:
    void snooze() noexcept {
        if (step_ < 6) {
            for (int i = 0; i < (1 << step_); ++i)
                cpu_relax();
            ++step_;
        } else {
            std::this_thread::yield();
        }
    }

private:
    int step_ = 0;
};

class spin_mutex {
public:
    void lock() noexcept {
        std::uint32_t expected = 0;
        // acquire: pairs with the release in unlock(); the critical section sees the previous
        // holder's writes.
        if (state_.compare_exchange_strong(expected, 1, std::memory_order_acquire,
                                           std::memory_order_relaxed))
            return;
        lock_slow();
    }

    bool try_lock() noexcept {
        std::uint32_t expected = 0;
        // acquire: as in lock().
        return state_.compare_exchange_strong(expected, 1, std::memory_order_acquire,
                                              std::memory_order_relaxed);
    }

    void unlock() noexcept {
        // release: publishes the critical section to the next acquirer. If the old state was 2
        // somebody may be parked on the word; wake one.
        if (state_.exchange(0, std::memory_order_release) == 2)
            state_.notify_one();
    }

private:
    void lock_slow() noexcept {
        // Spin on a plain load first: cheap while the holder finishes a short section.
        for (int spin = 0; spin < 100; ++spin) {
            // relaxed: only a hint; the CAS below does the acquiring.
            if (state_.load(std::memory_order_relaxed) == 0) {
                std::uint32_t expected = 0;
                // acquire: as in lock().
                if (state_.compare_exchange_weak(expected, 1, std::memory_order_acquire,
                                                 std::memory_order_relaxed))
                    return;
            }
            cpu_relax();
        }
        // Mark the lock contended (2) and park until the holder's unlock wakes us. We take the
        // lock in state 2 because we cannot know whether other parkers remain.
        // acquire: as in lock().
        while (state_.exchange(2, std::memory_order_acquire) != 0)
            state_.wait(2, std::memory_order_relaxed);
    }

    std::atomic<std::uint32_t> state_{0};
};

} // namespace weft::detail
