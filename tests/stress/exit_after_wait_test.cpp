// A program that returns from main right after wg.wait() exits cleanly, however its tasks and
// the process's exit interleave: each test runs exit_after_wait_child (see there) many times as
// a child process while busy threads load every CPU, and counts the runs that did not exit 0.
// WEFT_EXIT_RUNS sets the runs per shape (default 100; 20 in sanitizer builds).
#include "catch_compat.hpp"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr int k_default_runs = 20; // a sanitized child takes ~10x as long
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
constexpr int k_default_runs = 20;
#else
constexpr int k_default_runs = 100;
#endif
#else
constexpr int k_default_runs = 100;
#endif

int runs() {
    if (const char* text = std::getenv("WEFT_EXIT_RUNS"))
        if (const int n = std::atoi(text); n > 0)
            return n;
    return k_default_runs;
}

// Keeps every CPU busy while it lives, so the child's threads get preempted at odd places.
class cpu_load {
public:
    cpu_load() {
        const unsigned n = std::max(1u, std::thread::hardware_concurrency());
        for (unsigned i = 0; i < n; ++i)
            threads_.emplace_back([this] {
                // relaxed: a stop flag; nothing else is published through it.
                while (!stop_.load(std::memory_order_relaxed))
                    spins_.fetch_add(1, std::memory_order_relaxed); // relaxed: busy work
            });
    }
    cpu_load(const cpu_load&) = delete;
    cpu_load& operator=(const cpu_load&) = delete;
    ~cpu_load() {
        stop_.store(true, std::memory_order_relaxed); // relaxed: see the loop
        for (auto& t : threads_)
            t.join();
    }

private:
    std::atomic<bool> stop_{false};
    std::atomic<unsigned long> spins_{0};
    std::vector<std::thread> threads_;
};

struct outcome {
    int clean = 0;       // exited 0
    int wrong_count = 0; // exited non-zero: a task did not run
    int crashed = 0;     // killed by a signal
    int last_signal = 0;
};

outcome run_child(const std::string& shape, int tasks, int times) {
    outcome out;
    const std::string count = std::to_string(tasks);
    for (int i = 0; i < times; ++i) {
        std::string path = WEFT_EXIT_AFTER_WAIT_CHILD;
        std::vector<char*> args{path.data(), const_cast<char*>(shape.c_str()),
                                const_cast<char*>(count.c_str()), nullptr};
        pid_t pid = 0;
        REQUIRE(posix_spawn(&pid, path.c_str(), nullptr, nullptr, args.data(), environ) == 0);
        int status = 0;
        REQUIRE(waitpid(pid, &status, 0) == pid);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            ++out.clean;
        } else if (WIFSIGNALED(status)) {
            ++out.crashed;
            out.last_signal = WTERMSIG(status);
        } else {
            ++out.wrong_count;
        }
    }
    return out;
}

void check_shape(const std::string& shape) {
    const int times = runs();
    outcome out;
    {
        cpu_load load;
        out = run_child(shape, 8, times);
    }
    INFO(shape << ": " << out.crashed << " crashed (last signal " << out.last_signal << "), "
               << out.wrong_count << " wrong counts, of " << times);
    CHECK(out.crashed == 0);
    CHECK(out.wrong_count == 0);
    CHECK(out.clean == times);
}

} // namespace

TEST_CASE("returning from main after wait: go from main") {
    check_shape("main");
}

TEST_CASE("returning from main after wait: go from main with suspending tasks") {
    check_shape("main_co");
}

TEST_CASE("returning from main after wait: go from a task on the default scheduler") {
    check_shape("nested");
}

TEST_CASE("returning from main after wait: go from a task on main's own scheduler") {
    check_shape("own");
}

TEST_CASE("returning from main after wait: a task on main's scheduler starts suspending ones") {
    check_shape("own_co");
}

TEST_CASE("returning from main after wait: a global scheduler's task spawns on the default one") {
    check_shape("global");
}

TEST_CASE("returning from main after wait: a global scheduler's task feeds the default one") {
    check_shape("feed");
}
