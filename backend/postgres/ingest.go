package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/lastseen/lastseen/backend/groupcommit"
	"github.com/lastseen/lastseen/backend/presence"
)

// ingestReq is one Ingest call waiting in the group-commit queue.
type ingestReq struct {
	deviceID int64
	beats    []presence.Beat
	facts    *presence.Facts
}

// ingestRes is its answer. err carries request-level failures (an unknown
// device) that do not spoil the group's transaction.
type ingestRes struct {
	res presence.IngestResult
	err error
}

// txTimeout bounds one write transaction: the writer's own context is never
// cancelled, and a hung database must surface as an error, not a hang.
const txTimeout = 30 * time.Second

// Ingest applies a device's beats: those at or below the device's last_seq
// (in the database, whichever instance accepted them) are duplicates, the
// rest are merged into spans. It returns after the group holding the call
// has been committed.
func (s *Store) Ingest(ctx context.Context, deviceID int64, beats []presence.Beat, facts *presence.Facts) (presence.IngestResult, error) {
	if s.isClosed() {
		return presence.IngestResult{}, errClosed
	}
	if facts != nil {
		f := *facts
		facts = &f
	}
	r, err := s.writerOf(deviceID).Do(ctx, ingestReq{deviceID: deviceID, beats: beats, facts: facts})
	var full *groupcommit.FullError
	switch {
	case errors.Is(err, groupcommit.ErrClosed):
		return presence.IngestResult{}, errClosed
	case errors.As(err, &full):
		// Nothing was queued: the client keeps its beats and comes back
		// after the hint.
		return presence.IngestResult{}, fmt.Errorf("%w: %w", presence.Errorf(presence.EUNAVAILABLE,
			"too many beats are waiting to be written; retry in a moment"), full)
	case err != nil:
		return presence.IngestResult{}, dbError("ingest", err)
	case r.err != nil:
		return presence.IngestResult{}, r.err
	}
	return r.res, nil
}

// maxWriters bounds Config.Writers: each writer holds a connection while
// its group commits.
const maxWriters = 16

// writerOf is the writer of a device: always the same one, so a device's
// requests are committed in the order they came, and the writers' groups
// hold disjoint devices.
func (s *Store) writerOf(deviceID int64) *groupcommit.Writer[ingestReq, ingestRes] {
	n := int64(len(s.writers))
	return s.writers[((deviceID%n)+n)%n]
}

// spanOp is a span the group writes: a new one (id allocated before the
// write) or an existing tail whose end or closed flag changed.
type spanOp struct {
	span  presence.Span
	isNew bool
	dirty bool
}

// devWork is one device while its group is applied.
type devWork struct {
	row    deviceRow
	handle string
	before presence.DevicePresence // as the transaction found it
	tail   *presence.Span          // the open tail span, nil for none
	tailOp *spanOp                 // where tail is written
	dirty  bool                    // the devices row must be written
}

func (w *devWork) entry() devEntry { return w.row.devEntry }

// commitIngest applies a group of Ingest requests in one transaction of two
// round trips:
//
//  1. BEGIN, lock the devices (ordered by id, so groups on several
//     instances never deadlock), read each one's last_seq and tail span,
//     and take ids for the spans memory expects the group to start;
//  2. in Go: drop duplicates, merge beats into spans, collect events (and,
//     only when memory guessed too few, take the missing span ids: one
//     more round trip);
//  3. upsert spans, update devices, insert events with their ids, NOTIFY
//     and COMMIT.
//
// Step 1 runs while another writer's group is in steps 2 and 3: their
// devices are disjoint (writerOf), so neither waits on the other's locks.
// Steps 2 and 3 run one group at a time (applyMu): each group is merged
// and its events built against memory as every group before it left it,
// and its events get later ids, exactly as with a single writer.
//
// After COMMIT it updates memory and hands the events to Notify, so callers
// are answered only once all of that is true.
func (s *Store) commitIngest(ctx context.Context, reqs []ingestReq) ([]ingestRes, error) {
	started := time.Now()
	ctx, cancel := context.WithTimeout(ctx, txTimeout)
	defer cancel()

	ids := make([]int64, 0, len(reqs))
	nbeats := 0
	for _, r := range reqs {
		ids = append(ids, r.deviceID)
		nbeats += len(r.beats)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)

	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquire connection: %w", err)
	}
	defer pc.Release()
	conn := pc.Conn()
	defer rollbackOpen(conn)

	work, spanIDs, err := lockDevices(ctx, conn, ids, s.expectNewSpans(reqs))
	if err != nil {
		return nil, err
	}

	s.applyMu.Lock()
	res, committed, err := s.applyGroup(ctx, conn, reqs, ids, work, spanIDs)
	delivered := err == nil && s.deliverNext(committed)
	s.applyMu.Unlock()
	if err != nil {
		return nil, err
	}
	if !delivered {
		// Another instance's events came between: read them all in order.
		if err := s.catchUp(ctx); err != nil {
			s.log.Warn("postgres: delivering events after commit failed; the listener will retry", "err", err)
		}
	}
	s.opts.Observe(nbeats, time.Since(started))
	return res, nil
}

// applyGroup is steps 2 and 3 of commitIngest, on the devices lockDevices
// locked and read. Caller holds applyMu.
func (s *Store) applyGroup(ctx context.Context, conn *pgx.Conn, reqs []ingestReq, ids []int64, work map[int64]*devWork, spanIDs []int64) ([]ingestRes, *committedEvents, error) {
	now := s.now()
	p := s.opts.Pulse
	window := p.Window()
	res := make([]ingestRes, len(reqs))
	var ops []*spanOp // every span the group may touch, written if dirty
	for _, id := range ids {
		if w := work[id]; w != nil && w.tailOp != nil {
			ops = append(ops, w.tailOp)
		}
	}
	var evs []pendingEvent
	// New spans get provisional ids (negative, unique in the group) while
	// the group is folded; their real ids are drawn once the group knows
	// how many it needs, and written through the same *spanOp.
	provisional := int64(0)
	byID := map[int64]*spanOp{}
	for _, op := range ops {
		byID[op.span.ID] = op
	}
	for i, r := range reqs {
		w := work[r.deviceID]
		if w == nil {
			res[i].err = presence.Errorf(presence.ENOTFOUND, "device %d not found", r.deviceID)
			continue
		}
		if w.row.revoked {
			res[i].err = presence.Errorf(presence.EUNAUTHORIZED, "device %d is revoked", r.deviceID)
			continue
		}
		f := presence.Fold(presence.DeviceState{Presence: w.row.pres, Tail: w.tail}, r.beats, window, func() int64 {
			provisional--
			return provisional
		})
		if f.Changed() {
			w.dirty = true
		}
		w.row.pres = f.Device.Presence
		for _, c := range f.Spans {
			op := byID[c.Span.ID]
			if op == nil {
				op = &spanOp{isNew: true}
				byID[c.Span.ID] = op
				ops = append(ops, op)
			}
			op.span, op.dirty = c.Span, true
			if c.Started || c.Ended {
				evs = append(evs, s.sessionEvent(w, op, c, now, window))
			}
		}
		w.tail, w.tailOp = nil, nil
		if t := f.Device.Tail; t != nil {
			w.tailOp = byID[t.ID]
			w.tail = &w.tailOp.span
		}
		if facts := r.facts; facts != nil {
			d := &w.row.dev
			for _, kv := range []struct {
				dst *string
				v   string
			}{{&d.OS, facts.OS}, {&d.Platform, facts.Platform}, {&d.Hostname, facts.Hostname}, {&d.Version, facts.Version}} {
				if kv.v != "" && *kv.dst != kv.v {
					*kv.dst, w.dirty = kv.v, true
				}
			}
		}
		e := w.entry()
		res[i].res = presence.IngestResult{
			Accepted: f.Accepted, Duplicates: f.Duplicates, Stale: f.Stale, Rejected: f.Rejected,
			LastSeq: w.row.pres.LastSeq, Device: status(&e, now, p),
		}
	}
	// A user's status in a presence event is judged with every device of
	// the group as the group leaves it, not as memory had it before.
	peers := map[int64][]*devEntry{}
	for _, id := range ids {
		if w := work[id]; w != nil {
			peers[w.row.dev.UserID] = append(peers[w.row.dev.UserID], &w.row.devEntry)
		}
	}
	// One presence event per device whose status the group changed.
	for _, id := range ids {
		w := work[id]
		if w == nil || !w.dirty {
			continue
		}
		before, after := w.before.Status(now, p), w.row.pres.Status(now, p)
		// A change of why alone ("in a call" after typing) is news too.
		if before != after || (after == presence.Active && w.before.Why.Of(before) != w.row.pres.Why.Of(after)) {
			evs = append(evs, s.presenceEvent(w, after, now, peers[w.row.dev.UserID]))
		}
		// Late beats of a device already silent past its TTL (an outbox
		// replay) leave it offline. Its expiry is announced here if nobody
		// did yet, and marked so that no instance announces it again for
		// the beats just added.
		pr := w.row.pres
		if after == presence.Offline && pr.State != presence.Offline && !w.row.expired.Equal(pr.LastBeat) {
			announced := w.before.State == presence.Offline || w.before.LastBeat.IsZero() || w.row.expired.Equal(w.before.LastBeat)
			w.row.expired = pr.LastBeat
			if !announced {
				if w.tailOp != nil && !w.tailOp.span.Closed {
					evs = append(evs, pendingEvent{span: w.tailOp, rec: eventRecord{Event: presence.ExpiredSessionEvent(w.row.dev.UserID, w.tailOp.span)}})
				}
				evs = append(evs, s.presenceEvent(w, presence.Offline, now, peers[w.row.dev.UserID]))
			}
		}
	}

	var newOps []*spanOp
	for _, op := range ops {
		if op.isNew {
			newOps = append(newOps, op)
		}
	}
	if n := len(newOps) - len(spanIDs); n > 0 {
		more, err := allocateSpanIDs(ctx, conn, n)
		if err != nil {
			return nil, nil, err
		}
		spanIDs = append(spanIDs, more...)
	}
	// Ascending ids in the order the spans started: the spans of one
	// device sort by id as they do by time.
	for i, op := range newOps {
		op.span.ID = spanIDs[i]
	}
	committed, err := writeGroup(ctx, conn, work, ids, ops, evs)
	if err != nil {
		return nil, nil, err
	}

	// Committed: from here on nothing may fail the group (a failure would
	// make the writer retry committed requests).
	for _, id := range ids {
		if w := work[id]; w != nil && w.dirty {
			s.cache.putDevice(w.entry())
		}
	}
	return res, committed, nil
}

// lockSQL locks a group's devices in id order. It reads nothing: a
// statement that waits for a row lock sees, once it gets it, the locked
// row as the other transaction left it but every other table as it stood
// when the statement began, so the tail spans it joined would be stale.
const lockSQL = `SELECT 1 FROM devices WHERE id = ANY($1) ORDER BY id FOR UPDATE`

// readSQL reads the locked devices with their user handle and tail span.
// Sent after lockSQL, it runs on a snapshot taken once every lock is held,
// so it sees whatever a writer that held one of them committed.
const readSQL = `SELECT ` + deviceCols + `, u.handle,
		s.id, s.state, s.why, s.start_at, s.end_at, s.closed, s.replayed
	FROM devices d
	JOIN users u ON u.id = d.user_id
	LEFT JOIN spans s ON s.id = d.tail_span_id
	WHERE d.id = ANY($1)`

// lockDevices begins the group's transaction on conn, locks its devices
// (lockSQL), reads them (readSQL) and takes span ids for the group, all in
// one round trip. The ids are taken after the locks, so while the devices
// are held.
func lockDevices(ctx context.Context, conn *pgx.Conn, ids []int64, spans int) (map[int64]*devWork, []int64, error) {
	work := make(map[int64]*devWork, len(ids))
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	b.Queue(lockSQL, ids)
	b.Queue(readSQL, ids).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			w := &devWork{}
			var (
				spanID             *int64
				spanState, spanWhy *string
				spanStart, spanEnd nullTime
				spanClosed         *bool
				spanReplayed       *bool
			)
			var err error
			w.row, err = scanDevice(rows, &w.handle, &spanID, &spanState, &spanWhy, &spanStart, &spanEnd, &spanClosed, &spanReplayed)
			if err != nil {
				return err
			}
			w.before = w.row.pres
			if spanID != nil && !*spanClosed {
				w.tailOp = &spanOp{span: presence.Span{
					ID: *spanID, DeviceID: w.row.dev.ID, State: presence.State(*spanState), Why: presence.Why(*spanWhy),
					Start: time.Time(spanStart), End: time.Time(spanEnd), Replayed: *spanReplayed,
				}}
				t := w.tailOp.span
				w.tail = &t
			}
			work[w.row.dev.ID] = w
		}
		return rows.Err()
	})
	var spanIDs []int64
	if spans > 0 {
		b.Queue(spanIDsSQL, spans).Query(func(rows pgx.Rows) error {
			var err error
			spanIDs, err = collectIDs(rows)
			return err
		})
	}
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return nil, nil, fmt.Errorf("lock devices: %w", err)
	}
	return work, spanIDs, nil
}

// spanIDsSQL takes $1 span ids.
const spanIDsSQL = `SELECT nextval('span_ids') FROM generate_series(1, $1)`

// collectIDs reads ids, ascending.
func collectIDs(rows pgx.Rows) ([]int64, error) {
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("allocate ids: %w", err)
	}
	slices.Sort(ids)
	return ids, nil
}

// expectNewSpans guesses from memory how many spans a group will start,
// so that their ids come with the lock instead of costing a round trip of
// their own. It runs the group through the same Fold as the write, on
// memory's presence; memory keeps no tail span, but Merge starts a span
// only by the tail's state and end, which are the device's last state and
// last beat, so a stand-in with those gives the same count. Memory may be
// behind (another instance heard the device): a guess too high wastes a
// few sequence values, one too low costs the round trip it tried to save;
// neither changes what is written.
func (s *Store) expectNewSpans(reqs []ingestReq) int {
	window := s.opts.Pulse.Window()
	seen := make(map[int64]presence.DeviceState, len(reqs))
	n := 0
	for _, r := range reqs {
		st, ok := seen[r.deviceID]
		if !ok {
			e, known := s.cache.device(r.deviceID)
			if !known {
				continue // unknown here, or revoked: the lock will tell
			}
			st = presence.DeviceState{Presence: e.pres}
			if e.pres.State != presence.Offline && !e.pres.LastBeat.IsZero() {
				st.Tail = &presence.Span{State: e.pres.State, Start: e.pres.LastBeat, End: e.pres.LastBeat}
			}
		}
		f := presence.Fold(st, r.beats, window, func() int64 { n++; return int64(-n) })
		seen[r.deviceID] = f.Device
	}
	return n
}

// rollbackOpen ends the transaction a failed group left open, so the
// connection goes back to the pool clean; one that cannot even roll back
// is closed (and the pool replaces it).
func rollbackOpen(conn *pgx.Conn) {
	if conn.IsClosed() || conn.PgConn().TxStatus() == 'I' {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, `ROLLBACK`); err != nil {
		conn.Close(ctx)
	}
}

// allocateSpanIDs takes n more span ids, for the spans memory did not
// expect. They come after those taken with the lock, so ids still ascend in
// the order the spans started.
func allocateSpanIDs(ctx context.Context, conn *pgx.Conn, n int) ([]int64, error) {
	rows, _ := conn.Query(ctx, spanIDsSQL, n)
	ids, err := collectIDs(rows)
	if err != nil {
		return nil, fmt.Errorf("span ids: %w", err)
	}
	if len(ids) != n {
		return nil, fmt.Errorf("span ids: got %d for %d spans", len(ids), n)
	}
	return ids, nil
}

// writeGroup writes a group's spans, devices and events with one statement
// each and commits, all in one round trip: COMMIT travels with the writes.
// An error in any statement makes the server skip the rest, COMMIT
// included, so the transaction is left open and failed, never half done.
func writeGroup(ctx context.Context, conn *pgx.Conn, work map[int64]*devWork, ids []int64, ops []*spanOp, evs []pendingEvent) (*committedEvents, error) {
	b := &pgx.Batch{}
	if sp := spanColumns(ops); len(sp.id) > 0 {
		b.Queue(upsertSpansSQL, sp.id, sp.device, sp.state, sp.why, sp.start, sp.end, sp.closed, sp.reason, sp.replayed)
	}
	var (
		dID, dSeq                 []int64
		dState, dOS, dPlat, dHost []string
		dWhy, dVer                []string
		dBeat, dActive            []*time.Time
		dTail                     []*int64
		dExpired                  []*time.Time
	)
	for _, id := range ids {
		w := work[id]
		if w == nil || !w.dirty {
			continue
		}
		pr := w.row.pres
		dID = append(dID, id)
		dState = append(dState, string(pr.State))
		dWhy = append(dWhy, string(pr.Why))
		dBeat = append(dBeat, dbTime(pr.LastBeat))
		dActive = append(dActive, dbTime(pr.LastActive))
		dSeq = append(dSeq, pr.LastSeq)
		var tail *int64
		if w.tailOp != nil {
			tid := w.tailOp.span.ID
			tail = &tid
		}
		dTail = append(dTail, tail)
		dOS = append(dOS, w.row.dev.OS)
		dPlat = append(dPlat, w.row.dev.Platform)
		dHost = append(dHost, w.row.dev.Hostname)
		dVer = append(dVer, w.row.dev.Version)
		dExpired = append(dExpired, dbTime(w.row.expired))
	}
	if len(dID) > 0 {
		b.Queue(`UPDATE devices d SET
				state = u.state, last_beat = u.last_beat, last_active = u.last_active, last_seq = u.last_seq,
				tail_span_id = u.tail, os = u.os, platform = u.platform, hostname = u.hostname,
				expired_beat = u.expired, why = u.why, version = u.version, updated_at = now()
			FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::bigint[], $6::bigint[],
				$7::text[], $8::text[], $9::text[], $10::timestamptz[], $11::text[], $12::text[])
				AS u(id, state, last_beat, last_active, last_seq, tail, os, platform, hostname, expired, why, version)
			WHERE d.id = u.id`, dID, dState, dBeat, dActive, dSeq, dTail, dOS, dPlat, dHost, dExpired, dWhy, dVer)
	}
	var committed *committedEvents
	if len(evs) > 0 {
		var err error
		if committed, err = queueEvents(b, evs); err != nil {
			return nil, err
		}
	}
	var tag pgconn.CommandTag
	b.Queue(`COMMIT`).Exec(func(ct pgconn.CommandTag) error {
		tag = ct
		return nil
	})
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("write spans and devices: %w", err)
	}
	// A transaction that failed unnoticed answers COMMIT with ROLLBACK.
	if tag.String() != "COMMIT" {
		return nil, fmt.Errorf("commit: the server answered %q", tag.String())
	}
	return committed, nil
}

// upsertSpansSQL writes many spans in one statement: new spans are inserted
// with their pre-allocated ids, changed ones update their end, closed flag,
// end reason and replayed mark.
const upsertSpansSQL = `INSERT INTO spans (id, device_id, state, why, start_at, end_at, closed, end_reason, replayed)
	SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[], $7::boolean[],
		$8::text[], $9::boolean[])
	ON CONFLICT (id) DO UPDATE SET end_at = excluded.end_at, closed = excluded.closed,
		end_reason = excluded.end_reason, replayed = excluded.replayed`

// spanCols is spans in column form, as upsertSpansSQL and COPY take them.
type spanCols struct {
	id, device []int64
	state, why []string
	start, end []time.Time
	closed     []bool
	reason     []string
	replayed   []bool
}

func spanColumns(ops []*spanOp) spanCols {
	var c spanCols
	for _, op := range ops {
		if !op.dirty {
			continue
		}
		sp := op.span
		c.id = append(c.id, sp.ID)
		c.device = append(c.device, sp.DeviceID)
		c.state = append(c.state, string(sp.State))
		c.why = append(c.why, string(sp.Why))
		c.start = append(c.start, sp.Start)
		c.end = append(c.end, sp.End)
		c.closed = append(c.closed, sp.Closed)
		c.reason = append(c.reason, string(sp.EndReason))
		c.replayed = append(c.replayed, sp.Replayed)
	}
	return c
}

// sessionEvent is the live event of a span a fold started or ended; its
// span's id is filled in from op once the group's ids are drawn.
func (s *Store) sessionEvent(w *devWork, op *spanOp, c presence.SpanChange, now time.Time, window time.Duration) pendingEvent {
	f := presence.Folded{Spans: []presence.SpanChange{c}}
	return pendingEvent{span: op, rec: eventRecord{Event: f.SessionEvents(w.row.dev.UserID, now, window)[0]}}
}

// presenceEvent builds the event of a device's new status st; peers are the
// user's devices in the group (w's among them), which stand in for memory's
// copies when the user's status is judged.
func (s *Store) presenceEvent(w *devWork, st presence.State, now time.Time, peers []*devEntry) pendingEvent {
	e := w.entry()
	us, seen := s.cache.userStatus(w.row.dev.UserID, now, s.opts.Pulse, peers...)
	at := w.row.pres.StatusSince(st, s.opts.Pulse) // a late batch may leave it offline by TTL
	return pendingEvent{rec: eventRecord{
		Event: presence.Event{
			Kind: presence.EventPresence, UserID: w.row.dev.UserID, At: at,
			Presence: &presence.PresenceChange{
				Handle: w.handle, DeviceID: w.row.dev.ID, DeviceName: w.row.dev.Name,
				Status: st, Why: w.row.pres.Why.Of(st), UserStatus: us, LastSeen: seen,
			},
		},
		Device: snapOf(&e),
	}}
}
