// Temp database files for the SQLite tests of weft::es (not part of the library).
#pragma once

#include <weft/es/event.hpp>

#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <string>
#include <system_error>

namespace weft_test {

// Removes a database file and what SQLite keeps beside it.
inline void remove_db_files(const std::string& path) {
    std::error_code ec;
    for (const char* suffix : {"", "-wal", "-shm", "-journal"})
        std::filesystem::remove(path + suffix, ec);
}

// A path in the temp directory that no other test (or test process) uses.
inline std::string new_temp_db_path() {
    static std::atomic<int> counter{0};
    // relaxed: only makes names unique within this process.
    const int n = counter.fetch_add(1, std::memory_order_relaxed);
    const std::string path =
        (std::filesystem::temp_directory_path() /
         ("weft-sqlite-test-" + std::to_string(::getpid()) + "-" + std::to_string(n) + "-" +
          weft::es::new_event_id().substr(0, 8) + ".db"))
            .string();
    remove_db_files(path);
    return path;
}

// A database file in the temp directory, removed (with its -wal and -shm) at scope exit.
struct temp_db_file {
    std::string path = new_temp_db_path();
    temp_db_file() = default;
    temp_db_file(const temp_db_file&) = delete;
    temp_db_file& operator=(const temp_db_file&) = delete;
    ~temp_db_file() { remove_all(); }
    void remove_all() const { remove_db_files(path); }
};

// Reads `fd` (a child's stdout) into `text` until it holds `line` (true), or ends or
// `timeout` passes (false).
inline bool read_until(int fd, std::string& text, const std::string& line,
                       std::chrono::milliseconds timeout) {
    const auto give_up = std::chrono::steady_clock::now() + timeout;
    while (text.find(line) == std::string::npos) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            give_up - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            return false;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
            continue;
        char buffer[256];
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n <= 0)
            return false; // EOF: the child is gone
        text.append(buffer, static_cast<std::size_t>(n));
    }
    return true;
}

} // namespace weft_test
