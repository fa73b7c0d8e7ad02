package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/httpapi"
)

// openStream opens the event stream on a bare connection and reads its
// head and retry hint.
func openStream(t *testing.T, base, token string) (net.Conn, *bufio.Reader) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /api/v1/events HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nAccept: text/event-stream\r\n\r\n", u.Host, token)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("open the stream: %v %v", resp, err)
	}
	body := bufio.NewReader(resp.Body)
	if line, err := body.ReadString('\n'); err != nil || !strings.HasPrefix(line, "retry:") {
		t.Fatalf("stream began %q, %v", line, err)
	}
	return conn, body
}

// TestRevokeFromCommandLineEndsStream: `lastseend device revoke` (its own
// store, as from another process) ends the device's open stream within a
// second; before, the revoked token went on receiving everyone's presence.
func TestRevokeFromCommandLineEndsStream(t *testing.T) {
	ctx := context.Background()
	now := runningClock()
	db := filepath.Join(t.TempDir(), "lastseen.db")
	srv := mustServe(t, db, now, nil)
	userTok := mustToken(t, mustCmd(t, now, "user", "add", "alice", "--db", db), "ls_usr_")
	devTok := mustToken(t, mustCmd(t, now, "device", "add", "alice", "laptop", "--db", db), "ls_dev_")
	devs, err := httpapi.NewClient(srv.URL(), userTok, nil).Devices(ctx)
	if err != nil || len(devs.Devices) != 1 {
		t.Fatalf("devices: %+v, %v", devs, err)
	}
	conn, br := openStream(t, srv.URL(), devTok)

	mustCmd(t, now, "device", "revoke", "alice", strconv.FormatInt(devs.Devices[0].ID, 10), "--db", db)
	start := time.Now()
	_ = conn.SetReadDeadline(start.Add(time.Second))
	for {
		line, err := br.ReadString('\n')
		if err == nil {
			if strings.HasPrefix(line, "data:") {
				t.Errorf("the revoked device's stream received %q", line)
			}
			continue
		}
		if !errors.Is(err, io.EOF) {
			t.Fatalf("the stream did not end within a second of the revoke: %v", err)
		}
		t.Logf("stream ended %v after the revoke", time.Since(start).Round(time.Millisecond))
		return
	}
}

// TestServeCapsFlags: the caps have flags and LASTSEEN_* twins.
func TestServeCapsFlags(t *testing.T) {
	env := map[string]string{
		"LASTSEEN_MAX_CONNS": "100", "LASTSEEN_MAX_STREAMS": "50", "LASTSEEN_AUTH_FAIL_RATE": "2/10",
		"LASTSEEN_MAX_DEVICES_PER_USER": "7",
	}
	m := NewMain()
	m.Stdout, m.Stderr = io.Discard, io.Discard
	m.LookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	if err := m.ParseFlags(context.Background(), []string{"serve", "--max-streams-per-user", "5"}); err != nil {
		t.Fatal(err)
	}
	want := Caps{MaxConns: 100, MaxStreams: 50, MaxStreamsPerUser: 5, MaxDevicesPerUser: 7, FailedAuthRate: httpapi.Rate{PerSecond: 2, Burst: 10},
		MaxPublicStreamsPerAddr: httpapi.DefaultMaxPublicStreamsPerAddr}
	if m.Config.Caps != want {
		t.Errorf("caps %+v, want %+v", m.Config.Caps, want)
	}
	for _, bad := range []string{"--max-conns=-1", "--max-streams=0", "--max-streams-per-user=0", "--max-devices-per-user=0", "--auth-fail-rate=0/1", "--max-public-streams-per-addr=0"} {
		m := NewMain()
		m.Stdout, m.Stderr, m.LookupEnv = io.Discard, io.Discard, noEnv
		if err := m.ParseFlags(context.Background(), []string{"serve", bad}); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// TestConnCaps: the connection cap stays under the descriptor limit with
// room to spare, and streams stay under the connection cap.
func TestConnCaps(t *testing.T) {
	c := DefaultCaps().caps()
	if soft, ok := openFileLimit(); ok {
		if uint64(c.conns) >= soft || c.fdLimit != soft {
			t.Errorf("caps %+v with a descriptor limit of %d", c, soft)
		}
		huge := DefaultCaps()
		huge.MaxConns = int(min(soft, 1<<30)) + 1
		if hc := huge.caps(); !hc.clamped || hc.conns != c.conns {
			t.Errorf("--max-conns above the limit: %+v, want clamped to %d", hc, c.conns)
		}
	}
	if c.streams > c.conns-c.conns/4 {
		t.Errorf("streams %d may take every connection of %d", c.streams, c.conns)
	}
	small := Caps{MaxConns: 40, MaxStreams: 10_000}
	if sc := small.caps(); sc.conns != 40 || sc.streams != 30 {
		t.Errorf("caps of 40 connections: %+v, want 40 and 30 streams", sc)
	}
}

// TestServeConnectionCap: over --max-conns a client is answered 503 at
// once instead of waiting on a full server.
func TestServeConnectionCap(t *testing.T) {
	now := runningClock()
	db := filepath.Join(t.TempDir(), "lastseen.db")
	srv := mustServe(t, db, now, func(m *Main) { m.Config.Caps.MaxConns = 2 })
	u, _ := url.Parse(srv.URL())
	for range 2 {
		c, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Get(srv.URL() + "/healthz")
	if err != nil {
		t.Fatalf("over the cap: %v, want an answer", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("over the cap: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// TestServerTimeouts: a slow client cannot hold a connection forever, and
// no write timeout cuts event streams.
func TestServerTimeouts(t *testing.T) {
	srv := mustServe(t, filepath.Join(t.TempDir(), "lastseen.db"), runningClock(), nil)
	h := srv.HTTP
	if h.ReadHeaderTimeout <= 0 || h.ReadTimeout <= 0 || h.IdleTimeout <= 0 || h.WriteTimeout != 0 {
		t.Errorf("timeouts: read header %v, read %v, idle %v, write %v", h.ReadHeaderTimeout, h.ReadTimeout, h.IdleTimeout, h.WriteTimeout)
	}
}
