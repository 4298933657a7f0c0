# weft::es::sqlite_store tests; tests/CMakeLists.txt includes this file when weft::sqlite exists.
#
# es_sqlite_crash_child appends until it is killed; the crash test in es_sqlite_store_test
# spawns it by the path given in WEFT_SQLITE_CRASH_CHILD.
add_executable(es_sqlite_crash_child es_sqlite_crash_child.cpp)
target_link_libraries(es_sqlite_crash_child PRIVATE weft::sqlite)
weft_add_warnings(es_sqlite_crash_child)

weft_add_test(es_sqlite_store_test es_sqlite_store_test.cpp)
target_link_libraries(es_sqlite_store_test PRIVATE weft::sqlite)
target_compile_definitions(es_sqlite_store_test PRIVATE
    WEFT_SQLITE_CRASH_CHILD="$<TARGET_FILE:es_sqlite_crash_child>")
add_dependencies(es_sqlite_store_test es_sqlite_crash_child)

# weft::es::sqlite_read_model tests. es_projection_crash_child projects a store into a read
# model until it is killed; the crash test in es_sqlite_read_model_test spawns it by the path
# given in WEFT_PROJECTION_CRASH_CHILD.
add_executable(es_projection_crash_child es_projection_crash_child.cpp)
target_link_libraries(es_projection_crash_child PRIVATE weft::sqlite)
weft_add_warnings(es_projection_crash_child)

weft_add_test(es_sqlite_read_model_test es_sqlite_read_model_test.cpp)
target_link_libraries(es_sqlite_read_model_test PRIVATE weft::sqlite)
target_compile_definitions(es_sqlite_read_model_test PRIVATE
    WEFT_PROJECTION_CRASH_CHILD="$<TARGET_FILE:es_projection_crash_child>")
add_dependencies(es_sqlite_read_model_test es_projection_crash_child)

# Hostile files (issue 14): truncated images, half-created files, many creating processes,
# rollback-journal backups. es_sqlite_open_child creates or appends in a child process; the
# tests spawn it by the path given in WEFT_SQLITE_OPEN_CHILD.
add_executable(es_sqlite_open_child es_sqlite_open_child.cpp)
target_link_libraries(es_sqlite_open_child PRIVATE weft::sqlite)
weft_add_warnings(es_sqlite_open_child)

weft_add_test(es_sqlite_files_test es_sqlite_files_test.cpp)
target_link_libraries(es_sqlite_files_test PRIVATE weft::sqlite)
target_compile_definitions(es_sqlite_files_test PRIVATE
    WEFT_SQLITE_OPEN_CHILD="$<TARGET_FILE:es_sqlite_open_child>")
add_dependencies(es_sqlite_files_test es_sqlite_open_child)

# Dead letters stored with the checkpoint. es_dead_letter_child parks one and waits to be killed;
# the kill -9 test in es_sqlite_dead_letter_test spawns it by WEFT_DEAD_LETTER_CHILD.
add_executable(es_dead_letter_child es_dead_letter_child.cpp)
target_link_libraries(es_dead_letter_child PRIVATE weft::sqlite)
weft_add_warnings(es_dead_letter_child)

weft_add_test(es_sqlite_dead_letter_test es_sqlite_dead_letter_test.cpp)
target_link_libraries(es_sqlite_dead_letter_test PRIVATE weft::sqlite)
target_compile_definitions(es_sqlite_dead_letter_test PRIVATE
    WEFT_DEAD_LETTER_CHILD="$<TARGET_FILE:es_dead_letter_child>")
add_dependencies(es_sqlite_dead_letter_test es_dead_letter_child)

# A projection on the store's own file does not keep the store's appends out.
weft_add_test(es_sqlite_write_lock_test es_sqlite_write_lock_test.cpp)
target_link_libraries(es_sqlite_write_lock_test PRIVATE weft::sqlite)
