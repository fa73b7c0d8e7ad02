package presence

import "time"

// DevicePresence is what the service knows of one device right now. It is
// kept in memory by the stores and rebuilt from the devices table at start.
type DevicePresence struct {
	DeviceID int64 `json:"id"`
	UserID   int64 `json:"-"`
	// State is the state of the device's last beat.
	State State `json:"-"`
	// LastBeat is the time of the device's latest beat, any state.
	LastBeat time.Time `json:"-"`
	// LastActive is the time of its latest active beat ("last seen").
	LastActive time.Time `json:"-"`
	// LastSeq is the device's high-water mark: beats at or below it are duplicates.
	LastSeq int64 `json:"-"`
	// Since is when State began, as the fold saw it (the edge its beat
	// carried); zero when unknown (a store restarted: StatusSince then
	// falls back to the last beat).
	Since time.Time `json:"-"`
	// Why is what made the device present at its last beat (active only).
	Why Why `json:"-"`
}

// Status is the device's state at now: its last beat's state, or Offline once
// no beat has come for the pulse window (the TTL).
func (d DevicePresence) Status(now time.Time, p Pulse) State {
	if d.LastBeat.IsZero() || !d.State.Valid() {
		return Offline
	}
	if now.Sub(d.LastBeat) > p.Window() {
		return Offline
	}
	return d.State
}

// ExpiresAt is when the device turns offline if no beat arrives: the instant
// its silence exceeds the pulse window. Zero when it already is offline by
// its own beat.
func (d DevicePresence) ExpiresAt(p Pulse) time.Time {
	if d.LastBeat.IsZero() || d.State == Offline {
		return time.Time{}
	}
	return d.LastBeat.Add(p.Window())
}

// OfflineSince is the instant a silent device is taken to have gone offline:
// its last beat plus grace (DESIGN §2), never the moment somebody noticed.
func (d DevicePresence) OfflineSince(p Pulse) time.Time {
	if d.State == Offline {
		return d.LastBeat
	}
	return d.LastBeat.Add(p.Grace)
}

// Apply folds accepted beats (sorted by seq, above LastSeq) into the presence.
func (d DevicePresence) Apply(beats []Beat) DevicePresence {
	for _, b := range beats {
		if b.Seq > d.LastSeq {
			d.LastSeq = b.Seq
		}
		if !b.At.Before(d.LastBeat) {
			d.LastBeat = b.At
			d.State = b.State
			d.Why = b.Why.Of(b.State)
		}
		if b.State == Active && b.At.After(d.LastActive) {
			d.LastActive = b.At
		}
	}
	return d
}

// UserStatus is a user's state over their devices: the highest precedence.
func UserStatus(now time.Time, p Pulse, devices []DevicePresence) State {
	best := Offline
	for _, d := range devices {
		best = Highest(best, d.Status(now, p))
	}
	return best
}

// LastSeen is the latest active beat of any of the devices (zero if none).
func LastSeen(devices []DevicePresence) time.Time {
	var t time.Time
	for _, d := range devices {
		if d.LastActive.After(t) {
			t = d.LastActive
		}
	}
	return t
}
