// Package sysinfo reads facts about the device for the service (hostname,
// OS, platform) and the agent's own footprint (CPU, resident memory) for
// the Diagnostics page, through gopsutil. It has no idle or lock API: that
// is package activity's job.
package sysinfo

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v4/host"
	"github.com/shirou/gopsutil/v4/process"

	"github.com/lastseen/lastseen/backend/presence"
)

// Host describes the machine. Fields gopsutil cannot read stay empty.
type Host struct {
	Hostname        string    `json:"hostname"`
	OS              string    `json:"os"`               // GOOS-style: linux, darwin, windows
	Platform        string    `json:"platform"`         // e.g. debian, ubuntu, darwin, Microsoft Windows 11 Pro
	PlatformVersion string    `json:"platform_version"` // e.g. 12.7, 14.5, 10.0.22631 Build 22631
	KernelVersion   string    `json:"kernel_version"`
	Arch            string    `json:"arch"` // the machine's, e.g. x86_64, arm64
	BootTime        time.Time `json:"boot_time"`
}

// HostInfo reads the machine's facts. The machine ID gopsutil can also read
// is deliberately left out: it identifies the hardware across reinstalls
// and nothing here needs it.
func HostInfo(ctx context.Context) (Host, error) {
	info, err := host.InfoWithContext(ctx)
	if info == nil {
		// Keep what the runtime knows for sure; the service still gets a
		// hostname and an OS.
		h := Host{OS: runtime.GOOS, Arch: runtime.GOARCH}
		var herr error
		h.Hostname, herr = os.Hostname()
		if herr != nil {
			return Host{}, fmt.Errorf("read host facts: %w (hostname: %v)", err, herr)
		}
		return h, nil
	}
	h := Host{
		Hostname:        info.Hostname,
		OS:              info.OS,
		Platform:        info.Platform,
		PlatformVersion: info.PlatformVersion,
		KernelVersion:   info.KernelVersion,
		Arch:            info.KernelArch,
	}
	if info.BootTime > 0 {
		h.BootTime = time.Unix(int64(info.BootTime), 0).UTC()
	}
	if h.Hostname == "" {
		h.Hostname, _ = os.Hostname()
	}
	if h.OS == "" {
		h.OS = runtime.GOOS
	}
	return h, nil
}

// Facts is what the agent sends the service about this device.
func (h Host) Facts() presence.Facts {
	return presence.Facts{
		Hostname: h.Hostname,
		OS:       h.OS,
		Platform: strings.TrimSpace(h.Platform + " " + h.PlatformVersion),
	}
}

// Facts reads the device facts for the service.
func Facts(ctx context.Context) (presence.Facts, error) {
	h, err := HostInfo(ctx)
	if err != nil {
		return presence.Facts{}, err
	}
	return h.Facts(), nil
}

// SelfStats is the agent process's own footprint.
type SelfStats struct {
	PID int32 `json:"pid"`
	// CPUPercent is CPU time over wall time, in percent of one core (100 =
	// one core busy; it can exceed 100 on several cores), averaged over the
	// window named by CPUWindow.
	CPUPercent float64       `json:"cpu_percent"`
	CPUWindow  time.Duration `json:"cpu_window_ns"`
	CPUTime    time.Duration `json:"cpu_time_ns"` // user + system since the process started
	RSSBytes   uint64        `json:"rss_bytes"`
	Threads    int32         `json:"threads"`
	Goroutines int           `json:"goroutines"`
	Uptime     time.Duration `json:"uptime_ns"`
}

// Self reads this process's footprint, with CPUPercent averaged over its
// whole life. For "right now" figures keep a Sampler.
func Self(ctx context.Context) (SelfStats, error) {
	return NewSampler(nil).Sample(ctx)
}

// Sampler reads this process's footprint repeatedly; each Sample's
// CPUPercent covers the time since the previous one (the first covers the
// process's life). It is safe for concurrent use.
type Sampler struct {
	now func() time.Time

	mu      sync.Mutex
	proc    *process.Process
	started time.Time
	lastCPU time.Duration
	lastAt  time.Time
}

// NewSampler returns a Sampler; now is the wall clock (nil: time.Now).
func NewSampler(now func() time.Time) *Sampler {
	if now == nil {
		now = time.Now
	}
	return &Sampler{now: now}
}

// Sample reads the process's CPU time, memory and threads.
func (s *Sampler) Sample(ctx context.Context) (SelfStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		p, err := process.NewProcessWithContext(ctx, int32(os.Getpid()))
		if err != nil {
			return SelfStats{}, fmt.Errorf("read own process: %w", err)
		}
		ms, err := p.CreateTimeWithContext(ctx)
		if err != nil {
			return SelfStats{}, fmt.Errorf("read own start time: %w", err)
		}
		s.proc, s.started, s.lastAt = p, time.UnixMilli(ms), time.UnixMilli(ms)
	}
	now := s.now()
	times, err := s.proc.TimesWithContext(ctx)
	if err != nil {
		return SelfStats{}, fmt.Errorf("read own CPU time: %w", err)
	}
	mem, err := s.proc.MemoryInfoWithContext(ctx)
	if err != nil {
		return SelfStats{}, fmt.Errorf("read own memory: %w", err)
	}
	threads, err := s.proc.NumThreadsWithContext(ctx)
	if err != nil {
		threads = 0 // not every platform counts threads; the rest stands
	}
	cpu := time.Duration((times.User + times.System) * float64(time.Second))
	window := now.Sub(s.lastAt)
	st := SelfStats{
		PID:        s.proc.Pid,
		CPUPercent: cpuPercent(cpu-s.lastCPU, window),
		CPUWindow:  window,
		CPUTime:    cpu,
		RSSBytes:   mem.RSS,
		Threads:    threads,
		Goroutines: runtime.NumGoroutine(),
		Uptime:     now.Sub(s.started),
	}
	s.lastCPU, s.lastAt = cpu, now
	return st, nil
}

// cpuPercent is CPU time over wall time in percent, 0 for an empty or
// backwards window (a wall clock set back between samples).
func cpuPercent(cpu, wall time.Duration) float64 {
	if wall <= 0 || cpu < 0 {
		return 0
	}
	return float64(cpu) / float64(wall) * 100
}
