package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestJudge(t *testing.T) {
	ok := Cost{RSSMaxMiB: 19, CPUPercent: 0.03, Wakeups: 1.5}
	tests := []struct {
		name   string
		cost   Cost
		gui    []string
		pass   bool
		failed string // metric expected to fail
	}{
		{"all under", ok, nil, true, ""},
		{"at the limits", Cost{RSSMaxMiB: 25, CPUPercent: 0.05, Wakeups: 2}, nil, true, ""},
		{"too much memory", Cost{RSSMaxMiB: 25.1, CPUPercent: 0.03, Wakeups: 1}, nil, false, "rss_max_mib"},
		{"too much CPU", Cost{RSSMaxMiB: 19, CPUPercent: 0.0501, Wakeups: 1}, nil, false, "cpu_percent"},
		{"too many wakeups", Cost{RSSMaxMiB: 19, CPUPercent: 0.01, Wakeups: 17}, nil, false, "wakeups_per_s"},
		{"links WebKit", ok, []string{"libwebkit2gtk-4.1.so.0"}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Report{Targets: DefaultTargets, GUILinks: tt.gui, Agents: []Subject{{Name: "agent", Cost: tt.cost}}}
			r.judge()
			if r.Passed != tt.pass {
				t.Fatalf("Passed = %v, want %v (%+v)", r.Passed, tt.pass, r.Verdicts)
			}
			if len(r.Verdicts) != 3 {
				t.Fatalf("%d verdicts, want 3", len(r.Verdicts))
			}
			for _, v := range r.Verdicts {
				if want := v.Metric != tt.failed; v.Pass != want {
					t.Errorf("%s pass = %v, want %v", v.Metric, v.Pass, want)
				}
			}
		})
	}
}

func TestRatio(t *testing.T) {
	tests := []struct {
		a, b float64
		want string
	}{
		{19.2, 2.1, "×9.14"},
		{18.45, 2.15, "×8.58"},
		{30, 2, "×15.0"},
		{500, 2, "×250"},
		{0.03, 0, "–"},
		{0, 0, "–"},
	}
	for _, tt := range tests {
		if got := ratio(tt.a, tt.b); got != tt.want {
			t.Errorf("ratio(%v, %v) = %q, want %q", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestWriteText(t *testing.T) {
	r := Report{
		WindowS: 60, WarmupS: 10, SampleS: 1, CPUs: 2, ClockTicks: 100, Targets: DefaultTargets,
		Links:    []string{"libc.so.6"},
		Baseline: Subject{Name: "baseline", Binary: "/b", SizeMiB: 1.4, Cost: Cost{RSSMaxMiB: 2.1, Wakeups: 2.15}},
		Agents: []Subject{
			{Name: "agent --headless", Binary: "/a", SizeMiB: 14.7, Backends: "idle source x11-screensaver, lock source clock-gap",
				Cost: Cost{RSSMaxMiB: 19.2, CPUPercent: 0.0333, Wakeups: 18.45}},
			{Name: "agent with tray", Binary: "/a", SizeMiB: 14.7, Tray: ":1.4", Cost: Cost{RSSMaxMiB: 21.4, CPUPercent: 0.05, Wakeups: 1.9}},
		},
	}
	r.judge()
	var b bytes.Buffer
	r.WriteText(&b)
	out := b.String()
	for _, want := range []string{
		"60 s measured after a 10 s warm-up",
		"tray registered as :1.4",
		"idle source x11-screensaver",
		"×8.58",
		"no libwebkit, no libgtk: PASS",
		"counted as context switches",
		"one tick = 0.0167 % of a core",
		"result: FAIL (agent --headless wakeups_per_s 18.45 > 2)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	// The wakeups row: headless fails, tray passes.
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "wakeups/s") {
			if !strings.Contains(line, "FAIL") || !strings.Contains(line, "PASS") {
				t.Errorf("wakeups row should hold one FAIL and one PASS: %q", line)
			}
		}
	}
}

func TestParseLddAndGUILibs(t *testing.T) {
	out := []byte("\tlinux-vdso.so.1 (0x00007ffc)\n" +
		"\tlibwebkit2gtk-4.1.so.0 => /lib/x86_64-linux-gnu/libwebkit2gtk-4.1.so.0 (0x1)\n" +
		"\tlibgtk-3.so.0 => /lib/x86_64-linux-gnu/libgtk-3.so.0 (0x2)\n" +
		"\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x3)\n" +
		"\t/lib64/ld-linux-x86-64.so.2 (0x4)\n")
	names := parseLdd(out)
	want := []string{"linux-vdso.so.1", "libwebkit2gtk-4.1.so.0", "libgtk-3.so.0", "libc.so.6", "ld-linux-x86-64.so.2"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("parseLdd = %v, want %v", names, want)
	}
	var gui []string
	for _, n := range names {
		if guiLib(n) {
			gui = append(gui, n)
		}
	}
	if strings.Join(gui, " ") != "libwebkit2gtk-4.1.so.0 libgtk-3.so.0" {
		t.Fatalf("GUI libraries %v", gui)
	}
}

// TestSharedLibsOfThisTest runs the real ldd (or the ELF reader) on this
// test binary, which links no GUI toolkit.
func TestSharedLibsOfThisTest(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	_, gui, err := sharedLibs(exe)
	if err != nil {
		t.Fatal(err)
	}
	if len(gui) > 0 {
		t.Fatalf("the test binary links %v", gui)
	}
}

func TestAgentBackends(t *testing.T) {
	log := filepath.Join(t.TempDir(), "agent.log")
	body := `{"level":"INFO","msg":"created the local account"}
not json at all
{"level":"INFO","msg":"agent running","idle_source":"x11-screensaver","lock_source":"clock-gap"}
`
	if err := os.WriteFile(log, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := agentBackends(log); got != "idle source x11-screensaver, lock source clock-gap" {
		t.Fatalf("agentBackends = %q", got)
	}
	if got := agentBackends(filepath.Join(t.TempDir(), "none")); got != "" {
		t.Fatalf("agentBackends of a missing log = %q", got)
	}
}
