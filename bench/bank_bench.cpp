// bank_bench — a bank of accounts under concurrent deposits and withdrawals: weft actors next to
// locks, a thread per account and CAF actors, same commands, same process.
//
// Families (ratios read between rows of one family):
//   bank/<peer>/accounts:A/commands:N
//       A accounts of balance 1000; N commands from 4 producer threads, each sending one
//       quarter of a list generated once (fixed seed): half deposits, half withdrawals, each of
//       1..500 to an account drawn uniformly. A deposit always succeeds; a withdrawal larger
//       than the balance is refused. The row's time runs from the producers' start until every
//       command has been handled (setup and teardown are not timed); items_per_second is
//       commands per second. N is 1M (--commands=N), except in the rows where every command
//       waits for its reply (weft_ask, caf_ask): those are bound by round-trip latency, not
//       throughput, and run 100k (--ask_commands=N; the first 100k of the same list) so that
//       CI's smoke run stays short. Their rate is per command all the same.
//   idle_actors/<peer>/actors:N
//       spawns N actors holding one int64 each and leaves them idle; bytes_per_actor is the
//       growth of the resident set over the spawn divided by N (method at resident_bytes()).
//       The row's time is the spawn.
// Peers (bank/):
//   weft_tell            an actor per account; producers tell() and never wait, then one ask
//                        per account (all sent before the first is awaited) waits for the end
//   weft_ask             an actor per account; every command is an ask() whose reply the
//                        producer waits for
//   global_mutex         one std::mutex over a vector of balances
//   mutex_per_account    one std::mutex per account (each on its own cache line)
//   thread_per_account   one std::thread per account, fed through a textbook mutex+condvar
//                        queue (bench/peers/mutex_queue.hpp); 1000 accounts only (10k threads
//                        would mostly measure the OS), which the row's name says
//   caf_tell, caf_ask    CAF (the C++ Actor Framework, Debian's libcaf-dev 0.17), an
//                        event-based actor per account: anon_send, or a request from a
//                        scoped_actor per producer whose reply it waits for; only when CMake
//                        found CAF (WEFT_HAVE_CAF)
// weft and CAF each get a pool of all hardware threads (weft::scheduler's default, CAF's
// scheduler.max-threads), created per row so that no pool idles next to another row.
//
// Every row checks the bank: each command handled exactly once, no balance below zero, and the
// sum of balances == initial + deposits - accepted withdrawals. Accepted withdrawals are what
// the accounts tallied themselves; where producers waited for replies, their own tally must
// agree. A row that fails the check is skipped with the error.
//
//   bank_bench --commands=10000000 --ask_commands=1000000 --benchmark_filter=^bank/
//   bank_bench --idle_actors=100000 --benchmark_filter=^idle_actors/
#include "bench_support.hpp"
#include "peers/mutex_queue.hpp"

#include <weft/actor.hpp>
#include <weft/future.hpp>
#include <weft/scheduler.hpp>

#include <benchmark/benchmark.h>

#if WEFT_HAVE_CAF
#include <caf/all.hpp>
#endif

#if defined(__linux__)
#include <unistd.h>
#endif
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;

constexpr std::int64_t k_initial_balance = 1000;
constexpr std::int64_t k_accounts = 10'000;
constexpr std::int64_t k_thread_accounts = 1'000;
constexpr int k_producers = 4;
constexpr std::int32_t k_max_amount = 500;
constexpr std::size_t k_queue_capacity = 1024; // thread_per_account; weft's default mailbox too

std::int64_t g_commands = 1'000'000;    // --commands=N
std::int64_t g_ask_commands = 100'000;  // --ask_commands=N
std::int64_t g_idle_actors = 1'000'000; // --idle_actors=N

// --- the bank -----------------------------------------------------------------------------

// amount > 0: a deposit; amount < 0: a withdrawal of -amount.
struct command {
    std::uint32_t account;
    std::int32_t amount;
};

// One account's state, the same for every contender: its balance and its own tally of what it
// handled, which the final check reads.
struct book {
    std::int64_t balance = k_initial_balance;
    std::int64_t withdrawn = 0; // accepted withdrawals, summed
    std::int64_t handled = 0;   // commands applied or refused
    std::int64_t refused = 0;   // withdrawals refused for insufficient balance

    void deposit(std::int64_t amount) {
        balance += amount;
        ++handled;
    }
    bool withdraw(std::int64_t amount) {
        ++handled;
        if (balance < amount) {
            ++refused;
            return false;
        }
        balance -= amount;
        withdrawn += amount;
        return true;
    }
    // What the command took out of the account: 0 for a deposit or a refusal.
    std::int64_t apply(command c) {
        if (c.amount > 0) {
            deposit(c.amount);
            return 0;
        }
        return withdraw(-std::int64_t{c.amount}) ? -std::int64_t{c.amount} : 0;
    }
};

// The commands for the k_accounts rows; a row with fewer accounts uses account % accounts
// (k_accounts is a multiple of each, so the draw stays uniform).
struct workload {
    std::vector<command> commands;
    std::int64_t deposited = 0;
    std::int64_t withdrawals = 0;
};

// The first n commands of one fixed sequence, made once per n.
const workload& workload_for(std::int64_t n) {
    static std::map<std::int64_t, workload> made;
    auto [it, fresh] = made.try_emplace(n);
    workload& w = it->second;
    if (!fresh)
        return w;
    w.commands.reserve(static_cast<std::size_t>(n));
    std::mt19937_64 rng(20'240'607);
    std::uniform_int_distribution<std::uint32_t> account(0, k_accounts - 1);
    std::uniform_int_distribution<std::int32_t> amount(1, k_max_amount);
    std::bernoulli_distribution is_deposit(0.5);
    for (std::int64_t i = 0; i < n; ++i) {
        command c{account(rng), amount(rng)};
        if (is_deposit(rng)) {
            w.deposited += c.amount;
        } else {
            c.amount = -c.amount;
            ++w.withdrawals;
        }
        w.commands.push_back(c);
    }
    return w;
}

// Empty when the books add up, else what is wrong. `seen`: the withdrawals the producers saw
// accepted, compared only where they waited for replies (`replies`).
std::string audit_books(const workload& w, std::size_t accounts, const std::vector<book>& books,
                        std::int64_t seen, bool replies) {
    std::int64_t balances = 0, withdrawn = 0, handled = 0;
    std::size_t negative = 0;
    for (const book& b : books) {
        balances += b.balance;
        withdrawn += b.withdrawn;
        handled += b.handled;
        negative += b.balance < 0;
    }
    const auto commands = static_cast<std::int64_t>(w.commands.size());
    const std::int64_t want =
        static_cast<std::int64_t>(accounts) * k_initial_balance + w.deposited - withdrawn;
    if (books.size() != accounts)
        return "bank: " + std::to_string(books.size()) + " books for " + std::to_string(accounts) +
               " accounts";
    if (handled != commands)
        return "bank: " + std::to_string(handled) + " commands handled of " +
               std::to_string(commands);
    if (negative != 0)
        return "bank: " + std::to_string(negative) + " accounts below zero";
    if (balances != want)
        return "bank: sum of balances " + std::to_string(balances) +
               " != initial + deposits - accepted withdrawals " + std::to_string(want);
    if (replies && seen != withdrawn)
        return "bank: producers saw " + std::to_string(seen) + " withdrawn, accounts " +
               std::to_string(withdrawn);
    return {};
}

// A contender is a class:
//   Bank bank(accounts);         set up (not timed)
//   auto send = bank.producer(); on each producer thread: a callable taking a command and
//                                returning what it saw withdrawn (0: a deposit, a refusal, or
//                                no reply waited for)
//   bank.finish();               waits until every command is handled; returns the books
//   static constexpr bool k_replies: whether producers see each command's result
// and is destroyed untimed.

// Runs the workload's commands on k_producers threads; returns the sum of what they saw
// withdrawn. Rethrows the first exception a producer threw.
template <class Bank>
std::int64_t run_producers(Bank& bank, const workload& w, std::uint32_t accounts) {
    std::array<std::int64_t, k_producers> seen{};
    std::array<std::exception_ptr, k_producers> errors{};
    std::vector<std::thread> threads;
    const std::size_t n = w.commands.size();
    for (std::size_t p = 0; p < k_producers; ++p)
        threads.emplace_back([&, p] {
            try {
                auto send = bank.producer();
                std::int64_t withdrawn = 0;
                for (std::size_t i = n * p / k_producers; i < n * (p + 1) / k_producers; ++i) {
                    command c = w.commands[i];
                    c.account %= accounts;
                    withdrawn += send(c);
                }
                seen[p] = withdrawn;
            } catch (...) {
                errors[p] = std::current_exception();
            }
        });
    std::int64_t total = 0;
    for (std::size_t p = 0; p < k_producers; ++p) {
        threads[p].join();
        total += seen[p];
    }
    for (const auto& e : errors)
        if (e)
            std::rethrow_exception(e);
    return total;
}

// commands/s as items_per_second, the workload's refusal rate as a sanity counter.
void report_commands(benchmark::State& state, const workload& w, const std::vector<book>& books) {
    const auto commands = static_cast<std::int64_t>(w.commands.size());
    state.SetItemsProcessed(state.iterations() * commands);
    std::int64_t refused = 0;
    for (const book& b : books)
        refused += b.refused;
    if (w.withdrawals > 0)
        state.counters["refused_pct"] =
            100.0 * static_cast<double>(refused) / static_cast<double>(w.withdrawals);
}

template <class Bank>
void bm_bank(benchmark::State& state) {
    const auto accounts = static_cast<std::uint32_t>(state.range(0));
    const workload& w = workload_for(state.range(1));
    std::vector<book> books;
    for (auto _ : state) {
        state.PauseTiming();
        std::unique_ptr<Bank> bank;
        std::string error;
        try {
            bank = std::make_unique<Bank>(accounts);
        } catch (const std::exception& e) {
            error = std::string("setup failed: ") + e.what();
        }
        state.ResumeTiming();
        if (!error.empty()) {
            state.SkipWithError(error.c_str());
            return;
        }
        try {
            const std::int64_t seen = run_producers(*bank, w, accounts);
            books = bank->finish();
            error = audit_books(w, accounts, books, seen, Bank::k_replies);
        } catch (const std::exception& e) {
            error = e.what();
        }
        state.PauseTiming();
        bank.reset();
        state.ResumeTiming();
        if (!error.empty()) {
            state.SkipWithError(error.c_str());
            return;
        }
    }
    report_commands(state, w, books);
}

// --- weft ---------------------------------------------------------------------------------

struct deposit {
    std::int64_t amount;
};
struct withdraw {
    std::int64_t amount;
};
struct audit {};

struct account {
    book b;

    void handle(deposit d) { b.deposit(d.amount); }
    bool handle(withdraw w) { return b.withdraw(w.amount); }
    book handle(audit) { return b; }
};

// The scheduler first: the actors refer to it and go before it.
struct weft_bank_base {
    explicit weft_bank_base(std::uint32_t accounts) {
        refs.reserve(accounts);
        for (std::uint32_t i = 0; i < accounts; ++i)
            refs.push_back(weft::spawn_actor<account>(sched));
    }

    // One ask per account, all sent before the first is awaited: each lands behind every
    // command already in its mailbox, so its reply means that account is done.
    std::vector<book> finish() {
        std::vector<weft::future<book>> audits;
        audits.reserve(refs.size());
        for (const auto& a : refs)
            audits.push_back(a.ask(audit{}));
        std::vector<book> books;
        books.reserve(refs.size());
        for (auto& f : audits)
            books.push_back(f.get());
        return books;
    }

    weft::scheduler sched{weft::scheduler::default_worker_count()};
    std::vector<weft::actor_ref<account>> refs;
};

struct weft_tell_bank : weft_bank_base {
    static constexpr bool k_replies = false;
    using weft_bank_base::weft_bank_base;

    auto producer() {
        return [this](command c) -> std::int64_t {
            if (c.amount > 0)
                refs[c.account].tell(deposit{c.amount});
            else
                refs[c.account].tell(withdraw{-std::int64_t{c.amount}});
            return 0;
        };
    }
};

struct weft_ask_bank : weft_bank_base {
    static constexpr bool k_replies = true;
    using weft_bank_base::weft_bank_base;

    auto producer() {
        return [this](command c) -> std::int64_t {
            if (c.amount > 0) {
                refs[c.account].ask(deposit{c.amount}).get();
                return 0;
            }
            const std::int64_t amount = -std::int64_t{c.amount};
            return refs[c.account].ask(withdraw{amount}).get() ? amount : 0;
        };
    }
};

// --- locks and threads --------------------------------------------------------------------

struct global_mutex_bank {
    static constexpr bool k_replies = true;
    explicit global_mutex_bank(std::uint32_t accounts) : books(accounts) {}

    auto producer() {
        return [this](command c) {
            std::lock_guard lock(mutex);
            return books[c.account].apply(c);
        };
    }
    std::vector<book> finish() {
        std::lock_guard lock(mutex);
        return books;
    }

    std::mutex mutex;
    std::vector<book> books;
};

struct mutex_per_account_bank {
    static constexpr bool k_replies = true;
    // Its own cache line, as an actor's state is its own allocation.
    struct alignas(64) locked_book {
        std::mutex mutex;
        book b;
    };

    explicit mutex_per_account_bank(std::uint32_t accounts)
        : accounts(std::make_unique<locked_book[]>(accounts)), size(accounts) {}

    auto producer() {
        return [this](command c) {
            locked_book& a = accounts[c.account];
            std::lock_guard lock(a.mutex);
            return a.b.apply(c);
        };
    }
    std::vector<book> finish() {
        std::vector<book> books;
        books.reserve(size);
        for (std::size_t i = 0; i < size; ++i) {
            std::lock_guard lock(accounts[i].mutex);
            books.push_back(accounts[i].b);
        }
        return books;
    }

    std::unique_ptr<locked_book[]> accounts;
    std::size_t size;
};

// Each account a thread that applies the commands from its queue; producers never wait for a
// result. finish() closes the queues and joins: the threads exit once theirs is drained.
struct thread_per_account_bank {
    static constexpr bool k_replies = false;
    struct alignas(64) padded_book {
        book b;
    };

    explicit thread_per_account_bank(std::uint32_t accounts) : books(accounts) {
        queues.reserve(accounts);
        for (std::uint32_t i = 0; i < accounts; ++i)
            queues.push_back(std::make_unique<weft_bench::mutex_queue<command>>(k_queue_capacity));
        threads.reserve(accounts);
        try {
            for (std::uint32_t i = 0; i < accounts; ++i)
                threads.emplace_back([this, i] {
                    while (auto c = queues[i]->recv())
                        (void)books[i].b.apply(*c);
                });
        } catch (...) {
            stop(); // no destructor runs for a half-built bank: join what was started
            throw;
        }
    }
    ~thread_per_account_bank() { stop(); }

    auto producer() {
        return [this](command c) -> std::int64_t {
            if (!queues[c.account]->send(command(c)))
                throw std::logic_error("thread_per_account: send on a closed queue");
            return 0;
        };
    }
    std::vector<book> finish() {
        stop();
        std::vector<book> out;
        out.reserve(books.size());
        for (const auto& p : books)
            out.push_back(p.b);
        return out;
    }

    void stop() {
        if (threads.empty())
            return;
        for (auto& q : queues)
            q->close();
        for (auto& t : threads)
            t.join();
        threads.clear();
    }

    std::vector<padded_book> books;
    std::vector<std::unique_ptr<weft_bench::mutex_queue<command>>> queues;
    std::vector<std::thread> threads;
};

// --- CAF ----------------------------------------------------------------------------------

#if WEFT_HAVE_CAF
// CAF 0.17 messages: an atom naming the command, then its amount.
using deposit_atom = caf::atom_constant<caf::atom("deposit")>;
using withdraw_atom = caf::atom_constant<caf::atom("withdraw")>;
using audit_atom = caf::atom_constant<caf::atom("audit")>;

class caf_account : public caf::event_based_actor {
public:
    explicit caf_account(caf::actor_config& config) : caf::event_based_actor(config) {}

    caf::behavior make_behavior() override {
        return {
            [this](deposit_atom, std::int64_t amount) { b_.deposit(amount); },
            [this](withdraw_atom, std::int64_t amount) { return b_.withdraw(amount); },
            [this](audit_atom) {
                return caf::make_message(b_.balance, b_.withdrawn, b_.handled, b_.refused);
            },
        };
    }

private:
    book b_;
};

std::runtime_error caf_failure(const caf::error& e) {
    return std::runtime_error("caf: request failed: " + caf::to_string(e));
}

// The config must outlive the system, the system the actors.
struct caf_bank_base {
    explicit caf_bank_base(std::uint32_t accounts) : config(make_config()), system(config) {
        refs.reserve(accounts);
        for (std::uint32_t i = 0; i < accounts; ++i)
            refs.push_back(system.spawn<caf_account>());
    }
    // Handles dropped, the accounts are unreachable and quit; ~actor_system waits for them.
    ~caf_bank_base() { refs.clear(); }

    static caf::actor_system_config make_config() {
        caf::actor_system_config c;
        c.set("scheduler.max-threads", weft::scheduler::default_worker_count());
        return c;
    }

    // One audit per account, all sent before the first reply is read: each lands behind every
    // command already in its mailbox. The reply to a plain send comes back as a message.
    std::vector<book> finish() {
        caf::scoped_actor self(system);
        for (const auto& a : refs)
            self->send(a, audit_atom::value);
        std::vector<book> books;
        books.reserve(refs.size());
        std::size_t i = 0;
        self->receive_for(i, refs.size())([&](std::int64_t balance, std::int64_t withdrawn,
                                              std::int64_t handled, std::int64_t refused) {
            books.push_back(book{balance, withdrawn, handled, refused});
        });
        return books;
    }

    caf::actor_system_config config;
    caf::actor_system system;
    std::vector<caf::actor> refs;
};

struct caf_tell_bank : caf_bank_base {
    static constexpr bool k_replies = false;
    using caf_bank_base::caf_bank_base;

    auto producer() {
        return [this](command c) -> std::int64_t {
            if (c.amount > 0)
                caf::anon_send(refs[c.account], deposit_atom::value, std::int64_t{c.amount});
            else
                caf::anon_send(refs[c.account], withdraw_atom::value, -std::int64_t{c.amount});
            return 0;
        };
    }
};

struct caf_ask_bank : caf_bank_base {
    static constexpr bool k_replies = true;
    using caf_bank_base::caf_bank_base;

    // A scoped_actor per producer thread: the blocking actor that sends requests and waits.
    struct asker {
        std::int64_t operator()(command c) {
            const caf::actor& to = bank.refs[c.account];
            if (c.amount > 0) {
                self->request(to, caf::infinite, deposit_atom::value, std::int64_t{c.amount})
                    .receive([] {}, [](caf::error& e) { throw caf_failure(e); });
                return 0;
            }
            const std::int64_t amount = -std::int64_t{c.amount};
            bool accepted = false;
            self->request(to, caf::infinite, withdraw_atom::value, amount)
                .receive([&](bool ok) { accepted = ok; },
                         [](caf::error& e) { throw caf_failure(e); });
            return accepted ? amount : 0;
        }

        caf_ask_bank& bank;
        caf::scoped_actor self{bank.system};
    };

    asker producer() { return asker{*this}; }
};
#endif

// --- idle actors --------------------------------------------------------------------------

// The resident set in bytes: the second field of /proc/self/statm (resident pages) times the
// page size; -1 where there is no /proc. Before the first reading, a row allocates and fills
// the vector that will hold the actors' handles (so it is not counted) and, on glibc, returns
// free heap pages to the OS with malloc_trim(0) (so that earlier rows' freed memory, reused,
// does not hide the growth). What the growth includes: each actor's allocation(s) and the
// allocator's overhead for them; what it cannot separate: pages the allocator or the
// framework touched for other reasons meanwhile (small next to N actors).
std::int64_t resident_bytes() {
#if defined(__linux__)
    std::ifstream statm("/proc/self/statm");
    std::int64_t size = 0, resident = -1;
    if (!(statm >> size >> resident))
        return -1;
    return resident * static_cast<std::int64_t>(sysconf(_SC_PAGESIZE));
#else
    return -1;
#endif
}

void trim_heap() {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

void report_idle(benchmark::State& state, std::int64_t actors, std::int64_t before,
                 std::int64_t after) {
    state.SetItemsProcessed(state.iterations() * actors);
    if (before < 0 || after < 0) {
        state.SkipWithError("no /proc/self/statm: cannot measure the resident set");
        return;
    }
    state.counters["bytes_per_actor"] =
        static_cast<double>(after - before) / static_cast<double>(actors);
    state.counters["rss_growth_MB"] = static_cast<double>(after - before) / (1024.0 * 1024.0);
}

struct idle_account {
    std::int64_t balance = k_initial_balance;
    void handle(deposit d) { balance += d.amount; }
};

// weft actors are idle from the start: spawn_actor schedules nothing until a message comes.
void bm_idle_weft(benchmark::State& state) {
    const std::int64_t actors = state.range(0);
    weft::scheduler sched(weft::scheduler::default_worker_count());
    std::int64_t before = -1, after = -1;
    for (auto _ : state) {
        state.PauseTiming();
        std::vector<weft::actor_ref<idle_account>> refs(static_cast<std::size_t>(actors));
        trim_heap();
        before = resident_bytes();
        state.ResumeTiming();
        for (auto& r : refs)
            r = weft::spawn_actor<idle_account>(sched);
        state.PauseTiming();
        after = resident_bytes();
        refs.clear();
        refs.shrink_to_fit();
        state.ResumeTiming();
    }
    report_idle(state, actors, before, after);
}

#if WEFT_HAVE_CAF
// A CAF actor runs make_behavior on a scheduler thread after spawn; the row waits until every
// one has (each counts itself in `started`), so it measures actors that are set up and idle.
class caf_idle_account : public caf::event_based_actor {
public:
    caf_idle_account(caf::actor_config& config, std::atomic<std::int64_t>* started)
        : caf::event_based_actor(config), started_(started) {}

    caf::behavior make_behavior() override {
        // relaxed: only counted; the spawning thread polls the total.
        started_->fetch_add(1, std::memory_order_relaxed);
        return {
            [this](deposit_atom, std::int64_t amount) { balance_ += amount; },
        };
    }

private:
    std::atomic<std::int64_t>* started_;
    std::int64_t balance_ = k_initial_balance;
};

void bm_idle_caf(benchmark::State& state) {
    const std::int64_t actors = state.range(0);
    std::int64_t before = -1, after = -1;
    for (auto _ : state) {
        state.PauseTiming();
        std::atomic<std::int64_t> started{0};
        auto config = caf_bank_base::make_config();
        auto system = std::make_unique<caf::actor_system>(config);
        std::vector<caf::actor> refs(static_cast<std::size_t>(actors));
        trim_heap();
        before = resident_bytes();
        state.ResumeTiming();
        for (auto& r : refs)
            r = system->spawn<caf_idle_account>(&started);
        // relaxed: a count, see make_behavior.
        while (started.load(std::memory_order_relaxed) < actors)
            std::this_thread::sleep_for(1ms);
        state.PauseTiming();
        after = resident_bytes();
        refs.clear();
        system.reset(); // waits for every actor to quit
        state.ResumeTiming();
    }
    report_idle(state, actors, before, after);
}
#endif

// --- registration -------------------------------------------------------------------------

// Every row runs once: each is a whole workload (seconds at the defaults), on threads it starts.
template <class Fn>
benchmark::internal::Benchmark* add(const char* name, Fn fn) {
    return benchmark::RegisterBenchmark(name, fn)->Iterations(1)->UseRealTime()->Unit(
        benchmark::kMillisecond);
}

template <class Bank>
void add_bank(const char* name, std::int64_t accounts, std::int64_t commands) {
    add(name, bm_bank<Bank>)->ArgNames({"accounts", "commands"})->Args({accounts, commands});
}

// Grouped by family, weft's rows first.
void register_benchmarks() {
    add_bank<weft_tell_bank>("bank/weft_tell", k_accounts, g_commands);
    add_bank<weft_ask_bank>("bank/weft_ask", k_accounts, g_ask_commands);
    add_bank<global_mutex_bank>("bank/global_mutex", k_accounts, g_commands);
    add_bank<mutex_per_account_bank>("bank/mutex_per_account", k_accounts, g_commands);
    add_bank<thread_per_account_bank>("bank/thread_per_account", k_thread_accounts, g_commands);
#if WEFT_HAVE_CAF
    add_bank<caf_tell_bank>("bank/caf_tell", k_accounts, g_commands);
    add_bank<caf_ask_bank>("bank/caf_ask", k_accounts, g_ask_commands);
#endif

    add("idle_actors/weft", bm_idle_weft)->ArgName("actors")->Arg(g_idle_actors);
#if WEFT_HAVE_CAF
    add("idle_actors/caf", bm_idle_caf)->ArgName("actors")->Arg(g_idle_actors);
#endif
}

} // namespace

int main(int argc, char** argv) {
    constexpr std::int64_t most = std::numeric_limits<std::int32_t>::max();
    if (!weft_bench::take_int_flags("bank_bench", argc, argv,
                                    {{"--commands=", &g_commands, 1, most},
                                     {"--ask_commands=", &g_ask_commands, 1, most},
                                     {"--idle_actors=", &g_idle_actors, 1, most}}))
        return 1;
    return weft_bench::run_benchmarks(argc, argv, register_benchmarks);
}
