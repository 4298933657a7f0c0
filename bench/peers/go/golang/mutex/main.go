// mutex: a lock held briefly by many goroutines. n goroutines each lock, increment a plain
// counter, unlock, `ops` times, on GOMAXPROCS=2. Check: the counter is exactly n*ops.
package main

import (
	"flag"
	"fmt"
	"sync"

	"weftpeers/golang/common"
)

func main() {
	n := flag.Int64("n", 1000, "goroutines")
	ops := flag.Int64("ops", 1000, "lock/unlock pairs per goroutine")
	common.Parse("goroutines")

	var mu sync.Mutex
	counter := int64(0)
	var wg sync.WaitGroup
	wg.Add(int(*n))
	t := common.Start()
	for i := int64(0); i < *n; i++ {
		go func() {
			defer wg.Done()
			for k := int64(0); k < *ops; k++ {
				mu.Lock()
				counter++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Stop()
	common.Report("mutex", t, counter == *n**ops, fmt.Sprintf("counter %d want %d", counter, *n**ops),
		common.I("n", *n), common.I("ops", *ops),
		common.F("ns_per_op", float64(t.Wall.Nanoseconds())/float64(*n**ops)))
}
