package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const statusLive = `Name:	lastseen-agent
Umask:	0022
State:	S (sleeping)
Tgid:	4242
VmPeak:	 1245000 kB
VmHWM:	   20480 kB
VmRSS:	   19660 kB
RssAnon:	    9000 kB
RssFile:	   10660 kB
RssShmem:	       0 kB
Threads:	9
voluntary_ctxt_switches:	1234
nonvoluntary_ctxt_switches:	56
`

func TestParseStatus(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    procStatus
		wantErr string
	}{
		{"live process", statusLive, procStatus{RSSKiB: 19660, HWMKiB: 20480, AnonKiB: 9000, FileKiB: 10660, Threads: 9, Voluntary: 1234, Involunt: 56}, ""},
		{"zombie: no memory lines", "Name:\tx\nState:\tZ (zombie)\nThreads:\t1\nvoluntary_ctxt_switches:\t3\nnonvoluntary_ctxt_switches:\t0\n",
			procStatus{Threads: 1, Voluntary: 3}, ""},
		{"no switch counters", "Name:\tx\nVmRSS:\t10 kB\n", procStatus{}, "no context switch counters"},
		{"garbled number", strings.Replace(statusLive, "19660", "19x60", 1), procStatus{}, "VmRSS"},
		{"garbled threads", strings.Replace(statusLive, "Threads:\t9", "Threads:\tnine", 1), procStatus{}, "Threads"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatus([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseStatTicks(t *testing.T) {
	// utime (14) = 7, stime (15) = 5; the command name holds ") (" to
	// make sure fields are counted from the last parenthesis.
	tail := " S 1 4242 4242 0 -1 4194560 300 0 0 0 7 5 0 0 20 0 9 0 1000 1245000 4915"
	tests := []struct {
		name    string
		in      string
		want    uint64
		wantErr bool
	}{
		{"plain name", "4242 (lastseen-agent)" + tail, 12, false},
		{"name with parentheses and spaces", "4242 (a) (b c)" + tail, 12, false},
		{"truncated", "4242 (x) S 1 2 3", 0, true},
		{"no name", "4242 x S", 0, true},
		{"garbled ticks", "4242 (x) S 1 4242 4242 0 -1 4194560 300 0 0 0 seven 5 0", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatTicks([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("got %d ticks, want %d", got, tt.want)
			}
		})
	}
}

func TestParsePSSAndSchedstat(t *testing.T) {
	rollup := "55a0-7ffd ---p 00000000 00:00 0    [rollup]\nRss:               19660 kB\nPss:               10777 kB\nPss_Anon:           9000 kB\n"
	if got, err := parsePSS([]byte(rollup)); err != nil || got != 10777 {
		t.Fatalf("parsePSS = %d, %v; want 10777", got, err)
	}
	if _, err := parsePSS([]byte("Rss: 1 kB\n")); err == nil {
		t.Fatal("parsePSS accepted a rollup without Pss")
	}
	if got, err := parseSchedstat([]byte("123456789 2000 31\n")); err != nil || got != 123456789 {
		t.Fatalf("parseSchedstat = %d, %v", got, err)
	}
	for _, bad := range []string{"", "x 1 2"} {
		if _, err := parseSchedstat([]byte(bad)); err == nil {
			t.Fatalf("parseSchedstat(%q) accepted", bad)
		}
	}
}

func TestReadSnapshotGone(t *testing.T) {
	if _, err := readSnapshot(t.TempDir(), 1); err == nil {
		t.Fatal("a missing process read without error")
	}
	// A fake /proc whose task dir lost a thread between listing and read.
	root := t.TempDir()
	dir := filepath.Join(root, "7")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "task", "7"), 0o755))
	must(os.MkdirAll(filepath.Join(dir, "task", "8"), 0o755)) // no files: exited
	must(os.WriteFile(filepath.Join(dir, "stat"), []byte("7 (x) S 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 2 0"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "status"), []byte(statusLive), 0o644))
	must(os.WriteFile(filepath.Join(dir, "smaps_rollup"), []byte("Pss: 5 kB\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "task", "7", "status"), []byte(statusLive), 0o644))
	must(os.WriteFile(filepath.Join(dir, "task", "7", "schedstat"), []byte("99 0 1\n"), 0o644))
	s, err := readSnapshot(root, 7)
	if err != nil {
		t.Fatal(err)
	}
	want := taskCounters{Vol: 1234, Invol: 56, RunNs: 99}
	if len(s.Tasks) != 1 || s.Tasks[7] != want || s.CPUTicks != 7 || s.PSSKiB != 5 {
		t.Fatalf("snapshot %+v", s)
	}
}
