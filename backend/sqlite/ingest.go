package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// ingestReq is one Ingest call on its way through the group-commit writer.
type ingestReq struct {
	deviceID int64
	beats    []presence.Beat
	facts    *presence.Facts
}

// ingestRes is its answer: the result, or a domain error that concerns this
// request alone (the group's transaction went on without it).
type ingestRes struct {
	res presence.IngestResult
	err error
}

// Ingest applies a device's beats and returns once they are committed.
func (s *Store) Ingest(ctx context.Context, deviceID int64, beats []presence.Beat, facts *presence.Facts) (presence.IngestResult, error) {
	if err := s.usable(); err != nil {
		return presence.IngestResult{}, err
	}
	// Nothing to write: an agent learning last_seq, or a re-sent batch
	// whose every beat memory already knows as a duplicate (memory's
	// last_seq never runs ahead of the database's, so that answer holds).
	if facts == nil {
		if res, ok, err := s.readOnlyIngest(ctx, deviceID, beats); ok || err != nil {
			return res, err
		}
	}
	out, err := s.writer.Do(ctx, ingestReq{deviceID: deviceID, beats: beats, facts: facts})
	if err != nil {
		return presence.IngestResult{}, writeError(deviceID, err)
	}
	return out.res, out.err
}

// readOnlyIngest answers from memory when there is nothing to write; ok is
// false when the request must go to the writer. It reads no disk on the
// hot path: a device memory does not know yet (created by another process)
// is left to the writer, which catches up under its lock, unless there is
// no beat to write, when the catalog is refreshed here.
func (s *Store) readOnlyIngest(ctx context.Context, deviceID int64, beats []presence.Beat) (presence.IngestResult, bool, error) {
	now := s.opts.Now()
	s.mu.RLock()
	d := s.devices[deviceID]
	s.mu.RUnlock()
	if d == nil {
		if len(beats) > 0 {
			return presence.IngestResult{}, false, nil
		}
		if err := s.refresh(ctx, s.rdb); err != nil {
			return presence.IngestResult{}, false, err
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if d = s.devices[deviceID]; d == nil {
		return presence.IngestResult{}, false, presence.Errorf(presence.ENOTFOUND, "device %d not found", deviceID)
	}
	if d.dev.Revoked {
		return presence.IngestResult{}, false, presence.Errorf(presence.EUNAUTHORIZED, "device %d is revoked", deviceID)
	}
	// The fold itself says whether there is anything to write; it starts
	// no span when it accepts nothing, so no span ID is drawn here.
	f := presence.Fold(d.state(), beats, s.opts.Pulse.Window(), func() int64 { return 0 })
	if f.Changed() {
		return presence.IngestResult{}, false, nil
	}
	return presence.IngestResult{
		Duplicates: f.Duplicates, Rejected: f.Rejected,
		LastSeq: d.pres.LastSeq, Device: d.status(now, s.opts.Pulse),
	}, true, nil
}

// devState is a device's presence during one group: memory's, or what an
// earlier request of the same group left.
type devState struct {
	dev  presence.Device
	pres presence.DevicePresence
	tail *presence.Span
}

func (d *devState) state() presence.DeviceState {
	return presence.DeviceState{Presence: d.pres, Tail: d.tail}
}

// group is the state of one group commit's transaction.
type group struct {
	s        *Store
	tx       *sql.Tx
	now      time.Time
	nextSpan int64 // the last span ID in use; new spans take the next
	states   map[int64]*devState
	order    []int64            // devices in first-touch order
	folds    []*presence.Folded // per request, what its beats did
	bound    map[*sql.Stmt]*sql.Stmt
}

// stmt binds one of the store's prepared statements to the transaction,
// once per group: the statement stays compiled on the writer connection
// instead of being parsed again for every request.
func (g *group) stmt(ctx context.Context, st *sql.Stmt) *sql.Stmt {
	if b, ok := g.bound[st]; ok {
		return b
	}
	b := g.tx.StmtContext(ctx, st)
	g.bound[st] = b
	return b
}

// writeStmts are the statements every group runs per request, prepared
// once on the writer connection.
type writeStmts struct {
	updateDevice, insertSpan, updateSpan, replaySpan *sql.Stmt
}

// openEnd is the end_ns an open tail span is stored with: its real end is
// the device's tail_end_ns (migration 0006), so extending it writes only
// the device row. Readers put the real end back (Spans, scanDevice).
const openEnd = math.MaxInt64

// storedEnd is the end_ns a span is written with.
func storedEnd(sp presence.Span) int64 {
	if sp.Closed {
		return ns(sp.End)
	}
	return openEnd
}

func prepareWrites(db *sql.DB) (writeStmts, error) {
	var w writeStmts
	var err error
	for _, p := range []struct {
		dst   **sql.Stmt
		query string
	}{
		// Optimistic: matches only while last_seq is what memory had.
		{&w.updateDevice, `UPDATE devices
			SET last_seq = ?, state = ?, last_beat_ns = ?, last_active_ns = ?, tail_span_id = ?, tail_end_ns = ?
			WHERE id = ? AND last_seq = ?`},
		{&w.insertSpan, `INSERT INTO spans (id, device_id, user_id, state, why, start_ns, end_ns, closed, end_reason, replayed)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&w.updateSpan, `UPDATE spans SET end_ns = ?, closed = ?, end_reason = ?, replayed = ? WHERE id = ?`},
		{&w.replaySpan, `UPDATE spans SET replayed = ? WHERE id = ?`},
	} {
		if *p.dst, err = db.Prepare(p.query); err != nil {
			return w, fmt.Errorf("prepare %q: %w", p.query, err)
		}
	}
	return w, nil
}

// commitIngest is the group-commit writer's commit function: every request
// of the group in one transaction. A request that fails on its own (unknown
// or revoked device) gets its error in ingestRes and the rest go on; a
// database error fails the group, which the writer then retries one by one.
func (s *Store) commitIngest(ctx context.Context, reqs []ingestReq) ([]ingestRes, error) {
	begun := time.Now() // latency is measured, not a rule: real clock
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin ingest: %w", err)
	}
	defer tx.Rollback()
	// Under the write lock, memory's accounts become exactly the database's:
	// a device another process created since is known from here on.
	if err := s.refresh(ctx, tx); err != nil {
		return nil, err
	}
	g := &group{s: s, tx: tx, now: s.opts.Now(), states: map[int64]*devState{}, bound: map[*sql.Stmt]*sql.Stmt{}}
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM spans`).Scan(&g.nextSpan); err != nil {
		return nil, fmt.Errorf("next span id: %w", err)
	}
	out := make([]ingestRes, len(reqs))
	beats := 0
	g.folds = make([]*presence.Folded, len(reqs))
	for i, r := range reqs {
		beats += len(r.beats)
		res, f, err := g.apply(ctx, r)
		var de *presence.Error
		if errors.As(err, &de) {
			out[i].err = err
			continue
		}
		if err != nil {
			return nil, err
		}
		out[i].res = res
		g.folds[i] = f
	}
	ceil, err := s.reserveEvents(ctx, tx)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit ingest: %w", err)
	}
	s.opts.Observe(beats, time.Since(begun))
	s.install(g, reqs, out, ceil)
	return out, nil
}

// state returns a device's state for this group, or a domain error.
// Callers must not modify the returned state's tail in place.
func (g *group) state(id int64) (*devState, error) {
	if st, ok := g.states[id]; ok {
		return st, nil
	}
	g.s.mu.RLock()
	d := g.s.devices[id]
	var st *devState
	if d != nil {
		st = &devState{dev: d.dev, pres: d.pres, tail: d.tail}
	}
	g.s.mu.RUnlock()
	if st == nil {
		return nil, presence.Errorf(presence.ENOTFOUND, "device %d not found", id)
	}
	return st, nil
}

// apply folds one request's beats into its device's spans and writes the
// outcome: the device row first (checking its last_seq is still the one
// memory had), then each touched span once.
func (g *group) apply(ctx context.Context, r ingestReq) (presence.IngestResult, *presence.Folded, error) {
	st, err := g.state(r.deviceID)
	if err != nil {
		return presence.IngestResult{}, nil, err
	}
	if st.dev.Revoked {
		return presence.IngestResult{}, nil, presence.Errorf(presence.EUNAUTHORIZED, "device %d is revoked", r.deviceID)
	}
	next, f := g.fold(st, r)
	if !f.Changed() && r.facts == nil {
		return resultOf(f), nil, nil
	}
	ok, err := g.writeDevice(ctx, st, next, r.facts)
	if err != nil {
		return presence.IngestResult{}, nil, err
	}
	if !ok {
		// Another process wrote this device since memory loaded it: start
		// again from what the database holds (under our write lock, final).
		fresh, err := loadDevice(ctx, g.tx, r.deviceID)
		if err != nil {
			return presence.IngestResult{}, nil, err
		}
		if fresh == nil {
			return presence.IngestResult{}, nil, presence.Errorf(presence.ENOTFOUND, "device %d not found", r.deviceID)
		}
		st = &devState{dev: fresh.dev, pres: fresh.pres, tail: fresh.tail}
		if st.dev.Revoked {
			return presence.IngestResult{}, nil, presence.Errorf(presence.EUNAUTHORIZED, "device %d is revoked", r.deviceID)
		}
		next, f = g.fold(st, r)
		if ok, err = g.writeDevice(ctx, st, next, r.facts); err != nil {
			return presence.IngestResult{}, nil, err
		}
		if !ok {
			return presence.IngestResult{}, nil, fmt.Errorf("device %d changed under the write lock", r.deviceID)
		}
	}
	for _, c := range f.Spans {
		if err := g.writeSpan(ctx, r.deviceID, next.dev.UserID, c, st.tail); err != nil {
			return presence.IngestResult{}, nil, err
		}
	}
	if _, seen := g.states[r.deviceID]; !seen {
		g.order = append(g.order, r.deviceID)
	}
	g.states[r.deviceID] = next
	return resultOf(f), &f, nil
}

// fold applies a request to a copy of st by the domain's rule; new spans
// take the transaction's next IDs.
func (g *group) fold(st *devState, r ingestReq) (*devState, presence.Folded) {
	f := presence.Fold(st.state(), r.beats, g.s.opts.Pulse.Window(), func() int64 {
		g.nextSpan++
		return g.nextSpan
	})
	next := &devState{dev: st.dev, pres: f.Device.Presence, tail: f.Device.Tail}
	if r.facts != nil {
		next.dev = withFacts(next.dev, *r.facts)
	}
	return next, f
}

// resultOf is a fold's answer before the device's status is known.
func resultOf(f presence.Folded) presence.IngestResult {
	return presence.IngestResult{
		Accepted: f.Accepted, Duplicates: f.Duplicates, Stale: f.Stale,
		Rejected: f.Rejected, LastSeq: f.Device.Presence.LastSeq,
	}
}

func withFacts(d presence.Device, f presence.Facts) presence.Device {
	if f.OS != "" {
		d.OS = f.OS
	}
	if f.Platform != "" {
		d.Platform = f.Platform
	}
	if f.Hostname != "" {
		d.Hostname = f.Hostname
	}
	if f.Version != "" {
		d.Version = f.Version
	}
	return d
}

// writeDevice stores the device's new presence if its last_seq is still
// the one st was read with; false when another writer moved it.
func (g *group) writeDevice(ctx context.Context, st, next *devState, facts *presence.Facts) (bool, error) {
	var tail any
	var tailEnd int64
	if next.tail != nil {
		tail, tailEnd = next.tail.ID, ns(next.tail.End)
	}
	r, err := g.stmt(ctx, g.s.stmts.updateDevice).ExecContext(ctx,
		next.pres.LastSeq, string(next.pres.State), ns(next.pres.LastBeat), ns(next.pres.LastActive), tail, tailEnd,
		st.dev.ID, st.pres.LastSeq)
	if err != nil {
		return false, fmt.Errorf("update device %d: %w", st.dev.ID, err)
	}
	if n, err := r.RowsAffected(); err != nil || n != 1 {
		return false, err
	}
	if facts != nil {
		if _, err := g.tx.ExecContext(ctx, `UPDATE devices SET os = ?, platform = ?, hostname = ?, version = ? WHERE id = ?`,
			next.dev.OS, next.dev.Platform, next.dev.Hostname, next.dev.Version, st.dev.ID); err != nil {
			return false, fmt.Errorf("update facts of device %d: %w", st.dev.ID, err)
		}
	}
	return true, nil
}

// writeSpan writes one span the fold changed. A span still open keeps the
// open end (its real end is the device row's, written by writeDevice), so
// a beat that only extended the tail writes nothing here; was is the tail
// before the fold, to tell whether anything else of it changed.
func (g *group) writeSpan(ctx context.Context, deviceID, userID int64, c presence.SpanChange, was *presence.Span) error {
	sp := c.Span
	var err error
	switch {
	case c.New:
		_, err = g.stmt(ctx, g.s.stmts.insertSpan).ExecContext(ctx, sp.ID, deviceID, userID, string(sp.State), string(sp.Why), ns(sp.Start), storedEnd(sp), sp.Closed,
			string(sp.EndReason), sp.Replayed)
	case sp.Closed:
		_, err = g.stmt(ctx, g.s.stmts.updateSpan).ExecContext(ctx, ns(sp.End), sp.Closed, string(sp.EndReason), sp.Replayed, sp.ID)
	case was == nil || was.ID != sp.ID || was.Replayed != sp.Replayed:
		// Still open, and marked replayed by a late beat (or not the tail
		// memory had: write what may differ, to be sure).
		_, err = g.stmt(ctx, g.s.stmts.replaySpan).ExecContext(ctx, sp.Replayed, sp.ID)
	}
	if err != nil {
		return fmt.Errorf("write span %d of device %d: %w", sp.ID, deviceID, err)
	}
	return nil
}

// reserveEvents moves the persisted event-ID ceiling on, inside the
// group's transaction, when few IDs remain below it. It returns the new
// ceiling (0 when unchanged), to be installed after the commit.
func (s *Store) reserveEvents(ctx context.Context, tx *sql.Tx) (int64, error) {
	s.mu.RLock()
	last, ceil := s.lastEvent, s.eventCeil
	s.mu.RUnlock()
	if ceil-last > eventRefill {
		return 0, nil
	}
	ceil = last + eventReserve
	if _, err := tx.ExecContext(ctx, `UPDATE meta SET value = ? WHERE key = 'event_id'`, ceil); err != nil {
		return 0, fmt.Errorf("reserve event ids: %w", err)
	}
	return ceil, nil
}

// install makes a committed group visible: memory takes the devices' new
// presence, each result gets its device's status, and the group's events
// are announced (sessions started or ended, then each status change).
func (s *Store) install(g *group, reqs []ingestReq, out []ingestRes, ceil int64) {
	p := s.opts.Pulse
	window := p.Window()
	s.mu.Lock()
	defer s.mu.Unlock()
	if ceil > s.eventCeil {
		s.eventCeil = ceil
	}
	var events []presence.Event
	for _, id := range g.order {
		st := g.states[id]
		d := s.devices[id]
		if d == nil { // known to the group, so to memory; kept for safety
			d = &devEntry{announced: presence.Offline}
			s.devices[id] = d
		}
		d.dev, d.pres, d.tail = st.dev, st.pres, st.tail
	}
	for i := range reqs {
		if f := g.folds[i]; f != nil {
			events = append(events, f.SessionEvents(g.states[reqs[i].deviceID].dev.UserID, g.now, window)...)
		}
	}
	online := false
	for _, id := range g.order {
		d := s.devices[id]
		status := d.pres.Status(g.now, p)
		why := d.pres.Why.Of(status)
		if status == d.announced && why == d.announcedWhy {
			continue
		}
		online = online || d.announced == presence.Offline
		d.announced, d.announcedWhy = status, why
		events = append(events, s.presenceEvent(d, status, g.now, d.pres.StatusSince(status, p)))
	}
	for i := range out {
		if out[i].err == nil {
			if d := s.devices[reqs[i].deviceID]; d != nil {
				out[i].res.Device = d.status(g.now, p)
			}
		}
	}
	s.announce(events)
	if online {
		s.pokeExpiry()
	}
}
