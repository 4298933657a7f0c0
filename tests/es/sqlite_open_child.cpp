// The file tests' child process (sqlite_store_files_test spawns it by the path given in
// WEFT_SQLITE_OPEN_CHILD). Two modes:
//   create-loop <file> store|model   creates the store (or read model) in <file>, closes it,
//                                    deletes the file, again and again until it is killed;
//                                    writes "created\n" after the first creation
//   append-one <file> <stream>       waits for EOF on stdin (the test's start gate), opens the
//                                    store in <file>, appends one event to <stream> with
//                                    expected_version::no_stream, writes "ok <position>\n"
// Exits 1 with the error on stderr when the library throws.
#include <weft/es/sqlite_read_model.hpp>
#include <weft/es/sqlite_store.hpp>

#include <unistd.h>

#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>
#include <system_error>

namespace {

void write_text(const std::string& text) {
    // One write of under PIPE_BUF bytes: the line arrives whole or not at all.
    if (::write(STDOUT_FILENO, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
        std::_Exit(3); // the test went away
}

// Deletes what a closed store leaves (the file; a clean close removes -wal and -shm), the
// file last: a kill between two removals must not leave a -wal beside a new file.
void remove_store(const std::string& path) {
    std::error_code ec;
    for (const char* suffix : {"-journal", "-wal", "-shm", ""})
        std::filesystem::remove(path + suffix, ec);
}

int create_loop(const std::string& path, const std::string& what) {
    for (unsigned long i = 0;; ++i) {
        if (what == "model")
            weft::es::sqlite_read_model model(path);
        else
            weft::es::sqlite_store store(path);
        if (i == 0)
            write_text("created\n");
        remove_store(path);
    }
}

int append_one(const std::string& path, const std::string& stream) {
    char c = 0;
    while (::read(STDIN_FILENO, &c, 1) > 0) {
    }
    weft::es::sqlite_store store(path);
    weft::es::event_data e;
    e.type = "arrived";
    e.payload = "from " + stream;
    const auto r = store.append(stream, weft::es::expected_version::no_stream(), {e});
    if (r.status != weft::es::append_status::ok) {
        std::fprintf(stderr, "es_sqlite_open_child: append to %s was refused\n", stream.c_str());
        return 1;
    }
    write_text("ok " + std::to_string(r.first_position) + "\n");
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr,
                     "usage: %s create-loop <file> store|model | append-one <file> <stream>\n",
                     argv[0]);
        return 2;
    }
    try {
        const std::string mode = argv[1];
        if (mode == "create-loop")
            return create_loop(argv[2], argv[3]);
        if (mode == "append-one")
            return append_one(argv[2], argv[3]);
        std::fprintf(stderr, "es_sqlite_open_child: unknown mode %s\n", argv[1]);
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "es_sqlite_open_child: %s\n", e.what());
        return 1;
    }
}
