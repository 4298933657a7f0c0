// weft::detail::frame_pool — recycles coroutine frames per thread.
//
// Fork-join code creates and destroys task frames at a furious rate, and the general-purpose
// allocator is most of a small task's cost. Frames are rounded up to 64-byte size classes; a
// freed frame goes on the freeing thread's list for its class (at most k_keep per class; the
// rest go back to the system), and the next frame of that class on that thread reuses it. A
// frame freed on another thread than the one that made it (a stolen task) simply moves to that
// thread's lists: every block came from ::operator new, so any thread may reuse or free it.
//
// Under AddressSanitizer the pool steps aside, so a use of a freed frame is still caught.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>

namespace weft::detail {

class frame_pool {
public:
    static void* allocate(std::size_t size) {
        const std::size_t cls = class_of(size);
        if (k_enabled && cls < k_classes) {
            cache& c = local();
            if (!c.dead && c.heads[cls]) {
                block* b = c.heads[cls];
                c.heads[cls] = b->next;
                --c.counts[cls];
                return b;
            }
            return ::operator new((cls + 1) * k_granule);
        }
        return ::operator new(size);
    }

    static void deallocate(void* p, std::size_t size) noexcept {
        const std::size_t cls = class_of(size);
        if (k_enabled && cls < k_classes) {
            cache& c = local();
            if (!c.dead && c.counts[cls] < k_keep) {
                if (!c.registered) {
                    (void)&cleanup(); // frees this thread's lists when it exits
                    c.registered = true;
                }
                c.heads[cls] = new (p) block{c.heads[cls]};
                ++c.counts[cls];
                return;
            }
        }
        ::operator delete(p);
    }

private:
#if defined(__SANITIZE_ADDRESS__)
    static constexpr bool k_enabled = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    static constexpr bool k_enabled = false;
#else
    static constexpr bool k_enabled = true;
#endif
#else
    static constexpr bool k_enabled = true;
#endif
    static constexpr std::size_t k_granule = 64;
    static constexpr std::size_t k_classes = 16; // frames up to 1 KiB
    static constexpr std::uint32_t k_keep = 1024;

    struct block {
        block* next;
    };
    // Trivially destructible, so it may still be read after this thread's clean-up ran (a
    // frame freed by a later thread_local destructor then goes straight to the system).
    struct cache {
        block* heads[k_classes];
        std::uint32_t counts[k_classes];
        bool registered;
        bool dead;
    };
    struct cache_cleanup {
        ~cache_cleanup() {
            cache& c = local();
            for (std::size_t i = 0; i < k_classes; ++i)
                while (block* b = c.heads[i]) {
                    c.heads[i] = b->next;
                    ::operator delete(b);
                }
            c.dead = true;
        }
    };

    static std::size_t class_of(std::size_t size) noexcept {
        return size == 0 ? 0 : (size - 1) / k_granule;
    }
    static cache& local() noexcept {
        thread_local cache c{};
        return c;
    }
    static cache_cleanup& cleanup() noexcept {
        thread_local cache_cleanup guard;
        return guard;
    }
};

// Frames of weft's coroutines come from the pool: a promise type derives from this.
struct pooled_frame {
    static void* operator new(std::size_t size) { return frame_pool::allocate(size); }
    static void operator delete(void* p, std::size_t size) noexcept {
        frame_pool::deallocate(p, size);
    }
};

} // namespace weft::detail
