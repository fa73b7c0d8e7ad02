package localapi

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestDiscoveryRoundTrip(t *testing.T) {
	dir := t.TempDir()
	want := Discovery{URL: "http://127.0.0.1:4567", Secret: "s3cret", PID: 42, Version: "1.2.3"}
	if err := WriteDiscovery(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadDiscovery(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("read %+v, wrote %+v", got, want)
	}
	fi, err := os.Stat(filepath.Join(dir, DiscoveryFile))
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s is %v, want owner-only 0600: it holds the secret", DiscoveryFile, fi.Mode().Perm())
	}
	// A second write replaces the first and leaves no temporary file behind.
	want.Secret = "fresh"
	if err := WriteDiscovery(dir, want); err != nil {
		t.Fatal(err)
	}
	if got, _ := ReadDiscovery(dir); got.Secret != "fresh" {
		t.Fatalf("after rewrite: %+v", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("dir holds %d files, want only %s", len(entries), DiscoveryFile)
	}
	if err := RemoveDiscovery(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadDiscovery(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("after remove: %v", err)
	}
	if err := RemoveDiscovery(dir); err != nil {
		t.Fatalf("removing a missing file: %v", err)
	}
}

func TestReadDiscoveryChecks(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		ok         bool
	}{
		{"ipv4 loopback", `{"url":"http://127.0.0.1:4567","secret":"s","pid":3}`, true},
		{"ipv6 loopback", `{"url":"http://[::1]:4567","secret":"s"}`, true},
		{"localhost, trailing slash", `{"url":"http://localhost:4567/","secret":"s"}`, true},
		{"no secret", `{"url":"http://127.0.0.1:4567"}`, false},
		{"remote host", `{"url":"http://192.168.1.9:4567","secret":"s"}`, false},
		{"dns name", `{"url":"http://example.com:4567","secret":"s"}`, false},
		{"https", `{"url":"https://127.0.0.1:4567","secret":"s"}`, false},
		{"not a url", `{"url":"127.0.0.1:4567","secret":"s"}`, false},
		{"not json", `{`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, DiscoveryFile), []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			d, err := ReadDiscovery(dir)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if err == nil && strings.HasSuffix(d.URL, "/") {
				t.Errorf("url %q keeps its trailing slash", d.URL)
			}
		})
	}
}
