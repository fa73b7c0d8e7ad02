package presence

import (
	"context"
	"time"
)

// Store is the service's storage: users, devices and tokens, and the spans
// that beats build. Every implementation (SQLite, PostgreSQL) passes the
// contract suite in backend/storetest.
//
// Writes are durable when the call returns: Ingest answers only after its
// beats are committed, so "200 means committed" holds end to end.
type Store interface {
	People
	Watches

	// CreateUser adds a user and returns a fresh user token, shown once.
	// ECONFLICT when the handle is taken.
	CreateUser(ctx context.Context, handle, name string) (User, string, error)
	UserByID(ctx context.Context, id int64) (User, error)
	UserByHandle(ctx context.Context, handle string) (User, error)
	Users(ctx context.Context) ([]User, error)
	UpdateUser(ctx context.Context, id int64, upd UserUpdate) (User, error)

	// CreateDevice adds a device to a user and returns its token, shown once.
	CreateDevice(ctx context.Context, userID int64, name string) (Device, string, error)
	// Devices lists a user's devices that are not revoked, with their status.
	Devices(ctx context.Context, userID int64) ([]DeviceStatus, error)
	// RevokeDevice revokes a device and its token. ENOTFOUND when the device
	// does not exist or is not the user's (existence is not leaked).
	RevokeDevice(ctx context.Context, userID, deviceID int64) error

	// Authenticate resolves a token; EUNAUTHORIZED for unknown or revoked ones.
	Authenticate(ctx context.Context, token string) (Principal, error)

	// Ingest applies a device's prepared beats (see PrepareBatch) by Fold:
	// beats at or below the device's last_seq are counted as duplicates and
	// not applied, malformed ones are rejected alone, the rest are merged
	// into spans and committed before Ingest returns.
	// Facts, when not nil, update the device's OS, platform and hostname.
	Ingest(ctx context.Context, deviceID int64, beats []Beat, facts *Facts) (IngestResult, error)

	// Presence is every user's presence, served from memory.
	Presence(ctx context.Context) ([]UserPresence, error)
	// DeviceStatus is one device's presence.
	DeviceStatus(ctx context.Context, deviceID int64) (DeviceStatus, error)

	// Spans lists a user's spans overlapping [q.From, q.To), oldest first.
	Spans(ctx context.Context, q SpanQuery) ([]Span, error)

	// Portable history: spans brought in from an export, old spans let go.
	//
	// ImportSpans adds closed history to a device, oldest first, and never
	// touches its open tail. A span is skipped (counted, not written) when
	// it overlaps a span the device already has or one added before it in
	// the same call (overlap: each starts before the other ends, or both
	// are the same instant), when the device has an open tail and the span
	// ends after the tail began, or when it ends after the store's clock.
	// So importing the same spans twice adds nothing the second time. Spans
	// of offline or unknown states, or ending before they start, refuse the
	// whole call (EINVALID); an unknown or revoked device is ENOTFOUND. The
	// spans may be written in several transactions: after a failure, the
	// same call again adds exactly what is missing.
	ImportSpans(ctx context.Context, deviceID int64, spans []Span) (added, skipped int, err error)
	// PruneSpans deletes every span that ended before before, except a
	// device's tail span, and returns how many it deleted.
	PruneSpans(ctx context.Context, before time.Time) (int, error)
	// HistoryStart is the start of the user's earliest span, zero when
	// they have none: where a walk through their history by time begins.
	HistoryStart(ctx context.Context, userID int64) (time.Time, error)

	// Pulse is the cadence the store judges TTLs and span joins by.
	Pulse() Pulse

	// Close flushes every accepted beat and releases the store.
	Close() error
}

// DeviceStatus is a device with its presence at the time of the read.
type DeviceStatus struct {
	Device
	Status   State          `json:"status"`
	Presence DevicePresence `json:"-"`
}

// LastSeen is the device's latest active beat, zero if none.
func (d DeviceStatus) LastSeen() time.Time { return d.Presence.LastActive }

// UserPresence is a user with their devices' statuses.
type UserPresence struct {
	User     User
	Status   State
	LastSeen time.Time
	Devices  []DeviceStatus
}

// IngestResult is what Ingest did with a batch (see Fold for the counts).
type IngestResult struct {
	Accepted   int
	Duplicates int
	// Stale beats are among the accepted: their seq was consumed, nothing else.
	Stale    int
	Rejected []Rejection
	LastSeq  int64
	Device   DeviceStatus
}

// SpanQuery selects spans. Zero DeviceID means all of the user's devices;
// empty States means every state.
type SpanQuery struct {
	UserID   int64
	DeviceID int64
	States   []State
	From, To time.Time
}

// EventKind names a live event (the SSE "event:" field).
type EventKind string

// Live event kinds.
const (
	EventPresence EventKind = "presence" // a device's status changed
	EventSession  EventKind = "session"  // a span started or ended
)

// Event is a live change a store reports after it is committed. IDs increase
// across the whole service (every instance), so a stream can resume from the
// last one it saw.
type Event struct {
	ID     int64     `json:"id"`
	Kind   EventKind `json:"kind"`
	UserID int64     `json:"user_id"`
	At     time.Time `json:"at"`
	// Presence is set for EventPresence: the device and the user's new status.
	Presence *PresenceChange `json:"presence,omitempty"`
	// Session is set for EventSession: the span as it now stands.
	Session *Span `json:"session,omitempty"`
	// Open tells, for EventSession, whether the span is still running.
	Open bool `json:"open,omitempty"`
}

// PresenceChange is the payload of a presence event.
type PresenceChange struct {
	Handle     string    `json:"handle"`
	DeviceID   int64     `json:"device_id"`
	DeviceName string    `json:"device_name"`
	Status     State     `json:"status"`        // the device's new status
	Why        Why       `json:"why,omitempty"` // what makes it present, when active
	UserStatus State     `json:"user_status"`   // the user's status over all devices
	LastSeen   time.Time `json:"last_seen"`     // the user's last active beat
}

// Notifier receives committed events. Stores call it from their writer or
// listener goroutine, so it must not block (the SSE hub drops slow streams
// rather than wait for them).
type Notifier func(Event)

// Options configure a store. Zero values take defaults.
type Options struct {
	Pulse  Pulse
	Now    func() time.Time
	Notify Notifier
	// Observe, when set, is told the size and commit latency of every write
	// batch (for /metrics).
	Observe func(beats int, commit time.Duration)
}

// WithDefaults fills unset options.
func (o Options) WithDefaults() Options {
	if o.Pulse.Interval == 0 {
		o.Pulse = DefaultPulse
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Notify == nil {
		o.Notify = func(Event) {}
	}
	if o.Observe == nil {
		o.Observe = func(int, time.Duration) {}
	}
	return o
}
