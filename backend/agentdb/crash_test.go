package agentdb_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/agentdb"
	"github.com/lastseen/lastseen/backend/presence"
)

const crashEnv = "LASTSEEN_AGENTDB_CRASH_DB"

// crashState is the state of the i-th beat the helper writes: runs of ten so
// that history gets spans opened and closed along the way.
func crashState(seq int64) presence.State {
	if (seq/10)%2 == 0 {
		return presence.Active
	}
	return presence.Idle
}

// TestCrashHelper is not a test: it is the process TestCrashSafety kills. It
// appends beats as fast as it can and reports each committed seq.
func TestCrashHelper(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("helper process for TestCrashSafety")
	}
	db, err := agentdb.Open(path, agentdb.Options{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	ctx := context.Background()
	for range 200_000 { // bounded; the parent kills long before
		seq := db.LastSeq() + 1
		st := crashState(seq)
		b, err := db.Record(ctx, agentdb.Entry{At: t0.Add(time.Duration(seq) * time.Second), IdleS: seq % 60, Local: st, Send: st})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		fmt.Printf("committed %d\n", b.Seq)
	}
	os.Exit(3)
}

// TestCrashSafety kills a writing process with SIGKILL, twice, and checks that
// every beat it reported committed is there, that no row is partial, and that
// the seq counter and history carry on where they stopped.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	path := filepath.Join(t.TempDir(), "agent.db")
	var reported int64
	for round := range 2 {
		last := runAndKill(t, path, 300+round*200)
		if last <= reported {
			t.Fatalf("round %d: helper reported %d after %d", round, last, reported)
		}
		reported = last
		checkAfterCrash(t, path, reported)
	}
	// A clean Close/reopen cycle keeps everything too.
	db := open(t, path, agentdb.Options{})
	depth := db.Depth()
	next := send(t, db, t0.Add(100*time.Hour), presence.Away)
	db.Close()
	db = open(t, path, agentdb.Options{})
	if db.Depth() != depth+1 || db.LastSeq() != next.Seq {
		t.Fatalf("after clean reopen depth %d last %d, want %d %d", db.Depth(), db.LastSeq(), depth+1, next.Seq)
	}
}

// runAndKill starts the helper, lets it commit at least n beats (while it
// keeps writing), kills it with SIGKILL and returns the last seq it reported.
func runAndKill(t *testing.T, path string, n int) int64 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	var last int64
	seen := 0
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "committed "); ok {
			v, err := strconv.ParseInt(rest, 10, 64)
			if err != nil {
				t.Fatalf("helper said %q", line)
			}
			last = v
			if seen++; seen == n {
				// Kill mid-stream: the helper is inside its next transaction
				// or about to be.
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			}
			continue
		}
		if strings.HasPrefix(line, "error") {
			t.Fatalf("helper: %s", line)
		}
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("helper did not die by SIGKILL: %v", err)
	}
	if seen < n {
		t.Fatalf("helper committed only %d beats", seen)
	}
	return last
}

func checkAfterCrash(t *testing.T, path string, reported int64) {
	t.Helper()
	ctx := context.Background()
	db, err := agentdb.Open(path, agentdb.Options{})
	if err != nil {
		t.Fatalf("reopen after crash: %v", err)
	}
	defer db.Close()
	beats, err := db.Outbox(ctx, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(beats)) < reported {
		t.Fatalf("lost committed beats: %d in outbox, %d reported", len(beats), reported)
	}
	for i, b := range beats {
		want := presence.Beat{Seq: int64(i + 1), At: t0.Add(time.Duration(i+1) * time.Second),
			State: crashState(int64(i + 1)), IdleS: int64(i+1) % 60}
		if !(b.Seq == want.Seq && b.At.Equal(want.At) && b.State == want.State && b.IdleS == want.IdleS) {
			t.Fatalf("row %d is %+v, want %+v", i, b, want)
		}
	}
	if db.LastSeq() != int64(len(beats)) || db.Depth() != int64(len(beats)) {
		t.Fatalf("counter %d depth %d, rows %d", db.LastSeq(), db.Depth(), len(beats))
	}
	// History: runs of ten alternate, each closed by the next; the tail ends
	// at the last committed beat.
	h, err := db.History(ctx, t0, t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(h) == 0 || !h[len(h)-1].End.Equal(beats[len(beats)-1].At) || h[len(h)-1].Closed {
		t.Fatalf("history tail %+v, last beat at %v", h[len(h)-1], beats[len(beats)-1].At)
	}
	for i := 1; i < len(h); i++ {
		if !h[i-1].Closed || !h[i-1].End.Equal(h[i].Start) || h[i-1].State == h[i].State {
			t.Fatalf("history spans %d/%d do not chain: %+v %+v", i-1, i, h[i-1], h[i])
		}
	}
}
