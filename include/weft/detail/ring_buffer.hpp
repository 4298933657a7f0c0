// weft::detail::ring_buffer — fixed-capacity FIFO of T in raw storage.
//
// Not thread-safe: the owning channel's lock guards it. T needs no default constructor.
// push_back and the move out of front() may throw (T's move); either leaves the ring as it was.
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <utility>

namespace weft::detail {

template <class T>
class ring_buffer {
public:
    explicit ring_buffer(std::size_t capacity) : capacity_(capacity) {
        if (capacity_ > 0)
            slots_ = static_cast<T*>(
                ::operator new (capacity_ * sizeof(T), std::align_val_t{alignof(T)}));
    }
    ring_buffer(const ring_buffer&) = delete;
    ring_buffer& operator=(const ring_buffer&) = delete;
    ~ring_buffer() {
        while (size_ > 0)
            pop_front();
        if (slots_)
            ::operator delete (slots_, std::align_val_t{alignof(T)});
    }

    std::size_t capacity() const noexcept { return capacity_; }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    bool full() const noexcept { return size_ == capacity_; }

    T& front() noexcept { return slots_[head_]; }

    template <class U>
    void push_back(U&& value) {
        std::size_t tail = head_ + size_;
        if (tail >= capacity_)
            tail -= capacity_;
        std::construct_at(slots_ + tail, std::forward<U>(value));
        ++size_; // only once the construction succeeded
    }

    void pop_front() noexcept {
        std::destroy_at(slots_ + head_);
        if (++head_ == capacity_)
            head_ = 0;
        --size_;
    }

private:
    T* slots_ = nullptr;
    std::size_t capacity_;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

} // namespace weft::detail
