package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lastseen/lastseen/internal/testutil"
)

func TestRunRejectsBadFlags(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	notExec := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(notExec, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"window too short", []string{"--agent", exe, "--baseline", exe, "--duration", "500ms"}, "--duration"},
		{"negative warm-up", []string{"--agent", exe, "--baseline", exe, "--warmup", "-1s"}, "--warmup"},
		{"sample longer than window", []string{"--agent", exe, "--baseline", exe, "--duration", "5s", "--sample", "10s"}, "--sample"},
		{"env without =", []string{"--agent", exe, "--baseline", exe, "--env", "GOMAXPROCS"}, "KEY=VALUE"},
		{"missing agent", []string{"--agent", filepath.Join(t.TempDir(), "nope"), "--baseline", exe}, "no such file"},
		{"agent not executable", []string{"--agent", notExec, "--baseline", exe}, "not an executable"},
		{"stray argument", []string{"--agent", exe, "--baseline", exe, "extra"}, "unexpected argument"},
		{"strace window too short", []string{"--agent", exe, "--baseline", exe, "--strace", exe, "--strace-window", "500ms"}, "--strace-window"},
		{"strace window past the window", []string{"--agent", exe, "--baseline", exe, "--strace", exe, "--duration", "5s", "--strace-window", "6s"}, "--strace-window"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), tt.args, &stdout, &stderr); code != 2 {
				t.Fatalf("exit %d, want 2; stderr: %s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("stderr %q does not mention %q", stderr.String(), tt.want)
			}
		})
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.RemoveBuilt()
	os.Exit(code)
}

// build builds a program of this module and links it into dir as name: the
// measurement tells the processes apart by their names.
func build(t *testing.T, dir, pkg, name string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	if err := os.Symlink(testutil.BuildBinary(t, pkg), out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMeasureEndToEnd measures the real agent, with and without its tray,
// for a few seconds on a private X server and session bus: the numbers
// must be those of live processes, and the agent must have used the X11
// idle source and registered its tray.
func TestMeasureEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: builds and runs the agent")
	}
	for _, bin := range []string{"Xvfb", "dbus-daemon"} {
		testutil.Tool(t, bin, testutil.RequireDesktop)
	}
	dir := t.TempDir()
	agent := build(t, dir, "./app/cmd/lastseen-agent", "lastseen-agent")
	baseline := build(t, dir, "./measure/cmd/lastseen-agentcost/baseline", "lastseen-agentcost-baseline")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"--agent", agent, "--baseline", baseline, "--duration", "3s", "--warmup", "1s",
		"--sample", "500ms", "--dir", filepath.Join(dir, "work"), "--json", "--strict"}, &stdout, &stderr)
	if code == 2 {
		t.Fatalf("usage error: %s", stderr.String())
	}
	var rep Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON (%v): %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	// --strict: the exit status follows the verdict, whatever it is.
	if (code == 0) != rep.Passed {
		t.Fatalf("exit %d with passed=%v", code, rep.Passed)
	}
	if rep.WindowS < 3 || rep.WindowS > 10 {
		t.Errorf("window %v s, want about 3", rep.WindowS)
	}
	if len(rep.Agents) != 2 || rep.Agents[1].Tray == "" {
		t.Fatalf("want a headless and a tray run with a registered tray: %+v", rep.Agents)
	}
	if len(rep.GUILinks) > 0 {
		t.Errorf("agent links %v", rep.GUILinks)
	}
	for _, s := range append([]Subject{rep.Baseline}, rep.Agents...) {
		c := s.Cost
		if c.RSSMaxMiB < 0.5 || c.RSSFinalMiB <= 0 || c.PSSFinalMiB <= 0 || c.Threads < 1 || s.SizeMiB <= 0 {
			t.Errorf("%s: implausible %+v", s.Name, c)
		}
	}
	for _, a := range rep.Agents {
		if !strings.Contains(a.Backends, "idle source x11") {
			t.Errorf("%s did not read X11 idle time: %q", a.Name, a.Backends)
		}
		if a.Cost.RSSMaxMiB <= rep.Baseline.Cost.RSSMaxMiB {
			t.Errorf("%s uses less memory than a bare ticker: %v vs %v MiB", a.Name, a.Cost.RSSMaxMiB, rep.Baseline.Cost.RSSMaxMiB)
		}
	}
	// With strace installed, every process was traced over the window. The
	// baseline's 2 s ticker must show up; an idle agent may well make no
	// syscall at all in 3 s (it waits on X input and a 30 s beat).
	if rep.TraceNote == "" {
		for _, s := range append([]Subject{rep.Baseline}, rep.Agents...) {
			if s.Trace == nil || s.Trace.WindowS < 3 {
				t.Errorf("%s: trace %+v, want a trace over about 3 s", s.Name, s.Trace)
			}
		}
		if tr := rep.Baseline.Trace; tr != nil && tr.Syscalls == 0 {
			t.Errorf("baseline: no syscall traced in %.1f s from a 2 s ticker", tr.WindowS)
		}
	}
	// The tray agent wrote its first-run login item inside the work dir's
	// home, never in the real one.
	if _, err := os.Stat(filepath.Join(dir, "work", "tray", ".config", "autostart")); err != nil {
		t.Errorf("the tray agent's config did not stay in its own home: %v", err)
	}
}
