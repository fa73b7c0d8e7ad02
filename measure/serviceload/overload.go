package serviceload

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Overload targets: the service's memory levels off while the flood goes
// on (it holds what its connections and its bounded write queue hold, and
// refuses the rest), and it is back to its paced latency soon after.
const (
	// TargetFlatGrowth bounds the RSS peak of the flood's second half over
	// its first half's: growth must stop, not merely be slow.
	TargetFlatGrowth = 0.10
	TargetRecovery   = 30 * time.Second
)

// flatSlack absorbs allocator noise on a small process.
const flatSlack = 4 << 20

// recoveryWindow is how the recovery probe's latencies are cut: the service
// has recovered at the end of the first window whose p99 is back under
// TargetPacedP99.
const recoveryWindow = time.Second

// OverloadResult is phase (o): a flood at Factor × lastseend's measured max,
// open-loop, from Conns connections, then a paced probe at half the max
// until its p99 is back under TargetPacedP99.
type OverloadResult struct {
	Factor   float64 `json:"factor"`
	Offered  float64 `json:"offered_requests_per_s"`
	Sent     float64 `json:"sent_requests_per_s"` // what the client managed to send
	Seconds  float64 `json:"seconds"`
	Conns    int     `json:"conns"`
	Answered int64   `json:"answered"`
	OK       int64   `json:"ok"`
	// Unavailable are the 503s (the write queue full), Limited the 429s
	// (a device past its rate limit); Other are any other failures.
	Unavailable      int64   `json:"unavailable"`
	Limited          int64   `json:"limited"`
	Other            int64   `json:"other_failed"`
	UnavailableShare float64 `json:"unavailable_share"`
	FirstOther       string  `json:"first_other_error,omitempty"`
	P50Ms            float64 `json:"p50_ms"` // every answer, from when it was sent
	P99Ms            float64 `json:"p99_ms"`
	OKP99Ms          float64 `json:"ok_p99_ms"` // the 200s alone
	MaxMs            float64 `json:"max_ms"`
	// Service memory: RSS before the flood, its peak in the flood's first
	// and second halves and its value once the probe is done (sampled every
	// 250 ms), and the Go heap in use before and after.
	RSSBefore  uint64 `json:"rss_before"`
	RSSPeak1   uint64 `json:"rss_peak_first_half"`
	RSSPeak2   uint64 `json:"rss_peak_second_half"`
	RSSAfter   uint64 `json:"rss_after"`
	HeapBefore uint64 `json:"heap_before"`
	HeapAfter  uint64 `json:"heap_after"`
	Alive      bool   `json:"alive"`
	// RecoveryS is from the end of the flood to the end of the first probe
	// window with p99 under TargetPacedP99; -1 when none came within the
	// probe's timeout. Windows are the probe's p99 per window.
	RecoveryS float64   `json:"recovery_s"`
	ProbeRate float64   `json:"probe_rate"`
	Windows   []float64 `json:"windows_p99_ms"`
}

// RSSPeak is the flood's peak RSS.
func (o *OverloadResult) RSSPeak() uint64 { return max(o.RSSPeak1, o.RSSPeak2) }

// Growth is how far the second half's peak passed the first half's, as a
// fraction of it (after flatSlack).
func (o *OverloadResult) Growth() float64 {
	if o.RSSPeak1 == 0 {
		return 0
	}
	return max(float64(o.RSSPeak2)-float64(o.RSSPeak1)-flatSlack, 0) / float64(o.RSSPeak1)
}

func (o *OverloadResult) flat() bool {
	return o.Alive && o.Other == 0 && o.Growth() <= TargetFlatGrowth
}

// memWatch samples a process's RSS until stopped, keeping the peak before
// and after a split time.
type memWatch struct {
	mu           sync.Mutex
	split        time.Time
	peak1, peak2 uint64
	last         uint64
	stop         chan struct{}
	done         chan struct{}
}

func watchMem(read func() procMem, every time.Duration, split time.Time) *memWatch {
	m := &memWatch{split: split, stop: make(chan struct{}), done: make(chan struct{})}
	sample := func() {
		rss := read().rss
		m.mu.Lock()
		m.last = rss
		if time.Now().Before(m.split) {
			m.peak1 = max(m.peak1, rss)
		} else {
			m.peak2 = max(m.peak2, rss)
		}
		m.mu.Unlock()
	}
	sample()
	go func() {
		defer close(m.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-m.stop:
				sample()
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return m
}

// stopAt stops sampling at t (the end of the flood) and returns the two
// halves' peaks.
func (m *memWatch) stopAt(ctx context.Context, t time.Time) (peak1, peak2 uint64) {
	sleepUntil(ctx, t)
	close(m.stop)
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peak1, m.peak2
}

// window is the probe's record of the requests due in one recoveryWindow.
type window struct {
	issued, done int
	failed       int
	lat          []time.Duration
}

// runOverload is phase (o).
func runOverload(ctx context.Context, c Config, svc *lastseend, f *fleet, maxRate float64) (*OverloadResult, error) {
	res := &OverloadResult{Factor: c.OverloadFactor, Offered: c.OverloadFactor * maxRate / float64(c.BatchSize),
		Conns: c.OverloadConns, ProbeRate: c.PacedRate / float64(c.BatchSize), RecoveryS: -1}
	hc := &http.Client{Timeout: 5 * time.Second}
	res.HeapBefore = scrapeGoMem(ctx, hc, svc.url).heapInuse
	res.RSSBefore = svc.mem().rss

	// Devices are shared by the flood and the probe through one pool, so no
	// device ever has two requests in flight.
	free := make(chan *device, len(f.devices))
	for _, d := range f.devices {
		free <- d
	}
	take := func(ctx context.Context) *device {
		select {
		case d := <-free:
			return d
		case <-ctx.Done():
			return nil
		}
	}

	flood := newClient(svc.url, c.OverloadConns, true)
	defer flood.close()
	p := newPacer(res.Offered, c.OverloadDuration)
	floodEnd := p.start.Add(c.OverloadDuration)
	watch := watchMem(svc.mem, 250*time.Millisecond, p.start.Add(c.OverloadDuration/2))
	var peaks sync.WaitGroup
	peaks.Go(func() { res.RSSPeak1, res.RSSPeak2 = watch.stopAt(ctx, floodEnd) })
	fctx, fcancel := context.WithDeadline(ctx, floodEnd)
	defer fcancel()
	parts := make([]*tally, c.OverloadConns)
	var sent atomic.Int64
	var wg sync.WaitGroup
	for w := range c.OverloadConns {
		parts[w] = &tally{}
		wg.Go(func() {
			t := parts[w]
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			for n := 0; n < maxRequestsPerWorker; n++ {
				due, ok := p.slot()
				if !ok || !waitUntil(fctx, timer, due) {
					return
				}
				d := take(fctx)
				if d == nil {
					return
				}
				sent.Add(1)
				// The request itself may outlive the flood: its answer counts.
				flood.post(ctx, d, c.BatchSize, t, time.Now())
				free <- d
			}
		})
	}

	// The probe starts as the flood ends.
	if !sleepUntil(ctx, floodEnd) {
		return nil, ctx.Err()
	}
	res.Seconds = c.OverloadDuration.Seconds()
	res.Sent = float64(sent.Load()) / res.Seconds
	res.RecoveryS, res.Windows = probeRecovery(ctx, c, svc, take, func(d *device) { free <- d }, floodEnd)

	wg.Wait()
	all := &tally{}
	for _, t := range parts {
		all.merge(t)
	}
	peaks.Wait()
	res.RSSAfter = svc.mem().rss
	res.HeapAfter = scrapeGoMem(ctx, hc, svc.url).heapInuse
	res.Alive = svc.alive()
	res.Answered = int64(len(all.lat))
	res.OK, res.Unavailable, res.Limited = all.ok, all.unavailable, all.limited
	res.Other = all.failed - all.unavailable - all.limited
	res.FirstOther = all.firstOther
	if res.Answered > 0 {
		res.UnavailableShare = float64(all.unavailable) / float64(res.Answered)
	}
	slices.Sort(all.lat)
	slices.Sort(all.okLat)
	res.P50Ms, res.P99Ms, res.MaxMs = ms(quantile(all.lat, .5)), ms(quantile(all.lat, .99)), ms(quantile(all.lat, 1))
	res.OKP99Ms = ms(quantile(all.okLat, .99))
	return res, nil
}

// probeRecovery paces requests at c.PacedRate from the end of the flood and
// returns how long after it the first recoveryWindow (by due time) had
// every request answered 200 with p99 under TargetPacedP99 (-1 if none
// within c.RecoveryTimeout), and each window's p99.
func probeRecovery(ctx context.Context, c Config, svc *lastseend, take func(context.Context) *device, give func(*device), from time.Time) (float64, []float64) {
	conns := c.maxConcurrency()
	cl := newClient(svc.url, conns, true)
	defer cl.close()
	p := newPacer(c.PacedRate/float64(c.BatchSize), c.RecoveryTimeout)
	p.start = from
	pctx, cancel := context.WithTimeout(ctx, c.RecoveryTimeout+30*time.Second)
	defer cancel()

	var mu sync.Mutex
	windows := make([]window, int(c.RecoveryTimeout/recoveryWindow)+1)
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			for n := 0; n < maxRequestsPerWorker; n++ {
				// A slot is counted in its window as it is handed out (under
				// mu, which the judge holds), so a window is never judged
				// with a request of it still on its way.
				mu.Lock()
				due, ok := p.slot()
				k := min(int(due.Sub(from)/recoveryWindow), len(windows)-1)
				if ok {
					windows[k].issued++
				}
				mu.Unlock()
				if !ok || !waitUntil(pctx, timer, due) {
					return
				}
				d := take(pctx)
				if d == nil {
					return
				}
				t := &tally{}
				cl.post(pctx, d, c.BatchSize, t, due)
				give(d)
				mu.Lock()
				windows[k].done++
				if t.ok == 1 {
					windows[k].lat = append(windows[k].lat, t.okLat[0])
				} else {
					windows[k].failed++
				}
				mu.Unlock()
			}
		})
	}
	defer wg.Wait()

	// Judge each window once it is over and all its requests answered.
	var p99s []float64
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for k := 0; k < len(windows)-1; {
		select {
		case <-pctx.Done():
			return -1, p99s
		case <-tick.C:
		}
		end := from.Add(time.Duration(k+1) * recoveryWindow)
		mu.Lock()
		w := windows[k]
		ready := p.handedOutUntil(end) && w.done == w.issued
		if ready {
			slices.Sort(w.lat)
		}
		mu.Unlock()
		if !ready {
			continue
		}
		p99 := ms(quantile(w.lat, .99))
		p99s = append(p99s, p99)
		if w.failed == 0 && w.done > 0 && p99 <= ms(TargetPacedP99) {
			cancel()
			return end.Sub(from).Seconds(), p99s
		}
		k++
	}
	return -1, p99s
}
