// cancel: what a cancellation costs. Workloads (variant goroutines on the Go side):
//
//	cancel_many     n goroutines each blocked in `select { case <-ctx.Done(): case <-never: }`
//	                under one context; wall_ms = cancel() until the last one has returned
//	                (WaitGroup). Check: all n saw ctx.Err() == context.Canceled.
//	cancel_latency  one goroutine blocked the same way, a fresh context each round; the main
//	                goroutine stamps the time and cancels; the waiter stamps when it runs.
//	                Reported p50_us / p99_us over `rounds`; wall_ms = all rounds.
package main

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"sync"
	"time"

	"weftpeers/golang/common"
)

func main() {
	n := flag.Int64("n", 100_000, "blocked goroutines (cancel_many)")
	rounds := flag.Int64("rounds", 2_000, "cancellations (cancel_latency)")
	workload := flag.String("workload", "cancel_many", "cancel_many or cancel_latency")
	common.Parse("goroutines")

	if *workload == "cancel_latency" {
		latency(*rounds)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	never := make(chan struct{})
	var started, done sync.WaitGroup
	started.Add(int(*n))
	done.Add(int(*n))
	var mu sync.Mutex
	cancelled := int64(0)
	for i := int64(0); i < *n; i++ {
		go func() {
			started.Done()
			select {
			case <-ctx.Done():
			case <-never:
			}
			if ctx.Err() == context.Canceled {
				mu.Lock()
				cancelled++
				mu.Unlock()
			}
			done.Done()
		}()
	}
	started.Wait()
	time.Sleep(20 * time.Millisecond) // the last ones reach their select (not timed)
	t := common.Start()
	cancel()
	done.Wait()
	t.Stop()
	common.Report("cancel_many", t, cancelled == *n, fmt.Sprintf("%d cancelled of %d", cancelled, *n),
		common.I("n", *n))
}

func latency(rounds int64) {
	lat := make([]time.Duration, 0, rounds)
	t := common.Start()
	for i := int64(0); i < rounds; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		ready := make(chan struct{})
		woke := make(chan time.Time, 1)
		go func() {
			close(ready)
			<-ctx.Done()
			woke <- time.Now()
		}()
		<-ready
		time.Sleep(50 * time.Microsecond) // let it block (not a synchronization: only timing)
		at := time.Now()
		cancel()
		lat = append(lat, (<-woke).Sub(at))
	}
	t.Stop()
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	us := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Nanoseconds()) / 1e3 }
	common.Report("cancel_latency", t, int64(len(lat)) == rounds, "rounds missing",
		common.I("rounds", rounds), common.F("p50_us", us(0.5)), common.F("p99_us", us(0.99)))
}
