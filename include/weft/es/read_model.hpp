// weft::es read models — what a projection writes while many threads query it.
//
//   weft::es::keyed_read_model<std::string, account_view> accounts;  // one value per key
//   accounts.update(e.stream, [&](account_view& v) { v.apply(e); });  // in the projection
//   std::optional<account_view> v = accounts.get("account-42");       // a copy, or nullopt
//
//   weft::es::snapshot_read_model<totals> stats;                       // one whole value
//   stats.update([&](totals& t) { for (const auto& e : batch) t.apply(e); }); // a copy a batch
//   std::shared_ptr<const totals> now = stats.current();               // one consistent version
//
// Two shapes, two trade-offs:
// - keyed_read_model: a hash map in shards (64 by default), each with its own shared_mutex.
//   Writers of keys in different shards do not contend (a projection partitioned by stream
//   id, each stream its own key), a point read holds one shard's shared lock for a lookup and
//   a copy, and a writer holds one shard's exclusive lock for one update. Each call is atomic
//   for its key; there is no view of several keys at one instant (for_each and snapshot walk
//   the shards one after another).
// - snapshot_read_model: copy-on-write. A reader gets the whole value as one immutable version
//   and never waits for a writer's work; a writer copies the value, changes the copy and
//   publishes it, so an update costs a copy of the whole value. Apply a batch of events per
//   update, not one event, and keep it for values that are small or rarely written (totals, a
//   leaderboard, a dashboard), or where a reader needs several fields of one instant.
//
// A callback given to read/update/for_each runs under a shard lock: it must not call back into
// the same model (the lock is not recursive) and should be short (it holds other threads of
// that shard). Neither model is copyable or movable (they own mutexes).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace weft::es {

// A map from Key to Value that many threads read and write at once, one key at a time.
// Value must be default constructible (update creates a missing value) and, for get and
// snapshot, copyable. std::shared_mutex on glibc prefers readers: a shard that readers hold
// without a pause (a few hot keys, more readers than cores) can hold its writer back; more
// shards, or a snapshot_read_model for the hot part, keep the writer moving.
template <class Key, class Value, class Hash = std::hash<Key>, class KeyEqual = std::equal_to<Key>>
class keyed_read_model {
public:
    // `shard_count` is rounded up to a power of two in [1, 65536]. More shards: fewer
    // collisions between writers of different keys; 1 shard is one shared_mutex over one map.
    explicit keyed_read_model(std::size_t shard_count = 64)
        : shard_count_(round_shard_count(shard_count)),
          shards_(std::make_unique<shard[]>(shard_count_)) {}
    keyed_read_model(const keyed_read_model&) = delete;
    keyed_read_model& operator=(const keyed_read_model&) = delete;

    // A copy of the value of `key`, or nullopt. Waits only for a writer of the same shard.
    std::optional<Value> get(const Key& key) const {
        const shard& s = shard_of(key);
        std::shared_lock lock(s.mutex);
        auto it = s.map.find(key);
        if (it == s.map.end())
            return std::nullopt;
        return it->second;
    }

    // Runs fn(const Value*) under the shard's shared lock (nullptr: no such key) and returns
    // what fn returns: for reading a part of a large value without copying all of it.
    template <class Fn>
    std::invoke_result_t<Fn&, const Value*> read(const Key& key, Fn fn) const {
        const shard& s = shard_of(key);
        std::shared_lock lock(s.mutex);
        auto it = s.map.find(key);
        return fn(it == s.map.end() ? static_cast<const Value*>(nullptr) : &it->second);
    }

    bool contains(const Key& key) const {
        return read(key, [](const Value* v) { return v != nullptr; });
    }

    // Runs fn(Value&) under the shard's exclusive lock, on a default-constructed value if
    // `key` has none, and returns what fn returns. Readers see the value before fn or after
    // it, never halfway. If fn throws, a value this call created is removed again (what fn
    // changed in an existing value before throwing stays).
    template <class Fn>
    std::invoke_result_t<Fn&, Value&> update(const Key& key, Fn fn) {
        shard& s = shard_of(key);
        std::unique_lock lock(s.mutex);
        auto [it, created] = s.map.try_emplace(key);
        try {
            return fn(it->second);
        } catch (...) {
            if (created)
                s.map.erase(it);
            throw;
        }
    }

    // Removes the value of `key`; false if there was none.
    bool erase(const Key& key) {
        shard& s = shard_of(key);
        std::unique_lock lock(s.mutex);
        return s.map.erase(key) != 0;
    }

    // Removes every value, shard by shard: a writer running at the same time may leave a
    // value in a shard that was already cleared.
    void clear() {
        for (std::size_t i = 0; i < shard_count_; ++i) {
            std::unique_lock lock(shards_[i].mutex);
            shards_[i].map.clear();
        }
    }

    // The number of keys, summed shard by shard (exact when no writer runs at the same time).
    std::size_t size() const {
        std::size_t n = 0;
        for (std::size_t i = 0; i < shard_count_; ++i) {
            std::shared_lock lock(shards_[i].mutex);
            n += shards_[i].map.size();
        }
        return n;
    }
    bool empty() const { return size() == 0; }

    // Calls fn(const Key&, const Value&) for every value, one shard at a time under that
    // shard's shared lock, in no particular order. Not one atomic snapshot: a shard is read at
    // its own instant, so writes during the walk are seen in shards visited after them only.
    template <class Fn>
    void for_each(Fn fn) const {
        for (std::size_t i = 0; i < shard_count_; ++i) {
            std::shared_lock lock(shards_[i].mutex);
            for (const auto& [key, value] : shards_[i].map)
                fn(key, value);
        }
    }

    // A copy of every key and value, taken as for_each does (per shard, not at one instant).
    std::vector<std::pair<Key, Value>> snapshot() const {
        std::vector<std::pair<Key, Value>> out;
        for_each([&](const Key& key, const Value& value) { out.emplace_back(key, value); });
        return out;
    }

    std::size_t shard_count() const noexcept { return shard_count_; }

private:
    // Own cache line each, so that writers of neighbouring shards do not share one.
    struct alignas(64) shard {
        mutable std::shared_mutex mutex;
        std::unordered_map<Key, Value, Hash, KeyEqual> map;
    };

    static std::size_t round_shard_count(std::size_t n) {
        std::size_t count = 1;
        while (count < n && count < (std::size_t{1} << 16))
            count <<= 1;
        return count;
    }

    // The map inside a shard buckets by the same hash (modulo a prime), so the shard must
    // come from bits that say nothing about it: with a plain multiply, the keys of one shard
    // form a lattice that piles up in a few buckets. Murmur3's finalizer mixes every bit of
    // the hash into the top 16, which pick the shard.
    std::size_t index_of(const Key& key) const {
        auto h = static_cast<std::uint64_t>(Hash{}(key));
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 33;
        h *= 0xc4ceb9fe1a85ec53ull;
        h ^= h >> 33;
        return static_cast<std::size_t>(h >> 48) & (shard_count_ - 1);
    }
    shard& shard_of(const Key& key) { return shards_[index_of(key)]; }
    const shard& shard_of(const Key& key) const { return shards_[index_of(key)]; }

    std::size_t shard_count_;
    std::unique_ptr<shard[]> shards_;
};

// One value of T, published whole: readers hold immutable versions, a writer makes the next.
// T must be copy constructible.
//
// current() copies a shared_ptr under a small mutex that guards only the pointer: it waits for
// another current() or a writer's pointer swap (a few nanoseconds), never for a writer's copy
// of T or its fn. Readers that call it at a high rate still share that mutex's cache line and
// the version's reference count; a thread that reads in a loop should keep a `reader`, which
// reads one rarely written counter and touches the pointer only when a version was published.
// (Not std::atomic<std::shared_ptr>: libstdc++ 12's load unlocks its internal spin lock with
// a relaxed store, so a reader's read of the pointer is not ordered before the next writer's
// write; ThreadSanitizer reports that as a data race.)
template <class T>
class snapshot_read_model {
public:
    snapshot_read_model() : snapshot_read_model(T{}) {}
    explicit snapshot_read_model(T initial)
        : current_(std::make_shared<const T>(std::move(initial))) {}
    snapshot_read_model(const snapshot_read_model&) = delete;
    snapshot_read_model& operator=(const snapshot_read_model&) = delete;

    // The latest published version; it stays valid and unchanged for as long as it is held.
    std::shared_ptr<const T> current() const {
        std::lock_guard lock(pointer_mutex_);
        return current_;
    }

    // Copies the latest version, runs fn(T&) on the copy and publishes it; returns what fn
    // returns. Writers run one at a time (a mutex); readers do not wait for them. If fn throws,
    // nothing is published. One update per batch of events: it costs one copy of T.
    template <class Fn>
    std::invoke_result_t<Fn&, T&> update(Fn fn) {
        std::lock_guard lock(write_mutex_);
        // No pointer_mutex_: only writers change current_, and they hold write_mutex_.
        auto next = std::make_shared<T>(*current_);
        if constexpr (std::is_void_v<std::invoke_result_t<Fn&, T&>>) {
            fn(*next);
            publish(std::move(next));
        } else {
            std::invoke_result_t<Fn&, T&> result = fn(*next);
            publish(std::move(next));
            return result;
        }
    }

    // Publishes `value` as the next version without copying the current one (a rebuild).
    void replace(T value) {
        std::lock_guard lock(write_mutex_);
        publish(std::make_shared<T>(std::move(value)));
    }

    // How many versions were published after the initial one.
    std::uint64_t version() const noexcept {
        // acquire: pairs with the release increment in publish(); a current() after this load
        // returns this version or a later one.
        return version_.load(std::memory_order_acquire);
    }

    // One reader thread's handle: caches the version it last loaded and checks only the
    // version counter (a read of a line that changes once per update) until it moves. Not
    // thread safe itself (one per thread or task); it keeps its last version alive until the
    // next current(). The model must outlive it.
    class reader {
    public:
        explicit reader(const snapshot_read_model& model) : model_(&model) {}

        // The latest published version, or one published at most an update earlier when a
        // writer is between its two stores; never older than what this reader returned before.
        const std::shared_ptr<const T>& current() {
            const std::uint64_t v = model_->version();
            if (!cached_ || v != seen_) {
                // Loaded after the version: at least the version `v` names (publish stores the
                // pointer before it bumps the counter), possibly the next one.
                cached_ = model_->current();
                seen_ = v;
            }
            return cached_;
        }
        const T& operator*() { return *current(); }
        const T* operator->() { return current().get(); }

    private:
        const snapshot_read_model* model_;
        std::shared_ptr<const T> cached_;
        std::uint64_t seen_ = 0;
    };

private:
    // Called with write_mutex_ held. pointer_mutex_ publishes the new value's contents to
    // current(); the old version is released after the swap, outside that lock.
    void publish(std::shared_ptr<const T> next) {
        {
            std::lock_guard lock(pointer_mutex_);
            current_.swap(next);
        }
        // release: orders the pointer swap above before the count, for version()'s acquire
        // load (a reader that sees the new count then gets the new pointer or a later one).
        version_.fetch_add(1, std::memory_order_release);
    }

    mutable std::mutex pointer_mutex_; // guards current_ against readers, not T
    std::shared_ptr<const T> current_;
    std::mutex write_mutex_; // one writer at a time: held for the copy, fn and the publish
    // Own cache line (the last member, so the padding after it is the class's): readers poll
    // it, and a writer taking write_mutex_ should not take the line away from them.
    alignas(64) std::atomic<std::uint64_t> version_{0};
};

} // namespace weft::es
