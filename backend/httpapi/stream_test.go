package httpapi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/sqlite"
	"github.com/lastseen/lastseen/backend/ssestream"
)

// rawStream opens /api/v1/events on a bare TCP connection, as a browser
// would, and returns the connection with the parsed response head.
func rawStream(t *testing.T, e *env, token string) (net.Conn, *http.Response, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", e.ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET /api/v1/events HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer %s\r\nAccept: text/event-stream\r\n\r\n", token)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read the response head: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	return conn, resp, bufio.NewReader(resp.Body)
}

// readUntil reads lines until one equals want, failing on an error.
func readUntil(t *testing.T, br *bufio.Reader, want string) []string {
	t.Helper()
	var lines []string
	for range 1000 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("waiting for %q after %q: %v", want, lines, err)
		}
		line = strings.TrimSuffix(line, "\n")
		lines = append(lines, line)
		if line == want {
			return lines
		}
	}
	t.Fatalf("no %q in %q", want, lines)
	return nil
}

func gauge(t *testing.T, e *env) string {
	t.Helper()
	for line := range strings.SplitSeq(string(e.do(request{method: "GET", path: "/metrics"}).body), "\n") {
		if strings.HasPrefix(line, "lastseen_sse_streams ") {
			return line
		}
	}
	t.Fatal("no lastseen_sse_streams in /metrics")
	return ""
}

func TestEventsOwnTheirConnection(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.KeepAlive = 30 * time.Millisecond })
	ann, tok := e.user("ann")
	laptop, dev := e.device(ann, "laptop")
	conn, resp, br := rawStream(t, e, tok)

	t.Run("a plain HTTP/1.1 head that runs to the end of the connection", func(t *testing.T) {
		if len(resp.TransferEncoding) != 0 || resp.ContentLength != -1 || !resp.Close {
			t.Errorf("transfer-encoding %v, content-length %d, close %v; want none, unknown, close",
				resp.TransferEncoding, resp.ContentLength, resp.Close)
		}
		for k, v := range map[string]string{
			"Content-Type":           "text/event-stream",
			"Cache-Control":          "no-cache",
			"X-Content-Type-Options": "nosniff",
			"X-Accel-Buffering":      "no",
		} {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s: %q, want %q", k, got, v)
			}
		}
		if _, err := http.ParseTime(resp.Header.Get("Date")); err != nil {
			t.Errorf("Date %q: %v", resp.Header.Get("Date"), err)
		}
		if lines := readUntil(t, br, ""); lines[0] != "retry: 2000" {
			t.Errorf("began with %q", lines)
		}
	})
	within(t, "an open stream", func() bool { return e.hub.subscribers() == 1 })
	if g := gauge(t, e); g != "lastseen_sse_streams 1" {
		t.Errorf("gauge %q with one stream", g)
	}

	t.Run("events", func(t *testing.T) {
		e.beats(dev, beat(1, T0, presence.Active))
		s := &EventStream{body: resp.Body, r: ssestream.NewReader(br)}
		// A first beat opens a session and changes presence, in either order.
		got := map[string]SSEEvent{}
		for len(got) < 2 {
			ev, err := s.Next()
			if err != nil {
				t.Fatalf("after %v: %v", got, err)
			}
			got[ev.Event] = ev
		}
		p, err := got["presence"].Presence()
		if err != nil || p.DeviceID != laptop.ID || p.Status != presence.Active {
			t.Errorf("presence %+v (%v)", p, err)
		}
		sess, err := got["session"].Session()
		if err != nil || sess.Handle != "ann" || sess.DeviceID != laptop.ID {
			t.Errorf("session %+v (%v)", sess, err)
		}
	})

	t.Run("keepalives", func(t *testing.T) {
		readUntil(t, br, ": keepalive")
		readUntil(t, br, ": keepalive")
	})

	t.Run("ends when the client hangs up", func(t *testing.T) {
		conn.Close()
		within(t, "the hub to forget the stream", func() bool { return e.hub.subscribers() == 0 })
		within(t, "the gauge to drop", func() bool { return gauge(t, e) == "lastseen_sse_streams 0" })
	})
}

func TestEventsOwnTheirConnectionEndWithServerClose(t *testing.T) {
	e := newEnv(t)
	_, tok := e.user("ann")
	conn, _, br := rawStream(t, e, tok)
	readUntil(t, br, "")
	within(t, "an open stream", func() bool { return e.hub.subscribers() == 1 })

	e.srv.Close() // returns once the stream has ended
	if n := e.hub.subscribers(); n != 0 {
		t.Errorf("%d streams after Close", n)
	}
	if g := gauge(t, e); g != "lastseen_sse_streams 0" {
		t.Errorf("gauge %q after Close", g)
	}
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Errorf("after Close the stream read %q, %v; want a clean end", rest, err)
	}
}

func TestEventsHead(t *testing.T) {
	e := newEnv(t)
	_, tok := e.user("ann")
	resp := e.do(request{method: "HEAD", path: "/api/v1/events", token: tok})
	if resp.status != 200 || resp.header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("HEAD: %d %q", resp.status, resp.header.Get("Content-Type"))
	}
	if n := e.hub.subscribers(); n != 0 {
		t.Errorf("HEAD left %d streams", n)
	}
}

// Over TLS, HTTP/1.1 streams take their connection over like plain ones;
// HTTP/2 streams cannot, and stay with net/http.
func TestEventsOverTLS(t *testing.T) {
	for _, tt := range []struct {
		name  string
		http2 bool
	}{{"HTTP/1.1", false}, {"HTTP/2", true}} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ann, tok := e.user("ann")
			_, dev := e.device(ann, "laptop")
			ts := httptest.NewUnstartedServer(e.srv)
			ts.EnableHTTP2 = tt.http2
			ts.StartTLS()
			defer ts.Close()

			ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/api/v1/events", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 || (resp.ProtoMajor == 2) != tt.http2 || resp.Close == tt.http2 {
				t.Fatalf("status %d over %s (close %v)", resp.StatusCode, resp.Proto, resp.Close)
			}
			s := &EventStream{body: resp.Body, r: ssestream.NewReader(resp.Body)}
			within(t, "an open stream", func() bool { return e.hub.subscribers() == 1 })
			e.beats(dev, beat(1, T0, presence.Active))
			if p, err := nextEvent(t, s, "presence").Presence(); err != nil || p.Handle != "ann" {
				t.Errorf("presence %+v (%v)", p, err)
			}
			e.srv.Close()
			if _, err := s.Next(); !errors.Is(err, io.EOF) {
				t.Errorf("after Close: %v, want EOF", err)
			}
		})
	}
}

// loopServer is a Server for driving a stream's loop directly, inside a
// synctest bubble; the store is only there because a Server needs one.
func loopServer(t *testing.T, st presence.Store) *Server {
	t.Helper()
	s, err := New(Config{Store: st, Hub: NewHub(16, nil)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// pipeStream starts a stream of user 1 whose connection is one end of a
// pipe; the other end is the client's.
func pipeStream(t *testing.T, s *Server) (client net.Conn, st *stream) {
	t.Helper()
	srvEnd, client := net.Pipe()
	if err := s.streamStarts(caller{Principal: presence.Principal{UserID: 1, Kind: presence.UserToken}}); err != nil {
		t.Fatalf("the server refused a stream: %v", err)
	}
	past, sub := s.hub.subscribe(0, false, 1, 0)
	st = &stream{srv: s, sub: sub, handle: "ann", out: connOut{srvEnd}}
	go st.serve(nil, past)
	return client, st
}

// lines reads the client's end until it fails, sending each line.
func lines(conn net.Conn) <-chan string {
	out := make(chan string, 64)
	go func() {
		defer close(out)
		br := bufio.NewReader(conn)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			out <- strings.TrimSuffix(line, "\n")
		}
	}()
	return out
}

func TestStreamLoop(t *testing.T) {
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "lastseen.db"), presence.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()

	t.Run("events and keepalives until Close", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := loopServer(t, store)
			client, _ := pipeStream(t, s)
			got := lines(client)
			synctest.Wait()
			s.hub.Publish(ev(7, presence.EventPresence, 2))
			time.Sleep(DefaultKeepAlive)
			synctest.Wait()
			s.Close()
			var all []string
			for l := range got {
				all = append(all, l)
			}
			want := []string{"retry: 2000", "", "id: 7", "event: presence"}
			if len(all) < 8 || strings.Join(all[:4], "|") != strings.Join(want, "|") || all[6] != ": keepalive" {
				t.Errorf("the client read %q", all)
			}
			if s.hub.subscribers() != 0 {
				t.Errorf("the hub still has the stream")
			}
		})
	})

	t.Run("a client that hung up is noticed at the next keepalive", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := loopServer(t, store)
			client, _ := pipeStream(t, s)
			got := lines(client)
			synctest.Wait()
			client.Close()
			for range got {
			}
			if s.hub.subscribers() != 1 {
				t.Fatal("the stream ended before a keepalive")
			}
			start := time.Now()
			time.Sleep(DefaultKeepAlive)
			synctest.Wait()
			if s.hub.subscribers() != 0 {
				t.Errorf("the stream outlived its client by %v", time.Since(start))
			}
			s.Close()
		})
	})

	t.Run("a client that stops reading is cut off after the write timeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := loopServer(t, store)
			client, _ := pipeStream(t, s)
			defer client.Close()
			// Nobody reads: the first write (the retry hint) blocks.
			time.Sleep(streamWriteTimeout - time.Millisecond)
			synctest.Wait()
			if s.hub.subscribers() != 1 {
				t.Fatal("the stream ended before its write timed out")
			}
			time.Sleep(time.Millisecond)
			synctest.Wait()
			if s.hub.subscribers() != 0 {
				t.Errorf("a stalled client pins its stream past the write timeout")
			}
			s.Close()
		})
	})

	t.Run("a dropped stream sends what it still can, then ends", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := loopServer(t, store) // ring 16: dropped at 13 behind
			client, st := pipeStream(t, s)
			br := bufio.NewReader(client)
			readLine := func() string {
				l, err := br.ReadString('\n')
				if err != nil {
					t.Fatalf("read: %v", err)
				}
				return strings.TrimSuffix(l, "\n")
			}
			readLine()
			readLine() // the retry hint
			// The first event's write blocks until the client reads; the
			// next thirteen pile up behind it, one more than the hub allows.
			s.hub.Publish(ev(1, presence.EventPresence, 2))
			synctest.Wait()
			for i := range int64(13) {
				s.hub.Publish(ev(i+2, presence.EventPresence, 2))
			}
			synctest.Wait()
			if !s.hub.wasDropped(st.sub) {
				t.Fatal("not dropped")
			}
			var ids []string
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					break
				}
				if id, ok := strings.CutPrefix(strings.TrimSuffix(l, "\n"), "id: "); ok {
					ids = append(ids, id)
				}
			}
			if strings.Join(ids, ",") != "1,2,3,4,5,6,7,8,9,10,11,12,13" {
				t.Errorf("the dropped stream sent %v, want 1..13", ids)
			}
			s.Close()
			if !strings.Contains(gaugeText(t, s), "lastseen_sse_dropped_total 1") {
				t.Errorf("the drop is not counted")
			}
		})
	})
}

// gaugeText scrapes a server's metrics without a network.
func gaugeText(t *testing.T, s *Server) string {
	t.Helper()
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}
