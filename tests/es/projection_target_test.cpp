// weft::es::projection_target, the concept: which shapes it accepts and rejects (checked at
// compile time here; tests/compile_fail/ checks add()'s messages), and a class of one's own
// that models it with transactions, a checkpoint, reset and stored dead letters, driven by the
// runner exactly as the same members spelled as a function_target are: exactly once across a
// failed commit, its checkpoint and dead letters loaded after a restart, dead letters parked
// through park and retried through retry_dead_letter, reset on rebuild.
//
// Handlers run on the scheduler's workers and only record (under the model's mutex); every
// assertion runs on the test thread after wait_for, stop or a runner's end.
#include "catch_compat.hpp"

#include <weft/es/memory_store.hpp>
#include <weft/es/projection.hpp>
#include <weft/scheduler.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace weft::es; // the names a target's author writes, unqualified
using runner_type = projection_runner<memory_store>;
using namespace std::chrono_literals;

// --- the shapes the concept accepts and rejects ------------------------------------------

namespace shapes {

struct handle_only {
    void handle(const recorded_event&) {}
};
struct every_member {
    void handle(const recorded_event&) {}
    log_position load_checkpoint() { return 0; }
    void save_checkpoint(log_position) {}
    void begin_batch() {}
    void commit_batch(log_position) {}
    void rollback_batch() {}
    void reset(log_position) {}
    void park(const dead_letter&) {}
    std::vector<dead_letter> load_dead_letters() { return {}; }
    void retry_dead_letter(const recorded_event&) {}
};
// Members callable as documented, though not spelled so: const, by value, another integer.
struct loosely_spelled {
    int handle(recorded_event) const { return 0; }
    std::uint32_t load_checkpoint() const { return 0; }
    void save_checkpoint(std::uint64_t) {}
    void reset(unsigned long long) {}
};
struct const_members {
    void handle(const recorded_event&) const {}
    log_position load_checkpoint() const { return 0; }
};
// Overloaded names are found by the call (the name probe cannot take their address).
struct overloaded_handle {
    void handle(const recorded_event&) {}
    void handle(int) {}
};
struct no_handle {
    log_position load_checkpoint() { return 0; }
};
struct handle_of_another_type {
    void handle(int) {}
};
struct begin_without_commit {
    void handle(const recorded_event&) {}
    void begin_batch() {}
    void rollback_batch() {}
};
struct commit_only {
    void handle(const recorded_event&) {}
    void commit_batch(log_position) {}
};
// A commit_batch that forgot its checkpoint: not callable, so the trio is not whole.
struct commit_without_checkpoint {
    void handle(const recorded_event&) {}
    void begin_batch() {}
    void commit_batch() {}
    void rollback_batch() {}
};
// Named like optional members, but the runner could not call them: rejected, not ignored.
struct checkpoint_as_text {
    void handle(const recorded_event&) {}
    std::string load_checkpoint() { return ""; }
};
struct reset_without_from {
    void handle(const recorded_event&) {}
    void reset() {}
};
struct dead_letters_of_events {
    void handle(const recorded_event&) {}
    std::vector<recorded_event> load_dead_letters() { return {}; }
};
struct handle_not_callable_on_const {
    void handle(const recorded_event&) {}
};

} // namespace shapes

static_assert(projection_target<shapes::handle_only>);
static_assert(projection_target<shapes::every_member>);
static_assert(projection_target<shapes::loosely_spelled>);
static_assert(projection_target<const shapes::const_members>); // std::cref(t)
// A member that is there but not callable on a const target does not fit one (std::cref).
static_assert(!projection_target<const shapes::loosely_spelled>);
static_assert(projection_target<shapes::overloaded_handle>);
static_assert(projection_target<function_target>); // (add() reads its null members as absent)
static_assert(!projection_target<shapes::no_handle>);
static_assert(!projection_target<shapes::handle_of_another_type>);
static_assert(!projection_target<shapes::begin_without_commit>);
static_assert(!projection_target<shapes::commit_only>);
static_assert(!projection_target<shapes::commit_without_checkpoint>);
static_assert(!projection_target<shapes::checkpoint_as_text>);
static_assert(!projection_target<shapes::reset_without_from>);
static_assert(!projection_target<shapes::dead_letters_of_events>);
static_assert(!projection_target<const shapes::handle_not_callable_on_const>);
static_assert(!projection_target<int>);

// --- a class of one's own ------------------------------------------------------------------

namespace {

constexpr auto k_patience = 60s; // a wait that only a bug makes this long

// A read model with transactions and stored dead letters, as sqlite_read_model has, in memory:
// a batch's changes and parked dead letters are staged and take effect at commit_batch with
// the checkpoint, or vanish at rollback_batch. It counts how often each event took effect
// (so "exactly once" is measured) and each member's calls. The handler throws on the event at
// `poison` while `broken`; commit_batch throws while `commits_to_fail` > 0.
class ledger {
public:
    explicit ledger(log_position poison) : poison_(poison) {}

    void handle(const recorded_event& e) {
        std::lock_guard lock(mutex_);
        if (e.position == poison_ && broken)
            throw std::runtime_error("poison at " + std::to_string(e.position));
        if (in_batch_)
            staged_.push_back(e.position);
        else
            ++applied_[e.position];
    }
    log_position load_checkpoint() {
        std::lock_guard lock(mutex_);
        ++calls.load_checkpoint;
        return checkpoint_;
    }
    void begin_batch() {
        std::lock_guard lock(mutex_);
        if (in_batch_)
            ++overlapping_batches;
        in_batch_ = true;
    }
    void commit_batch(log_position checkpoint) {
        std::lock_guard lock(mutex_);
        if (commits_to_fail > 0) {
            --commits_to_fail;
            throw std::runtime_error("disk full");
        }
        for (log_position p : staged_)
            ++applied_[p];
        dead_.insert(dead_.end(), staged_dead_.begin(), staged_dead_.end());
        staged_.clear();
        staged_dead_.clear();
        checkpoint_ = checkpoint;
        in_batch_ = false;
    }
    void rollback_batch() {
        std::lock_guard lock(mutex_);
        ++calls.rollback_batch;
        staged_.clear();
        staged_dead_.clear();
        in_batch_ = false;
    }
    void reset(log_position from) {
        std::lock_guard lock(mutex_);
        ++calls.reset;
        applied_.clear();
        dead_.clear();
        checkpoint_ = from;
    }
    void park(const dead_letter& d) {
        std::lock_guard lock(mutex_);
        ++calls.park;
        if (!in_batch_)
            ++parked_outside_batch;
        staged_dead_.push_back(d);
    }
    std::vector<dead_letter> load_dead_letters() {
        std::lock_guard lock(mutex_);
        ++calls.load_dead_letters;
        return dead_;
    }
    void retry_dead_letter(const recorded_event& e) {
        std::lock_guard lock(mutex_);
        ++calls.retry_dead_letter;
        auto it = std::find_if(dead_.begin(), dead_.end(), [&](const dead_letter& d) {
            return d.event.position == e.position;
        });
        if (e.position == poison_ && broken) {
            if (it != dead_.end())
                ++it->attempts;
            throw std::runtime_error("poison at " + std::to_string(e.position));
        }
        ++applied_[e.position];
        if (it != dead_.end())
            dead_.erase(it);
    }

    // The same members as a function_target: the struct form the class must behave as.
    function_target functions() {
        function_target t;
        t.handle = [this](const recorded_event& e) { handle(e); };
        t.load_checkpoint = [this] { return load_checkpoint(); };
        t.begin_batch = [this] { begin_batch(); };
        t.commit_batch = [this](log_position p) { commit_batch(p); };
        t.rollback_batch = [this] { rollback_batch(); };
        t.reset = [this](log_position from) { reset(from); };
        t.park = [this](const dead_letter& d) { park(d); };
        t.load_dead_letters = [this] { return load_dead_letters(); };
        t.retry_dead_letter = [this](const recorded_event& e) { retry_dead_letter(e); };
        return t;
    }

    // How many of the events 1..head took effect `times` times (0: never). Exactly once
    // means events_applied(head, 1) == head.
    std::int64_t events_applied(log_position head, int times) {
        std::lock_guard lock(mutex_);
        std::int64_t n = 0;
        for (log_position p = 1; p <= head; ++p) {
            const auto it = applied_.find(p);
            n += (it == applied_.end() ? 0 : it->second) == times;
        }
        return n;
    }
    int times_applied(log_position p) {
        std::lock_guard lock(mutex_);
        auto it = applied_.find(p);
        return it == applied_.end() ? 0 : it->second;
    }
    std::vector<dead_letter> stored_dead_letters() {
        std::lock_guard lock(mutex_);
        return dead_;
    }
    log_position stored_checkpoint() {
        std::lock_guard lock(mutex_);
        return checkpoint_;
    }

    // Set by the test thread while no run exists (before add, or with the projection stopped).
    bool broken = true;
    int commits_to_fail = 0;
    // Counted by the members; read by the test thread after the runs have stopped.
    struct {
        int load_checkpoint = 0, rollback_batch = 0, reset = 0, park = 0, load_dead_letters = 0,
            retry_dead_letter = 0;
    } calls;
    int overlapping_batches = 0;  // begin_batch with a batch open
    int parked_outside_batch = 0; // park with no batch open: it would commit with nothing

private:
    const log_position poison_;
    std::mutex mutex_;
    bool in_batch_ = false;
    std::map<log_position, int> applied_;
    std::vector<log_position> staged_;
    std::vector<dead_letter> dead_, staged_dead_;
    log_position checkpoint_ = 0;
};

log_position fill(memory_store& store, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) {
        std::vector<event_data> one(1);
        one[0].type = "counted";
        one[0].payload = std::to_string(i);
        store.append("s-" + std::to_string(i % 7), expected_version::any(), std::move(one));
    }
    return store.head_position();
}

} // namespace

TEST_CASE("a class modelling projection_target is driven as the same members in a "
          "function_target are (exactly once across a failed commit, restart, park, retry, "
          "rebuild)") {
    for (const bool as_class : {true, false}) {
        INFO((as_class ? "the class, by std::ref" : "function_target"));
        weft::scheduler sched(2);
        memory_store store;
        log_position head = fill(store, 100);
        constexpr log_position poison = 37;
        ledger model(poison);
        auto add = [&](runner_type& runner) {
            projection_options o;
            o.batch = 16;
            o.max_attempts = 2;
            o.first_backoff = 1ms;
            o.max_backoff = 1ms;
            if (as_class)
                runner.add("ledger", std::ref(model), o);
            else
                runner.add("ledger", model.functions(), o);
        };

        // The first commit fails: rolled back, the projection failed; a start goes on from
        // the last commit, so no event takes effect twice.
        model.commits_to_fail = 1;
        {
            runner_type runner(sched, store);
            add(runner);
            CHECK(model.calls.load_checkpoint == 1);
            CHECK(model.calls.load_dead_letters == 1);
            for (auto give_up = std::chrono::steady_clock::now() + k_patience;
                 runner.status("ledger").state != projection_state::failed &&
                 std::chrono::steady_clock::now() < give_up;)
                std::this_thread::sleep_for(1ms);
            const auto st = runner.status("ledger");
            REQUIRE(st.state == projection_state::failed);
            CHECK(st.error.find("failed: disk full") != std::string::npos);
            CHECK(st.checkpoint == 0);
            CHECK(model.calls.rollback_batch == 1);
            CHECK(model.events_applied(head, 0) == 100); // the failed commit left nothing

            runner.start("ledger");
            REQUIRE(runner.wait_for("ledger", head, k_patience));
            CHECK(runner.dead_letters("ledger").size() == 1);
        } // the runner ends: the model keeps the checkpoint and the dead letter
        CHECK(model.events_applied(head, 1) == static_cast<std::int64_t>(head) - 1); // not 37
        CHECK(model.times_applied(poison) == 0);
        CHECK(model.calls.park == 1);
        CHECK(model.parked_outside_batch == 0);
        CHECK(model.stored_checkpoint() == head);
        const std::vector<dead_letter> stored = model.stored_dead_letters();
        REQUIRE(stored.size() == 1);
        CHECK(stored[0].event.position == poison);
        CHECK(stored[0].attempts == 2);
        CHECK(stored[0].error == "poison at 37");

        // A new runner resumes from the stored checkpoint and knows the stored dead letter.
        runner_type runner(sched, store);
        add(runner);
        CHECK(runner.status("ledger").checkpoint == head);
        REQUIRE(runner.dead_letters("ledger").size() == 1);
        CHECK(runner.dead_letters("ledger")[0].event.position == poison);
        head = fill(store, 50);
        REQUIRE(runner.wait_for("ledger", head, k_patience));
        CHECK(model.events_applied(head, 1) == static_cast<std::int64_t>(head) - 1); // not 37

        // Fixed: the retry goes through retry_dead_letter, which forgets the stored one.
        runner.stop("ledger");
        model.broken = false;
        runner.start("ledger");
        CHECK(runner.retry_dead_letters("ledger") == 1);
        CHECK(model.calls.retry_dead_letter == 1);
        CHECK(runner.dead_letters("ledger").empty());
        CHECK(model.stored_dead_letters().empty());
        CHECK(model.events_applied(head, 1) == static_cast<std::int64_t>(head));

        // Rebuild: reset, then every event once more, exactly once.
        runner.rebuild("ledger");
        REQUIRE(runner.wait_for("ledger", head, k_patience));
        runner.stop("ledger");
        CHECK(model.calls.reset == 1);
        CHECK(model.events_applied(head, 1) == static_cast<std::int64_t>(head));
        CHECK(model.stored_checkpoint() == head);
        CHECK(runner.status("ledger").checkpoint == head);
        CHECK(model.overlapping_batches == 0);
    }
}

TEST_CASE("add() keeps a target it is given by value alive as long as the projection") {
    // A target that is a handle on shared state, as sqlite_read_model::projection is: the
    // runner keeps its own copy, and the state lives until the runner (and its scheduler, on
    // which the projection's last task ends) let go of it.
    struct counter {
        std::shared_ptr<std::int64_t> count;
        void handle(const recorded_event&) { ++*count; }
    };
    memory_store store;
    const log_position head = fill(store, 10);
    auto count = std::make_shared<std::int64_t>(0);
    std::weak_ptr<std::int64_t> watch = count;
    {
        weft::scheduler sched(2);
        runner_type runner(sched, store);
        runner.add("count", counter{std::move(count)});
        REQUIRE(runner.wait_for("count", head, k_patience));
        runner.stop("count");
        const std::shared_ptr<std::int64_t> alive = watch.lock();
        REQUIRE(alive);
        CHECK(*alive == 10);
    }
    CHECK(watch.expired());
}

TEST_CASE("a function_target with only some transaction members is a projection_error") {
    weft::scheduler sched(2);
    memory_store store;
    runner_type runner(sched, store);
    function_target t;
    t.handle = [](const recorded_event&) {};
    t.begin_batch = [] {};
    t.commit_batch = [](log_position) {};
    REQUIRE_THROWS_WITH(runner.add("p", t),
                        "weft::es: projection p has one of begin_batch, commit_batch, "
                        "rollback_batch but not all three");
    t.rollback_batch = [] {};
    runner.add("p", t);
    CHECK(runner.names() == std::vector<std::string>{"p"});
}
