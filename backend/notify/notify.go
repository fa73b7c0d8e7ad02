// Package notify tells the person at this computer when someone they watch
// comes online. It follows the service's live presence (Watcher), decides
// which changes deserve a notification (Decider: a watched person going
// from not online to online, seen live, never oneself, rate-limited) and
// shows them through the desktop's own notification service (Desktop:
// org.freedesktop.Notifications on Linux and the BSDs, a toast on Windows,
// the notification centre on macOS).
//
// Watching someone is the opt-in; the agent's "notifications" setting
// silences them all.
package notify

import (
	"context"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// AppName is the application the desktop shows a notification from.
const AppName = "Lastseen"

// Rate limits: a person who flaps between online and offline is announced
// once per PerPerson, and a busy team at most PerHour times an hour.
const (
	PerPerson = 10 * time.Minute
	PerHour   = 20
)

// Notification is one message for the desktop.
type Notification struct {
	Title string // "Ann is online"
	Body  string // the device that brought them online
}

// Sender shows notifications; Desktop is the real one.
type Sender interface {
	Send(ctx context.Context, n Notification) error
}

// Change is a person's status over all their devices, as a live presence
// event says it: the device the event is about, and the user's status.
type Change struct {
	Handle string
	Device string
	Status presence.State
}

// Decider turns presence changes into notifications. It remembers each
// person's last known status (from the snapshot taken at every connect,
// then from live changes), whom the user watches, and what it announced
// lately. Not safe for concurrent use: the Watcher owns it.
type Decider struct {
	now     func() time.Time
	known   map[string]presence.State
	watched map[string]string // handle → name
	last    map[string]time.Time
	sent    []time.Time // announcements in the last hour, oldest first
}

// NewDecider returns a Decider reading the time from now.
func NewDecider(now func() time.Time) *Decider {
	if now == nil {
		now = time.Now
	}
	return &Decider{
		now:     now,
		known:   map[string]presence.State{},
		watched: map[string]string{},
		last:    map[string]time.Time{},
	}
}

// SetWatches replaces whom the user watches.
func (d *Decider) SetWatches(ws []presence.Watch) {
	d.watched = make(map[string]string, len(ws))
	for _, w := range ws {
		d.watched[w.Handle] = w.Name
	}
}

// Snapshot replaces every person's known status, announcing nobody: who
// is online when the agent connects (or reconnects) was not seen coming
// online. A person missing from it is taken to be offline.
func (d *Decider) Snapshot(people map[string]presence.State) {
	d.known = make(map[string]presence.State, len(people))
	for h, st := range people {
		d.known[h] = st
	}
}

// Observe records a live change and says whether to announce it: the
// person is watched, is not self, went from not online to online, and
// neither rate limit is spent. With enabled false the change is only
// recorded (and no limit spent).
func (d *Decider) Observe(c Change, self string, enabled bool) (Notification, bool) {
	was := d.known[c.Handle]
	d.known[c.Handle] = c.Status
	name, watched := d.watched[c.Handle]
	if !enabled || !watched || c.Handle == self || was.Online() || !c.Status.Online() {
		return Notification{}, false
	}
	now := d.now()
	if at, ok := d.last[c.Handle]; ok && now.Sub(at) < PerPerson {
		return Notification{}, false
	}
	d.forget(now)
	if len(d.sent) >= PerHour {
		return Notification{}, false
	}
	d.last[c.Handle] = now
	d.sent = append(d.sent, now)
	if name == "" {
		name = c.Handle
	}
	return Notification{Title: name + " is online", Body: c.Device}, true
}

// forget drops what no limit needs any more.
func (d *Decider) forget(now time.Time) {
	i := 0
	for i < len(d.sent) && now.Sub(d.sent[i]) >= time.Hour {
		i++
	}
	d.sent = d.sent[i:]
	for h, at := range d.last {
		if now.Sub(at) >= PerPerson {
			delete(d.last, h)
		}
	}
}
