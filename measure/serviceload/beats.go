package serviceload

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// maxRequestsPerWorker bounds every request loop by count as well as time.
const maxRequestsPerWorker = 10_000_000

// client posts heartbeat batches over keep-alive connections, one
// connection per request in flight. The same client code and settings drive
// lastseend and the bare handler.
type client struct {
	hc  *http.Client
	url string
	tr  *http.Transport
	// check makes a 200 count only when its answer accounts for every beat
	// (lastseend's answers; the bare handler's say so too).
	check bool
}

func newClient(baseURL string, conns int, check bool) *client {
	tr := &http.Transport{
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	return &client{hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}, url: baseURL + "/api/v1/heartbeats", tr: tr, check: check}
}

func (c *client) close() { c.tr.CloseIdleConnections() }

// tally is what one worker saw.
type tally struct {
	ok, failed int64
	// unavailable and limited count the 503 and 429 answers (also in
	// failed): the refusals an overloaded or rate-limited service gives.
	unavailable, limited int64
	beats                int64 // beats the service accepted
	duplicates           int64
	lat                  []time.Duration // every answer's latency
	okLat                []time.Duration // the 200s'
	firstErr             string
	firstOther           string // the first failure that is not a 503 or 429
}

func (t *tally) merge(o *tally) {
	t.ok += o.ok
	t.failed += o.failed
	t.unavailable += o.unavailable
	t.limited += o.limited
	t.beats += o.beats
	t.duplicates += o.duplicates
	t.lat = append(t.lat, o.lat...)
	t.okLat = append(t.okLat, o.okLat...)
	if t.firstErr == "" {
		t.firstErr = o.firstErr
	}
	if t.firstOther == "" {
		t.firstOther = o.firstOther
	}
}

func (t *tally) fail(msg string) {
	t.failed++
	if t.firstErr == "" {
		t.firstErr = msg
	}
	if t.firstOther == "" && msg != msg503 && msg != msg429 {
		t.firstOther = msg
	}
}

const (
	msg503 = "HTTP 503"
	msg429 = "HTTP 429"
)

// post sends the device's next batch (seqs rising from its last) and records
// the outcome; latency counts from started. Only one goroutine at a time may
// post for d.
func (c *client) post(ctx context.Context, d *device, batch int, t *tally, started time.Time) {
	now := time.Now()
	b := presence.Batch{SentAt: now, Beats: make([]presence.Beat, batch)}
	for i := range b.Beats {
		d.seq++
		b.Beats[i] = presence.Beat{Seq: d.seq, At: now, State: presence.Active}
	}
	body, err := json.Marshal(b)
	if err != nil {
		t.fail(err.Error())
		return
	}
	c.postBody(ctx, d, body, batch, t, started)
}

// postBody posts an encoded batch of n beats with d's token.
func (c *client) postBody(ctx context.Context, d *device, body []byte, batch int, t *tally, started time.Time) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		t.fail(err.Error())
		return
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			t.fail(err.Error())
		}
		return
	}
	defer resp.Body.Close()
	var res presence.BatchResult
	err = json.NewDecoder(resp.Body).Decode(&res)
	_, _ = io.Copy(io.Discard, resp.Body)
	lat := time.Since(started)
	t.lat = append(t.lat, lat)
	switch {
	case resp.StatusCode == http.StatusServiceUnavailable:
		t.unavailable++
		t.fail(msg503)
	case resp.StatusCode == http.StatusTooManyRequests:
		t.limited++
		t.fail(msg429)
	case resp.StatusCode != http.StatusOK:
		t.fail(fmt.Sprintf("HTTP %d", resp.StatusCode))
	case err != nil:
		t.fail("decode answer: " + err.Error())
	case c.check && (res.Accepted+res.Duplicates != batch || len(res.Rejected) > 0):
		t.fail(fmt.Sprintf("device %d: accepted %d, duplicates %d, rejected %v of %d", d.id, res.Accepted, res.Duplicates, res.Rejected, batch))
	default:
		t.ok++
		t.okLat = append(t.okLat, lat)
		t.beats += int64(res.Accepted)
		t.duplicates += int64(res.Duplicates)
		d.acked = d.seq // one request per device at a time: d.seq is this batch's last
	}
}

// closedLoop drives devs from `workers` goroutines as fast as answers come
// back, for dur. Worker w owns devices w, w+workers, … so no device ever has
// two requests in flight.
func closedLoop(ctx context.Context, c *client, devs []*device, workers, batch int, dur time.Duration) (*tally, time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	parts := make([]*tally, workers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		parts[w] = &tally{lat: make([]time.Duration, 0, 4096)}
		wg.Go(func() {
			t := parts[w]
			var mine []*device
			for i := w; i < len(devs); i += workers {
				mine = append(mine, devs[i])
			}
			for n := 0; n < maxRequestsPerWorker && ctx.Err() == nil; n++ {
				d := mine[n%len(mine)]
				c.post(ctx, d, batch, t, time.Now())
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := &tally{}
	for _, p := range parts {
		all.merge(p)
	}
	return all, elapsed
}

// pacer hands out request slots open-loop: slot i is due at start + i/rate
// whatever happened to the others, so a stall shows in the figures instead
// of quietly lowering the offered load.
type pacer struct {
	start  time.Time
	period time.Duration
	total  int64
	next   atomic.Int64
}

func newPacer(rate float64, dur time.Duration) *pacer {
	return &pacer{
		start:  time.Now().Add(5 * time.Millisecond),
		period: time.Duration(float64(time.Second) / rate),
		total:  int64(rate * dur.Seconds()),
	}
}

// slot is the next slot's due time; ok is false once every slot is taken.
func (p *pacer) slot() (due time.Time, ok bool) {
	i := p.next.Add(1) - 1
	if i >= p.total {
		return time.Time{}, false
	}
	return p.start.Add(time.Duration(i) * p.period), true
}

// handedOutUntil reports whether every slot due before t has been taken.
func (p *pacer) handedOutUntil(t time.Time) bool {
	i := p.next.Load()
	return i >= p.total || !p.start.Add(time.Duration(i)*p.period).Before(t)
}

// sleepUntil sleeps until t; false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	return waitUntil(ctx, timer, t)
}

// waitUntil sleeps until due (at once if past); false if ctx ended first.
func waitUntil(ctx context.Context, timer *time.Timer, due time.Time) bool {
	wait := time.Until(due)
	if wait <= 0 {
		return ctx.Err() == nil
	}
	timer.Reset(wait)
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// pacedLoop sends rate requests a second, open-loop, from `workers`
// goroutines, for dur; each latency counts from when its request was due.
// Each request takes whichever device is free (one request per device at a
// time keeps its seqs in order); tying slots to fixed devices would make one
// slow answer hold up unrelated requests.
func pacedLoop(ctx context.Context, c *client, devs []*device, workers, batch int, rate float64, dur time.Duration) (*tally, time.Duration) {
	p := newPacer(rate, dur)
	ctx, cancel := context.WithTimeout(ctx, dur+30*time.Second)
	defer cancel()
	free := make(chan *device, len(devs))
	for _, d := range devs {
		free <- d
	}
	parts := make([]*tally, workers)
	var wg sync.WaitGroup
	for w := range workers {
		parts[w] = &tally{lat: make([]time.Duration, 0, int(p.total)/workers+1)}
		wg.Go(func() {
			t := parts[w]
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			for n := 0; n < maxRequestsPerWorker; n++ {
				due, ok := p.slot()
				if !ok || !waitUntil(ctx, timer, due) {
					return
				}
				var d *device
				select {
				case d = <-free:
				case <-ctx.Done():
					return
				}
				c.post(ctx, d, batch, t, due)
				free <- d
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(p.start)
	all := &tally{}
	for _, p := range parts {
		all.merge(p)
	}
	return all, elapsed
}

// target is one server under load: its client, its devices, and what the
// load saw of it over all rounds.
type target struct {
	cl    *client
	devs  []*device
	t     tally
	spent time.Duration
}

// pair is the bare handler and lastseend, each with its own client of
// identical settings. The bare handler gets devices of its own so that
// lastseend's seqs stay continuous; tokens and seqs mean nothing to it.
func pair(conns int, bare *child, svc *lastseend, f *fleet) (minimal, ours *target, stop func()) {
	shadow := make([]*device, len(f.devices))
	for i, d := range f.devices {
		shadow[i] = &device{id: d.id, token: d.token}
	}
	minimal = &target{cl: newClient(bare.url, conns, true), devs: shadow}
	ours = &target{cl: newClient(svc.url, conns, true), devs: f.devices}
	return minimal, ours, func() {
		minimal.cl.close()
		ours.cl.close()
	}
}

// alternate runs the targets in c.Rounds rounds of c.Duration/Rounds each,
// rotating which goes first, so background load that comes and goes weighs
// on all of them alike. run gets the target's index.
func alternate(ctx context.Context, c Config, ts []*target, run func(int, *target, time.Duration) (*tally, time.Duration)) error {
	per := c.Duration / time.Duration(c.Rounds)
	for r := range c.Rounds {
		for i := range ts {
			k := (i + r) % len(ts)
			got, el := run(k, ts[k], per)
			if err := ctx.Err(); err != nil {
				return err
			}
			ts[k].t.merge(got)
			ts[k].spent += el
		}
	}
	return nil
}

// runThroughput is phase (a) at one concurrency: the bare handler and
// lastseend as fast as they answer, after a warm-up each, with the same
// client settings.
func runThroughput(ctx context.Context, c Config, conns int, bare *child, svc *lastseend, f *fleet) (*ThroughputResult, error) {
	minimal, ours, stop := pair(conns, bare, svc, f)
	defer stop()
	run := func(_ int, t *target, d time.Duration) (*tally, time.Duration) {
		return closedLoop(ctx, t.cl, t.devs, conns, c.BatchSize, d)
	}
	if c.Warmup > 0 {
		run(0, minimal, c.Warmup)
		run(1, ours, c.Warmup)
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	before := scrapeMetrics(ctx, hc, svc.url)
	if err := alternate(ctx, c, []*target{minimal, ours}, run); err != nil {
		return nil, err
	}
	res := ThroughputResult{Concurrency: conns, Minimal: statsOf(&minimal.t, minimal.spent), Ours: statsOf(&ours.t, ours.spent),
		Writer: writerDelta(before, scrapeMetrics(ctx, hc, svc.url))}
	if res.Minimal.PerSecond > 0 {
		res.Ratio = res.Ours.PerSecond / res.Minimal.PerSecond
	}
	return &res, nil
}

// runPaced is phase (b): lastseend paced at c.PacedRate, with two
// references paced alike in alternating rounds: the bare handler at the
// same rate (the tail the machine adds at that rate), and, when phase (a)
// measured it, the bare handler at half of its own max (the tail any
// handler shows at the same relative load, client and server sharing the
// CPUs).
func runPaced(ctx context.Context, c Config, bare *child, svc *lastseend, f *fleet) (*PacedResult, error) {
	if c.PacedRate <= 0 {
		return nil, fmt.Errorf("no rate to pace at")
	}
	conns := c.maxConcurrency()
	minimal, ours, stop := pair(conns, bare, svc, f)
	defer stop()
	ts := []*target{ours, minimal}
	rates := []float64{c.PacedRate, c.PacedRate}
	var own *target
	if c.minimalMax > 0 {
		own = &target{cl: minimal.cl, devs: minimal.devs}
		ts, rates = append(ts, own), append(rates, c.minimalMax/2)
	}
	run := func(i int, t *target, d time.Duration) (*tally, time.Duration) {
		return pacedLoop(ctx, t.cl, t.devs, conns, c.BatchSize, rates[i]/float64(c.BatchSize), d)
	}
	if err := alternate(ctx, c, ts, run); err != nil {
		return nil, err
	}
	res := &PacedResult{Offered: c.PacedRate, Stats: statsOf(&ours.t, ours.spent), Minimal: statsOf(&minimal.t, minimal.spent)}
	if own != nil {
		st := statsOf(&own.t, own.spent)
		res.MinimalOwnHalf, res.MinimalOwnHalfRate = &st, c.minimalMax/2
	}
	return res, nil
}
