package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// devEntry is one device as memory knows it.
type devEntry struct {
	dev  presence.Device
	pres presence.DevicePresence
	// tail is the span the next beat may extend: not closed by a beat. Nil
	// after an offline beat or before the first beat.
	tail *presence.Span
	// announced is the status the last presence event told; the expiry
	// loop compares it with the status now to notice a silent device.
	announced presence.State
	// announcedWhy is the why that event told, for an active status: a call
	// starting while the device is already active is news too.
	announcedWhy presence.Why
}

func (d *devEntry) state() presence.DeviceState {
	return presence.DeviceState{Presence: d.pres, Tail: d.tail}
}

func (d *devEntry) status(now time.Time, p presence.Pulse) presence.DeviceStatus {
	return presence.DeviceStatus{Device: d.dev, Status: d.pres.Status(now, p), Presence: d.pres}
}

// userEntry is one user and their devices that are not revoked, by ID.
type userEntry struct {
	user    presence.User
	devices []int64
}

const deviceColumns = `d.id, d.user_id, d.name, d.os, d.platform, d.hostname, d.version, d.created_ns, d.revoked_ns IS NOT NULL,
	d.last_seq, d.state, d.last_beat_ns, d.last_active_ns,
	t.id, t.state, t.why, t.start_ns, CASE WHEN t.end_ns = 9223372036854775807 THEN d.tail_end_ns ELSE t.end_ns END, t.replayed`

const deviceFrom = ` FROM devices d LEFT JOIN spans t ON t.id = d.tail_span_id`

func scanDevice(sc interface{ Scan(...any) error }) (*devEntry, error) {
	var (
		e                          devEntry
		created, lastBeat, lastAct int64
		tailID, tailStart, tailEnd sql.NullInt64
		tailState, tailWhy         sql.NullString
		tailReplayed               sql.NullBool
		state                      string
	)
	if err := sc.Scan(&e.dev.ID, &e.dev.UserID, &e.dev.Name, &e.dev.OS, &e.dev.Platform, &e.dev.Hostname, &e.dev.Version, &created, &e.dev.Revoked,
		&e.pres.LastSeq, &state, &lastBeat, &lastAct,
		&tailID, &tailState, &tailWhy, &tailStart, &tailEnd, &tailReplayed); err != nil {
		return nil, err
	}
	e.dev.CreatedAt = fromNS(created)
	e.pres.DeviceID, e.pres.UserID = e.dev.ID, e.dev.UserID
	e.pres.State = presence.State(state)
	e.pres.LastBeat, e.pres.LastActive = fromNS(lastBeat), fromNS(lastAct)
	if tailID.Valid {
		e.tail = &presence.Span{
			ID: tailID.Int64, DeviceID: e.dev.ID, State: presence.State(tailState.String), Why: presence.Why(tailWhy.String),
			Start: fromNS(tailStart.Int64), End: fromNS(tailEnd.Int64), Replayed: tailReplayed.Bool,
		}
		e.pres.Why, e.pres.Since = e.tail.Why.Of(e.tail.State), e.tail.Start
	}
	return &e, nil
}

// loadDevice reads one device and its tail as the database has them.
func loadDevice(ctx context.Context, q querier, id int64) (*devEntry, error) {
	e, err := scanDevice(q.QueryRowContext(ctx, `SELECT `+deviceColumns+deviceFrom+` WHERE d.id = ?`, id))
	if err == sql.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load device %d: %w", id, err)
	}
	return e, nil
}

// refresh makes memory's accounts match the database when the catalog
// counter moved: users and devices created, renamed or revoked, here or by
// another process. A device new to memory comes with its presence; for a
// known device only its account fields change, since its presence is the
// writer's and memory is never behind the writer.
func (s *Store) refresh(ctx context.Context, q querier) error {
	var version int64
	if err := q.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'catalog'`).Scan(&version); err != nil {
		return fmt.Errorf("read catalog version: %w", err)
	}
	s.mu.RLock()
	current := s.catalog
	s.mu.RUnlock()
	if version == current {
		return nil
	}
	// One load at a time: a crowd of readers noticing the same change
	// waits for the first instead of each reading every account.
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	s.mu.RLock()
	current = s.catalog
	s.mu.RUnlock()
	if version <= current {
		return nil
	}

	users := map[int64]*userEntry{}
	rows, err := q.QueryContext(ctx, `SELECT `+userColumns+` FROM users`)
	if err != nil {
		return fmt.Errorf("load users: %w", err)
	}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			rows.Close()
			return fmt.Errorf("load users: %w", err)
		}
		users[u.ID] = &userEntry{user: u}
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("load users: %w", err)
	}
	var devs []*devEntry
	rows, err = q.QueryContext(ctx, `SELECT `+deviceColumns+deviceFrom)
	if err != nil {
		return fmt.Errorf("load devices: %w", err)
	}
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			rows.Close()
			return fmt.Errorf("load devices: %w", err)
		}
		devs = append(devs, d)
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("load devices: %w", err)
	}

	now := s.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if version <= s.catalog {
		return nil // someone else installed this version or a newer one
	}
	for _, d := range devs {
		if known, ok := s.devices[d.dev.ID]; ok {
			known.dev = d.dev
			continue
		}
		d.announced = d.pres.Status(now, s.opts.Pulse)
		d.announcedWhy = d.pres.Why.Of(d.announced)
		s.devices[d.dev.ID] = d
	}
	for _, d := range s.devices {
		if u := users[d.dev.UserID]; u != nil && !d.dev.Revoked {
			u.devices = append(u.devices, d.dev.ID)
		}
	}
	for _, u := range users {
		slices.Sort(u.devices)
	}
	s.users = users
	s.catalog = version
	return nil
}

// announce hands events to Notify in order, numbering them. Callers hold
// s.mu, so IDs rise in delivery order across the writer and the expiry
// loop; Notify must not block (presence.Notifier).
func (s *Store) announce(events []presence.Event) {
	for i := range events {
		s.lastEvent++
		events[i].ID = s.lastEvent
		s.opts.Notify(events[i])
	}
}

// presenceEvent describes a device's new status with its user's.
// Callers hold s.mu.
func (s *Store) presenceEvent(d *devEntry, status presence.State, now, at time.Time) presence.Event {
	pres := s.userDevices(d.dev.UserID)
	var handle string
	if u := s.users[d.dev.UserID]; u != nil {
		handle = u.user.Handle
	}
	return presence.Event{
		Kind:   presence.EventPresence,
		UserID: d.dev.UserID,
		At:     at,
		Presence: &presence.PresenceChange{
			Handle:     handle,
			DeviceID:   d.dev.ID,
			DeviceName: d.dev.Name,
			Status:     status,
			Why:        d.pres.Why.Of(status),
			UserStatus: presence.UserStatus(now, s.opts.Pulse, pres),
			LastSeen:   presence.LastSeen(pres),
		},
	}
}

// userDevices is the presence of a user's devices that are not revoked.
// Callers hold s.mu.
func (s *Store) userDevices(userID int64) []presence.DevicePresence {
	u := s.users[userID]
	if u == nil {
		return nil
	}
	out := make([]presence.DevicePresence, 0, len(u.devices))
	for _, id := range u.devices {
		if d := s.devices[id]; d != nil {
			out = append(out, d.pres)
		}
	}
	return out
}

// sweep announces every device whose silence passed its TTL since the last
// announcement: presence offline, and its tail span no longer open (the
// span keeps its end: expiry never stretches or cuts a span). It returns
// the earliest expiry still ahead, zero if none.
func (s *Store) sweep() time.Time {
	now := s.opts.Now()
	p := s.opts.Pulse
	s.mu.Lock()
	defer s.mu.Unlock()
	var next time.Time
	var expired []*devEntry
	for _, d := range s.devices {
		if d.dev.Revoked || d.announced == presence.Offline {
			continue
		}
		if d.pres.Status(now, p) == presence.Offline {
			d.announced = presence.Offline
			expired = append(expired, d)
			continue
		}
		if exp := d.pres.ExpiresAt(p); !exp.IsZero() && (next.IsZero() || exp.Before(next)) {
			next = exp
		}
	}
	// Announce in a stable order, so that a burst (a service restart, a
	// network split) reads the same way every time.
	slices.SortFunc(expired, func(a, b *devEntry) int { return cmp.Compare(a.dev.ID, b.dev.ID) })
	var events []presence.Event
	for _, d := range expired {
		if d.tail != nil {
			events = append(events, presence.ExpiredSessionEvent(d.dev.UserID, *d.tail))
		}
		events = append(events, s.presenceEvent(d, presence.Offline, now, d.pres.StatusSince(presence.Offline, p)))
	}
	s.announce(events)
	return next
}

// Expiry timing: the loop sleeps until the next device expires, and only
// then: an idle store (or one whose devices beat on time) costs no wakeups
// in between. A beat can only move a device's expiry later, which the loop
// finds when it wakes at the old instant and plans again; the one change
// that brings the earliest expiry forward, a device coming online, pokes the
// loop (pokeExpiry). The sleep is never less than minSweep, so a crowd of
// devices expiring one after another costs a sweep per minSweep, not per
// device; and never more than maxSweep, a safety net for what no timer sees
// (a device loaded from another process's writes, a wall clock that jumped,
// a machine that slept: timers run on the monotonic clock). Any presence
// read announces an overdue expiry at once whatever the timer says.
const (
	minSweep = 50 * time.Millisecond
	maxSweep = time.Minute
)

func (s *Store) expiryLoop() {
	defer close(s.loopDone)
	timer := time.NewTimer(0) // plan at once for the devices loaded online
	defer timer.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-timer.C:
		case <-s.wake:
		}
		timer.Reset(expiryWait(s.sweep(), s.opts.Now()))
	}
}

// expiryWait is how long the loop sleeps after a sweep at now that found
// next as the earliest expiry still ahead (zero: none).
func expiryWait(next, now time.Time) time.Duration {
	if next.IsZero() {
		return maxSweep
	}
	// Status turns offline strictly after the expiry instant.
	return min(max(next.Sub(now)+time.Nanosecond, minSweep), maxSweep)
}

// pokeExpiry wakes the expiry loop to plan for a device that came online:
// the one change that can bring the earliest expiry forward.
func (s *Store) pokeExpiry() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// noticeExpiry lets a read announce expiries at once when it sees a device
// whose TTL passed unannounced, instead of leaving it to the timer.
func (s *Store) noticeExpiry(stale bool) {
	if stale {
		s.sweep()
	}
}

// Presence is every user's presence, from memory.
func (s *Store) Presence(ctx context.Context) ([]presence.UserPresence, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	if err := s.refresh(ctx, s.rdb); err != nil {
		return nil, err
	}
	now := s.opts.Now()
	s.mu.RLock()
	out := make([]presence.UserPresence, 0, len(s.users))
	stale := false
	for _, u := range s.users {
		up := presence.UserPresence{User: u.user, Devices: make([]presence.DeviceStatus, 0, len(u.devices))}
		pres := make([]presence.DevicePresence, 0, len(u.devices))
		for _, id := range u.devices {
			d := s.devices[id]
			st := d.status(now, s.opts.Pulse)
			stale = stale || (st.Status == presence.Offline && d.announced != presence.Offline)
			up.Devices = append(up.Devices, st)
			pres = append(pres, d.pres)
		}
		up.Status = presence.UserStatus(now, s.opts.Pulse, pres)
		up.LastSeen = presence.LastSeen(pres)
		out = append(out, up)
	}
	s.mu.RUnlock()
	s.noticeExpiry(stale)
	slices.SortFunc(out, func(a, b presence.UserPresence) int { return cmp.Compare(a.User.Handle, b.User.Handle) })
	return out, nil
}

// Devices lists a user's devices that are not revoked, with their status.
func (s *Store) Devices(ctx context.Context, userID int64) ([]presence.DeviceStatus, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	if err := s.refresh(ctx, s.rdb); err != nil {
		return nil, err
	}
	now := s.opts.Now()
	s.mu.RLock()
	var out []presence.DeviceStatus
	stale := false
	if u := s.users[userID]; u != nil {
		for _, id := range u.devices {
			d := s.devices[id]
			st := d.status(now, s.opts.Pulse)
			stale = stale || (st.Status == presence.Offline && d.announced != presence.Offline)
			out = append(out, st)
		}
	}
	s.mu.RUnlock()
	s.noticeExpiry(stale)
	return out, nil
}

// DeviceStatus is one device's presence; ENOTFOUND for an unknown or
// revoked device.
func (s *Store) DeviceStatus(ctx context.Context, deviceID int64) (presence.DeviceStatus, error) {
	if err := s.usable(); err != nil {
		return presence.DeviceStatus{}, err
	}
	if err := s.refresh(ctx, s.rdb); err != nil {
		return presence.DeviceStatus{}, err
	}
	now := s.opts.Now()
	s.mu.RLock()
	d := s.devices[deviceID]
	if d == nil || d.dev.Revoked {
		s.mu.RUnlock()
		return presence.DeviceStatus{}, presence.Errorf(presence.ENOTFOUND, "device %d not found", deviceID)
	}
	st := d.status(now, s.opts.Pulse)
	stale := st.Status == presence.Offline && d.announced != presence.Offline
	s.mu.RUnlock()
	s.noticeExpiry(stale)
	return st, nil
}
