// weft::net errors and results — what a network operation says when it did not do everything.
//
// Expected network outcomes are values, never exceptions: an operation returns a
// std::error_code in an io_result (with the bytes it moved before the error) or a result<T>.
//   net::errc::eof                 the peer closed its side (a read got nothing more)
//   net::errc::closed              this end was closed (also an operation pending at close())
//   net::errc::deadline_exceeded   the connection's read or write deadline passed (set_deadline)
//   context_errc::cancelled / ::deadline_exceeded   the operation's context ended
//   std::errc::connection_refused, ::connection_reset, ::broken_pipe, ...   from the system
// is_timeout() is true for either kind of deadline (Go's os.ErrDeadlineExceeded and
// context.DeadlineExceeded).
#pragma once

#include "../context.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

namespace weft::net {

enum class errc {
    eof = 1,
    closed = 2,
    deadline_exceeded = 3,
    bad_address = 4,    // an address that does not parse ("host:port", "[v6]:port", "unix:/path")
    host_not_found = 5, // name resolution found no address
};

// The category of net::errc ("weft.net").
const std::error_category& category() noexcept;
inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), category()};
}

} // namespace weft::net

template <>
struct std::is_error_code_enum<weft::net::errc> : std::true_type {};

namespace weft::net {

// Whether `ec` says a deadline passed: the connection's or the context's.
inline bool is_timeout(std::error_code ec) noexcept {
    return ec == errc::deadline_exceeded || ec == context_errc::deadline_exceeded;
}

// What a read or write did: the bytes it moved, and why it stopped short (empty: it did all).
struct io_result {
    std::size_t bytes = 0;
    std::error_code error;

    explicit operator bool() const noexcept { return !error; }
};

// A value, or the error that prevented it (std::expected's shape, in C++20).
template <class T>
class result {
public:
    result(T value) : value_(std::move(value)) {}
    result(std::error_code error) : error_(error) {}
    result(errc e) : error_(make_error_code(e)) {}

    explicit operator bool() const noexcept { return value_.has_value(); }
    bool has_value() const noexcept { return value_.has_value(); }
    std::error_code error() const noexcept { return error_; }

    // The value; throws std::system_error (naming the error) if there is none.
    T& value() & {
        check();
        return *value_;
    }
    T&& value() && {
        check();
        return std::move(*value_);
    }
    T& operator*() & noexcept { return *value_; }
    T&& operator*() && noexcept { return std::move(*value_); }
    T* operator->() noexcept { return &*value_; }
    const T* operator->() const noexcept { return &*value_; }

private:
    void check() const {
        if (!value_)
            throw std::system_error(error_, "weft::net");
    }
    std::optional<T> value_;
    std::error_code error_;
};

// ---- implementation ------------------------------------------------------------------------

} // namespace weft::net

namespace weft::detail {
class net_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "weft.net"; }
    std::string message(int e) const override {
        using net::errc;
        switch (static_cast<errc>(e)) {
        case errc::eof:
            return "end of stream: the peer closed the connection";
        case errc::closed:
            return "use of a closed network connection";
        case errc::deadline_exceeded:
            return "i/o deadline exceeded";
        case errc::bad_address:
            return "malformed network address";
        case errc::host_not_found:
            return "no address found for the host";
        }
        return "unknown weft.net error";
    }
};
} // namespace weft::detail

namespace weft::net {

inline const std::error_category& category() noexcept {
    static const weft::detail::net_category_impl instance;
    return instance;
}

} // namespace weft::net
