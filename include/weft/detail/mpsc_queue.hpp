// weft::detail::mpsc_queue — an intrusive unbounded queue: many producers, one consumer
// (Vyukov's node-based MPSC queue). An actor's mailbox: a push is one exchange, a pop touches
// no shared counter, and an empty queue costs one stub node, not a buffer.
//
// A push is two steps (swing `head_`, then link the previous node to the new one). A pop that
// falls between them sees the queue as empty although a push has begun; callers that know a
// message is coming (they count them) retry.
#pragma once

#include <atomic>

namespace weft::detail {

// The link a queued node derives from.
struct mpsc_link {
    std::atomic<mpsc_link*> next{nullptr};
};

class mpsc_queue {
public:
    mpsc_queue() noexcept : head_(&stub_), tail_(&stub_) {}
    mpsc_queue(const mpsc_queue&) = delete;
    mpsc_queue& operator=(const mpsc_queue&) = delete;

    // Any thread.
    void push(mpsc_link* node) noexcept {
        // relaxed: published by the release store below.
        node->next.store(nullptr, std::memory_order_relaxed);
        // acq_rel: orders our node's setup before the swap (release) and takes over the
        // previous producer's node (acquire) before we link to it.
        mpsc_link* previous = head_.exchange(node, std::memory_order_acq_rel);
        // release: the consumer's acquire load of `next` sees the node's contents.
        previous->next.store(node, std::memory_order_release);
    }

    // The consumer only. The oldest node, or null when empty or a push is half done.
    mpsc_link* pop() noexcept {
        mpsc_link* tail = tail_;
        // acquire, all loads of `next`: pair with the release store in push().
        mpsc_link* next = tail->next.load(std::memory_order_acquire);
        if (tail == &stub_) {
            if (!next)
                return nullptr;
            tail_ = next;
            tail = next;
            next = next->next.load(std::memory_order_acquire);
        }
        if (next) {
            tail_ = next;
            return tail;
        }
        // `tail` is the last node linked. If a producer has swung head_ past it, its link is
        // on the way: report empty for now.
        // acquire: pairs with the exchange in push().
        if (tail != head_.load(std::memory_order_acquire))
            return nullptr;
        // Put the stub back behind the last node, so that node can be handed out.
        push(&stub_);
        next = tail->next.load(std::memory_order_acquire);
        if (next) {
            tail_ = next;
            return tail;
        }
        return nullptr;
    }

private:
    std::atomic<mpsc_link*> head_;
    mpsc_link* tail_; // the consumer's
    mpsc_link stub_;
};

} // namespace weft::detail
