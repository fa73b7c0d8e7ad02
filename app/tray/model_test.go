package tray

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata"

	"github.com/lastseen/lastseen/app/tray/icons"
	"github.com/lastseen/lastseen/backend/agent"
)

// paris is a zone with daylight saving time. time/tzdata is embedded in the
// test binary, so these cases run on a machine without a zone database.
func paris(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestTooltip(t *testing.T) {
	loc := paris(t)
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, loc)
	today := 3*time.Hour + 12*time.Minute + 59*time.Second
	for _, tc := range []struct {
		name string
		s    Status
		want string
	}{
		{"active", Status{Mode: agent.Automatic, State: "active", TodayActive: today}, "Active · 3 h 12 min today"},
		{"empty mode is automatic", Status{State: "idle", TodayActive: 45 * time.Minute}, "Idle · 45 min today"},
		{"away", Status{State: "away"}, "Away · 0 min today"},
		{"offline by os", Status{State: "offline", TodayActive: 2 * time.Hour}, "Offline · 2 h today"},
		{"starting", Status{}, "Starting…"},
		{"paused until today", Status{Mode: agent.Pause, ModeUntil: time.Date(2026, 11, 25, 14, 30, 0, 0, loc)}, "Paused until 14:30"},
		{"paused, until in utc shown local", Status{Mode: agent.Pause, ModeUntil: time.Date(2026, 11, 25, 13, 30, 0, 0, time.UTC)}, "Paused until 14:30"},
		{"paused until tomorrow", Status{Mode: agent.Pause, ModeUntil: time.Date(2026, 11, 26, 0, 0, 0, 0, loc)}, "Paused until tomorrow"},
		{"paused until tomorrow morning", Status{Mode: agent.Pause, ModeUntil: time.Date(2026, 11, 26, 9, 0, 0, 0, loc)}, "Paused until tomorrow 09:00"},
		{"paused for days", Status{Mode: agent.Pause, ModeUntil: time.Date(2026, 11, 30, 9, 0, 0, 0, loc)}, "Paused until Mon 30 Nov 09:00"},
		{"paused, no end", Status{Mode: agent.Pause}, "Paused"},
		{"invisible", Status{Mode: agent.Invisible, State: "active"}, "Invisible — not sharing presence"},
		{"appear online", Status{Mode: agent.Online, State: "idle", TodayActive: time.Hour}, "Appearing online · 1 h today"},
		{"appear away", Status{Mode: agent.Away, State: "active"}, "Appearing away · 0 min today"},
		{"active in a call", Status{State: "active", Why: "call", TodayActive: 45 * time.Minute}, "Active · in a call · 45 min today"},
		{"active with a video", Status{State: "active", Why: "media"}, "Active · playing a video · 0 min today"},
		{"active by input says nothing more", Status{State: "active", Why: "input"}, "Active · 0 min today"},
		{"a why only counts when active", Status{State: "away", Why: "call"}, "Away · 0 min today"},
		{"revoked wins over everything", Status{Mode: agent.Invisible, State: "active", Error: "this device's token was revoked"}, "Offline — this device's token was revoked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Tooltip(tc.s, now); got != tc.want {
				t.Errorf("Tooltip = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                               "0 min",
		59 * time.Second:                "0 min",
		time.Minute:                     "1 min",
		59*time.Minute + 59*time.Second: "59 min",
		time.Hour:                       "1 h",
		3*time.Hour + 12*time.Minute:    "3 h 12 min",
		25 * time.Hour:                  "25 h",
		-time.Minute:                    "0 min",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestGlyph(t *testing.T) {
	for _, tc := range []struct {
		s    Status
		want icons.Glyph
	}{
		{Status{State: "active"}, icons.Active},
		{Status{State: "idle"}, icons.Idle},
		{Status{State: "away"}, icons.Away},
		{Status{State: "offline"}, icons.Offline},
		{Status{}, icons.Offline},
		{Status{Mode: agent.Online, State: "idle"}, icons.Active},
		{Status{Mode: agent.Away, State: "active"}, icons.Away},
		{Status{Mode: agent.Invisible, State: "active"}, icons.Offline},
		{Status{Mode: agent.Pause, State: "active"}, icons.Paused},
		{Status{State: "active", Error: "cannot reach https://example.com"}, icons.Offline},
	} {
		if got := Glyph(tc.s); got != tc.want {
			t.Errorf("Glyph(%+v) = %s, want %s", tc.s, got, tc.want)
		}
	}
}

func TestServiceLine(t *testing.T) {
	for in, want := range map[string]string{
		"":                                 "Local mode — this computer only",
		"local":                            "Local mode — this computer only",
		"https://presence.example.com":     "Server: presence.example.com",
		"http://127.0.0.1:8080/":           "Server: 127.0.0.1:8080",
		"presence.example.com (no scheme)": "Server: presence.example.com (no scheme)",
	} {
		if got := ServiceLine(Status{Service: in}); got != want {
			t.Errorf("ServiceLine(%q) = %q, want %q", in, got, want)
		}
	}
}

// render flattens a menu to text: one line per item, "[x]" for checked,
// "(off)" disabled, "(hidden)", children indented. Reading the whole menu as
// text keeps the table tests honest about what a user sees.
func render(items []Item, indent string) string {
	var b strings.Builder
	for _, it := range items {
		if it.Separator {
			b.WriteString(indent + "---\n")
			continue
		}
		b.WriteString(indent)
		if it.Checkable {
			if it.Checked {
				b.WriteString("[x] ")
			} else {
				b.WriteString("[ ] ")
			}
		}
		b.WriteString(it.Label)
		if it.Disabled {
			b.WriteString(" (off)")
		}
		if it.Hidden {
			b.WriteString(" (hidden)")
		}
		b.WriteString("\n")
		b.WriteString(render(it.Children, indent+"  "))
	}
	return b.String()
}

func TestBuildMenu(t *testing.T) {
	loc := paris(t)
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, loc)
	for _, tc := range []struct {
		name string
		s    Status
		want string
	}{
		{"automatic, active, local", Status{Mode: agent.Automatic, State: "active", TodayActive: 3*time.Hour + 12*time.Minute}, `
Active · 3 h 12 min today (off)
Local mode — this computer only (off)
---
Open dashboard
---
[x] Automatic
[ ] Appear online
[ ] Appear away
[ ] Invisible
Pause
  30 minutes
  1 hour
  Until tomorrow
  Resume (hidden)
---
[ ] Count calls and videos as present
[ ] Start at login
---
Quit
`},
		{"paused, remote, login on", Status{Mode: agent.Pause, ModeUntil: time.Date(2026, 11, 25, 14, 30, 0, 0, loc), State: "active", Service: "https://ls.example.com", StartAtLogin: true}, `
Paused until 14:30 (off)
Server: ls.example.com (off)
---
Open dashboard
---
[ ] Automatic
[ ] Appear online
[ ] Appear away
[ ] Invisible
Pause
  30 minutes
  1 hour
  Until tomorrow
  Resume
---
[ ] Count calls and videos as present
[x] Start at login
---
Quit
`},
		{"in a call, calls counted", Status{State: "active", Why: "call", CountCallsAndMedia: true, TodayActive: time.Hour}, `
Active · in a call · 1 h today (off)
Local mode — this computer only (off)
---
Open dashboard
---
[x] Automatic
[ ] Appear online
[ ] Appear away
[ ] Invisible
Pause
  30 minutes
  1 hour
  Until tomorrow
  Resume (hidden)
---
[x] Count calls and videos as present
[ ] Start at login
---
Quit
`},
		{"invisible", Status{Mode: agent.Invisible, State: "idle"}, `
Invisible — not sharing presence (off)
Local mode — this computer only (off)
---
Open dashboard
---
[ ] Automatic
[ ] Appear online
[ ] Appear away
[x] Invisible
Pause
  30 minutes
  1 hour
  Until tomorrow
  Resume (hidden)
---
[ ] Count calls and videos as present
[ ] Start at login
---
Quit
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := "\n" + render(BuildMenu(tc.s, now).Items, "")
			if got != tc.want {
				t.Errorf("menu:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// TestMenuShapeIsStable guards the platform code's assumption: the items
// (IDs, order, nesting, checkability) never depend on the status.
func TestMenuShapeIsStable(t *testing.T) {
	shape := func(m Menu) string {
		var walk func([]Item) string
		walk = func(items []Item) string {
			var parts []string
			for _, it := range items {
				parts = append(parts, fmt.Sprintf("%s/%v/%v{%s}", it.ID, it.Separator, it.Checkable, walk(it.Children)))
			}
			return strings.Join(parts, ",")
		}
		return walk(m.Items)
	}
	now := time.Now()
	want := shape(BuildMenu(Status{}, now))
	for _, s := range []Status{
		{Mode: agent.Pause, ModeUntil: now.Add(time.Hour)},
		{Mode: agent.Invisible, Error: "x", StartAtLogin: true},
		{Mode: "something new", State: "weird"},
	} {
		if got := shape(BuildMenu(s, now)); got != want {
			t.Errorf("shape for %+v changed:\n%s\nwant\n%s", s, got, want)
		}
	}
}

type call struct {
	name  string
	mode  agent.Mode
	until time.Time
	on    bool
}

func recorder(calls *[]call) Actions {
	return Actions{
		OpenDashboard:         func() { *calls = append(*calls, call{name: "open"}) },
		SetMode:               func(m agent.Mode, u time.Time) { *calls = append(*calls, call{name: "mode", mode: m, until: u}) },
		SetStartAtLogin:       func(on bool) { *calls = append(*calls, call{name: "login", on: on}) },
		SetCountCallsAndMedia: func(on bool) { *calls = append(*calls, call{name: "calls", on: on}) },
		Quit:                  func() { *calls = append(*calls, call{name: "quit"}) },
	}
}

func TestDispatch(t *testing.T) {
	loc := paris(t)
	now := time.Date(2026, 11, 25, 22, 10, 0, 0, loc)
	midnight := time.Date(2026, 11, 26, 0, 0, 0, 0, loc)
	for _, tc := range []struct {
		id   string
		s    Status
		want call
		quit bool
	}{
		{IDOpen, Status{}, call{name: "open"}, false},
		{IDModeAuto, Status{}, call{name: "mode", mode: agent.Automatic}, false},
		{IDModeOnline, Status{}, call{name: "mode", mode: agent.Online}, false},
		{IDModeAway, Status{}, call{name: "mode", mode: agent.Away}, false},
		{IDModeInvisible, Status{}, call{name: "mode", mode: agent.Invisible}, false},
		{IDPause30m, Status{}, call{name: "mode", mode: agent.Pause, until: now.Add(30 * time.Minute)}, false},
		{IDPause1h, Status{}, call{name: "mode", mode: agent.Pause, until: now.Add(time.Hour)}, false},
		{IDPauseTomorrow, Status{}, call{name: "mode", mode: agent.Pause, until: midnight}, false},
		{IDResume, Status{Mode: agent.Pause}, call{name: "mode", mode: agent.Automatic}, false},
		{IDStartAtLogin, Status{StartAtLogin: false}, call{name: "login", on: true}, false},
		{IDStartAtLogin, Status{StartAtLogin: true}, call{name: "login", on: false}, false},
		{IDCountCalls, Status{CountCallsAndMedia: false}, call{name: "calls", on: true}, false},
		{IDCountCalls, Status{CountCallsAndMedia: true}, call{name: "calls", on: false}, false},
		{IDQuit, Status{}, call{name: "quit"}, true},
	} {
		t.Run(tc.id, func(t *testing.T) {
			var calls []call
			quit := recorder(&calls).dispatch(tc.id, tc.s, now)
			if quit != tc.quit {
				t.Errorf("quit = %v, want %v", quit, tc.quit)
			}
			if len(calls) != 1 || calls[0].name != tc.want.name || calls[0].mode != tc.want.mode ||
				!calls[0].until.Equal(tc.want.until) || calls[0].on != tc.want.on {
				t.Errorf("calls = %+v, want [%+v]", calls, tc.want)
			}
		})
	}
	t.Run("status line and unknown ids do nothing", func(t *testing.T) {
		var calls []call
		for _, id := range []string{IDStatus, IDService, IDPause, "nope"} {
			if recorder(&calls).dispatch(id, Status{}, now) {
				t.Errorf("%s quits", id)
			}
		}
		if len(calls) != 0 {
			t.Errorf("calls = %+v", calls)
		}
	})
	t.Run("nil actions are safe, quit still ends the tray", func(t *testing.T) {
		for _, id := range []string{IDOpen, IDModeInvisible, IDPause30m, IDStartAtLogin, IDCountCalls} {
			if (Actions{}).dispatch(id, Status{}, now) {
				t.Errorf("%s quits", id)
			}
		}
		if !(Actions{}).dispatch(IDQuit, Status{}, now) {
			t.Error("quit without an action does not end the tray")
		}
	})
}

func TestDisableMissing(t *testing.T) {
	m := BuildMenu(Status{}, time.Now())
	items := Actions{SetMode: func(agent.Mode, time.Time) {}}.disableMissing(m.Items)
	var off []string
	var walk func([]Item)
	walk = func(items []Item) {
		for _, it := range items {
			if it.Disabled {
				off = append(off, it.ID)
			}
			walk(it.Children)
		}
	}
	walk(items)
	want := []string{IDStatus, IDService, IDOpen, IDCountCalls, IDStartAtLogin}
	if !slices.Equal(off, want) {
		t.Errorf("disabled = %v, want %v", off, want)
	}
}
