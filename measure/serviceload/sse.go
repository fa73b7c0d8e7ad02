package serviceload

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/ssestream"
)

// openStream opens GET /api/v1/events on a raw TCP connection and reads the
// response head. The client side of an idle stream is then just a socket:
// no goroutine, no buffer, so memory measured in this process is the
// server's, plus a socket per stream that is measured separately.
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

// memSample is the process's memory after a full collection.
type memSample struct {
	heap  uint64 // live heap
	stack uint64 // goroutine stacks in use
	rss   uint64 // resident set, from /proc/self/status (0 where there is none)
}

func sampleMem() memSample {
	// Two collections settle finalizers; FreeOSMemory hands freed spans back
	// so RSS reflects what is live, not what was once allocated.
	for range 4 {
		runtime.GC()
	}
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSample{heap: ms.HeapAlloc, stack: ms.StackInuse, rss: vmRSS()}
}

func vmRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

func perItem(after, before uint64, n int) float64 {
	return (float64(after) - float64(before)) / float64(n)
}

// settle gives the server's goroutines a moment to reach their idle state
// (subscribed, flushed, blocked on the next event) before memory is read.
func settle() { time.Sleep(300 * time.Millisecond) }

// runIdleStreams is phase (c): memory per idle SSE stream.
func runIdleStreams(ctx context.Context, c Config, svc *service, f *fleet) (*IdleSSEResult, error) {
	n := c.Streams
	// Cost of n bare connection pairs (client socket + accepted socket, no
	// goroutine on either side): the client's share of a stream is half of it.
	rawPair, err := rawConnCost(n)
	if err != nil {
		return nil, fmt.Errorf("raw connections: %w", err)
	}

	before := sampleMem()
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
		conn, _, err := openStream(svc.http.addr, f.userToken)
		if err != nil {
			return nil, fmt.Errorf("stream %d: %w", i, err)
		}
		conns = append(conns, conn)
	}
	settle()
	after := sampleMem()
	if c.HeapProfile != nil {
		if err := pprof.Lookup("heap").WriteTo(c.HeapProfile, 0); err != nil {
			return nil, fmt.Errorf("heap profile: %w", err)
		}
	}

	r := &IdleSSEResult{Streams: n}
	r.GrossGoBytes = perItem(after.heap+after.stack, before.heap+before.stack, n)
	r.GrossRSSBytes = perItem(after.rss, before.rss, n)
	r.ClientGoBytes = rawPair.goBytes / 2
	r.ClientRSSBytes = rawPair.rssBytes / 2
	r.ServerGoBytes = r.GrossGoBytes - r.ClientGoBytes
	r.ServerRSSBytes = r.GrossRSSBytes - r.ClientRSSBytes
	r.GrossStackBytes = perItem(after.stack, before.stack, n)
	r.Goroutines = runtime.NumGoroutine()
	return r, nil
}

type rawCost struct{ goBytes, rssBytes float64 }

// rawConnCost measures n loopback connection pairs that do nothing.
func rawConnCost(n int) (rawCost, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return rawCost{}, err
	}
	defer ln.Close()
	accepted := make(chan net.Conn, n)
	go func() {
		for range n {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	before := sampleMem()
	var clients, servers []net.Conn
	defer func() {
		for _, c := range append(clients, servers...) {
			c.Close()
		}
	}()
	for range n {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
		if err != nil {
			return rawCost{}, err
		}
		clients = append(clients, c)
	}
	deadline := time.After(30 * time.Second)
	for len(servers) < n {
		select {
		case c := <-accepted:
			servers = append(servers, c)
		case <-deadline:
			return rawCost{}, errors.New("accepting raw connections timed out")
		}
	}
	settle()
	after := sampleMem()
	return rawCost{
		goBytes:  perItem(after.heap+after.stack, before.heap+before.stack, n),
		rssBytes: perItem(after.rss, before.rss, n),
	}, nil
}

// subscriber reads one SSE stream and stamps when each change arrives.
type subscriber struct {
	conn net.Conn
	body io.ReadCloser
}

// fanOut tracks which change is in flight and who has seen it.
type fanOut struct {
	// deviceKey is how the changing device appears in an event's data.
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
	if ev.Event != "presence" || !strings.Contains(ev.Data, fo.deviceKey) {
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
func runFanOut(ctx context.Context, c Config, svc *service, f *fleet) (*FanOutResult, error) {
	dev, err := f.extra(ctx, svc.store, "fan-out")
	if err != nil {
		return nil, err
	}
	fo := &fanOut{deviceKey: fmt.Sprintf(`"device_id":%d,`, dev.id), change: -1, seen: make([]int, c.Subscribers)}
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
		conn, resp, err := openStream(svc.http.addr, f.userToken)
		if err != nil {
			return nil, fmt.Errorf("subscriber %d: %w", i, err)
		}
		subs = append(subs, subscriber{conn: conn, body: resp.Body})
		readers.Go(func() { readEvents(i, resp.Body, fo) })
	}
	settle()

	cl := newClient(svc.http.url, 1, true)
	defer cl.close()
	res := &FanOutResult{Subscribers: c.Subscribers, Changes: c.Changes}
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
		fo.pending.Store(int64(c.Subscribers))
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
