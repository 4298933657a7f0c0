// errgroup: n trivial members in an error group with a context (golang.org/x/sync/errgroup's
// WithContext; that module is not vendored here, so the same ~20 lines are written out below:
// a WaitGroup, the first error kept once, the context cancelled on it and after Wait). Each
// member adds its index to a sum. Check: Wait returned nil and the sum is n(n-1)/2.
package main

import (
	"context"
	"flag"
	"fmt"
	"sync"
	"sync/atomic"

	"weftpeers/golang/common"
)

type group struct {
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	errOnce sync.Once
	err     error
}

func withContext(parent context.Context) (*group, context.Context) {
	ctx, cancel := context.WithCancel(parent)
	return &group{cancel: cancel}, ctx
}

func (g *group) Go(f func() error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := f(); err != nil {
			g.errOnce.Do(func() {
				g.err = err
				g.cancel()
			})
		}
	}()
}

func (g *group) Wait() error {
	g.wg.Wait()
	g.cancel()
	return g.err
}

func main() {
	n := flag.Int64("n", 10_000, "members")
	common.Parse("goroutines")

	var sum int64
	t := common.Start()
	g, ctx := withContext(context.Background())
	for i := int64(0); i < *n; i++ {
		i := i
		g.Go(func() error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			atomic.AddInt64(&sum, i)
			return nil
		})
	}
	err := g.Wait()
	t.Stop()
	want := *n * (*n - 1) / 2
	common.Report("errgroup", t, err == nil && sum == want, fmt.Sprintf("err %v, sum %d want %d", err, sum, want),
		common.I("n", *n))
}
