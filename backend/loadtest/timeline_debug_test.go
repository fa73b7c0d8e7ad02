package loadtest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestDebugTimeline(t *testing.T) {
	if os.Getenv("LS_DEBUG_TIMELINE") == "" {
		t.Skip()
	}
	c := DefaultConfig()
	c.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc, err := startService(t.TempDir(), c)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.close()
	ctx := context.Background()
	f, err := newFleet(ctx, svc.store, c.Devices)
	if err != nil {
		t.Fatal(err)
	}
	cl := newClient(svc.http.url, c.Concurrency, true)
	for i := range 12 {
		tw, el := closedLoop(ctx, cl, f.devices, 64, 1, time.Second)
		fmt.Println("closed loop second", i, float64(tw.beats)/el.Seconds())
	}
	rate := 11000.0
	total := int(rate * 6)
	period := time.Duration(float64(time.Second) / rate)
	lat := make([]time.Duration, total)
	free := make(chan *device, len(f.devices))
	for _, d := range f.devices {
		free <- d
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now().Add(5 * time.Millisecond)
	for range 64 {
		wg.Go(func() {
			tl := &tally{}
			for {
				i := int(next.Add(1) - 1)
				if i >= total {
					return
				}
				due := start.Add(time.Duration(i) * period)
				time.Sleep(time.Until(due))
				d := <-free
				cl.post(ctx, d, 1, tl, due)
				free <- d
				lat[i] = tl.lat[len(tl.lat)-1]
			}
		})
	}
	wg.Wait()
	per := int(rate / 10) // 100 ms buckets
	for b := 0; b*per < total; b++ {
		var mx, sum time.Duration
		for _, l := range lat[b*per : min(total, (b+1)*per)] {
			mx = max(mx, l)
			sum += l
		}
		fmt.Printf("%4dms max %6.1fms avg %6.1fms\n", b*100, float64(mx)/1e6, float64(sum)/float64(per)/1e6)
	}
}
