// Temp database files for the SQLite tests of weft::es (not part of the library).
#pragma once

#include <weft/es/event.hpp>

#include <unistd.h>

#include <atomic>
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

} // namespace weft_test
