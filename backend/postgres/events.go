package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/lastseen/lastseen/backend/presence"
)

// channel is the NOTIFY channel every instance listens on. Its payload is
// only a wake-up: the decimal id of the highest event just committed, or
// wakeRefresh when users or devices changed. The events themselves are read
// from the table, so a payload can never approach PostgreSQL's 8000-byte cap
// and a missed notification loses nothing.
const (
	channel     = "lastseen_events"
	wakeRefresh = "refresh"
	listenerApp = "lastseend-listener"
)

// eventRecord is the payload column of the events table: the event as
// Notify receives it, plus the device's presence after the change so other
// instances can update their memory without another query.
type eventRecord struct {
	Event  presence.Event `json:"event"`
	Device *deviceSnap    `json:"device,omitempty"`
}

type deviceSnap struct {
	ID         int64          `json:"id"`
	UserID     int64          `json:"user_id"`
	State      presence.State `json:"state"`
	LastBeat   time.Time      `json:"last_beat"`
	LastActive time.Time      `json:"last_active"`
	LastSeq    int64          `json:"last_seq"`
	Expired    time.Time      `json:"expired"`
	Why        presence.Why   `json:"why,omitempty"`
}

func snapOf(e *devEntry) *deviceSnap {
	return &deviceSnap{
		ID: e.dev.ID, UserID: e.dev.UserID, State: e.pres.State, LastBeat: e.pres.LastBeat,
		LastActive: e.pres.LastActive, LastSeq: e.pres.LastSeq, Expired: e.expired, Why: e.pres.Why,
	}
}

func (d *deviceSnap) presence() presence.DevicePresence {
	return presence.DevicePresence{
		DeviceID: d.ID, UserID: d.UserID, State: d.State, LastBeat: d.LastBeat.UTC(),
		LastActive: d.LastActive.UTC(), LastSeq: d.LastSeq, Why: d.Why,
	}
}

// pendingEvent is an event built inside a transaction, before its id (and,
// for a new span, the span's id) is known.
type pendingEvent struct {
	rec  eventRecord
	span *spanOp // the span a session event shows; its id is filled in late
}

// insertEventsSQL writes a batch of events in one statement: it takes one
// id per payload from event_ids, gives the k-th smallest to the k-th
// payload (so events keep the order they were built in), writes the id
// into the payload too, and returns the ids. The CTE is materialised so
// nextval runs exactly once per payload whatever plan is chosen.
const insertEventsSQL = `WITH ids AS MATERIALIZED (
		SELECT id, row_number() OVER (ORDER BY id) AS ord
		FROM (SELECT nextval('event_ids') AS id FROM generate_series(1, cardinality($1::text[]))) n
	)
	INSERT INTO events (id, payload)
	SELECT ids.id, jsonb_set(e.p::jsonb, '{event,id}', to_jsonb(ids.id))
	FROM unnest($1::text[]) WITH ORDINALITY AS e(p, ord) JOIN ids USING (ord)
	RETURNING id`

// queueEvents queues, on a transaction's batch, everything that writes evs:
// the events lock, the insert (insertEventsSQL) and the wake-up. The
// transaction-level advisory lock makes writers of events commit in id
// order: a reader that sees id N can never later find a smaller id appear,
// so "WHERE id > last" misses nothing. It is taken after the device row
// locks and held only to COMMIT, so it cannot deadlock with them, and,
// queued with the writes, it is held for as short a time as it can be.
//
// The returned committedEvents is filled in when the batch's results are
// read: the events with their ids, ready for deliverNext.
func queueEvents(b *pgx.Batch, evs []pendingEvent) (*committedEvents, error) {
	payloads := make([]string, len(evs))
	for i := range evs {
		e := &evs[i]
		if e.span != nil && e.rec.Event.Session != nil {
			e.rec.Event.Session.ID = e.span.span.ID
		}
		p, err := json.Marshal(e.rec)
		if err != nil {
			return nil, fmt.Errorf("encode event: %w", err)
		}
		payloads[i] = string(p)
	}
	c := &committedEvents{payloads: payloads}
	b.Queue(`SELECT pg_advisory_xact_lock($1)`, lockEvents)
	b.Queue(insertEventsSQL, payloads).Query(func(rows pgx.Rows) error {
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("insert events: %w", err)
		}
		if len(ids) != len(payloads) {
			return fmt.Errorf("insert events: %d ids for %d events", len(ids), len(payloads))
		}
		slices.Sort(ids)
		c.ids = ids
		return nil
	})
	// Delivered at COMMIT, once per transaction that produced events. The
	// last id this session drew is the highest of the batch.
	b.Queue(`SELECT pg_notify($1, currval('event_ids')::text)`, channel)
	return c, nil
}

// committedEvents are the events one transaction wrote: their payloads as
// stored and, once the insert answered, their ids (ascending, in order).
type committedEvents struct {
	payloads []string
	ids      []int64
}

// writeEvents writes evs inside tx, in one round trip.
func writeEvents(ctx context.Context, tx pgx.Tx, evs []pendingEvent) error {
	if len(evs) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	if _, err := queueEvents(b, evs); err != nil {
		return err
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("write events: %w", err)
	}
	return nil
}

// deliverNext hands the events a transaction of this instance just
// committed to Notify straight from memory, decoded from the payloads
// exactly as a reader of the table would see them, when they are the very
// next ones in id order (the usual case: nobody else's event was committed
// since the last one delivered). It reports false when they are not, and
// catchUp must read the table, which delivers them with everything before
// them. Either way every event is delivered once, in id order.
func (s *Store) deliverNext(c *committedEvents) bool {
	if c == nil || len(c.ids) == 0 {
		return true
	}
	s.drainMu.Lock()
	defer s.drainMu.Unlock()
	if c.ids[len(c.ids)-1] <= s.lastEvent {
		return true // the listener's catch-up got there first
	}
	if c.ids[0] != s.lastEvent+1 {
		return false
	}
	for i := 1; i < len(c.ids); i++ {
		if c.ids[i] != c.ids[i-1]+1 {
			return false
		}
	}
	for i, id := range c.ids {
		s.deliverLocked(id, []byte(c.payloads[i]))
	}
	return true
}

// deliverLocked applies one committed event to memory and notifies it.
// Caller holds drainMu.
func (s *Store) deliverLocked(id int64, payload []byte) {
	var rec eventRecord
	if err := json.Unmarshal(payload, &rec); err != nil {
		// A row this release cannot read must not stall the stream.
		s.log.Error("postgres: skipping undecodable event", "event_id", id, "err", err)
		s.lastEvent = id
		return
	}
	rec.Event.ID = id
	if d := rec.Device; d != nil {
		s.cache.putPresence(d.presence(), d.Expired.UTC())
	}
	s.opts.Notify(rec.Event)
	s.lastEvent = id
}

// catchUp reads every event committed after the last one this instance
// handed to Notify, applies its device snapshot to memory and notifies it.
// It is the only path to Notify, so each event is delivered once and in id
// order, whether it was produced here or by another instance.
func (s *Store) catchUp(ctx context.Context) error {
	s.drainMu.Lock()
	defer s.drainMu.Unlock()
	const page = 500
	for range 1000 { // bounded: at most 500k events per call; the next call goes on
		rows, err := s.pool.Query(ctx, `SELECT id, payload FROM events WHERE id > $1 ORDER BY id LIMIT $2`, s.lastEvent, page)
		if err != nil {
			return fmt.Errorf("read events: %w", err)
		}
		type raw struct {
			id      int64
			payload []byte
		}
		got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (raw, error) {
			var x raw
			err := r.Scan(&x.id, &x.payload)
			return x, err
		})
		if err != nil {
			return fmt.Errorf("read events: %w", err)
		}
		for _, x := range got {
			s.deliverLocked(x.id, x.payload)
		}
		if len(got) < page {
			return nil
		}
	}
	return nil
}

// lastEventID is the highest event id handed to Notify.
func (s *Store) lastEventID() int64 {
	s.drainMu.Lock()
	defer s.drainMu.Unlock()
	return s.lastEvent
}

// prune bounds the events table by age and by row count. Every instance
// prunes; deleting the same rows twice is harmless.
func (s *Store) prune(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM events
		WHERE created_at < now() - $1 * interval '1 second'
		   OR id <= (SELECT max(id) FROM events) - $2`,
		s.cfg.EventRetention.Seconds(), s.cfg.EventMaxRows)
	if err != nil {
		return fmt.Errorf("prune events: %w", err)
	}
	return nil
}

// listen keeps one dedicated connection LISTENing and turns its wake-ups
// (and a periodic safety poll) into catch-ups. A dropped connection is
// re-opened with backoff; after every (re)connect the instance catches up
// from the table and re-reads devices and users, so nothing is missed.
func (s *Store) listen(ctx context.Context) {
	cfg, err := pgx.ParseConfig(s.cfg.DSN)
	if err != nil { // Open parsed the same DSN already
		s.log.Error("postgres: listener cannot parse DSN", "err", err)
		return
	}
	cfg.RuntimeParams["application_name"] = listenerApp
	failures := 0
	delay := s.cfg.ReconnectMin
	for first := true; ctx.Err() == nil; first = false {
		conn, err := s.openListener(ctx, cfg, !first)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			s.log.Warn("postgres: listener connect failed", "err", err, "failures", failures)
			// Full jitter keeps restarted instances from reconnecting in step.
			if !sleepCtx(ctx, delay/2+rand.N(delay/2+1)) {
				return
			}
			delay = min(delay*2, s.cfg.ReconnectMax)
			continue
		}
		if failures > 0 {
			s.log.Info("postgres: listener recovered", "failures", failures)
		}
		failures, delay = 0, s.cfg.ReconnectMin
		err = s.serveListener(ctx, conn)
		// Deaf until the next connection: tokens are looked up in the
		// database meanwhile.
		s.listening.Store(false)
		conn.Close(context.Background())
		if ctx.Err() != nil {
			return
		}
		failures++
		s.log.Warn("postgres: listener connection lost", "err", err)
		// A server that just cut us off (restart, failover) is not hammered.
		if !sleepCtx(ctx, delay/2+rand.N(delay/2+1)) {
			return
		}
		delay = min(delay*2, s.cfg.ReconnectMax)
	}
}

func (s *Store) openListener(ctx context.Context, cfg *pgx.ConnConfig, again bool) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(cctx, "LISTEN "+channel); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("listen: %w", err)
	}
	s.listenerPID.Store(conn.PgConn().PID())
	// From here every revocation reaches this connection as a wake-up; one
	// made while nobody listened may hide behind any remembered token.
	s.tokens.invalidate()
	s.listening.Store(true)
	// Whatever happened while nobody listened is in the tables. Open read
	// everything just before the first connection: that one only needs the
	// changes since.
	if err := s.catchUp(cctx); err != nil {
		s.log.Warn("postgres: catch-up after connect failed", "err", err)
	}
	refresh := s.refreshSince
	if again {
		refresh = s.refreshFull
	}
	if err := refresh(cctx); err != nil {
		s.log.Warn("postgres: refresh after connect failed", "err", err)
	}
	return conn, nil
}

// serveListener waits for notifications until the connection fails.
func (s *Store) serveListener(ctx context.Context, conn *pgx.Conn) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, s.cfg.PollEvery)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch {
		case err == nil && n.Payload == wakeRefresh:
			// A user or device changed, perhaps a revocation: no token is
			// trusted from memory until the database is asked again.
			s.tokens.invalidate()
			if err := s.refreshSince(ctx); err != nil {
				s.log.Warn("postgres: refresh on wake-up failed", "err", err)
			}
			continue
		case err == nil:
			// Our own commits are drained before Ingest returns; skip the
			// query when the wake-up brings nothing new.
			if id, perr := strconv.ParseInt(n.Payload, 10, 64); perr == nil && id <= s.lastEventID() {
				continue
			}
		case pgconn.Timeout(err):
			// Safety poll. A connection that died without a word (no RST)
			// would wait forever: prove it alive.
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			perr := conn.Ping(pctx)
			cancel()
			if perr != nil {
				return fmt.Errorf("ping: %w", perr)
			}
		default:
			return err
		}
		if err := s.catchUp(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("postgres: catch-up failed", "err", err)
		}
	}
}

// sleepCtx sleeps d or until ctx ends; it reports whether it slept fully.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
