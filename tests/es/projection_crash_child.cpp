// The projection crash test's victim (sqlite_read_model_test): projects the sqlite_store in
// argv[1] into a sqlite_read_model in argv[2], batches of argv[3] events, until it has handled
// the store's head or is killed. Per stream it counts events and sums their amounts (the
// payload is a decimal number) with an upsert that is not idempotent, so an event applied twice
// shows. Writes "ready\n" once the projection runs and "done\n" when it has caught up, each
// with one write(2).
#include <weft/es/sqlite_read_model.hpp>
#include <weft/es/sqlite_store.hpp>
#include <weft/scheduler.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

namespace {

void write_line(const std::string& line) {
    if (::write(STDOUT_FILENO, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
        std::_Exit(3); // the test went away
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s <store file> <read model file> <batch>\n", argv[0]);
        return 2;
    }
    try {
        weft::scheduler sched(2);
        weft::es::sqlite_store store(argv[1]);
        weft::es::sqlite_read_model model(argv[2]);
        model.write([](weft::es::sql_connection& db) {
            db.exec("CREATE TABLE IF NOT EXISTS per_stream(stream TEXT PRIMARY KEY, "
                    "events INTEGER NOT NULL, total INTEGER NOT NULL)");
        });
        weft::es::projection_runner<weft::es::sqlite_store> runner(sched, store);
        weft::es::projection_options options;
        options.batch = static_cast<std::size_t>(std::atoi(argv[3]));
        runner.add(
            "per_stream",
            model.target("per_stream",
                         [](weft::es::sql_connection& db, const weft::es::recorded_event& e) {
                             db.exec("INSERT INTO per_stream(stream, events, total) "
                                     "VALUES (?1, 1, ?2) ON CONFLICT(stream) DO UPDATE "
                                     "SET events = events + 1, total = total + ?2",
                                     e.stream, std::stoll(e.payload));
                         }),
            options);
        write_line("ready\n");
        if (!runner.wait_for("per_stream", store.head_position())) {
            std::fprintf(stderr, "es_projection_crash_child: %s\n",
                         runner.status("per_stream").error.c_str());
            return 1;
        }
        write_line("done\n");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "es_projection_crash_child: %s\n", e.what());
        return 1;
    }
}
