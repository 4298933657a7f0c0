// weft::es::durability — how much an acknowledged write of a durable store survives: an append
// of sqlite_store, a committed batch of sqlite_read_model.
//
//   weft::es::sqlite_store store(path, {.durability = weft::es::durability::normal});
//
// The SQLite headers set it as PRAGMA synchronous (in WAL mode).
#pragma once

namespace weft::es {

enum class durability {
    full,   // fsync per commit: survives a process crash (kill -9) and power loss
    normal, // survives a process crash; power loss may lose the last commits (not the file)
    off,    // survives a process crash; power loss may lose commits or corrupt the file
};

} // namespace weft::es
