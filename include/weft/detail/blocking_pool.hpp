// weft::detail::blocking_pool — the elastic thread pool behind spawn_blocking().
//
// Blocking calls (file I/O, a C library that sleeps) must not hold a scheduler worker, so they
// run here. A job goes to an idle pool thread if there is one, else to a new thread, up to a
// cap (default 512, Tokio's; WEFT_MAX_BLOCKING_THREADS overrides it); beyond the cap jobs
// wait in FIFO order. A thread idle for 10 s exits, so a burst does not leave hundreds of
// threads behind. Like timer_service, the pool is created on first use and never destroyed;
// its threads are detached.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

namespace weft::detail {

// One call for the pool. Shared, so whoever waits for its result can own it too.
struct blocking_job {
    virtual ~blocking_job() = default;
    virtual void run() noexcept = 0;
};

class blocking_pool {
public:
    static blocking_pool& instance() {
        // Leaked on purpose, as timer_service: jobs may finish after main() returns.
        static blocking_pool* pool = new blocking_pool(max_threads_from_environment());
        return *pool;
    }

    // Runs `job` on a pool thread.
    void submit(std::shared_ptr<blocking_job> job) {
        std::unique_lock lock(mutex_);
        jobs_.push_back(std::move(job));
        ++unfinished_;
        if (idle_ >= jobs_.size()) { // an idle thread for every queued job, this one included
            lock.unlock();
            wake_.notify_one();
            return;
        }
        if (threads_ < max_threads_) {
            ++threads_;
            std::thread([this] { run(); }).detach();
        }
    }

    // Jobs submitted and not yet finished (queued or running).
    std::size_t running() {
        std::lock_guard lock(mutex_);
        return unfinished_;
    }

    // Pool threads alive now (running a job or idle).
    std::size_t threads() {
        std::lock_guard lock(mutex_);
        return threads_;
    }

    blocking_pool(const blocking_pool&) = delete;
    blocking_pool& operator=(const blocking_pool&) = delete;

private:
    static constexpr std::chrono::seconds k_keep_alive{10};

    explicit blocking_pool(std::size_t max_threads) : max_threads_(max_threads) {}

    static std::size_t max_threads_from_environment() {
        if (const char* text = std::getenv("WEFT_MAX_BLOCKING_THREADS")) {
            const long n = std::strtol(text, nullptr, 10);
            if (n > 0)
                return static_cast<std::size_t>(n);
        }
        return 512;
    }

    void run() {
        std::unique_lock lock(mutex_);
        for (;;) {
            if (jobs_.empty()) {
                ++idle_;
                const bool woke =
                    wake_.wait_for(lock, k_keep_alive, [&] { return !jobs_.empty(); });
                --idle_;
                if (!woke) {
                    --threads_;
                    return;
                }
            }
            std::shared_ptr<blocking_job> job = std::move(jobs_.front());
            jobs_.pop_front();
            lock.unlock();
            job->run();
            job.reset(); // its captures die outside the lock
            lock.lock();
            --unfinished_;
        }
    }

    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::shared_ptr<blocking_job>> jobs_;
    const std::size_t max_threads_;
    std::size_t threads_ = 0;
    std::size_t idle_ = 0;
    std::size_t unfinished_ = 0;
};

} // namespace weft::detail
