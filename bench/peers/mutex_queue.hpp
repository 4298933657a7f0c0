// mutex_queue<T> — the textbook bounded blocking queue, as a baseline for weft::channel.
//
// One std::mutex guards a ring of `capacity` slots; `not_full_` parks senders and `not_empty_`
// parks receivers, each woken with notify_one after every pop/push. Same contract as a
// buffered weft::channel: send blocks while full and returns false once closed; recv blocks
// while empty and returns nullopt once closed and drained. No rendezvous: capacity >= 1.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

namespace weft_bench {

template <class T>
class mutex_queue {
public:
    explicit mutex_queue(std::size_t capacity) : slots_(capacity) {
        if (capacity == 0)
            throw std::invalid_argument("mutex_queue: capacity must be >= 1");
    }

    // Blocks while full. False if the queue is closed; `value` is then left unmoved.
    bool send(T&& value) {
        {
            std::unique_lock lock(mutex_);
            not_full_.wait(lock, [&] { return closed_ || size_ < slots_.size(); });
            if (closed_)
                return false;
            std::size_t tail = head_ + size_;
            if (tail >= slots_.size())
                tail -= slots_.size();
            slots_[tail] = std::move(value);
            ++size_;
        }
        // Notify after unlocking, so the woken receiver does not block on our mutex at once.
        not_empty_.notify_one();
        return true;
    }

    // Blocks while empty; nullopt once closed and drained.
    std::optional<T> recv() {
        std::optional<T> out;
        {
            std::unique_lock lock(mutex_);
            not_empty_.wait(lock, [&] { return closed_ || size_ > 0; });
            if (size_ == 0)
                return out; // closed and drained
            out.emplace(std::move(slots_[head_]));
            if (++head_ == slots_.size())
                head_ = 0;
            --size_;
        }
        not_full_.notify_one();
        return out;
    }

    // Wakes every blocked sender and receiver; buffered values can still be received.
    void close() {
        {
            std::lock_guard lock(mutex_);
            closed_ = true;
        }
        not_full_.notify_all();
        not_empty_.notify_all();
    }

private:
    std::mutex mutex_;
    std::condition_variable not_full_;
    std::condition_variable not_empty_;
    std::vector<T> slots_;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
    bool closed_ = false;
};

} // namespace weft_bench
