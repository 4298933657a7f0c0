// slowcalls_tcp: the seed article's n slow third-party calls, over real TCP on loopback, client
// and server in one process. The soft RLIMIT_NOFILE is raised to the hard limit first (both
// ends: 2n descriptors). A listener on 127.0.0.1:0 with an accept-loop goroutine (started
// before the clock) that starts a goroutine per connection: io.ReadFull of a 16-byte request,
// time.Sleep(call_ms) (the slow service), Write a 16-byte response, Close. n client goroutines,
// all started at once (a WaitGroup waits): each Dials, Writes its request, io.ReadFull's the
// response, checks it, Closes. Request of call i: i, then key = splitmix64(seed i).Next();
// response: i, then splitmix64(seed i ^ key).Next() (little-endian uint64s). wall_ms: from
// starting the clients to the last response read. Reported: wall time, peak OS threads
// (/proc/self/status Threads, polled every 10 ms), peak RSS (VmHWM), most calls sleeping at
// once on the server side, last_sent_ms (when the last request was written, from the clock's
// start: the dials' and writes' share of the wall time), the descriptor limit. Check: all n
// responses right, no error on either side, every server goroutine finished, wall time at
// least call_ms. With -limit=L > 0 (workload slowcalls_tcp_limited) at most L calls are in
// flight: a buffered channel of L slots as a counting semaphore (sem <- struct{}{} before a
// call's goroutine starts, <-sem after it closed its connection); the wall time is then at
// least ceil(n/L) x call_ms.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"weftpeers/golang/common"
)

const msgSize = 16

// checksum is what the server answers for a request (index, key).
func checksum(index, key uint64) uint64 { return common.NewSplitMix64(index ^ key).Next() }

type stats struct{ inFlight, maxInFlight int64 }

func (s *stats) begin() {
	atomicMax(&s.maxInFlight, atomic.AddInt64(&s.inFlight, 1))
}

func (s *stats) end() { atomic.AddInt64(&s.inFlight, -1) }

// atomicMax raises *p to v.
func atomicMax(p *int64, v int64) {
	for {
		seen := atomic.LoadInt64(p)
		if v <= seen || atomic.CompareAndSwapInt64(p, seen, v) {
			return
		}
	}
}

func main() {
	n := flag.Int64("n", 1000, "calls (connections)")
	callMs := flag.Int64("call_ms", 200, "how long the server waits before answering, ms")
	limit := flag.Int64("limit", 0, "most calls in flight (0: all at once)")
	common.Parse("goroutines")
	d := time.Duration(*callMs) * time.Millisecond

	var rl syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	rl.Cur = rl.Max
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	address := ln.Addr().String()
	var st stats
	var served sync.WaitGroup
	var accepted, serverErrors int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed
			}
			atomic.AddInt64(&accepted, 1)
			served.Add(1)
			go func(c net.Conn) {
				defer served.Done()
				defer c.Close()
				var req, resp [msgSize]byte
				if _, err := io.ReadFull(c, req[:]); err != nil {
					atomic.AddInt64(&serverErrors, 1)
					return
				}
				index := binary.LittleEndian.Uint64(req[0:])
				key := binary.LittleEndian.Uint64(req[8:])
				st.begin()
				time.Sleep(d) // the slow service
				st.end()
				binary.LittleEndian.PutUint64(resp[0:], index)
				binary.LittleEndian.PutUint64(resp[8:], checksum(index, key))
				if _, err := c.Write(resp[:]); err != nil {
					atomic.AddInt64(&serverErrors, 1)
				}
			}(c)
		}
	}()

	sampler := common.StartThreadSampler()
	t := common.Start()
	start := time.Now()
	var clients sync.WaitGroup
	var good, clientErrors, lastSent int64 // lastSent: ns after start
	var sem chan struct{}                  // at most *limit calls in flight: a counting semaphore
	if *limit > 0 {
		sem = make(chan struct{}, *limit)
	}
	clients.Add(int(*n))
	for i := int64(0); i < *n; i++ {
		if sem != nil {
			sem <- struct{}{} // take a slot
		}
		go func(i uint64) {
			defer clients.Done()
			if sem != nil {
				defer func() { <-sem }() // after c.Close (deferred later, run first)
			}
			c, err := net.Dial("tcp", address)
			if err != nil {
				atomic.AddInt64(&clientErrors, 1)
				return
			}
			defer c.Close()
			var req, resp [msgSize]byte
			key := common.NewSplitMix64(i).Next()
			binary.LittleEndian.PutUint64(req[0:], i)
			binary.LittleEndian.PutUint64(req[8:], key)
			if _, err := c.Write(req[:]); err != nil {
				atomic.AddInt64(&clientErrors, 1)
				return
			}
			atomicMax(&lastSent, int64(time.Since(start)))
			if _, err := io.ReadFull(c, resp[:]); err != nil {
				atomic.AddInt64(&clientErrors, 1)
				return
			}
			if binary.LittleEndian.Uint64(resp[0:]) != i ||
				binary.LittleEndian.Uint64(resp[8:]) != checksum(i, key) {
				atomic.AddInt64(&clientErrors, 1)
				return
			}
			atomic.AddInt64(&good, 1)
		}(uint64(i))
	}
	clients.Wait()
	t.Stop()
	threads := sampler.Stop()
	served.Wait() // every server goroutine has closed its end (outside the clock)
	ln.Close()

	workload, lower := "slowcalls_tcp", d // one call's time, or n/limit waves of it
	if *limit > 0 {
		workload = "slowcalls_tcp_limited"
		lower = d * time.Duration((*n+*limit-1) / *limit)
	}
	why := ""
	switch {
	case good != *n || clientErrors != 0 || serverErrors != 0 || accepted != *n:
		why = fmt.Sprintf("%d right responses of %d, %d accepted, errors: client %d, server %d (fd limit %d)",
			good, *n, accepted, clientErrors, serverErrors, rl.Cur)
	case *limit > 0 && st.maxInFlight > *limit:
		why = fmt.Sprintf("%d calls in flight at once, limit %d", st.maxInFlight, *limit)
	case t.Wall < lower*95/100:
		why = fmt.Sprintf("took %v, less than the lower bound %v", t.Wall, lower)
	}
	common.Report(workload, t, why == "", why,
		common.I("n", *n), common.I("peak_threads", threads),
		common.F("peak_rss_mb", common.MB(common.Status("VmHWM"))),
		common.I("max_in_flight", st.maxInFlight),
		common.F("last_sent_ms", float64(lastSent)/1e6), common.I("fd_limit", int64(rl.Cur)))
}
