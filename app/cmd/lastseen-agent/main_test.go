package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/lastseen/lastseen/internal/testutil"
)

// The end-to-end test builds the binaries once for the whole process.
func TestMain(m *testing.M) {
	code := m.Run()
	testutil.RemoveBuilt()
	os.Exit(code)
}

func TestParseFlags(t *testing.T) {
	noEnv := func(string) string { return "" }
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	tests := []struct {
		name   string
		args   []string
		getenv func(string) string
		want   func(Flags) bool
		err    string
	}{
		{name: "defaults", args: nil, getenv: noEnv,
			want: func(f Flags) bool { return f.DataDir != "" && !f.explicitDataDir && f.Server == "" && !f.Headless }},
		{name: "data dir is made absolute", args: []string{"--data-dir", "rel/dir"}, getenv: noEnv,
			want: func(f Flags) bool { return filepath.IsAbs(f.DataDir) && f.explicitDataDir }},
		{name: "remote service", args: []string{"--server", "https://p.example", "--token", "ls_dev_abc"}, getenv: noEnv,
			want: func(f Flags) bool { return f.Server == "https://p.example" && f.Token == "ls_dev_abc" }},
		{name: "environment twins", args: nil,
			getenv: env(map[string]string{"LASTSEEN_DATA_DIR": "/tmp/x", "LASTSEEN_IDLE_AFTER": "2m", "LASTSEEN_HEADLESS": "1"}),
			want: func(f Flags) bool {
				return f.DataDir == "/tmp/x" && f.IdleAfter == 2*time.Minute && f.Headless && f.explicitDataDir
			}},
		{name: "a flag wins over its twin", args: []string{"--interval", "15s"},
			getenv: env(map[string]string{"LASTSEEN_INTERVAL": "60s"}),
			want:   func(f Flags) bool { return f.Interval == 15*time.Second }},
		{name: "calls and media left to the saved setting", args: nil, getenv: noEnv,
			want: func(f Flags) bool { return f.CountCallsAndMedia == nil }},
		{name: "calls and media on", args: []string{"--count-calls-and-media"}, getenv: noEnv,
			want: func(f Flags) bool { return f.CountCallsAndMedia != nil && *f.CountCallsAndMedia }},
		{name: "calls and media off for this run", args: []string{"--count-calls-and-media=false"},
			getenv: env(map[string]string{"LASTSEEN_COUNT_CALLS_AND_MEDIA": "1"}),
			want:   func(f Flags) bool { return f.CountCallsAndMedia != nil && !*f.CountCallsAndMedia }},
		{name: "calls and media from the environment", args: nil,
			getenv: env(map[string]string{"LASTSEEN_COUNT_CALLS_AND_MEDIA": "true"}),
			want:   func(f Flags) bool { return f.CountCallsAndMedia != nil && *f.CountCallsAndMedia }},
		{name: "a twin that is not a boolean", args: nil,
			getenv: env(map[string]string{"LASTSEEN_COUNT_CALLS_AND_MEDIA": "sometimes"}), err: "LASTSEEN_COUNT_CALLS_AND_MEDIA"},
		{name: "server without token", args: []string{"--server", "https://p.example"}, getenv: noEnv, err: "go together"},
		{name: "a user token is not a device token", args: []string{"--server", "https://p", "--token", "ls_usr_x"}, getenv: noEnv, err: "device token"},
		{name: "idle threshold too short", args: []string{"--idle-after", "1s"}, getenv: noEnv, err: "--idle-after"},
		{name: "interval too long", args: []string{"--interval", "1h"}, getenv: noEnv, err: "--interval"},
		{name: "stray argument", args: []string{"serve"}, getenv: noEnv, err: "unexpected argument"},
		{name: "unknown flag", args: []string{"--nope"}, getenv: noEnv, err: "not defined"},
		{name: "version", args: []string{"--version"}, getenv: noEnv, err: errShowVersion.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseFlags(tt.args, tt.getenv, io.Discard)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.want(f) {
				t.Fatalf("flags %+v", f)
			}
		})
	}
}

func TestSingleInstance(t *testing.T) {
	path := filepath.Join(t.TempDir(), lockFile)
	first, err := acquireLock(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acquireLock(path); !errors.Is(err, errAlreadyRunning) {
		t.Fatalf("second lock: %v, want errAlreadyRunning", err)
	}
	if err := first.release(); err != nil {
		t.Fatal(err)
	}
	again, err := acquireLock(path)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	again.release()
}

// TestNoGOMAXPROCSUpdates: the agent opts out of the runtime's periodic
// re-reading of the CPU limit, a wakeup a second it does not need.
func TestNoGOMAXPROCSUpdates(t *testing.T) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		t.Skip("no build info")
	}
	for _, s := range bi.Settings {
		if s.Key == "DefaultGODEBUG" {
			if !strings.Contains(s.Value, "updatemaxprocs=0") {
				t.Fatalf("DefaultGODEBUG %q lacks updatemaxprocs=0", s.Value)
			}
			return
		}
	}
	t.Fatal("no DefaultGODEBUG in the build info: the //go:debug line in main.go is gone")
}

// TestDataDirIsMadeOwnerOnly: an existing data dir others may read or
// enter is tightened at start (it holds the device token, the local API's
// secret and every beat); MkdirAll alone left it as it was.
func TestDataDirIsMadeOwnerOnly(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("mode bits")
	}
	base := t.TempDir()
	loose := filepath.Join(base, "loose")
	if err := os.Mkdir(loose, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(loose, 0o755); err != nil { // past the umask
		t.Fatal(err)
	}
	fresh := filepath.Join(base, "a", "fresh")
	for _, dir := range []string{loose, fresh} {
		if err := prepareDataDir(dir); err != nil {
			t.Fatalf("prepareDataDir(%s): %v", dir, err)
		}
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o700 {
			t.Errorf("%s: mode %v, want 0700", filepath.Base(dir), perm)
		}
	}
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := prepareDataDir(file); err == nil {
		t.Error("a file as the data dir was accepted")
	}
}
