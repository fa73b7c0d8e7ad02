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
// lastseend and the minimal handler.
type client struct {
	hc  *http.Client
	url string
	tr  *http.Transport
	// check decodes lastseend's answer and counts what it accepted.
	check bool
}

func newClient(baseURL string, concurrency int, check bool) *client {
	tr := &http.Transport{
		MaxIdleConns:        concurrency,
		MaxIdleConnsPerHost: concurrency,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	return &client{hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}, url: baseURL + "/api/v1/heartbeats", tr: tr, check: check}
}

func (c *client) close() { c.tr.CloseIdleConnections() }

// tally is what one worker saw.
type tally struct {
	ok, failed int64
	beats      int64 // beats the service accepted (ok requests × batch for the minimal handler)
	duplicates int64
	lat        []time.Duration
	firstErr   string
}

func (t *tally) merge(o *tally) {
	t.ok += o.ok
	t.failed += o.failed
	t.beats += o.beats
	t.duplicates += o.duplicates
	t.lat = append(t.lat, o.lat...)
	if t.firstErr == "" {
		t.firstErr = o.firstErr
	}
}

func (t *tally) fail(msg string) {
	t.failed++
	if t.firstErr == "" {
		t.firstErr = msg
	}
}

// post sends the device's next batch (seqs rising from its last) and records
// the outcome. Only one goroutine at a time may post for d.
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
	t.lat = append(t.lat, time.Since(started))
	switch {
	case resp.StatusCode != http.StatusOK:
		t.fail(fmt.Sprintf("HTTP %d", resp.StatusCode))
	case err != nil:
		t.fail("decode answer: " + err.Error())
	case !c.check:
		t.ok++
		t.beats += int64(batch)
	case res.Accepted+res.Duplicates != batch || len(res.Rejected) > 0:
		t.fail(fmt.Sprintf("device %d: accepted %d, duplicates %d, rejected %v of %d", d.id, res.Accepted, res.Duplicates, res.Rejected, batch))
	default:
		t.ok++
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

// pacedLoop sends rate requests a second, open-loop: request i is due at
// start + i/rate whatever happened to the others, and its latency counts
// from when it was due, so a stall shows in the figures instead of quietly
// lowering the offered load. Each request takes whichever device is free
// (one request per device at a time keeps its seqs in order); tying slots to
// fixed devices would make one slow answer hold up unrelated requests.
func pacedLoop(ctx context.Context, c *client, devs []*device, workers, batch int, rate float64, dur time.Duration) (*tally, time.Duration) {
	total := int64(rate * dur.Seconds())
	period := time.Duration(float64(time.Second) / rate)
	ctx, cancel := context.WithTimeout(ctx, dur+30*time.Second)
	defer cancel()
	free := make(chan *device, len(devs))
	for _, d := range devs {
		free <- d
	}
	var next atomic.Int64
	parts := make([]*tally, workers)
	var wg sync.WaitGroup
	start := time.Now().Add(5 * time.Millisecond)
	for w := range workers {
		parts[w] = &tally{lat: make([]time.Duration, 0, int(total)/workers+1)}
		wg.Go(func() {
			t := parts[w]
			timer := time.NewTimer(0)
			defer timer.Stop()
			for n := 0; n < maxRequestsPerWorker && ctx.Err() == nil; n++ {
				i := next.Add(1) - 1
				if i >= total {
					return
				}
				due := start.Add(time.Duration(i) * period)
				if wait := time.Until(due); wait > 0 {
					timer.Reset(wait)
					select {
					case <-timer.C:
					case <-ctx.Done():
						return
					}
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
	elapsed := time.Since(start)
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

// pair is the minimal handler and lastseend, each with its own client of
// identical settings. The minimal handler gets devices of its own so that
// lastseend's seqs stay continuous; tokens and seqs mean nothing to it.
func pair(c Config, svc *service, f *fleet) (minimal, ours *target, stop func(), err error) {
	min, err := startServer(minimalHandler(), nil)
	if err != nil {
		return nil, nil, nil, err
	}
	shadow := make([]*device, len(f.devices))
	for i, d := range f.devices {
		shadow[i] = &device{id: d.id, token: d.token}
	}
	minimal = &target{cl: newClient(min.url, c.Concurrency, false), devs: shadow}
	ours = &target{cl: newClient(svc.http.url, c.Concurrency, true), devs: f.devices}
	stop = func() {
		minimal.cl.close()
		ours.cl.close()
		min.close()
	}
	return minimal, ours, stop, nil
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

// runThroughput is phase (a): the minimal handler and lastseend as fast as
// they answer, after a warm-up each, with the same client settings and
// concurrency.
func runThroughput(ctx context.Context, c Config, svc *service, f *fleet) (*ThroughputResult, error) {
	minimal, ours, stop, err := pair(c, svc, f)
	if err != nil {
		return nil, err
	}
	defer stop()
	run := func(_ int, t *target, d time.Duration) (*tally, time.Duration) {
		return closedLoop(ctx, t.cl, t.devs, c.Concurrency, c.BatchSize, d)
	}
	if c.Warmup > 0 {
		run(0, minimal, c.Warmup)
		run(1, ours, c.Warmup)
	}
	if err := alternate(ctx, c, []*target{minimal, ours}, run); err != nil {
		return nil, err
	}
	res := ThroughputResult{Minimal: statsOf(&minimal.t, minimal.spent), Ours: statsOf(&ours.t, ours.spent)}
	if res.Minimal.PerSecond > 0 {
		res.Ratio = res.Ours.PerSecond / res.Minimal.PerSecond
	}
	return &res, nil
}

// runPaced is phase (b): lastseend paced at the given rate, with two
// references paced alike in alternating rounds: the minimal handler at the
// same rate (the tail the machine adds at that rate), and, when phase (a)
// measured it, the minimal handler at half of its own max (the tail any
// handler shows at the same relative load, client and server sharing the
// CPUs).
func runPaced(ctx context.Context, c Config, svc *service, f *fleet) (*PacedResult, error) {
	if c.PacedRate <= 0 {
		return nil, fmt.Errorf("no rate to pace at")
	}
	minimal, ours, stop, err := pair(c, svc, f)
	if err != nil {
		return nil, err
	}
	defer stop()
	ts := []*target{ours, minimal}
	rates := []float64{c.PacedRate, c.PacedRate}
	var own *target
	if c.minimalMax > 0 {
		own = &target{cl: minimal.cl, devs: minimal.devs}
		ts, rates = append(ts, own), append(rates, c.minimalMax/2)
	}
	run := func(i int, t *target, d time.Duration) (*tally, time.Duration) {
		return pacedLoop(ctx, t.cl, t.devs, c.Concurrency, c.BatchSize, rates[i]/float64(c.BatchSize), d)
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
