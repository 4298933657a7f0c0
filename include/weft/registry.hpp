// weft::registry<Key, A> — one actor per key, created on first use, put to sleep when idle.
//
//   weft::registry<std::string, account> accounts(sched, [](const std::string& id) {
//       return account(load_balance(id));           // how an actor for `id` comes to be
//   });
//   accounts.tell("alice", deposit{50'00});          // created on first use, exactly once
//   outcome r = accounts.ask("alice", withdraw{30'00}).get();
//   weft::actor_ref<account> a = accounts.get_or_create("alice");
//
// The classic race — two threads look up a missing id, both create an actor, one wins the map
// and the other's messages go to an actor nobody else sees — cannot happen: get_or_create
// creates exactly one actor per key however many threads ask at once. The map is split into
// shards, each with a shared_mutex, so lookups of existing keys run in parallel and never
// queue behind one global lock.
//
// Passivation (registry_options::idle_timeout > 0): an actor that has handled nothing for that
// long is stopped and its state set aside (or handed to the on_passivate hook, which may save
// it; the factory then rebuilds it). The next message through the registry revives it
// transparently. An actor_ref kept from get_or_create does not follow the revival: once its
// actor is passivated it refuses messages with actor_stopped. Send through the registry when
// passivation is on.
#pragma once

#include "actor.hpp"
#include "time.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace weft {

template <class Key, class A>
struct registry_options {
    actor_options actor;                                // for every actor created
    std::chrono::steady_clock::duration idle_timeout{}; // 0: never passivate
    std::function<void(const Key&, A&&)> on_passivate;  // null: keep the state in memory
};

template <class Key, class A, class Hash = std::hash<Key>>
class registry {
public:
    using factory_type = std::function<A(const Key&)>;

    // `factory(key)` makes the state of a new actor (get_or_create without a factory, tell,
    // ask, and revival after passivation use it).
    explicit registry(scheduler& s, factory_type factory = {},
                      registry_options<Key, A> options = {})
        : scheduler_(s), factory_(std::move(factory)), options_(std::move(options)) {
        if (options_.idle_timeout > std::chrono::steady_clock::duration::zero())
            schedule_sweep();
    }
    registry(const registry&) = delete;
    registry& operator=(const registry&) = delete;
    // Stops the sweeper (waiting for a sweep in progress). The actors live on while
    // actor_refs to them exist.
    ~registry() {
        callback_timer sweep;
        {
            std::lock_guard lock(sweep_mutex_);
            sweep_closed_ = true;
            sweep = std::move(sweep_);
        }
        // `sweep` is destroyed here, outside the lock a running sweep takes to re-arm.
    }

    // The actor for `key`, created with `factory()` or `factory(key)` if there is none (and
    // no passivated state to revive). Exactly one actor per key, even under concurrent first
    // use; the factory runs at most once per creation, under the key's shard lock, so keep it
    // short.
    template <class Factory>
    actor_ref<A> get_or_create(const Key& key, Factory&& factory) {
        shard& sh = shard_for(key);
        {
            std::shared_lock read(sh.mutex);
            if (auto it = sh.live.find(key); it != sh.live.end())
                return it->second;
        }
        std::unique_lock write(sh.mutex);
        return find_or_spawn(sh, key, std::forward<Factory>(factory));
    }
    actor_ref<A> get_or_create(const Key& key) { return get_or_create(key, factory_or_throw()); }

    // The actor for `key` if it is running (not created, not revived).
    std::optional<actor_ref<A>> find(const Key& key) const {
        const shard& sh = shard_for(key);
        std::shared_lock read(sh.mutex);
        if (auto it = sh.live.find(key); it != sh.live.end())
            return it->second;
        return std::nullopt;
    }

    // tell / ask / try_tell through the registry: the actor is created or revived as needed.
    // The message is enqueued under the key's shard lock, so it cannot race with
    // passivation.
    template <class M>
    void tell(const Key& key, M&& message) {
        with_actor(key, [&](const actor_ref<A>& a) { a.tell(std::forward<M>(message)); });
    }
    template <class M>
    auto ask(const Key& key, M&& message) {
        std::optional<decltype(std::declval<actor_ref<A>&>().ask(std::forward<M>(message)))> r;
        with_actor(key, [&](const actor_ref<A>& a) { r.emplace(a.ask(std::forward<M>(message))); });
        return std::move(*r);
    }

    // tell(ctx, m) / ask(ctx, m) through the registry (actor.hpp): cancelled when `ctx` is
    // done first. The wait for room holds the key's shard lock, as tell() does; the wait for
    // the reply does not.
    template <class M>
    status tell(const context& ctx, const Key& key, M&& message) {
        status s = status::ok;
        with_actor(key, [&](const actor_ref<A>& a) { s = a.tell(ctx, std::forward<M>(message)); });
        return s;
    }
    template <class M>
    auto ask(const context& ctx, const Key& key, M&& message) {
        using reply_type = typename actor_ref<A>::template ask_type<M>::reply_type;
        std::optional<future<reply_type>> reply;
        with_actor(key, [&](const actor_ref<A>& a) {
            if (auto sent = a.send_ask(ctx, std::forward<M>(message)))
                reply.emplace(std::move(*sent));
        });
        if (!reply)
            return ask_result<reply_type>::cancelled(false);
        return actor_ref<A>::await_reply(ctx, std::move(*reply));
    }

    // Running actors (passivated ones not counted).
    std::size_t size() const { return total(&shard::live); }
    // Actors passivated with their state kept here, waiting to be revived.
    std::size_t passivated() const { return total(&shard::dormant); }

    // Runs one passivation pass now (the sweeper does this every idle_timeout / 2): every
    // actor idle for longer than `idle` is passivated. Returns how many were.
    std::size_t passivate_idle(std::chrono::steady_clock::duration idle) {
        const auto cutoff = (std::chrono::steady_clock::now() - idle).time_since_epoch().count();
        std::size_t count = 0;
        for (shard& sh : shards_) {
            std::unique_lock write(sh.mutex);
            for (auto it = sh.live.begin(); it != sh.live.end();) {
                auto& cell = *it->second.cell_;
                std::optional<A> state;
                if (cell.last_active() <= cutoff)
                    state = cell.try_passivate();
                if (!state) {
                    ++it;
                    continue;
                }
                if (options_.on_passivate)
                    options_.on_passivate(it->first, std::move(*state));
                else
                    sh.dormant.emplace(it->first, std::move(*state));
                it = sh.live.erase(it);
                ++count;
            }
        }
        return count;
    }

private:
    static constexpr std::size_t k_shards = 64;

    struct shard {
        mutable std::shared_mutex mutex;
        std::unordered_map<Key, actor_ref<A>, Hash> live;
        std::unordered_map<Key, A, Hash> dormant; // passivated, state kept
    };

    // The entries of one map of every shard, each shard read under its lock.
    template <class Map>
    std::size_t total(Map shard::*map) const {
        std::size_t n = 0;
        for (const shard& sh : shards_) {
            std::shared_lock read(sh.mutex);
            n += (sh.*map).size();
        }
        return n;
    }

    shard& shard_for(const Key& key) { return shards_[Hash{}(key) % k_shards]; }
    const shard& shard_for(const Key& key) const { return shards_[Hash{}(key) % k_shards]; }

    const factory_type& factory_or_throw() const {
        if (!factory_)
            throw actor_error("weft: registry has no factory to create an actor with");
        return factory_;
    }

    // With the shard's write lock held.
    template <class Factory>
    actor_ref<A> find_or_spawn(shard& sh, const Key& key, Factory&& factory) {
        if (auto it = sh.live.find(key); it != sh.live.end())
            return it->second; // another thread created it first
        actor_ref<A> created;
        if (auto d = sh.dormant.find(key); d != sh.dormant.end()) {
            created = spawn_actor<A>(scheduler_, options_.actor, std::move(d->second));
            sh.dormant.erase(d);
        } else if constexpr (std::is_invocable_v<Factory&, const Key&>) {
            created = spawn_actor<A>(scheduler_, options_.actor, factory(key));
        } else {
            created = spawn_actor<A>(scheduler_, options_.actor, factory());
        }
        sh.live.emplace(key, created);
        return created;
    }

    // Runs `send(actor)` under the key's shard lock (shared if the actor runs, exclusive if it
    // must be created), so passivation never takes the actor away mid-send.
    template <class Send>
    void with_actor(const Key& key, Send&& send) {
        shard& sh = shard_for(key);
        {
            std::shared_lock read(sh.mutex);
            if (auto it = sh.live.find(key); it != sh.live.end()) {
                send(it->second);
                return;
            }
        }
        std::unique_lock write(sh.mutex);
        send(find_or_spawn(sh, key, factory_or_throw()));
    }

    // A sweep every idle_timeout / 2 on the timer thread; each sweep arms the next.
    void schedule_sweep() {
        const auto period =
            std::max(options_.idle_timeout / 2,
                     std::chrono::steady_clock::duration(std::chrono::milliseconds(1)));
        callback_timer next = after_func(period, [this] {
            passivate_idle(options_.idle_timeout);
            schedule_sweep();
        });
        callback_timer previous; // the sweep running now (if any): released after the lock
        std::lock_guard lock(sweep_mutex_);
        if (sweep_closed_)
            return; // `next` stops as it goes
        previous = std::exchange(sweep_, std::move(next));
    }

    scheduler& scheduler_;
    factory_type factory_;
    registry_options<Key, A> options_;
    std::array<shard, k_shards> shards_;

    std::mutex sweep_mutex_;
    callback_timer sweep_;      // the next sweep; guarded by sweep_mutex_
    bool sweep_closed_ = false; // guarded by sweep_mutex_
};

} // namespace weft
