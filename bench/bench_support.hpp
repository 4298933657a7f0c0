// What every weft benchmark program shares: its own --name=N flags taken out of argv before
// Google Benchmark sees them, the usual main(), and a throwaway database path.
#pragma once

#include <benchmark/benchmark.h>

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <initializer_list>
#include <random>
#include <string>
#include <string_view>
#include <system_error>

namespace weft_bench {

// One integer flag: "--name=" followed by a value in [min, max], stored in *value.
struct int_flag {
    std::string_view prefix; // e.g. "--items="
    std::int64_t* value;
    std::int64_t min;
    std::int64_t max;
};

// Takes the flags in `flags` out of argv (Google Benchmark rejects flags it does not know).
// False, with a message naming `program`, on a malformed or out-of-range value.
inline bool take_int_flags(const char* program, int& argc, char** argv,
                           std::initializer_list<int_flag> flags) {
    int kept = 1;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        const int_flag* match = nullptr;
        for (const int_flag& f : flags)
            if (arg.starts_with(f.prefix))
                match = &f;
        if (!match) {
            argv[kept++] = argv[i];
            continue;
        }
        const std::string_view text = arg.substr(match->prefix.size());
        std::int64_t v = 0;
        const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (error != std::errc() || end != text.data() + text.size() || v < match->min ||
            v > match->max) {
            std::fprintf(stderr, "%s: bad value in %s (want %lld..%lld)\n", program, argv[i],
                         static_cast<long long>(match->min), static_cast<long long>(match->max));
            return false;
        }
        *match->value = v;
    }
    argc = kept;
    argv[argc] = nullptr;
    return true;
}

// Google Benchmark's main: `register_all()` runs after its flags are read, `after_run()` after
// the benchmarks (a summary table, say).
template <class Register, class AfterRun>
int run_benchmarks(int argc, char** argv, Register register_all, AfterRun after_run) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;
    register_all();
    benchmark::RunSpecifiedBenchmarks();
    after_run();
    benchmark::Shutdown();
    return 0;
}
template <class Register>
int run_benchmarks(int argc, char** argv, Register register_all) {
    return run_benchmarks(argc, argv, register_all, [] {});
}

// A database path in the temp directory, unique to this object; the file and SQLite's -wal and
// -shm beside it are removed when it goes (declare it before the store that uses it).
class temp_db {
public:
    temp_db()
        : path_((std::filesystem::temp_directory_path() /
                 ("weft_bench_" + std::to_string(std::random_device{}()) + "_" +
                  std::to_string(counter()++) + ".db"))
                    .string()) {}
    temp_db(const temp_db&) = delete;
    temp_db& operator=(const temp_db&) = delete;
    ~temp_db() {
        std::error_code ignored;
        for (const char* suffix : {"", "-wal", "-shm", "-journal"})
            std::filesystem::remove(path_ + suffix, ignored);
    }
    const std::string& path() const noexcept { return path_; }

private:
    static unsigned& counter() noexcept {
        static unsigned n = 0; // benchmarks make their databases on one thread
        return n;
    }
    std::string path_;
};

} // namespace weft_bench
