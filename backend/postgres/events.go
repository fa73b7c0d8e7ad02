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
}

func snapOf(e *devEntry) *deviceSnap {
	return &deviceSnap{
		ID: e.dev.ID, UserID: e.dev.UserID, State: e.pres.State, LastBeat: e.pres.LastBeat,
		LastActive: e.pres.LastActive, LastSeq: e.pres.LastSeq, Expired: e.expired,
	}
}

func (d *deviceSnap) presence() presence.DevicePresence {
	return presence.DevicePresence{
		DeviceID: d.ID, UserID: d.UserID, State: d.State, LastBeat: d.LastBeat.UTC(),
		LastActive: d.LastActive.UTC(), LastSeq: d.LastSeq,
	}
}

// pendingEvent is an event built inside a transaction, before its id (and,
// for a new span, the span's id) is known.
type pendingEvent struct {
	rec  eventRecord
	span *spanOp // the span a session event shows; its id is filled in late
}

// queueEventIDs queues, on a transaction's batch, the statements that
// allocate n event ids. The transaction-level advisory lock makes writers of
// events commit in id order: a reader that sees id N can never later find a
// smaller id appear, so "WHERE id > last" misses nothing. The lock is taken
// after the device row locks and held only to COMMIT, so it cannot deadlock
// with them.
func queueEventIDs(b *pgx.Batch, n int) {
	b.Queue(`SELECT pg_advisory_xact_lock($1)`, lockEvents)
	b.Queue(`SELECT nextval('event_ids') FROM generate_series(1, $1)`, n)
}

// readEventIDs reads the results of queueEventIDs.
func readEventIDs(br pgx.BatchResults) ([]int64, error) {
	if _, err := br.Exec(); err != nil {
		return nil, fmt.Errorf("lock event ids: %w", err)
	}
	return readIDs(br)
}

func readIDs(br pgx.BatchResults) ([]int64, error) {
	rows, _ := br.Query()
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("allocate ids: %w", err)
	}
	slices.Sort(ids)
	return ids, nil
}

// queueEvents assigns ids to events and queues their insert and the wake-up.
func queueEvents(b *pgx.Batch, evs []pendingEvent, ids []int64) error {
	if len(ids) != len(evs) {
		return fmt.Errorf("allocated %d event ids for %d events", len(ids), len(evs))
	}
	payloads := make([]string, len(evs))
	for i := range evs {
		e := &evs[i]
		e.rec.Event.ID = ids[i]
		if e.span != nil && e.rec.Event.Session != nil {
			e.rec.Event.Session.ID = e.span.span.ID
		}
		p, err := json.Marshal(e.rec)
		if err != nil {
			return fmt.Errorf("encode event: %w", err)
		}
		payloads[i] = string(p)
	}
	b.Queue(`INSERT INTO events (id, payload) SELECT id, p::jsonb FROM unnest($1::bigint[], $2::text[]) AS e(id, p)`, ids, payloads)
	// Delivered at COMMIT, once per transaction that produced events.
	b.Queue(`SELECT pg_notify($1, $2)`, channel, strconv.FormatInt(ids[len(ids)-1], 10))
	return nil
}

// writeEvents allocates ids for evs and writes them inside tx.
func writeEvents(ctx context.Context, tx pgx.Tx, evs []pendingEvent) error {
	if len(evs) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	queueEventIDs(b, len(evs))
	br := tx.SendBatch(ctx, b)
	ids, err := readEventIDs(br)
	if cerr := br.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	b = &pgx.Batch{}
	if err := queueEvents(b, evs, ids); err != nil {
		return err
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("write events: %w", err)
	}
	return nil
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
			var rec eventRecord
			if err := json.Unmarshal(x.payload, &rec); err != nil {
				// A row this release cannot read must not stall the stream.
				s.log.Error("postgres: skipping undecodable event", "event_id", x.id, "err", err)
				s.lastEvent = x.id
				continue
			}
			rec.Event.ID = x.id
			if d := rec.Device; d != nil {
				s.cache.putPresence(d.presence(), d.Expired.UTC())
			}
			s.opts.Notify(rec.Event)
			s.lastEvent = x.id
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
