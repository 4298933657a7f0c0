// The victim of the dead-letter kill -9 test (sqlite_read_model_dead_letter_test): projects the
// sqlite_store in argv[1] into the balances table of a sqlite_read_model in argv[2], with a
// handler that always throws on the event at position argv[3] (one try: it is parked at once).
// Writes "parked\n" once the projection has caught up with one dead letter, then waits, with
// everything open, until stdin ends or it is killed.
#include <weft/es/sqlite_read_model.hpp>
#include <weft/es/sqlite_store.hpp>
#include <weft/scheduler.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s <store file> <read model file> <poison position>\n",
                     argv[0]);
        return 2;
    }
    try {
        const auto poison = static_cast<weft::es::log_position>(std::atoll(argv[3]));
        weft::scheduler sched(2);
        weft::es::sqlite_store store(argv[1]);
        weft::es::sqlite_read_model model(argv[2]);
        model.write([](weft::es::sql_connection& db) {
            db.exec("CREATE TABLE IF NOT EXISTS balances(account TEXT PRIMARY KEY, "
                    "cents INTEGER NOT NULL, events INTEGER NOT NULL)");
        });
        weft::es::projection_runner<weft::es::sqlite_store> runner(sched, store);
        weft::es::projection_options options;
        options.batch = 4;
        options.max_attempts = 1;
        runner.add(
            "balances",
            model.target("balances",
                         [poison](weft::es::sql_connection& db, const weft::es::recorded_event& e) {
                             db.exec("INSERT INTO balances(account, cents, events) "
                                     "VALUES (?1, ?2, 1) ON CONFLICT(account) DO UPDATE "
                                     "SET cents = cents + excluded.cents, "
                                     "events = events + 1",
                                     e.stream, std::stoll(e.payload));
                             if (e.position == poison)
                                 throw std::runtime_error("poison");
                         }),
            options);
        if (!runner.wait_for("balances", store.head_position()) ||
            runner.dead_letters("balances").size() != 1) {
            std::fprintf(stderr, "es_dead_letter_child: %s\n",
                         runner.status("balances").error.c_str());
            return 1;
        }
        const std::string line = "parked\n";
        if (::write(STDOUT_FILENO, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
            return 3;
        char c = 0;
        while (::read(STDIN_FILENO, &c, 1) > 0) {
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "es_dead_letter_child: %s\n", e.what());
        return 1;
    }
}
