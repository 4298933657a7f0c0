// The crash test's victim: opens the store in argv[1] and appends single events from argv[2]
// threads until it is killed. After each append() returns it writes one line to stdout,
//   <position> <event_id> <stream> <version>\n
// with one write(2) of under PIPE_BUF bytes, so a line on the pipe is whole or absent. Every
// line it wrote is an acknowledged append that must survive the kill.
#include <weft/es/sqlite_store.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <thread>
#include <vector>

namespace {

void write_line(const std::string& line) {
    std::size_t done = 0;
    while (done < line.size()) {
        const ssize_t n = ::write(STDOUT_FILENO, line.data() + done, line.size() - done);
        if (n <= 0)
            std::_Exit(3); // the test went away
        done += static_cast<std::size_t>(n);
    }
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s <store file> <threads>\n", argv[0]);
        return 2;
    }
    try {
        weft::es::sqlite_store store(argv[1]);
        const int threads = std::atoi(argv[2]);
        std::vector<std::thread> appenders;
        for (int t = 0; t < threads; ++t) {
            appenders.emplace_back([&store, t] {
                for (unsigned long i = 0;; ++i) {
                    const std::string stream =
                        "crash-" + std::to_string(t) + "-" + std::to_string(i % 3);
                    weft::es::event_data e;
                    e.type = "ticked";
                    e.event_id = weft::es::new_event_id();
                    // The payload names its event: a torn write would not match.
                    e.payload = "payload-of-" + e.event_id + std::string(100 + i % 200, 'x');
                    const weft::es::append_result r =
                        store.append(stream, weft::es::expected_version::any(), {e});
                    write_line(std::to_string(r.first_position) + ' ' + e.event_id + ' ' + stream +
                               ' ' + std::to_string(r.version) + '\n');
                }
            });
        }
        for (auto& a : appenders)
            a.join();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "es_sqlite_crash_child: %s\n", e.what());
        return 1;
    }
}
