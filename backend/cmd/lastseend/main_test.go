package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/backend/presence"
)

// runningClock is the service clock of in-process tests: real time moved
// to today's noon UTC, so daily totals never straddle a midnight.
func runningClock() func() time.Time {
	start := time.Now()
	base := start.UTC().Truncate(24 * time.Hour).Add(12 * time.Hour)
	return func() time.Time { return base.Add(time.Since(start)) }
}

func noEnv(string) (string, bool) { return "", false }

// lockedBuffer is an io.Writer the server's goroutines and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// mustServe runs `lastseend serve` in-process on 127.0.0.1:0 over db.
func mustServe(t *testing.T, db string, now func() time.Time, tweak func(*Main)) *Main {
	t.Helper()
	m := NewMain()
	logs := &lockedBuffer{}
	m.Stdout, m.Stderr, m.LookupEnv, m.Now = io.Discard, logs, noEnv, now
	ctx := context.Background()
	if err := m.ParseFlags(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--db", db}); err != nil {
		t.Fatal(err)
	}
	if tweak != nil {
		tweak(m)
	}
	if err := m.Run(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return m
}

// runCmd runs one command line through Main, as the binary would.
func runCmd(t *testing.T, now func() time.Time, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	m := NewMain()
	var out, errb bytes.Buffer
	m.Stdout, m.Stderr, m.Now = &out, &errb, now
	m.LookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	code = m.Main(context.Background(), args)
	return out.String(), errb.String(), code
}

// mustCmd runs a command that must succeed and returns its stdout.
func mustCmd(t *testing.T, now func() time.Time, args ...string) string {
	t.Helper()
	out, errs, code := runCmd(t, now, nil, args...)
	if code != 0 {
		t.Fatalf("lastseend %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// lastLine is the last line of a command's output, where tokens go.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func mustToken(t *testing.T, out, prefix string) string {
	t.Helper()
	tok := lastLine(out)
	if !strings.HasPrefix(tok, prefix) || strings.ContainsAny(tok, " \t") || len(tok) < 40 {
		t.Fatalf("last line of output is not a %s… token alone:\n%s", prefix, out)
	}
	return tok
}

// eventWait bounds the wait for an event that must come. It is no latency
// target: generous, so a loaded machine is slow rather than failing.
const eventWait = 10 * time.Second

// nextEvent waits up to d for an event of the given kind.
func nextEvent(t *testing.T, s *httpapi.EventStream, kind string, d time.Duration) httpapi.SSEEvent {
	t.Helper()
	type result struct {
		ev  httpapi.SSEEvent
		err error
	}
	ch := make(chan result, 1)
	go func() {
		for range 100 {
			ev, err := s.Next()
			if err != nil || ev.Event == kind {
				ch <- result{ev, err}
				return
			}
		}
		ch <- result{err: errors.New("no such event in the first 100")}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("event stream: %v", r.err)
		}
		return r.ev
	case <-time.After(d):
		s.Close()
		t.Fatalf("no %q event within %s", kind, d)
	}
	return httpapi.SSEEvent{}
}

// TestEndToEnd drives the real Main: admin commands against the database
// of a running server, beats in, presence, sessions, daily totals and the
// live stream out, then a restart on the same database.
func TestEndToEnd(t *testing.T) {
	ctx := context.Background()
	now := runningClock()
	db := filepath.Join(t.TempDir(), "lastseen.db")
	srv := mustServe(t, db, now, nil)

	// The admin commands open the same file while the server runs on it.
	userTok := mustToken(t, mustCmd(t, now, "user", "add", "alice", "--name", "Alice", "--db", db), "ls_usr_")
	devOut := mustCmd(t, now, "device", "add", "--db", db, "alice", "work laptop")
	devTok := mustToken(t, devOut, "ls_dev_")

	user := httpapi.NewClient(srv.URL(), userTok, nil)
	dev := httpapi.NewClient(srv.URL(), devTok, nil)

	me, err := user.Me(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if me.Handle != "alice" || me.Name != "Alice" {
		t.Fatalf("me = %+v", me)
	}

	streamCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := user.Events(streamCtx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()

	t0 := now().Add(-2 * time.Minute).Truncate(time.Second)
	res, err := dev.PostHeartbeats(ctx, presence.Batch{SentAt: now(), Beats: []presence.Beat{
		{Seq: 1, At: t0, State: presence.Active},
		{Seq: 2, At: t0.Add(30 * time.Second), State: presence.Active},
		{Seq: 3, At: t0.Add(60 * time.Second), State: presence.Active},
		{Seq: 4, At: t0.Add(90 * time.Second), State: presence.Active},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 4 || res.LastSeq != 4 || res.Device.Status != presence.Active {
		t.Fatalf("ingest = %+v", res)
	}

	ev := nextEvent(t, stream, "presence", eventWait)
	pe, err := ev.Presence()
	if err != nil {
		t.Fatal(err)
	}
	if pe.Handle != "alice" || pe.Status != presence.Active || pe.DeviceName != "work laptop" {
		t.Fatalf("presence event = %+v", pe)
	}

	checkState := func(t *testing.T, user *httpapi.Client) {
		t.Helper()
		pr, err := user.Presence(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(pr.Users) != 1 || pr.Users[0].Status != presence.Active || len(pr.Users[0].Devices) != 1 {
			t.Fatalf("presence = %+v", pr)
		}
		if ls := pr.Users[0].LastSeen; ls == nil || !ls.Equal(t0.Add(90*time.Second)) {
			t.Fatalf("last seen = %v, want %v", ls, t0.Add(90*time.Second))
		}
		ss, err := user.Sessions(ctx, httpapi.SessionsQuery{From: t0.Add(-time.Hour), To: now().Add(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		if len(ss.Sessions) != 1 || ss.Sessions[0].DurationS != 90 || !ss.Sessions[0].Start.Equal(t0) {
			t.Fatalf("sessions = %+v", ss)
		}
		day := t0.UTC().Format(time.DateOnly)
		ds, err := user.DailyStats(ctx, httpapi.DailyStatsQuery{From: day, To: day})
		if err != nil {
			t.Fatal(err)
		}
		if len(ds.Days) != 1 || ds.Days[0].Date != day || ds.Days[0].ActiveS != 90 {
			t.Fatalf("daily stats = %+v", ds)
		}
	}
	checkState(t, user)

	// user set, list; the public status follows the opt-in.
	if _, err := user.Public(ctx, "alice"); presence.ErrorCode(err) != presence.ENOTFOUND {
		t.Fatalf("public before opt-in: %v, want not found", err)
	}
	out := mustCmd(t, now, "user", "set", "alice", "--public=true", "--tz", "Europe/Paris", "--db", db)
	if !strings.Contains(out, "Europe/Paris") {
		t.Fatalf("user set printed %q", out)
	}
	pub, err := user.Public(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Online || pub.Status != presence.Active {
		t.Fatalf("public = %+v", pub)
	}
	if out := mustCmd(t, now, "user", "list", "--db", db); !strings.Contains(out, "alice") || !strings.Contains(out, "Europe/Paris") {
		t.Fatalf("user list:\n%s", out)
	}
	if out := mustCmd(t, now, "device", "list", "alice", "--db", db); !strings.Contains(out, "work laptop") || !strings.Contains(out, "active") {
		t.Fatalf("device list:\n%s", out)
	}

	// Restart on the same database: everything is still there, and the
	// device's high-water mark makes a re-sent beat a duplicate.
	stream.Close()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	srv2 := mustServe(t, db, now, nil)
	user = httpapi.NewClient(srv2.URL(), userTok, nil)
	dev = httpapi.NewClient(srv2.URL(), devTok, nil)
	checkState(t, user)
	res, err = dev.PostHeartbeats(ctx, presence.Batch{SentAt: now(), Beats: []presence.Beat{{Seq: 4, At: t0.Add(90 * time.Second), State: presence.Active}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 0 || res.Duplicates != 1 || res.LastSeq != 4 {
		t.Fatalf("re-sent beat after restart = %+v", res)
	}

	// Revoking from the command line locks the device out of the running server.
	devs, err := user.Devices(ctx)
	if err != nil || len(devs.Devices) != 1 {
		t.Fatalf("devices = %+v, %v", devs, err)
	}
	mustCmd(t, now, "device", "revoke", "alice", strconv.FormatInt(devs.Devices[0].ID, 10), "--db", db)
	_, err = dev.PostHeartbeats(ctx, presence.Batch{SentAt: now(), Beats: []presence.Beat{{Seq: 5, At: now(), State: presence.Active}}})
	if presence.ErrorCode(err) != presence.EUNAUTHORIZED {
		t.Fatalf("beat with a revoked token: %v, want unauthorized", err)
	}
}

// TestStreamOutlivesTimeouts: a stream lives past the server's read
// timeout (net/http would cancel it) and is ended by Close.
func TestStreamOutlivesTimeouts(t *testing.T) {
	ctx := context.Background()
	now := runningClock()
	db := filepath.Join(t.TempDir(), "lastseen.db")
	srv := mustServe(t, db, now, func(m *Main) { m.Config.ReadTimeout = 200 * time.Millisecond })
	userTok := mustToken(t, mustCmd(t, now, "user", "add", "bob", "--db", db), "ls_usr_")
	devTok := mustToken(t, mustCmd(t, now, "device", "add", "bob", "desk", "--db", db), "ls_dev_")

	stream, err := httpapi.NewClient(srv.URL(), userTok, nil).Events(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	time.Sleep(500 * time.Millisecond) // past the read timeout
	if _, err := httpapi.NewClient(srv.URL(), devTok, nil).PostHeartbeats(ctx, presence.Batch{
		SentAt: now(), Beats: []presence.Beat{{Seq: 1, At: now(), State: presence.Idle}}}); err != nil {
		t.Fatal(err)
	}
	pe, err := nextEvent(t, stream, "presence", eventWait).Presence()
	if err != nil || pe.Status != presence.Idle {
		t.Fatalf("event = %+v, %v", pe, err)
	}

	closed := make(chan error, 1)
	go func() { closed <- srv.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the open stream")
	}
	if _, err := stream.Next(); err == nil {
		t.Fatal("stream still delivering after Close")
	}
}

func TestEnvTwins(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c Config)
		err   string
	}{
		{
			name: "env fills every serve flag",
			args: []string{"serve"},
			env: map[string]string{
				"LASTSEEN_ADDR": "127.0.0.1:9999", "LASTSEEN_DB": "/tmp/x.db", "LASTSEEN_INTERVAL": "10s",
				"LASTSEEN_GRACE": "5s", "LASTSEEN_LOG_LEVEL": "debug", "LASTSEEN_DEVICE_RATE": "3/30",
				"LASTSEEN_SHUTDOWN_TIMEOUT": "3s",
			},
			check: func(t *testing.T, c Config) {
				if c.Addr != "127.0.0.1:9999" || c.DB != "/tmp/x.db" || c.Pulse != (presence.Pulse{Interval: 10 * time.Second, Grace: 5 * time.Second}) ||
					c.LogLevel != slog.LevelDebug || c.DeviceRate != (httpapi.Rate{PerSecond: 3, Burst: 30}) || c.ShutdownTimeout != 3*time.Second {
					t.Errorf("config = %+v", c)
				}
			},
		},
		{
			name: "flags win over env",
			args: []string{"serve", "--addr", "127.0.0.1:1", "--interval=20s"},
			env:  map[string]string{"LASTSEEN_ADDR": "127.0.0.1:2", "LASTSEEN_INTERVAL": "10s", "LASTSEEN_DB": "env.db"},
			check: func(t *testing.T, c Config) {
				if c.Addr != "127.0.0.1:1" || c.Pulse.Interval != 20*time.Second || c.DB != "env.db" {
					t.Errorf("config = %+v", c)
				}
			},
		},
		{
			name: "empty env is unset",
			args: []string{"serve"},
			env:  map[string]string{"LASTSEEN_ADDR": ""},
			check: func(t *testing.T, c Config) {
				if c.Addr != DefaultConfig().Addr {
					t.Errorf("addr = %q", c.Addr)
				}
			},
		},
		{
			name: "admin commands read LASTSEEN_DB",
			args: []string{"user", "list"},
			env:  map[string]string{"LASTSEEN_DB": "/srv/ls.db"},
			check: func(t *testing.T, c Config) {
				if c.DB != "/srv/ls.db" {
					t.Errorf("db = %q", c.DB)
				}
			},
		},
		{name: "bad env value names the variable", args: []string{"serve"}, env: map[string]string{"LASTSEEN_GRACE": "soon"}, err: "LASTSEEN_GRACE"},
		{name: "bad rate", args: []string{"serve"}, env: map[string]string{"LASTSEEN_USER_RATE": "fast"}, err: "LASTSEEN_USER_RATE"},
		{name: "bad level", args: []string{"serve", "--log-level", "loud"}, err: "log-level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMain()
			m.Stdout, m.Stderr = io.Discard, io.Discard
			m.LookupEnv = func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			err := m.ParseFlags(context.Background(), tt.args)
			if tt.err != "" {
				var ue *UsageError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want a usage error naming %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, m.Config)
		})
	}
}

func TestEnvTwinServes(t *testing.T) {
	// The whole path: LASTSEEN_DB picked up by an admin command.
	now := runningClock()
	db := filepath.Join(t.TempDir(), "env.db")
	out, errs, code := runCmd(t, now, map[string]string{"LASTSEEN_DB": db}, "user", "add", "carol")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	mustToken(t, out, "ls_usr_")
	if out := mustCmd(t, now, "user", "list", "--db", db); !strings.Contains(out, "carol") {
		t.Fatalf("user list:\n%s", out)
	}
}

func TestCommandLine(t *testing.T) {
	now := runningClock()
	db := filepath.Join(t.TempDir(), "cli.db")
	mustCmd(t, now, "user", "add", "dave", "--db", db)

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	tests := []struct {
		args   []string
		code   int
		stdout string // substring
		stderr string // substring
	}{
		{args: nil, code: 2, stderr: "no command"},
		{args: []string{"frob"}, code: 2, stderr: `unknown command "frob"`},
		{args: []string{"user"}, code: 2, stderr: "needs a subcommand"},
		{args: []string{"user", "delete", "x"}, code: 2, stderr: "unknown command"},
		{args: []string{"user", "add"}, code: 2, stderr: "takes HANDLE"},
		{args: []string{"user", "add", "a", "b"}, code: 2, stderr: "takes HANDLE"},
		{args: []string{"user", "add", "Not A Handle"}, code: 2, stderr: "handle"},
		{args: []string{"user", "add", "x", "--colour", "red"}, code: 2, stderr: "colour"},
		{args: []string{"user", "set", "dave", "--db", db}, code: 2, stderr: "at least one of"},
		{args: []string{"user", "set", "dave", "--tz", "Mars/Olympus", "--db", db}, code: 2, stderr: "time zone"},
		{args: []string{"user", "set", "dave", "--public=maybe", "--db", db}, code: 2, stderr: "public"},
		{args: []string{"device", "add", "dave"}, code: 2, stderr: "HANDLE DEVICE-NAME"},
		{args: []string{"device", "revoke", "dave", "x1"}, code: 2, stderr: "DEVICE-ID"},
		{args: []string{"serve", "--interval", "0s"}, code: 2, stderr: "interval"},
		{args: []string{"serve", "--tls-cert", "c.pem"}, code: 2, stderr: "go together"},
		{args: []string{"serve", "--device-rate", "10"}, code: 2, stderr: "PER_SECOND/BURST"},
		{args: []string{"serve", "extra"}, code: 2, stderr: "no arguments"},

		{args: []string{"help"}, code: 0, stdout: "lastseend user add HANDLE"},
		{args: []string{"--help"}, code: 0, stdout: "Usage:"},
		{args: []string{"help", "device", "add"}, code: 0, stdout: "Usage: lastseend device add HANDLE DEVICE-NAME"},
		{args: []string{"serve", "-h"}, code: 0, stdout: "LASTSEEN_TLS_CERT"},
		{args: []string{"version"}, code: 0, stdout: "lastseend "},

		// Runtime failures: exit 1, one line.
		{args: []string{"user", "add", "dave", "--db", db}, code: 1, stderr: "conflict"},
		{args: []string{"device", "add", "nobody", "pc", "--db", db}, code: 1, stderr: "not_found"},
		{args: []string{"device", "revoke", "dave", "999", "--db", db}, code: 1, stderr: "not_found"},
		{args: []string{"user", "list", "--db", filepath.Join(t.TempDir(), "no", "such", "dir", "x.db")}, code: 1, stderr: "open"},
		{args: []string{"serve", "--addr", busy.Addr().String(), "--db", filepath.Join(t.TempDir(), "s.db")}, code: 1, stderr: "listen"},
		{args: []string{"serve", "--addr", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "s.db"), "--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"}, code: 1, stderr: "TLS"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, errs, code := runCmd(t, now, nil, tt.args...)
			if code != tt.code || !strings.Contains(out, tt.stdout) || !strings.Contains(errs, tt.stderr) {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out, errs)
			}
			switch code {
			case 2:
				if !strings.Contains(errs, "Usage") {
					t.Errorf("usage error without usage text:\n%s", errs)
				}
			case 1:
				if lines := strings.Count(strings.TrimSpace(lastErrorLines(errs)), "\n") + 1; lines != 1 {
					t.Errorf("runtime failure in %d lines, want one:\n%s", lines, errs)
				}
			}
		})
	}
}

// lastErrorLines drops JSON log lines, leaving what main printed.
func lastErrorLines(s string) string {
	var keep []string
	for line := range strings.SplitSeq(s, "\n") {
		if line != "" && !strings.HasPrefix(line, "{") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}

// TestTLS serves HTTPS with --tls-cert/--tls-key.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	pool := writeSelfSigned(t, certFile, keyFile)

	srv := mustServe(t, filepath.Join(dir, "tls.db"), runningClock(), func(m *Main) {
		m.Config.TLSCert, m.Config.TLSKey = certFile, keyFile
	})
	if !strings.HasPrefix(srv.URL(), "https://") {
		t.Fatalf("URL = %s", srv.URL())
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if err := httpapi.NewClient(srv.URL(), "", hc).Health(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Plain HTTP to the TLS port gets no service.
	if err := httpapi.NewClient(strings.Replace(srv.URL(), "https", "http", 1), "", nil).Health(context.Background()); err == nil {
		t.Fatal("plain HTTP answered on the TLS port")
	}
}

// writeSelfSigned writes a certificate for 127.0.0.1 and returns a pool
// that trusts it.
func writeSelfSigned(t *testing.T, certFile, keyFile string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "lastseend test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}
