// Counts every allocation of the test program that includes it, so a test can assert that a
// stretch of code made none (or exactly n): replaces the global operator new and delete. Include
// it in exactly one translation unit of a test executable, and leave that executable out of
// ThreadSanitizer builds, whose runtime defines operator new too (tests/CMakeLists.txt).
#pragma once

#include <atomic>
#include <cstdlib>
#include <new>

#if defined(__SANITIZE_ADDRESS__)
// AddressSanitizer's own operator new still serves some of the runtime's allocations, which our
// operator delete then frees with free(): a mismatch by design here, not a bug in weft.
extern "C" const char* __asan_default_options() {
    return "alloc_dealloc_mismatch=0";
}
#endif

// GCC 14 inlines our operator delete into weft's `new timer_service` (and the like) and then
// warns that free() releases what operator new returned: it does not see that this operator
// new is the malloc below. The pairing is right by construction, so the warning is off here.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

// Every allocation in this program is counted, so a test can assert that a stretch of code
// made none. The replacement forwards to malloc, which the sanitizers still intercept.
inline std::atomic<long> g_allocations{0};
void* operator new(std::size_t size) {
    // relaxed: a counter read after the counted code has run on this or a joined thread.
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(size == 0 ? 1 : size))
        return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}
// Over-aligned types (cache-line padded channel and scheduler state) come through these.
void* operator new(std::size_t size, std::align_val_t alignment) {
    // relaxed: as above.
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    const auto align = static_cast<std::size_t>(alignment);
    const std::size_t rounded = (size + align - 1) / align * align; // aligned_alloc's rule
    if (void* p = std::aligned_alloc(align, rounded == 0 ? align : rounded))
        return p;
    throw std::bad_alloc();
}
void operator delete(void* p, std::align_val_t) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
    std::free(p);
}

// The allocations so far. relaxed: read on the thread that did the counted work (or after
// joining the threads that did).
inline long allocations_so_far() noexcept {
    return g_allocations.load(std::memory_order_relaxed);
}
