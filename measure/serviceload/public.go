package serviceload

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/ssestream"
)

// Phase (e): the public status stream, GET /api/v1/public/{handle}/events,
// as a popular status page would have it: many anonymous subscribers on
// one handle. It measures the service's memory per idle public stream and
// how long a state change takes to reach them all.

// TargetBytesPerPublicStream is the most an idle public stream may cost.
const TargetBytesPerPublicStream = 10 << 10

// PublicResult is phase (e): memory per idle public stream (as phase (c)
// reads it) and the fan-out of state changes to them (as phase (d)).
type PublicResult struct {
	Handle string        `json:"handle"`
	Idle   IdleSSEResult `json:"idle"`
	FanOut *FanOutResult `json:"fan_out"`
	Addrs  int           `json:"client_addrs"` // loopback addresses the subscribers came from
}

// publicAddr is the loopback address subscriber i connects from. lastseend
// caps public streams per client address (as shipped, see
// httpapi.DefaultMaxPublicStreamsPerAddr), so the subscribers spread over
// as many addresses of 127.0.0.0/8 as that needs, as visitors would come
// from addresses of their own, and the service runs with its defaults.
func publicAddr(i int) net.IP {
	a := i / httpapi.DefaultMaxPublicStreamsPerAddr
	return net.IPv4(127, 1, byte(a/250), byte(a%250+1))
}

// openPublicStream opens a public stream from a local address of its own
// on a raw TCP connection and reads the response head, like openStream.
func openPublicStream(addr, handle string, from net.IP) (net.Conn, *http.Response, error) {
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: from}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("dial from %s (this phase needs 127.0.0.0/8 on loopback): %w", from, err)
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	_, err = fmt.Fprintf(conn, "GET /api/v1/public/%s/events HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\nOrigin: https://status.example\r\n\r\n", handle, addr)
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
		return nil, nil, fmt.Errorf("public events: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, resp, nil
}

// runPublic is phase (e), on a freshly restarted service: c.Subscribers
// public streams on the handle of the device phase (d) flips, idle first
// (memory), then c.Changes state changes (latency).
func runPublic(ctx context.Context, c Config, svc *lastseend, f *fleet) (*PublicResult, error) {
	n := c.Subscribers
	hc := &http.Client{Timeout: 5 * time.Second}
	// The changes start with active: the device starts idle, whatever
	// phase (d) left it at, so the first one is a change too.
	cl := newClient(svc.url, 1, true)
	t := &tally{}
	postState(ctx, cl, f.fan, presence.Idle, t, time.Now())
	cl.close()
	if t.failed > 0 {
		return nil, fmt.Errorf("idle beat: %s", t.firstErr)
	}
	settle()
	before, goBefore := steadyRSS(svc), scrapeGoMem(ctx, hc, svc.url)

	fo := &fanOut{event: "status", deviceKey: fmt.Sprintf(`"handle":%q`, f.fanHandle), change: -1, seen: make([]int, n)}
	for i := range fo.seen {
		fo.seen[i] = -1
	}
	// Each stream's first event is the current view; the phase waits for
	// all of them before it reads memory, so every stream is set up.
	var first sync.WaitGroup
	first.Add(n)
	subs := make([]subscriber, 0, n)
	var readers sync.WaitGroup
	defer func() {
		for _, s := range subs {
			s.conn.Close()
		}
		readers.Wait()
	}()
	for i := range n {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		conn, resp, err := openPublicStream(svc.addr, f.fanHandle, publicAddr(i))
		if err != nil {
			return nil, fmt.Errorf("public subscriber %d: %w", i, err)
		}
		subs = append(subs, subscriber{conn: conn, body: resp.Body})
		readers.Go(func() { readPublicEvents(i, resp.Body, fo, first.Done) })
	}
	waited := make(chan struct{})
	go func() { first.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(c.ChangeTimeout):
		return nil, fmt.Errorf("not every public stream had its first view within %s", c.ChangeTimeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	settle()
	after, goAfter := steadyRSS(svc), scrapeGoMem(ctx, hc, svc.url)
	res := &PublicResult{
		Handle: f.fanHandle,
		Idle: IdleSSEResult{
			Streams:  n,
			RSSBytes: perItem(after, before, n),
			GoBytes:  perItem(goAfter.heapInuse+goAfter.stackInuse, goBefore.heapInuse+goBefore.stackInuse, n),
			RSSTotal: after,
		},
		Addrs: (n + httpapi.DefaultMaxPublicStreamsPerAddr - 1) / httpapi.DefaultMaxPublicStreamsPerAddr,
	}
	fr, err := runChanges(ctx, c, svc, f.fan, fo, n)
	if err != nil {
		return nil, err
	}
	res.FanOut = fr
	return res, nil
}

// readPublicEvents reads a public stream, calling first once at its first
// event and handing every event after it to fo.
func readPublicEvents(sub int, body io.Reader, fo *fanOut, first func()) {
	er := ssestream.NewReaderSize(body, subscriberBuffer)
	started := false
	defer func() {
		if !started {
			first() // the stream ended before its first view: do not hang the phase
		}
	}()
	for {
		fr, err := er.Next()
		if err != nil {
			return
		}
		if fr.Keepalive {
			continue
		}
		if !started {
			started = true
			first()
			continue
		}
		fo.record(sub, fr.Event, time.Now())
	}
}
