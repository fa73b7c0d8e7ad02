package sqlite

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// The crash child is this test binary run again with these variables set.
const (
	crashDBEnv      = "LASTSEEN_TEST_CRASH_DB"
	crashDevicesEnv = "LASTSEEN_TEST_CRASH_DEVICES"
	crashBaseEnv    = "LASTSEEN_TEST_CRASH_BASE"
)

// TestAcknowledgedBeatsSurviveKill runs a child process that ingests beats
// as fast as it can and prints each acknowledgement the moment Ingest
// returned; the parent kills it with SIGKILL mid-stream, reopens the
// database and finds every acknowledged beat.
func TestAcknowledgedBeatsSurviveKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "lastseen.db")
	ctx := t.Context()
	s, err := Open(path, presence.Options{})
	if err != nil {
		t.Fatal(err)
	}
	u, _, err := s.CreateUser(ctx, "crash", "Crash Test")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 4 {
		d, _, err := s.CreateDevice(ctx, u.ID, fmt.Sprintf("machine %d", i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, strconv.FormatInt(d.ID, 10))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-24 * time.Hour).Truncate(time.Second)

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDBEnv+"="+path, crashDevicesEnv+"="+strings.Join(ids, ","),
		crashBaseEnv+"="+strconv.FormatInt(base.Unix(), 10))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[int64]int64{} // device -> highest acknowledged seq
	total := 0
	killed := false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var dev, seq int64
		if _, err := fmt.Sscanf(sc.Text(), "acked %d %d", &dev, &seq); err != nil {
			continue // the test framework's own output
		}
		acked[dev] = max(acked[dev], seq)
		total++
		// Kill mid-stream, with the other devices' requests in flight;
		// lines already in the pipe are still read below.
		if total == 400 && !killed {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended by itself after %d acknowledgements (%v)", total, err)
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v", err)
	}

	s, err = Open(path, presence.Options{})
	if err != nil {
		t.Fatalf("reopen after kill -9: %v", err)
	}
	defer s.Close()
	for _, idStr := range ids {
		id, _ := strconv.ParseInt(idStr, 10, 64)
		st, err := s.DeviceStatus(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Presence.LastSeq < acked[id] {
			t.Errorf("device %d: last_seq %d after the kill, but seq %d was acknowledged", id, st.Presence.LastSeq, acked[id])
		}
		spans, err := s.Spans(ctx, presence.SpanQuery{UserID: u.ID, DeviceID: id})
		if err != nil {
			t.Fatal(err)
		}
		if acked[id] == 0 {
			continue
		}
		// Beat n is at base + n s, all active: one span from beat 1 to the
		// last committed beat.
		want := base.Add(time.Duration(acked[id]) * time.Second)
		if len(spans) != 1 || !spans[0].Start.Equal(base.Add(time.Second)) || spans[0].End.Before(want) {
			t.Errorf("device %d: spans %+v, want one span from beat 1 reaching at least %v (seq %d)", id, spans, want, acked[id])
		}
	}
	t.Logf("%d acknowledgements before the kill, highest per device %v", total, acked)
}

// TestCrashChild is the child of TestAcknowledgedBeatsSurviveKill; run on
// its own it does nothing.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashDBEnv)
	if path == "" {
		t.Skip("only runs as the crash test's child process")
	}
	baseUnix, _ := strconv.ParseInt(os.Getenv(crashBaseEnv), 10, 64)
	base := time.Unix(baseUnix, 0)
	s, err := Open(path, presence.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex // one line per write, never interleaved
	var wg sync.WaitGroup
	deadline := time.Now().Add(time.Minute) // the parent kills us long before
	for _, f := range strings.Split(os.Getenv(crashDevicesEnv), ",") {
		id, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for seq := int64(1); seq < 1_000_000 && time.Now().Before(deadline); seq++ {
				b := presence.Beat{Seq: seq, At: base.Add(time.Duration(seq) * time.Second), State: presence.Active}
				if _, err := s.Ingest(context.Background(), id, []presence.Beat{b}, nil); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "acked %d %d\n", id, seq)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	s.Close()
}
