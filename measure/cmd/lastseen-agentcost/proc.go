package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// procStatus is what /proc/PID/status and /proc/PID/task/TID/status say
// about memory and scheduling. Sizes are in KiB, as the kernel prints them.
type procStatus struct {
	RSSKiB, HWMKiB      uint64
	AnonKiB, FileKiB    uint64 // RSS split: private memory (heap, stacks) and mapped files (the binary, libraries)
	Threads             int
	Voluntary, Involunt uint64
}

// parseStatus reads the "Key:\tvalue" lines it needs. A zombie has no Vm*
// lines, so missing memory lines are zero rather than an error; the context
// switch counters exist for every task, so their absence is one.
func parseStatus(b []byte) (procStatus, error) {
	var s procStatus
	var haveVol, haveInvol bool
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(val), "kB"))
		var dst *uint64
		switch key {
		case "VmRSS":
			dst = &s.RSSKiB
		case "VmHWM":
			dst = &s.HWMKiB
		case "RssAnon":
			dst = &s.AnonKiB
		case "RssFile":
			dst = &s.FileKiB
		case "voluntary_ctxt_switches":
			dst, haveVol = &s.Voluntary, true
		case "nonvoluntary_ctxt_switches":
			dst, haveInvol = &s.Involunt, true
		case "Threads":
			n, err := strconv.Atoi(val)
			if err != nil {
				return s, fmt.Errorf("status: Threads %q: %w", val, err)
			}
			s.Threads = n
			continue
		default:
			continue
		}
		n, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			return s, fmt.Errorf("status: %s %q: %w", key, val, err)
		}
		*dst = n
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("status: %w", err)
	}
	if !haveVol || !haveInvol {
		return s, errors.New("status: no context switch counters (kernel without them?)")
	}
	return s, nil
}

// parseStatTicks returns utime+stime from /proc/PID/stat, in clock ticks.
// The command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'. These counters include threads that already
// exited, unlike the per-task files.
func parseStatTicks(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("stat: no ')' after the command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the command name, want at least 13", len(f))
	}
	var sum uint64
	for _, s := range f[11:13] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat: utime/stime %q: %w", s, err)
		}
		sum += n
	}
	return sum, nil
}

// parseSchedstat returns the first field of /proc/PID/task/TID/schedstat:
// nanoseconds the task spent on a CPU. It is far finer than clock ticks,
// which matters when a whole minute costs the agent a tick or two.
func parseSchedstat(b []byte) (uint64, error) {
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 0, errors.New("schedstat: empty")
	}
	n, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("schedstat: %w", err)
	}
	return n, nil
}

// parsePSS returns the Pss line of /proc/PID/smaps_rollup in KiB: the
// process's resident pages with each shared page divided among the
// processes that map it, which is what it really adds to the machine.
func parsePSS(b []byte) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || key != "Pss" {
			continue
		}
		val = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(val), "kB"))
		n, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("smaps_rollup: Pss %q: %w", val, err)
		}
		return n, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("smaps_rollup: %w", err)
	}
	return 0, errors.New("smaps_rollup: no Pss line")
}

// taskCounters is one thread's cumulative scheduling counters.
type taskCounters struct {
	Vol   uint64 // voluntary context switches: the thread blocked
	Invol uint64 // involuntary: the thread was preempted
	RunNs uint64 // time on a CPU (schedstat)
}

// snapshot is one reading of a process.
type snapshot struct {
	CPUTicks uint64
	RSSKiB   uint64
	HWMKiB   uint64
	AnonKiB  uint64
	FileKiB  uint64
	PSSKiB   uint64
	Threads  int
	Tasks    map[int]taskCounters
}

// readSnapshot reads a live process under root (normally "/proc").
func readSnapshot(root string, pid int) (snapshot, error) {
	var s snapshot
	dir := filepath.Join(root, strconv.Itoa(pid))
	b, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return s, err
	}
	if s.CPUTicks, err = parseStatTicks(b); err != nil {
		return s, err
	}
	b, err = os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		return s, err
	}
	st, err := parseStatus(b)
	if err != nil {
		return s, err
	}
	s.RSSKiB, s.HWMKiB, s.AnonKiB, s.FileKiB, s.Threads = st.RSSKiB, st.HWMKiB, st.AnonKiB, st.FileKiB, st.Threads
	b, err = os.ReadFile(filepath.Join(dir, "smaps_rollup"))
	if err != nil {
		return s, err
	}
	if s.PSSKiB, err = parsePSS(b); err != nil {
		return s, err
	}
	ents, err := os.ReadDir(filepath.Join(dir, "task"))
	if err != nil {
		return s, err
	}
	s.Tasks = make(map[int]taskCounters, len(ents))
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		tdir := filepath.Join(dir, "task", e.Name())
		b, err := os.ReadFile(filepath.Join(tdir, "status"))
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			continue // the thread exited between the listing and the read
		}
		if err != nil {
			return s, err
		}
		ts, err := parseStatus(b)
		if err != nil {
			return s, fmt.Errorf("task %d: %w", tid, err)
		}
		c := taskCounters{Vol: ts.Voluntary, Invol: ts.Involunt}
		if b, err := os.ReadFile(filepath.Join(tdir, "schedstat")); err == nil {
			if c.RunNs, err = parseSchedstat(b); err != nil {
				return s, fmt.Errorf("task %d: %w", tid, err)
			}
		}
		s.Tasks[tid] = c
	}
	return s, nil
}

// atClkTck is AT_CLKTCK, the auxiliary vector entry that holds the kernel's
// USER_HZ: the unit of utime and stime in /proc/PID/stat.
const atClkTck = 17

// clockTicks is USER_HZ as the kernel told this process in its auxiliary
// vector (/proc/self/auxv: native-endian word pairs), or 100, its value on
// every mainstream architecture, when the vector cannot be read.
func clockTicks() uint64 {
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 100
	}
	word := strconv.IntSize / 8
	read := func(p []byte) uint64 {
		if word == 4 {
			return uint64(binary.NativeEndian.Uint32(p))
		}
		return binary.NativeEndian.Uint64(p)
	}
	for i := 0; i+2*word <= len(b); i += 2 * word {
		if read(b[i:]) == atClkTck {
			if v := read(b[i+word:]); v > 0 {
				return v
			}
		}
	}
	return 100
}
