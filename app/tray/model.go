package tray

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/lastseen/lastseen/app/tray/icons"
	"github.com/lastseen/lastseen/backend/agent"
)

// Status is what the tray shows: the agent core's view of this device. The
// core sends a fresh one whenever something in it changes.
type Status struct {
	// Mode is the agent's manual mode; "" reads as automatic.
	Mode agent.Mode
	// ModeUntil is when a pause ends; zero when it has no end.
	ModeUntil time.Time
	// State is what the OS says: active, idle, away or offline; "" while the
	// agent is still starting.
	State string
	// Why is what keeps an active user present: "input", "call" or "media"
	// ("" reads as input).
	Why string
	// TodayActive is this device's active time since local midnight.
	TodayActive time.Duration
	// Service is "local" (or "") in local mode, else the server's URL.
	Service string
	// Error says why presence is not reaching the service ("this device's
	// token was revoked", "cannot reach …"); "" when all is well.
	Error string
	// StartAtLogin mirrors the login item.
	StartAtLogin bool
	// CountCallsAndMedia mirrors "count calls and videos as present".
	CountCallsAndMedia bool
}

// Item IDs: stable names for the menu entries. The menu's shape never
// changes with the status (only labels, checks and visibility do), so a
// platform tray builds it once and updates it in place.
const (
	IDStatus        = "status"
	IDService       = "service"
	IDOpen          = "open"
	IDModeAuto      = "mode.auto"
	IDModeOnline    = "mode.online"
	IDModeAway      = "mode.away"
	IDModeInvisible = "mode.invisible"
	IDPause         = "pause"
	IDPause30m      = "pause.30m"
	IDPause1h       = "pause.1h"
	IDPauseTomorrow = "pause.tomorrow"
	IDResume        = "pause.resume"
	IDStartAtLogin  = "login"
	IDCountCalls    = "calls"
	IDQuit          = "quit"
)

// Item is one entry of the menu model.
type Item struct {
	ID        string // one of the ID* constants; "" for separators
	Label     string
	Separator bool
	Disabled  bool
	Hidden    bool
	Checkable bool
	Checked   bool
	Children  []Item // a submenu when non-empty
}

// Menu is everything the tray shows for one Status.
type Menu struct {
	Icon    icons.Glyph
	Tooltip string
	Items   []Item
}

// BuildMenu is the tray for s at now. It is pure: the platform code only
// copies its result onto native items.
func BuildMenu(s Status, now time.Time) Menu {
	mode := normalMode(s.Mode)
	paused := mode == agent.Pause
	sep := Item{Separator: true}
	return Menu{
		Icon:    Glyph(s),
		Tooltip: Tooltip(s, now),
		Items: []Item{
			{ID: IDStatus, Label: Tooltip(s, now), Disabled: true},
			{ID: IDService, Label: ServiceLine(s), Disabled: true},
			sep,
			{ID: IDOpen, Label: "Open dashboard"},
			sep,
			{ID: IDModeAuto, Label: "Automatic", Checkable: true, Checked: mode == agent.Automatic},
			{ID: IDModeOnline, Label: "Appear online", Checkable: true, Checked: mode == agent.Online},
			{ID: IDModeAway, Label: "Appear away", Checkable: true, Checked: mode == agent.Away},
			{ID: IDModeInvisible, Label: "Invisible", Checkable: true, Checked: mode == agent.Invisible},
			{ID: IDPause, Label: "Pause", Children: []Item{
				{ID: IDPause30m, Label: "30 minutes"},
				{ID: IDPause1h, Label: "1 hour"},
				{ID: IDPauseTomorrow, Label: "Until tomorrow"},
				{ID: IDResume, Label: "Resume", Hidden: !paused},
			}},
			sep,
			{ID: IDCountCalls, Label: "Count calls and videos as present", Checkable: true, Checked: s.CountCallsAndMedia},
			{ID: IDStartAtLogin, Label: "Start at login", Checkable: true, Checked: s.StartAtLogin},
			sep,
			{ID: IDQuit, Label: "Quit"},
		},
	}
}

func normalMode(m agent.Mode) agent.Mode {
	if m == "" {
		return agent.Automatic
	}
	return m
}

// Glyph is the tray icon for s: what others see of this device, so a
// revoked token or invisibility shows as offline whatever the OS says.
func Glyph(s Status) icons.Glyph {
	if s.Error != "" {
		return icons.Offline
	}
	switch normalMode(s.Mode) {
	case agent.Invisible:
		return icons.Offline
	case agent.Pause:
		return icons.Paused
	case agent.Online:
		return icons.Active
	case agent.Away:
		return icons.Away
	}
	switch s.State {
	case "active":
		return icons.Active
	case "idle":
		return icons.Idle
	case "away":
		return icons.Away
	}
	return icons.Offline
}

// Tooltip is the one line that sums up s: "Active · 3 h 12 min today",
// "Active · in a call · 45 min today", "Paused until 14:30", "Invisible —
// not sharing presence", "Offline — this device's token was revoked".
func Tooltip(s Status, now time.Time) string {
	if s.Error != "" {
		return "Offline — " + s.Error
	}
	today := FormatDuration(s.TodayActive) + " today"
	switch normalMode(s.Mode) {
	case agent.Invisible:
		return "Invisible — not sharing presence"
	case agent.Pause:
		if s.ModeUntil.IsZero() {
			return "Paused"
		}
		return "Paused until " + FormatUntil(s.ModeUntil, now)
	case agent.Online:
		return "Appearing online · " + today
	case agent.Away:
		return "Appearing away · " + today
	}
	switch s.State {
	case "active", "idle", "away", "offline":
		state := strings.ToUpper(s.State[:1]) + s.State[1:]
		if r := reason(s); r != "" {
			state += " · " + r
		}
		return state + " · " + today
	}
	return "Starting…"
}

// reason says what keeps an active user present when it is not input.
func reason(s Status) string {
	if s.State != "active" {
		return ""
	}
	switch s.Why {
	case "call":
		return "in a call"
	case "media":
		return "playing a video"
	}
	return ""
}

// ServiceLine says where presence goes.
func ServiceLine(s Status) string {
	if s.Service == "" || s.Service == "local" {
		return "Local mode — this computer only"
	}
	host := s.Service
	if u, err := url.Parse(s.Service); err == nil && u.Host != "" {
		host = u.Host
	}
	return "Server: " + host
}

// FormatDuration renders a day's total the way the tray shows it: "3 h 12
// min", "45 min", "2 h". Seconds are dropped, never rounded up, so the tray
// never claims a minute not yet spent.
func FormatDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	h := int(d / time.Hour)
	m := int(d % time.Hour / time.Minute)
	switch {
	case h == 0:
		return fmt.Sprintf("%d min", m)
	case m == 0:
		return fmt.Sprintf("%d h", h)
	}
	return fmt.Sprintf("%d h %d min", h, m)
}

// FormatUntil renders a pause's end relative to now, in now's time zone:
// "14:30" today, "tomorrow 09:00", "tomorrow" for the midnight that
// "Until tomorrow" picks, else "Mon 2 Jan 09:00".
func FormatUntil(t, now time.Time) string {
	t = t.In(now.Location())
	y1, m1, d1 := now.Date()
	y2, m2, d2 := t.Date()
	if y1 == y2 && m1 == m2 && d1 == d2 {
		return t.Format("15:04")
	}
	if t.Equal(agent.NextMidnight(now)) {
		return "tomorrow"
	}
	ty, tm, td := now.AddDate(0, 0, 1).Date()
	if ty == y2 && tm == m2 && td == d2 {
		return "tomorrow " + t.Format("15:04")
	}
	return t.Format("Mon 2 Jan 15:04")
}

// Actions are what the menu can ask of the agent core. Nil actions are
// shown disabled.
type Actions struct {
	OpenDashboard func()
	// SetMode switches the presence mode; until is the end of a pause and
	// zero otherwise. "Resume" is SetMode(agent.Automatic, zero).
	SetMode         func(mode agent.Mode, until time.Time)
	SetStartAtLogin func(on bool)
	// SetCountCallsAndMedia turns "count calls and videos as present" on
	// or off.
	SetCountCallsAndMedia func(on bool)
	// Quit asks the agent to stop; the tray ends its Run right after.
	Quit func()
}

// Pause lengths offered in the menu.
const (
	pauseShort = 30 * time.Minute
	pauseLong  = time.Hour
)

// dispatch carries out the menu item id against the status s shown when it
// was clicked, and reports whether the tray should end.
func (a Actions) dispatch(id string, s Status, now time.Time) (quit bool) {
	setMode := func(mode agent.Mode, until time.Time) {
		if a.SetMode != nil {
			a.SetMode(mode, until)
		}
	}
	switch id {
	case IDOpen:
		if a.OpenDashboard != nil {
			a.OpenDashboard()
		}
	case IDModeAuto, IDResume:
		setMode(agent.Automatic, time.Time{})
	case IDModeOnline:
		setMode(agent.Online, time.Time{})
	case IDModeAway:
		setMode(agent.Away, time.Time{})
	case IDModeInvisible:
		setMode(agent.Invisible, time.Time{})
	case IDPause30m:
		setMode(agent.Pause, now.Add(pauseShort))
	case IDPause1h:
		setMode(agent.Pause, now.Add(pauseLong))
	case IDPauseTomorrow:
		setMode(agent.Pause, agent.NextMidnight(now))
	case IDStartAtLogin:
		// The checkbox shows the login item's real state; it flips only
		// when the core reports the change back.
		if a.SetStartAtLogin != nil {
			a.SetStartAtLogin(!s.StartAtLogin)
		}
	case IDCountCalls:
		// Like the login item: the check follows the core's report.
		if a.SetCountCallsAndMedia != nil {
			a.SetCountCallsAndMedia(!s.CountCallsAndMedia)
		}
	case IDQuit:
		if a.Quit != nil {
			a.Quit()
		}
		return true
	}
	return false
}

// disableMissing greys out the entries whose action is not wired.
func (a Actions) disableMissing(items []Item) []Item {
	out := make([]Item, len(items))
	for i, it := range items {
		switch it.ID {
		case IDOpen:
			it.Disabled = it.Disabled || a.OpenDashboard == nil
		case IDModeAuto, IDModeOnline, IDModeAway, IDModeInvisible, IDPause:
			it.Disabled = it.Disabled || a.SetMode == nil
		case IDStartAtLogin:
			it.Disabled = it.Disabled || a.SetStartAtLogin == nil
		case IDCountCalls:
			it.Disabled = it.Disabled || a.SetCountCallsAndMedia == nil
		}
		if len(it.Children) > 0 {
			it.Children = a.disableMissing(it.Children)
		}
		out[i] = it
	}
	return out
}
