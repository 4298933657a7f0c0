// Consumer of weft's sqlite component: appends to a SQLite event store from a task and reads
// the stream back. Prints "weft <version> + SQLite <version>: ok" and exits 0 when both events
// come back in order; prints what went wrong and exits 1 otherwise.
#include <weft/es/sqlite_store.hpp>
#include <weft/task.hpp>
#include <weft/version.hpp>

#include <sqlite3.h>

#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace {

weft::task<weft::es::append_result> open_account(weft::es::sqlite_store& store) {
    std::vector<weft::es::event_data> events{
        {.type = "opened", .payload = R"({"owner":"ada"})"},
        {.type = "deposited", .payload = R"({"cents":5000})"},
    };
    co_return co_await store.async_append("account-1", weft::es::expected_version::no_stream(),
                                          std::move(events));
}

} // namespace

int main() {
    namespace fs = std::filesystem;
    const fs::path dir = fs::temp_directory_path() /
                         ("weft_consumer_sqlite_" + std::to_string(std::random_device{}()));
    fs::remove_all(dir);
    fs::create_directories(dir);

    bool ok = false;
    {
        weft::es::sqlite_store store((dir / "events.db").string(),
                                     {.durability = weft::es::durability::off});
        const weft::es::append_result appended = weft::sync_wait(open_account(store));
        const std::vector<weft::es::recorded_event> read =
            store.read_stream("account-1", 1, weft::es::read_direction::forward, 10);
        ok = appended && appended.version == 2 && read.size() == 2 && read[0].type == "opened" &&
             read[1].type == "deposited" && read[1].version == 2 && read[1].position == 2;
        if (!ok)
            std::printf("FAILED: append status %d version %llu, read %zu events\n",
                        static_cast<int>(appended.status),
                        static_cast<unsigned long long>(appended.version), read.size());
    }
    fs::remove_all(dir);
    if (!ok)
        return 1;
    std::printf("weft %s + SQLite %s: ok, 2 events appended from a task and read back\n",
                WEFT_VERSION_STRING, sqlite3_libversion());
    return 0;
}
