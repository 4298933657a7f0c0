// weft::es events (event.hpp): new_event_id makes RFC 9562 version-7 UUIDs, ordered by time,
// unique across threads and across a fork().
#include "catch_compat.hpp"

#include <weft/es/event.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <set>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

namespace {

bool is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

// The 74 random bits of a v7 id as text: everything after the 48-bit time and the version
// digit, without the hyphens.
std::string random_part(const std::string& id) {
    std::string out;
    for (std::size_t i = 15; i < id.size(); ++i)
        if (id[i] != '-')
            out.push_back(id[i]);
    return out;
}

} // namespace

TEST_CASE("new_event_id is a version 7 UUID in its text form") {
    for (int i = 0; i < 1000; ++i) {
        const std::string id = weft::es::new_event_id();
        REQUIRE(id.size() == 36);
        for (std::size_t at = 0; at < id.size(); ++at) {
            if (at == 8 || at == 13 || at == 18 || at == 23)
                REQUIRE(id[at] == '-');
            else
                REQUIRE(is_hex(id[at]));
        }
        REQUIRE(id[14] == '7');                                                      // version
        REQUIRE((id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b')); // variant
    }
}

TEST_CASE("new_event_id starts with the Unix time in milliseconds, so ids sort by time") {
    const auto before = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    const std::string first = weft::es::new_event_id();
    const std::string hex = first.substr(0, 8) + first.substr(9, 4);
    const long long ms = std::stoll(hex, nullptr, 16);
    CHECK(ms >= before);
    CHECK(ms <= before + 1000);
    // Made in different milliseconds, they compare in the order they were made.
    const auto deadline = std::chrono::system_clock::now() + std::chrono::milliseconds(2);
    while (std::chrono::system_clock::now() < deadline) {
    }
    const std::string later = weft::es::new_event_id();
    CHECK(first < later);
}

TEST_CASE("new_event_id never repeats across threads") {
    constexpr int threads = 4;
    constexpr int per_thread = 25'000;
    std::vector<std::vector<std::string>> made(threads);
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t)
        workers.emplace_back([&made, t] {
            made[static_cast<std::size_t>(t)].reserve(per_thread);
            for (int i = 0; i < per_thread; ++i)
                made[static_cast<std::size_t>(t)].push_back(weft::es::new_event_id());
        });
    for (auto& w : workers)
        w.join();
    std::unordered_set<std::string> all;
    for (const auto& ids : made)
        all.insert(ids.begin(), ids.end());
    CHECK(all.size() == static_cast<std::size_t>(threads) * per_thread);
}

TEST_CASE("a forked child does not make its parent's next ids") {
    (void)weft::es::new_event_id(); // this thread's generator is seeded before the fork
    int pipe_ends[2];
    REQUIRE(::pipe(pipe_ends) == 0);
    constexpr int count = 16;
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::close(pipe_ends[0]);
        std::string text;
        for (int i = 0; i < count; ++i)
            text += random_part(weft::es::new_event_id()) + "\n";
        const ssize_t written = ::write(pipe_ends[1], text.data(), text.size());
        ::_exit(written == static_cast<ssize_t>(text.size()) ? 0 : 1);
    }
    ::close(pipe_ends[1]);
    std::set<std::string> parent;
    for (int i = 0; i < count; ++i)
        parent.insert(random_part(weft::es::new_event_id()));
    std::string text;
    char buffer[4096];
    for (ssize_t n; (n = ::read(pipe_ends[0], buffer, sizeof buffer)) > 0;)
        text.append(buffer, static_cast<std::size_t>(n));
    ::close(pipe_ends[0]);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    std::size_t shared = 0;
    std::size_t lines = 0;
    for (std::size_t at = 0; at < text.size();) {
        const std::size_t end = text.find('\n', at);
        REQUIRE(end != std::string::npos);
        shared += parent.count(text.substr(at, end - at));
        ++lines;
        at = end + 1;
    }
    CHECK(lines == count);
    CHECK(shared == 0);
}
