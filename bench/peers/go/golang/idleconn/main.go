// idleconn: n idle TCP connections over loopback, both ends in this process (2n descriptors),
// each server end with a goroutine blocked in Read (into a 512-byte buffer of its own). The
// soft RLIMIT_NOFILE is raised to the hard limit first; when that cannot hold 2n descriptors
// plus 200 spare, n is lowered to the largest multiple of 1000 that fits (n_asked says what
// was asked). The accept loop (a goroutine) starts one reader goroutine per connection; the
// main goroutine dials the n connections one after another. Reported: bytes_per = (VmRSS
// when all are connected and blocked - VmRSS before the first dial) / n, both ends and the
// reader included (the client slice is allocated before the baseline; a 20 ms pause lets the
// last readers reach their Read); wall_ms / cpu_ms = a 500 ms idle window after that (cpu_ms
// = the process's CPU time in it: the cost of n idle connections); setup_ms = dials and
// accepts. Then every client writes one byte (i % 251) and closes; each reader reads it, then
// EOF. Check: all n readers finished, the bytes sum right, no errors.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"weftpeers/golang/common"
)

func main() {
	n := flag.Int64("n", 10_000, "idle connections")
	idleMs := flag.Int64("idle_ms", 500, "idle window")
	common.Parse("goroutines")

	var rl syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	rl.Cur = rl.Max
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	asked := *n
	if fit := (int64(rl.Cur) - 200) / 2; *n > fit {
		*n = fit / 1000 * 1000
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	address := ln.Addr().String()
	clients := make([]net.Conn, *n)
	for i := range clients {
		clients[i] = nil // touch the slice's pages before the baseline
	}
	runtime.GC()
	debug.FreeOSMemory()
	before := common.Status("VmRSS")

	var started, done sync.WaitGroup
	var sum, finished, errors int64
	started.Add(int(*n))
	done.Add(int(*n))
	setup := common.Start()
	go func() {
		for i := int64(0); i < *n; i++ {
			c, err := ln.Accept()
			if err != nil {
				atomic.AddInt64(&errors, 1)
				started.Done()
				done.Done()
				continue
			}
			go func(c net.Conn) {
				defer done.Done()
				defer c.Close()
				buf := make([]byte, 512)
				started.Done()
				k, err := c.Read(buf)
				if err != nil || k != 1 {
					atomic.AddInt64(&errors, 1)
					return
				}
				if _, err := c.Read(buf); err != io.EOF {
					atomic.AddInt64(&errors, 1)
					return
				}
				atomic.AddInt64(&sum, int64(buf[0]))
				atomic.AddInt64(&finished, 1)
			}(c)
		}
	}()
	for i := range clients {
		c, err := net.Dial("tcp", address)
		if err != nil {
			panic(err)
		}
		clients[i] = c
	}
	started.Wait()
	setup.Stop()
	time.Sleep(20 * time.Millisecond) // the last readers reach their Read
	after := common.Status("VmRSS")
	threads := common.Status("Threads")

	idle := common.Start()
	time.Sleep(time.Duration(*idleMs) * time.Millisecond)
	idle.Stop()

	release := common.Start()
	for i, c := range clients {
		if _, err := c.Write([]byte{byte(i % 251)}); err != nil {
			atomic.AddInt64(&errors, 1)
		}
		c.Close()
	}
	done.Wait()
	release.Stop()
	ln.Close()

	var want int64
	for i := int64(0); i < *n; i++ {
		want += i % 251
	}
	common.Report("idleconn", idle, finished == *n && sum == want && errors == 0,
		fmt.Sprintf("%d finished of %d, sum %d, want %d, %d errors", finished, *n, sum, want, errors),
		common.I("n", *n), common.I("n_asked", asked), common.I("fd_limit", int64(rl.Cur)),
		common.F("bytes_per", float64(after-before)*1024/float64(*n)),
		common.F("rss_before_mb", common.MB(before)), common.F("rss_idle_mb", common.MB(after)),
		common.I("threads", threads),
		common.F("setup_ms", common.Ms(setup.Wall)), common.F("release_ms", common.Ms(release.Wall)))
}
