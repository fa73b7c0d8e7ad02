package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestTraceBursts(t *testing.T) {
	from := time.Unix(1700000000, 0)
	to := from.Add(10 * time.Second)
	// Go's runtime at rest: a timer wakes one thread, which wakes another
	// through a futex within a millisecond: one burst. Lines outside the
	// window, signal lines and strace's own messages are handled too.
	out := `101 1699999999.999000 futex(0xc000, FUTEX_WAKE_PRIVATE, 1) = 1
101 1700000001.000000 <... epoll_pwait resumed>[], 128, 0) = 0
101 1700000001.000100 futex(0xc000, FUTEX_WAKE_PRIVATE, 1) = 1
102 1700000001.000300 <... futex resumed>) = 0
102 1700000001.000900 futex(0xc008, FUTEX_WAIT_PRIVATE, 0, NULL <unfinished ...>
101 1700000001.001500 epoll_pwait(4,  <unfinished ...>
101 1700000003.000000 <... epoll_pwait resumed>[], 128, 1999) = 0
101 1700000003.000050 --- SIGURG {si_signo=SIGURG, si_code=SI_TKILL} ---
101 1700000003.000200 write(5, "x", 1) = 1
103 1700000005.500000 read(7, "...", 4096) = 32
103 1700000010.000000 futex(0xc010, FUTEX_WAKE_PRIVATE, 1) = 1
103 +++ exited with 0 +++
garbage line
104 17000000x6.000000 read(7, "", 1) = 0
`
	tr, err := traceBursts(strings.NewReader(out), from, to)
	if err != nil {
		t.Fatal(err)
	}
	// 1.000000..1.001500 is one burst (every gap under 1 ms), 3.000000..
	// 3.000200 a second, 5.5 a third. The lines before from and at to are
	// out of the window.
	if tr.Syscalls != 9 {
		t.Errorf("syscalls %d, want 9", tr.Syscalls)
	}
	if tr.Bursts != 3 {
		t.Errorf("bursts %d, want 3", tr.Bursts)
	}
	if tr.WindowS != 10 || tr.BurstsPerS != 0.3 {
		t.Errorf("window %v s, %v bursts/s; want 10 s, 0.3", tr.WindowS, tr.BurstsPerS)
	}

	// Syncs are counted apart and change neither the bursts nor the
	// syscalls: a sync within a burst, one in two lines (begun in the
	// window, ended after another thread's call) and one begun before the
	// window, whose end falls inside it.
	withSyncs := out + `105 1700000001.000200 fsync(11) = 0
105 1700000003.000100 fdatasync(12 <unfinished ...>
101 1700000003.000150 futex(0xc000, FUTEX_WAKE_PRIVATE, 1) = 1
105 1700000003.001500 <... fdatasync resumed>) = 0
106 1699999999.999500 fsync(13 <unfinished ...>
106 1700000000.000500 <... fsync resumed>) = 0
`
	tr, err = traceBursts(strings.NewReader(withSyncs), from, to)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Syscalls != 10 || tr.Bursts != 3 {
		t.Errorf("with syncs: %d syscalls, %d bursts; want 10 (one more futex), 3", tr.Syscalls, tr.Bursts)
	}
	if tr.Syncs != 2 || tr.SyncsPerS != 0.2 {
		t.Errorf("with syncs: %d syncs, %v/s; want 2, 0.2", tr.Syncs, tr.SyncsPerS)
	}

	// A gap of exactly 1 ms splits.
	tr, _ = traceBursts(strings.NewReader("1 1700000001.000000 read(3) = 1\n1 1700000001.001000 read(3) = 1\n"), from, to)
	if tr.Bursts != 2 {
		t.Errorf("1 ms apart: %d bursts, want 2", tr.Bursts)
	}
	tr, _ = traceBursts(strings.NewReader(""), from, to)
	if tr.Bursts != 0 || tr.BurstsPerS != 0 {
		t.Errorf("empty trace: %+v", tr)
	}
}

func TestJudgeAndTextWithTrace(t *testing.T) {
	r := Report{
		WindowS: 60, Targets: DefaultTargets, ClockTicks: 100,
		Baseline: Subject{Name: "baseline", Cost: Cost{Wakeups: 2.1}, Trace: &Trace{WindowS: 60, Syscalls: 120, Bursts: 30, BurstsPerS: 0.5}},
		Agents: []Subject{
			{Name: "agent --headless", Cost: Cost{RSSMaxMiB: 19, Wakeups: 1.8}, Trace: &Trace{WindowS: 60, Syscalls: 600, Bursts: 60, BurstsPerS: 1, Syncs: 8, SyncsPerS: 0.1333}},
			{Name: "agent with tray", Cost: Cost{RSSMaxMiB: 21, Wakeups: 1.9}, Trace: &Trace{WindowS: 60, Syscalls: 900, Bursts: 150, BurstsPerS: 2.5}},
		},
	}
	r.judge()
	if r.Passed {
		t.Fatal("passed with 2.5 wake bursts a second")
	}
	if len(r.Verdicts) != 8 {
		t.Fatalf("%d verdicts, want 4 per agent", len(r.Verdicts))
	}
	var b bytes.Buffer
	r.WriteText(&b)
	out := b.String()
	for _, want := range []string{"wake bursts/s (strace, 60 s)", "×2.00", "×5.00", "traced syscalls/s", "syncs/s (fsync, fdatasync)", "0.13", "result: FAIL (agent with tray wake_bursts_per_s 2.5 > 2)"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}

	r.Baseline.Trace, r.Agents[0].Trace, r.Agents[1].Trace = nil, nil, nil
	r.TraceNote = "wake bursts not counted: no strace"
	r.judge()
	if !r.Passed || len(r.Verdicts) != 6 {
		t.Fatalf("without traces: passed %v, %d verdicts", r.Passed, len(r.Verdicts))
	}
	b.Reset()
	r.WriteText(&b)
	if out := b.String(); strings.Contains(out, "wake bursts/s") || !strings.Contains(out, "no strace") {
		t.Errorf("report without traces:\n%s", out)
	}
}
