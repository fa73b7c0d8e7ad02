package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHealthcheck(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC) }
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))

	out, errs, code := runCmd(t, now, nil, "healthcheck", "--url", srv.URL+"/healthz")
	if code != 0 || !strings.Contains(out, "healthy") {
		t.Fatalf("--url to a healthy server: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	// The address serve was given (its environment twin, as in a container)
	// is asked on the loopback when it is a wildcard.
	out, errs, code = runCmd(t, now, map[string]string{"LASTSEEN_ADDR": "0.0.0.0:" + port}, "healthcheck")
	if code != 0 || !strings.Contains(out, "http://127.0.0.1:"+port+"/healthz") {
		t.Fatalf("LASTSEEN_ADDR=0.0.0.0:%s: exit %d\nstdout: %s\nstderr: %s", port, code, out, errs)
	}

	status = http.StatusServiceUnavailable
	if _, errs, code = runCmd(t, now, nil, "healthcheck", "--url", srv.URL+"/healthz"); code != 1 || !strings.Contains(errs, "503") {
		t.Fatalf("an unhealthy server: exit %d, want 1 naming the status\nstderr: %s", code, errs)
	}
	srv.Close()
	if _, errs, code = runCmd(t, now, nil, "healthcheck", "--url", srv.URL+"/healthz", "--timeout", "2s"); code != 1 {
		t.Fatalf("nothing listening: exit %d, want 1\nstderr: %s", code, errs)
	}
	if _, errs, code = runCmd(t, now, nil, "healthcheck", "--url", "ftp://x"); code != 2 || !strings.Contains(errs, "--url") {
		t.Fatalf("a bad --url: exit %d, want 2\nstderr: %s", code, errs)
	}
}

func TestHealthURL(t *testing.T) {
	tests := []struct {
		addr string
		tls  bool
		want string
	}{
		{"127.0.0.1:8080", false, "http://127.0.0.1:8080/healthz"},
		{"0.0.0.0:8080", false, "http://127.0.0.1:8080/healthz"},
		{":9000", true, "https://127.0.0.1:9000/healthz"},
		{"[::]:8080", false, "http://127.0.0.1:8080/healthz"},
		{"[::1]:8080", false, "http://[::1]:8080/healthz"},
		{"presence.internal:8443", true, "https://presence.internal:8443/healthz"},
	}
	for _, tt := range tests {
		if got, err := healthURL(tt.addr, tt.tls); err != nil || got != tt.want {
			t.Errorf("healthURL(%q, %v) = %q, %v; want %q", tt.addr, tt.tls, got, err, tt.want)
		}
	}
	if _, err := healthURL("8080", false); err == nil {
		t.Error("healthURL(\"8080\") gave no error")
	}
}
