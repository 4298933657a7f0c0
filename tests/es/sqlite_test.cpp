// weft::es::detail's SQLite toolkit (es/detail/sqlite.hpp) on its own: the statement cache and
// its limits, the reader pool's bound, the read-only probe. sqlite_store and sqlite_read_model
// are checked through it by their own tests.
#include "catch_compat.hpp"
#include "sqlite_test_support.hpp"

#include <weft/es/detail/sqlite.hpp>

#include <cstdint>
#include <filesystem>
#include <string>

namespace detail = weft::es::detail;
using weft_test::temp_db_file;

namespace {

// A file with table t(x) holding 1, 2, 3.
void make_table(const std::string& path) {
    detail::sqlite_connection db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    db.exec("CREATE TABLE t(x INTEGER)");
    db.exec("INSERT INTO t VALUES (1), (2), (3)");
}

std::int64_t sum_of(detail::sqlite_connection& db, const std::string& sql) {
    detail::sqlite_statement q(db, sql);
    std::int64_t sum = 0;
    while (q.step())
        sum += q.int64(0);
    return sum;
}

} // namespace

TEST_CASE("sqlite_statement: the same SQL used inside a use of itself gets a statement of its "
          "own") {
    temp_db_file file;
    make_table(file.path);
    detail::sqlite_connection db(file.path, SQLITE_OPEN_READWRITE);
    const std::string sql = "SELECT x FROM t ORDER BY x";
    std::int64_t total = 0;
    detail::sqlite_statement outer(db, sql);
    while (outer.step())
        total += outer.int64(0) * sum_of(db, sql); // the cached one is busy: a private one
    CHECK(total == 36);
    CHECK(sum_of(db, sql) == 6); // and the cached one again, reset after its use
}

TEST_CASE("sqlite_statement: past the cache's bound, statements are prepared per use and still "
          "work") {
    temp_db_file file;
    make_table(file.path);
    detail::sqlite_connection db(file.path, SQLITE_OPEN_READWRITE);
    std::int64_t total = 0;
    for (int round = 0; round < 2; ++round)
        for (int i = 0; i < 300; ++i)
            total += sum_of(db, "SELECT x + " + std::to_string(i) + " FROM t");
    CHECK(total == 2 * (300 * 6 + 3 * (299 * 300 / 2)));
}

TEST_CASE("sqlite_statement: errors name the step for weft's SQL, the statement for a user's") {
    temp_db_file file;
    make_table(file.path);
    detail::sqlite_connection db(file.path, SQLITE_OPEN_READWRITE);
    CHECK_THROWS_WITH(detail::sqlite_statement(db, "SELECT * FROM nope"),
                      "weft::es: " + file.path + ": prepare failed (no such table: nope)");
    CHECK_THROWS_WITH(
        detail::sqlite_statement(db, "SELECT * FROM nope", detail::sqlite_errors::quote_sql),
        "weft::es: " + file.path + ": \"SELECT * FROM nope\" failed (no such table: nope)");
    CHECK_THROWS_AS(detail::sqlite_statement(db, "SELECT 1; SELECT 2"), std::invalid_argument);
}

TEST_CASE("sqlite_reader_pool: opens connections on demand up to its bound and reuses them") {
    temp_db_file file;
    make_table(file.path);
    detail::sqlite_reader_pool pool(file.path, 2, std::chrono::milliseconds(1000));
    sqlite3* first = nullptr;
    {
        auto a = pool.borrow();
        auto b = pool.borrow();
        CHECK(a.db().handle() != b.db().handle());
        first = a.db().handle();
        CHECK(sum_of(a.db(), "SELECT x FROM t") == 6);
        // query_only: a reader cannot write.
        CHECK_THROWS_AS(a.db().exec("INSERT INTO t VALUES (4)"), weft::es::store_error);
    }
    auto again = pool.borrow();
    auto other = pool.borrow();
    CHECK((again.db().handle() == first || other.db().handle() == first));
}

TEST_CASE("sqlite_probe_file: a missing file is left alone, an existing one is read read-only") {
    temp_db_file file;
    bool called = false;
    detail::sqlite_probe_file(file.path, std::chrono::milliseconds(1000),
                              [&](detail::sqlite_connection&) { called = true; });
    CHECK_FALSE(called);
    CHECK_FALSE(std::filesystem::exists(file.path));

    make_table(file.path);
    detail::sqlite_probe_file(
        file.path, std::chrono::milliseconds(1000), [&](detail::sqlite_connection& db) {
            called = true;
            CHECK(sum_of(db, "SELECT x FROM t") == 6);
            CHECK_THROWS_AS(db.exec("INSERT INTO t VALUES (4)"), weft::es::store_error);
        });
    CHECK(called);
}
