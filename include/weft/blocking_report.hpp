// weft::blocking_report — says when a blocking call (recv, send, select, wait_group::wait,
// future::get, a full mailbox's tell) is about to park a scheduler worker thread, which stalls
// every task queued behind it (Tokio's "cannot block inside a runtime"). It is a report, not an
// error: the call still blocks afterwards, unless the handler throws or aborts.
//
//   weft::set_blocking_report_handler([](const weft::blocking_report& r) { log(r.operation); });
//
// Compiled in when WEFT_BLOCKING_REPORT is 1: by default in debug builds (NDEBUG not defined);
// define WEFT_BLOCKING_REPORT=1 to get it in a release build, 0 to compile it out. Reported
// only on the slow path, when the call has found nothing ready and is about to park, and only
// on a worker thread (not a plain thread, not a spawn_blocking thread). Each call site is
// reported once; later calls from there are silent.
#pragma once

#include "detail/task_host.hpp"

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <source_location>
#include <utility>

#ifndef WEFT_BLOCKING_REPORT
#ifdef NDEBUG
#define WEFT_BLOCKING_REPORT 0
#else
#define WEFT_BLOCKING_REPORT 1
#endif
#endif

namespace weft {

// Where a call came from: std::source_location where the standard library provides it, else
// the same facts from the compiler builtins it is built on (clang before 15 with libstdc++ has
// no __builtin_source_location, so libstdc++ leaves std::source_location undefined there).
#if defined(__cpp_lib_source_location)
using source_location = std::source_location;
#else
class source_location {
public:
    static constexpr source_location
    current(const char* file = __builtin_FILE(), const char* function = __builtin_FUNCTION(),
            std::uint_least32_t line = __builtin_LINE(),
            std::uint_least32_t column = __builtin_COLUMN()) noexcept {
        source_location here;
        here.file_ = file;
        here.function_ = function;
        here.line_ = line;
        here.column_ = column;
        return here;
    }
    constexpr const char* file_name() const noexcept { return file_; }
    constexpr const char* function_name() const noexcept { return function_; }
    constexpr std::uint_least32_t line() const noexcept { return line_; }
    constexpr std::uint_least32_t column() const noexcept { return column_; }

private:
    const char* file_ = "";
    const char* function_ = "";
    std::uint_least32_t line_ = 0;
    std::uint_least32_t column_ = 0;
};
#endif

// One blocking call on a worker thread.
struct blocking_report {
    const char* operation = ""; // "weft::channel::recv", "weft::select", ...
    const char* instead = "";   // what to write in a task: "co_await ch.async_recv()"
    // The caller, where the operation takes a weft::source_location (file nullptr otherwise:
    // the *_for/_until forms, select; `function` then names the select's instantiation).
    const char* file = nullptr;
    std::uint_least32_t line = 0;
    const char* function = "";
};

using blocking_report_handler = std::function<void(const blocking_report&)>;

// Replaces the handler (an empty one restores the default, which prints to stderr). Called
// from the blocking thread with no weft lock held; it may run on several workers at once.
inline void set_blocking_report_handler(blocking_report_handler handler);

// Turns reporting on or off at run time (on by default where it is compiled in).
inline void set_blocking_report(bool on) noexcept;

namespace detail {

// Where a blocking call came from. Sites are told apart by file, line, column and operation.
struct blocking_site {
    const char* operation;
    const char* instead;
    const char* file = nullptr;
    std::uint_least32_t line = 0;
    std::uint_least32_t column = 0;
    const char* function = "";

    blocking_site(const char* op, const char* alt, const source_location& loc) noexcept
        : operation(op), instead(alt), file(loc.file_name()), line(loc.line()),
          column(loc.column()), function(loc.function_name()) {}
    // A site without a caller's location: told apart by `function` (a string literal, so its
    // address names it) and the operation.
    blocking_site(const char* op, const char* alt, const char* fn = "") noexcept
        : operation(op), instead(alt), function(fn) {}
};

inline void print_blocking_report(const blocking_report& r) {
    if (r.file)
        std::fprintf(stderr, "weft: blocking %s on a scheduler worker thread at %s:%u (use %s)\n",
                     r.operation, r.file, static_cast<unsigned>(r.line), r.instead);
    else
        std::fprintf(stderr, "weft: blocking %s on a scheduler worker thread in %s (use %s)\n",
                     r.operation, r.function, r.instead);
}

// The sites reported so far: a fixed open-addressed table, so memory stays bounded; once it
// is full, new sites are no longer reported.
class blocking_registry {
public:
    static blocking_registry& get() {
        static blocking_registry r;
        return r;
    }

    // relaxed: a plain switch; a report racing with set_blocking_report(false) may still print.
    std::atomic<bool> enabled{true};

    void set_handler(blocking_report_handler h) {
        auto p = h ? std::make_shared<const blocking_report_handler>(std::move(h)) : nullptr;
        std::lock_guard lock(mutex_);
        handler_.swap(p); // the old one is released after the lock, below
    }

    void report(const blocking_site& s) {
        std::shared_ptr<const blocking_report_handler> handler;
        {
            std::lock_guard lock(mutex_);
            if (!insert(s))
                return;
            handler = handler_;
        }
        // No lock held: the handler may block, allocate or report in turn.
        const blocking_report r{s.operation, s.instead, s.file, s.line, s.function};
        if (handler)
            (*handler)(r);
        else
            print_blocking_report(r);
    }

private:
    struct key {
        const char* operation = nullptr;
        const char* file = nullptr;
        const char* function = nullptr;
        std::uint_least32_t line = 0;
        std::uint_least32_t column = 0;
        bool operator==(const key&) const = default;
    };
    static constexpr std::size_t k_slots = 1024;

    // True if `s` is new (and now remembered). Under mutex_.
    bool insert(const blocking_site& s) {
        const key k{s.operation, s.file, s.file ? nullptr : s.function, s.line, s.column};
        std::size_t h = std::hash<const void*>{}(k.operation) ^
                        (std::hash<const void*>{}(k.file ? k.file : k.function) * 31) ^
                        (static_cast<std::size_t>(k.line) << 12) ^ k.column;
        for (std::size_t probe = 0; probe < k_slots; ++probe, ++h) {
            key& slot = slots_[h % k_slots];
            if (slot == k)
                return false;
            if (!slot.operation) {
                slot = k;
                return true;
            }
        }
        return false; // full: stay silent rather than grow
    }

    std::mutex mutex_;
    std::shared_ptr<const blocking_report_handler> handler_; // null: print to stderr
    std::array<key, k_slots> slots_{};
};

// Called by a blocking operation just before it parks its thread.
inline void note_blocking([[maybe_unused]] const blocking_site& site) {
#if WEFT_BLOCKING_REPORT
    if (!current_worker::get().host) // plain threads and spawn_blocking's threads may block
        return;
    blocking_registry& r = blocking_registry::get();
    if (r.enabled.load(std::memory_order_relaxed)) // relaxed: see `enabled`
        r.report(site);
#endif
}

} // namespace detail

inline void set_blocking_report_handler(blocking_report_handler handler) {
    detail::blocking_registry::get().set_handler(std::move(handler));
}

inline void set_blocking_report(bool on) noexcept {
    // relaxed: a plain switch, read by note_blocking.
    detail::blocking_registry::get().enabled.store(on, std::memory_order_relaxed);
}

} // namespace weft
