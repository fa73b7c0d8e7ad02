//go:build linux

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/lastseen/lastseen/internal/testutil"
)

// The harness's reading of /proc decides what the desktop tests and the
// benchmark count; these run everywhere, without a display.

func TestParseStat(t *testing.T) {
	tests := []struct {
		name, in string
		want     proc
		bad      bool
	}{
		{
			name: "plain",
			in:   "4242 (lastseen) S 4200 4242 4242 0 -1 4194560 9000 0 12 0 150 35 0 0 20 0 18 0 987654 1 2 3",
			want: proc{PID: 4242, PPID: 4200, Comm: "lastseen", State: 'S', UTime: 150, STime: 35, Start: 987654},
		},
		{
			name: "a name with spaces and parentheses",
			in:   "7 (Web (Content) x) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 55 1 2",
			want: proc{PID: 7, PPID: 1, Comm: "Web (Content) x", State: 'R', UTime: 3, STime: 4, Start: 55},
		},
		{name: "truncated", in: "7 (x) R 1 7", bad: true},
		{name: "no name", in: "7 x R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 55", bad: true},
		{name: "not a number", in: "7 (x) R 1 7 7 0 -1 0 0 0 0 0 three 4 0 0 20 0 1 0 55", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat(tt.in)
			if tt.bad {
				if err == nil {
					t.Fatalf("parseStat(%q) = %+v, want an error", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseStat(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestTreeFollowsChildrenAndTheirEnd(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	cmd := exec.Command(sh, "-c", "sleep 30 & sleep 30 & wait")
	p := start(t, cmd)
	var ps []proc
	// A forked child is named "sh" until it has exec'd sleep: wait for both.
	testutil.WaitUntil(t, "the shell's two children to run sleep", 20*time.Second, func() bool {
		ps = tree(cmd.Process.Pid)
		return len(ps) == 3 && ps[1].Comm == "sleep" && ps[2].Comm == "sleep"
	})
	if ps[0].PID != cmd.Process.Pid {
		t.Fatalf("tree of the shell = %+v; want the shell and its two sleeps", ps)
	}
	comms := []string{ps[1].Comm, ps[2].Comm}
	if !slices.Equal(comms, []string{"sleep", "sleep"}) {
		t.Fatalf("children %v, want two sleeps", comms)
	}
	for _, c := range ps {
		if !c.alive() {
			t.Fatalf("%+v is not alive", c)
		}
		if kb, err := pssKB(c.PID); err != nil || kb == 0 {
			t.Fatalf("PSS of %+v: %d kB, %v", c, kb, err)
		}
	}
	// The children outlive the shell: each must be seen ending on its own.
	for _, c := range ps[1:] {
		pr, _ := os.FindProcess(c.PID)
		pr.Kill()
	}
	for _, c := range ps[1:] {
		testutil.WaitUntil(t, fmt.Sprintf("%+v to end after SIGKILL", c), 20*time.Second, func() bool { return !c.alive() })
	}
	if _, ended := p.wait(20 * time.Second); !ended {
		t.Fatal("the shell did not end after its children")
	}
	if ps[0].alive() {
		t.Fatal("the ended shell still counts as alive")
	}
	if ticks := cpuTicks(ps); ticks != 0 {
		t.Fatalf("ended processes still count %d CPU ticks", ticks)
	}
}

func TestOwnMemory(t *testing.T) {
	pss, err := pssKB(os.Getpid())
	if err != nil || pss == 0 {
		t.Fatalf("own PSS: %d kB, %v", pss, err)
	}
	rss, err := rssKB(os.Getpid())
	if err != nil || rss < pss {
		t.Fatalf("own RSS %d kB, PSS %d kB, %v: RSS counts every shared page whole, so RSS ≥ PSS", rss, pss, err)
	}
	uss, err := ussKB(os.Getpid())
	if err != nil || uss == 0 || uss > pss {
		t.Fatalf("own USS %d kB, PSS %d kB, %v: PSS adds shares of shared pages to the private ones, so USS ≤ PSS", uss, pss, err)
	}
}
