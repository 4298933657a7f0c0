// echo: TCP echo over loopback, client and server in one process. A listener on 127.0.0.1:0
// with an accept-loop goroutine that starts a goroutine per connection (io.ReadFull of
// -size bytes, then Write them back, until EOF); -conns client goroutines each Dial and do
// -rounds round trips: write -size bytes, io.ReadFull the echo and compare it with what was
// sent. Each client times its round trips (write start to echo read) for p50_us / p99_us.
// The message of connection c in round r: byte i = c*31 + i, the first 8 bytes then
// overwritten with c<<32 | r (little-endian). wall_ms: from starting the clients (dials
// included) until every client and every server goroutine has finished. Check: every echo
// equal to its message, no error on either side, the servers echoed conns*rounds*size bytes.
// The RESULT line's workload is "echo" and the connection count (run.sh's echo100, echo1000).
package main

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"weftpeers/golang/common"
)

func main() {
	conns := flag.Int64("conns", 100, "connections")
	rounds := flag.Int64("rounds", 2000, "round trips per connection")
	size := flag.Int64("size", 512, "message bytes")
	common.Parse("goroutines")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	address := ln.Addr().String()
	var served sync.WaitGroup
	var serverBytes, serverErrors int64
	lat := make([][]int64, *conns) // per client, ns per round trip
	for i := range lat {
		lat[i] = make([]int64, *rounds)
	}

	t := common.Start()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed
			}
			served.Add(1)
			go func(c net.Conn) {
				defer served.Done()
				defer c.Close()
				buf := make([]byte, *size)
				for {
					if _, err := io.ReadFull(c, buf); err != nil {
						if err != io.EOF {
							atomic.AddInt64(&serverErrors, 1)
						}
						return
					}
					if _, err := c.Write(buf); err != nil {
						atomic.AddInt64(&serverErrors, 1)
						return
					}
					atomic.AddInt64(&serverBytes, *size)
				}
			}(c)
		}
	}()

	var clients sync.WaitGroup
	var good, clientErrors int64
	clients.Add(int(*conns))
	for id := int64(0); id < *conns; id++ {
		go func(id int64) {
			defer clients.Done()
			c, err := net.Dial("tcp", address)
			if err != nil {
				atomic.AddInt64(&clientErrors, 1)
				return
			}
			defer c.Close()
			out := make([]byte, *size)
			in := make([]byte, *size)
			for i := range out {
				out[i] = byte(id*31 + int64(i))
			}
			for r := int64(0); r < *rounds; r++ {
				binary.LittleEndian.PutUint64(out, uint64(id)<<32|uint64(r))
				t0 := time.Now()
				if _, err := c.Write(out); err != nil {
					atomic.AddInt64(&clientErrors, 1)
					return
				}
				if _, err := io.ReadFull(c, in); err != nil {
					atomic.AddInt64(&clientErrors, 1)
					return
				}
				lat[id][r] = int64(time.Since(t0))
				if !bytes.Equal(in, out) {
					atomic.AddInt64(&clientErrors, 1)
					return
				}
				atomic.AddInt64(&good, 1)
			}
		}(id)
	}
	clients.Wait()
	served.Wait() // every server goroutine saw its client close
	t.Stop()
	ln.Close()

	all := make([]int64, 0, *conns**rounds)
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(p*float64(len(all)-1))]) / 1e3
	}
	want := *conns * *rounds
	ok := good == want && serverBytes == want**size && clientErrors == 0 && serverErrors == 0
	common.Report(fmt.Sprintf("echo%d", *conns), t, ok, // run.sh's echo100, echo1000
		fmt.Sprintf("%d good round trips of %d, server echoed %d bytes of %d, errors: client %d, server %d",
			good, want, serverBytes, want**size, clientErrors, serverErrors),
		common.I("conns", *conns), common.I("rounds", *rounds),
		common.F("roundtrips_per_s", float64(good)/t.Wall.Seconds()),
		common.F("p50_us", pct(0.50)), common.F("p99_us", pct(0.99)),
		common.F("peak_rss_mb", common.MB(common.Status("VmHWM"))))
}
