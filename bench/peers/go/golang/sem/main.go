// sem: a counting semaphore under contention. n goroutines each take a slot, add to a shared
// counter (under the slot only: limit 1 makes it a lock), give the slot back, `ops` times.
// Go's idiom is a buffered channel of `limit` slots (the standard library has no semaphore;
// golang.org/x/sync's weighted one is not vendored here). Check: the counter is n*ops and no
// more than `limit` were inside at once.
package main

import (
	"flag"
	"fmt"
	"sync"
	"sync/atomic"

	"weftpeers/golang/common"
)

func main() {
	n := flag.Int64("n", 1000, "goroutines")
	ops := flag.Int64("ops", 1000, "acquire/release pairs per goroutine")
	limit := flag.Int64("limit", 4, "slots")
	common.Parse("chan")

	sem := make(chan struct{}, *limit)
	var inside, most, total int64
	var wg sync.WaitGroup
	wg.Add(int(*n))
	t := common.Start()
	for i := int64(0); i < *n; i++ {
		go func() {
			defer wg.Done()
			for k := int64(0); k < *ops; k++ {
				sem <- struct{}{}
				now := atomic.AddInt64(&inside, 1)
				for {
					m := atomic.LoadInt64(&most)
					if now <= m || atomic.CompareAndSwapInt64(&most, m, now) {
						break
					}
				}
				atomic.AddInt64(&total, 1)
				atomic.AddInt64(&inside, -1)
				<-sem
			}
		}()
	}
	wg.Wait()
	t.Stop()
	ok := total == *n**ops && most <= *limit
	common.Report("sem", t, ok, fmt.Sprintf("total %d want %d, most inside %d limit %d", total, *n**ops, most, *limit),
		common.I("n", *n), common.I("ops", *ops), common.I("limit", *limit),
		common.F("ns_per_op", float64(t.Wall.Nanoseconds())/float64(*n**ops)))
}
