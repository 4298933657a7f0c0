// weft::net — sockets whose waits suspend tasks, not threads (Go's net on its netpoller).
//
//   net/error.hpp     errc, io_result, result<T>, is_timeout
//   net/address.hpp   endpoint, resolve, async_resolve
//   net/conn.hpp      conn: read, read_exact, write_all, deadlines, shutdown_write, close
//   net/listener.hpp  listen, listener: accept
//   net/dial.hpp      dial, async_dial
//   net/fd_wait.hpp   fd_watch, wait_readable/wait_writable: other libraries' sockets
#pragma once

#include "net/address.hpp"
#include "net/conn.hpp"
#include "net/dial.hpp"
#include "net/error.hpp"
#include "net/fd_wait.hpp"
#include "net/listener.hpp"
