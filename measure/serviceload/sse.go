package serviceload

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/ssestream"
)

// openStream opens GET /api/v1/events on a raw TCP connection and reads the
// response head. The client side of an idle stream is then just a socket:
// no goroutine, no buffer, so thousands of them cost the load little.
func openStream(addr, token string) (net.Conn, *http.Response, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, nil, fmt.Errorf("dial: %w", err)
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	_, err = fmt.Fprintf(conn, "GET /api/v1/events HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nAccept: text/event-stream\r\n\r\n", addr, token)
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("send request: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 2048), nil)
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		conn.Close()
		return nil, nil, fmt.Errorf("events: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, resp, nil
}

// settle gives the service's goroutines a moment to reach their idle state
// (subscribed, flushed, blocked on the next event) before memory is read.
func settle() { time.Sleep(time.Second) }

// steadyRSS is the service's RSS once it holds still: the lowest of a few
// samples, so a collection cycle caught half way does not count.
func steadyRSS(svc *lastseend) uint64 {
	var low uint64
	for i := range 5 {
		if i > 0 {
			time.Sleep(200 * time.Millisecond)
		}
		if r := svc.mem().rss; i == 0 || r < low {
			low = r
		}
	}
	return low
}

// runIdleStreams is phase (c): the service's memory per idle SSE stream,
// read from outside (its RSS as the kernel counts it, and its Go heap and
// stacks from its /metrics), on a freshly started service.
func runIdleStreams(ctx context.Context, c Config, svc *lastseend, f *fleet) (*IdleSSEResult, error) {
	n := c.Streams
	hc := &http.Client{Timeout: 5 * time.Second}
	settle()
	before, goBefore := steadyRSS(svc), scrapeGoMem(ctx, hc, svc.url)
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < n; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		conn, _, err := openStream(svc.addr, f.users[i%len(f.users)].token)
		if err != nil {
			return nil, fmt.Errorf("stream %d: %w", i, err)
		}
		conns = append(conns, conn)
	}
	settle()
	after, goAfter := steadyRSS(svc), scrapeGoMem(ctx, hc, svc.url)
	return &IdleSSEResult{
		Streams:  n,
		RSSBytes: perItem(after, before, n),
		GoBytes:  perItem(goAfter.heapInuse+goAfter.stackInuse, goBefore.heapInuse+goBefore.stackInuse, n),
		RSSTotal: after,
	}, nil
}

func perItem(after, before uint64, n int) float64 {
	return (float64(after) - float64(before)) / float64(n)
}

// subscriber reads one SSE stream and stamps when each change arrives.
type subscriber struct {
	conn net.Conn
	body io.ReadCloser
}

// fanOut tracks which change is in flight and who has seen it.
type fanOut struct {
	// event is the SSE event name that carries the changes; deviceKey is
	// how the changing device (or its user) appears in an event's data.
	event     string
	deviceKey string

	mu      sync.Mutex
	change  int    // index of the change in flight, -1 between changes
	wantKey string // how its status appears in an event's data
	sent    time.Time
	seen    []int // per subscriber: the last change it recorded
	lat     []time.Duration
	pending atomic.Int64
	done    chan struct{} // closed when pending reaches zero
}

// record notes an event a subscriber read at at. Matching is by substring,
// not by decoding the JSON: the subscribers share the CPU with the service,
// and their own cost should weigh on the figures as little as possible.
func (fo *fanOut) record(sub int, ev ssestream.Event, at time.Time) {
	if ev.Event != fo.event || !strings.Contains(ev.Data, fo.deviceKey) {
		return
	}
	fo.mu.Lock()
	defer fo.mu.Unlock()
	if fo.change < 0 || fo.seen[sub] >= fo.change || !strings.Contains(ev.Data, fo.wantKey) {
		return
	}
	fo.seen[sub] = fo.change
	fo.lat = append(fo.lat, at.Sub(fo.sent))
	if fo.pending.Add(-1) == 0 {
		close(fo.done)
	}
}

// statusKey is the "status" member of a presence event's JSON (the leading
// quote keeps "user_status" from matching).
func statusKey(st presence.State) string { return `"status":"` + string(st) + `"` }

// subscriberBuffer is each subscriber's read buffer: a presence event is a
// few hundred bytes, and thousands of subscribers share the machine with the
// service being measured. A longer line still parses, just with a copy.
const subscriberBuffer = 1024

// readEvents reads the stream with the shared ssestream reader until it ends, handing
// every event to fo stamped with when it was read.
func readEvents(sub int, body io.Reader, fo *fanOut) {
	er := ssestream.NewReaderSize(body, subscriberBuffer)
	for {
		f, err := er.Next()
		if err != nil {
			return // the phase closed the stream, or the service ended it
		}
		if !f.Keepalive {
			fo.record(sub, f.Event, time.Now())
		}
	}
}

// runFanOut is phase (d): one device flips between active and idle; each
// flip must reach every subscriber.
func runFanOut(ctx context.Context, c Config, svc *lastseend, f *fleet) (*FanOutResult, error) {
	dev := f.fan
	fo := &fanOut{event: "presence", deviceKey: fmt.Sprintf(`"device_id":%d,`, dev.id), change: -1, seen: make([]int, c.Subscribers)}
	for i := range fo.seen {
		fo.seen[i] = -1
	}
	subs := make([]subscriber, 0, c.Subscribers)
	var readers sync.WaitGroup
	defer func() {
		for _, s := range subs {
			s.conn.Close()
		}
		readers.Wait()
	}()
	for i := range c.Subscribers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		conn, resp, err := openStream(svc.addr, f.users[i%len(f.users)].token)
		if err != nil {
			return nil, fmt.Errorf("subscriber %d: %w", i, err)
		}
		subs = append(subs, subscriber{conn: conn, body: resp.Body})
		readers.Go(func() { readEvents(i, resp.Body, fo) })
	}
	settle()
	return runChanges(ctx, c, svc, dev, fo, c.Subscribers)
}

// runChanges flips dev between active and idle c.Changes times; each flip
// must reach all n subscribers reading into fo.
func runChanges(ctx context.Context, c Config, svc *lastseend, dev *device, fo *fanOut, n int) (*FanOutResult, error) {
	cl := newClient(svc.url, 1, true)
	defer cl.close()
	res := &FanOutResult{Subscribers: n, Changes: c.Changes}
	var commit []time.Duration
	for k := range c.Changes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		want := presence.Active
		if k%2 == 1 {
			want = presence.Idle
		}
		fo.mu.Lock()
		fo.change, fo.wantKey, fo.sent = k, statusKey(want), time.Now()
		fo.lat = fo.lat[:0:0]
		fo.done = make(chan struct{})
		fo.pending.Store(int64(n))
		done := fo.done
		sent := fo.sent
		fo.mu.Unlock()

		t := &tally{}
		postState(ctx, cl, dev, want, t, sent)
		if t.failed > 0 {
			return nil, fmt.Errorf("change %d: post: %s", k, t.firstErr)
		}
		commit = append(commit, t.lat...)

		select {
		case <-done:
		case <-time.After(c.ChangeTimeout):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		fo.mu.Lock()
		fo.change = -1
		res.Missed += int(fo.pending.Load())
		res.lat = append(res.lat, fo.lat...)
		fo.mu.Unlock()
		time.Sleep(20 * time.Millisecond) // let the streams go quiet between changes
	}
	res.finish(commit)
	return res, nil
}

// postState posts one beat of the given state for d.
func postState(ctx context.Context, c *client, d *device, st presence.State, t *tally, started time.Time) {
	now := time.Now()
	d.seq++
	body, _ := json.Marshal(presence.Batch{SentAt: now, Beats: []presence.Beat{{Seq: d.seq, At: now, State: st}}})
	c.postBody(ctx, d, body, 1, t, started)
}
