package agentdb

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// Entry is what one beat of the agent writes: its real state into local
// history and the state it tells the service into the outbox. Either may be
// empty: an invisible agent records history and queues nothing, a paused one
// does neither.
//
// Each half carries its edge and its reason (presence.Beat's Since and Why):
// they differ when a manual mode decides what the service is told, since
// "appear away" chosen at noon is away from noon, whenever the machine's own
// state began.
type Entry struct {
	At    time.Time
	IdleS int64
	// Local is the device's real state for local history ("" records nothing).
	// Offline closes the history's open span.
	Local presence.State
	// Since is when Local really began, if earlier than At (zero: At); Why
	// is what makes an active Local present ("": input).
	Since time.Time
	Why   presence.Why
	// Send is the state to queue for the service ("" queues nothing).
	Send presence.State
	// SendSince and SendWhy are Since and Why for the queued beat.
	SendSince time.Time
	SendWhy   presence.Why
	// Reason is why the device goes offline (presence.Beat.Reason), for
	// whichever half is offline; ignored on a half that is not.
	Reason presence.EndReason
}

// local and queued are the entry's two beats (Seq unset).
func (e Entry) local() presence.Beat {
	return presence.Beat{At: e.At.UTC(), State: e.Local, IdleS: e.IdleS, Since: utc(e.Since), Why: beyondInput(e.Local, e.Why), Reason: e.Reason.Of(e.Local)}
}

func (e Entry) queued() presence.Beat {
	return presence.Beat{At: e.At.UTC(), State: e.Send, IdleS: e.IdleS, Since: utc(e.SendSince), Why: beyondInput(e.Send, e.SendWhy), Reason: e.Reason.Of(e.Send)}
}

// beyondInput is the Why a beat carries: a call or media on an active beat,
// the lock on an away one, else none. Input is what an empty Why means, so the common beat stays as
// it always was on the wire.
func beyondInput(s presence.State, w presence.Why) presence.Why {
	if w = w.Of(s); w == presence.ByInput {
		return ""
	}
	return w
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

// sinceNS is a beat's since_ns column: NULL when its state began at At.
func sinceNS(b presence.Beat) sql.NullInt64 {
	if b.Since.IsZero() || !b.Since.Before(b.At) {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: toNS(b.Since), Valid: true}
}

// Record writes one beat in one transaction and returns the queued beat with
// its seq (a zero Beat when nothing was queued). The seq comes from the
// persistent counter in the same transaction, so a seq is never handed out
// twice, even across a crash. When the file cannot be written (a full or
// read-only disk) the beat is held in memory instead and Record succeeds:
// see Trouble.
func (db *DB) Record(ctx context.Context, e Entry) (presence.Beat, error) {
	if e.At.IsZero() {
		return presence.Beat{}, presence.Errorf(presence.EINVALID, "beat time is required")
	}
	if e.IdleS < 0 {
		return presence.Beat{}, presence.Errorf(presence.EINVALID, "idle_s must not be negative")
	}
	for _, s := range []presence.State{e.Local, e.Send} {
		if s != "" && !s.Valid() {
			return presence.Beat{}, presence.Errorf(presence.EINVALID, "unknown state %q", string(s))
		}
	}
	for _, h := range []struct {
		s presence.State
		w presence.Why
	}{{e.Local, e.Why}, {e.Send, e.SendWhy}} {
		if !h.w.Valid() || (h.s != "" && !h.w.ValidFor(h.s)) {
			return presence.Beat{}, presence.Errorf(presence.EINVALID, "why %q does not fit state %q", string(h.w), string(h.s))
		}
	}
	if !e.Reason.BeatValid() {
		return presence.Beat{}, presence.Errorf(presence.EINVALID, "unknown reason %q", string(e.Reason))
	}
	if e.Since.After(e.At) || e.SendSince.After(e.At) {
		return presence.Beat{}, presence.Errorf(presence.EINVALID, "since must not be after the beat")
	}
	if e.Local == "" && e.Send == "" {
		return presence.Beat{}, nil
	}
	var beat presence.Beat
	err := db.write(ctx, func(tx *sql.Tx) (func(), error) {
		var afters []func()
		if e.Send != "" {
			if db.lastSeq >= presence.MaxSeq {
				return nil, errSeqExhausted
			}
			beat = e.queued()
			beat.Seq = db.lastSeq + 1
			since := sinceNS(beat)
			if !since.Valid {
				beat.Since = time.Time{}
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (seq, at_ns, state, idle_s, since_ns, why, reason) VALUES (?, ?, ?, ?, ?, ?, ?)`,
				beat.Seq, toNS(beat.At), string(beat.State), beat.IdleS, since, string(beat.Why), string(beat.Reason)); err != nil {
				return nil, fmt.Errorf("queue beat: %w", err)
			}
			if err := setCounter(ctx, tx, "last_seq", beat.Seq); err != nil {
				return nil, err
			}
			depth := db.depth + 1
			if depth > int64(db.opts.MaxOutbox) {
				removed, err := db.bound(ctx, tx, depth)
				if err != nil {
					return nil, err
				}
				depth -= removed
			}
			afters = append(afters, func() { db.lastSeq, db.depth = beat.Seq, depth })
		}
		if e.Local != "" {
			after, err := db.recordHistory(ctx, tx, e.local())
			if err != nil {
				return nil, err
			}
			afters = append(afters, after)
		}
		return func() {
			for _, f := range afters {
				if f != nil {
					f()
				}
			}
		}, nil
	}, func(error) error {
		// The file cannot take it: memory does, and the beat is sent all
		// the same.
		var err error
		beat, err = db.holdEntry(e)
		return err
	})
	if err != nil {
		return presence.Beat{}, fmt.Errorf("record beat: %w", err)
	}
	return beat, nil
}

// bound brings a full outbox back under its limit and returns how many rows
// it removed. First it thins runs of one state that were beaten more often
// than the pulse window needs, which leaves every span the service will build
// unchanged; only if that is not enough does it drop the oldest beats, and it
// counts them. It frees a margin of 1 % below the bound so that a saturated
// outbox is scanned once per hundredth of its size, not on every beat (the
// oldest beats are then months old, past what the service accepts anyway).
func (db *DB) bound(ctx context.Context, tx *sql.Tx, depth int64) (int64, error) {
	limit := int64(db.opts.MaxOutbox)
	low := limit - limit/100
	if low >= limit {
		low = limit - 1
	}
	thinned, err := compact(ctx, tx, db.pulse.Window())
	if err != nil {
		return 0, err
	}
	if thinned > 0 {
		if err := addCounter(ctx, tx, "compacted", thinned); err != nil {
			return 0, err
		}
	}
	var dropped int64
	if rest := depth - thinned; rest > low {
		dropped = rest - low
		if _, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE seq IN
			(SELECT seq FROM outbox ORDER BY seq LIMIT ?)`, dropped); err != nil {
			return 0, fmt.Errorf("drop oldest beats: %w", err)
		}
		if err := addCounter(ctx, tx, "dropped", dropped); err != nil {
			return 0, err
		}
	}
	db.log.Warn("outbox full",
		slog.Int64("bound", limit), slog.Int64("thinned", thinned), slog.Int64("dropped", dropped))
	return thinned + dropped, nil
}

type outRow struct {
	seq   int64
	at    int64
	state string
	why   string
	edge  bool   // carries since_ns: the beat says when its state began
	rsn   string // an offline beat's reason
}

// compact deletes the beats that the service's merge does not need: inside a
// run of one state whose beats follow each other within the window, it keeps
// the run's first and last beat and, greedily, the latest beat still within
// the window of the previously kept one. Spans run first beat to last beat
// and join beats no more than the window apart, so the spans built from what
// is kept are the spans built from everything. A change of state or of
// reason (why, or an offline beat's reason), a beat that carries its edge (since_ns), a gap longer than the
// window or a clock that stepped back ends a run; both beats around it are
// kept.
func compact(ctx context.Context, tx *sql.Tx, window time.Duration) (int64, error) {
	rows, err := tx.QueryContext(ctx, `SELECT seq, at_ns, state, why, since_ns IS NOT NULL, reason FROM outbox ORDER BY seq`)
	if err != nil {
		return 0, fmt.Errorf("scan outbox: %w", err)
	}
	var (
		del        []int64
		kept, prev outRow
		havePrev   bool
		prevIsKept bool
		w          = int64(window)
	)
	for rows.Next() {
		var r outRow
		if err := rows.Scan(&r.seq, &r.at, &r.state, &r.why, &r.edge, &r.rsn); err != nil {
			rows.Close()
			return 0, fmt.Errorf("scan outbox: %w", err)
		}
		if !havePrev {
			kept, prev, havePrev, prevIsKept = r, r, true, true
			continue
		}
		boundary := r.state != prev.state || r.why != prev.why || r.rsn != prev.rsn || r.edge || r.at < prev.at || r.at-prev.at > w
		if !prevIsKept {
			if boundary || r.at-kept.at > w {
				kept = prev
			} else {
				del = append(del, prev.seq)
			}
		}
		prev, prevIsKept = r, boundary
		if boundary {
			kept = r
		}
	}
	if err := rows.Close(); err != nil {
		return 0, fmt.Errorf("scan outbox: %w", err)
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("scan outbox: %w", err)
	}
	if len(del) == 0 {
		return 0, nil
	}
	stmt, err := tx.PrepareContext(ctx, `DELETE FROM outbox WHERE seq = ?`)
	if err != nil {
		return 0, fmt.Errorf("thin outbox: %w", err)
	}
	defer stmt.Close()
	for _, seq := range del {
		if _, err := stmt.ExecContext(ctx, seq); err != nil {
			return 0, fmt.Errorf("thin outbox: %w", err)
		}
	}
	return int64(len(del)), nil
}

// Outbox returns up to limit queued beats, oldest (lowest seq) first,
// those held in memory included.
func (db *DB) Outbox(ctx context.Context, limit int) ([]presence.Beat, error) {
	if limit <= 0 {
		return nil, nil
	}
	// Under the lock: a write that moves held beats into the file must not
	// land between reading the file and reading memory.
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.outboxLocked(ctx, limit)
}

// Quarantined is a beat the service refused, with its reason.
type Quarantined struct {
	Beat          presence.Beat
	Error         string
	QuarantinedAt time.Time
}

// Settlement is what the sender learned from one answer of the service. It is
// applied in one transaction, so a crash leaves either all of it or none.
type Settlement struct {
	// Through acknowledges every queued beat with seq ≤ Through.
	Through int64
	// Delete acknowledges these seqs too (the accepted part of a batch whose
	// other beats are being renumbered).
	Delete []int64
	// Quarantine moves these beats out of the outbox into quarantine.
	Quarantine []Quarantined
	// Resync, when positive, is the service's last_seq for this device: the
	// beats still queued are renumbered above it (see Resync).
	Resync int64
	// SyncedAt, when set, is recorded as the last successful exchange.
	SyncedAt time.Time
}

// Ack deletes every queued beat with seq ≤ through: the service committed them.
func (db *DB) Ack(ctx context.Context, through int64) error {
	_, err := db.Settle(ctx, Settlement{Through: through})
	return err
}

// Resync renumbers the queued beats above max(lastSeq, LastSeq()), keeping
// their order, and moves the seq counter past them. The service reports a
// last_seq above anything this database handed out when the agent's store
// was wiped (or another install used the same device token): without a
// resync every queued beat would be counted as a duplicate and lost. It
// returns how many beats were renumbered.
func (db *DB) Resync(ctx context.Context, lastSeq int64) (int, error) {
	return db.Settle(ctx, Settlement{Resync: lastSeq})
}

// Settle applies a settlement and returns how many queued beats a resync
// renumbered. When the file cannot be written, a settlement without a
// resync is held in memory (see Trouble) and written with the next write
// that succeeds.
func (db *DB) Settle(ctx context.Context, s Settlement) (int, error) {
	if s.Through < 0 || s.Resync < 0 {
		return 0, presence.Errorf(presence.EINVALID, "seqs must not be negative")
	}
	var renumbered int
	// A bare acknowledgement may be undone by a power cut at no loss (see
	// writeRelaxed); quarantining and renumbering are kept durable.
	write := db.write
	if len(s.Quarantine) == 0 && s.Resync == 0 {
		write = db.writeRelaxed
	}
	err := write(ctx, func(tx *sql.Tx) (func(), error) {
		now := db.opts.Now()
		var removed int64
		del := func(seq int64) error {
			res, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE seq = ?`, seq)
			if err != nil {
				return fmt.Errorf("acknowledge beat %d: %w", seq, err)
			}
			n, _ := res.RowsAffected()
			removed += n
			return nil
		}
		if len(s.Quarantine) > 0 {
			if err := db.quarantine(ctx, tx, s.Quarantine, now); err != nil {
				return nil, err
			}
			for _, q := range s.Quarantine {
				if err := del(q.Beat.Seq); err != nil {
					return nil, err
				}
			}
		}
		for _, seq := range s.Delete {
			if err := del(seq); err != nil {
				return nil, err
			}
		}
		if s.Through > 0 {
			res, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE seq <= ?`, s.Through)
			if err != nil {
				return nil, fmt.Errorf("acknowledge beats: %w", err)
			}
			n, _ := res.RowsAffected()
			removed += n
		}
		lastSeq := db.lastSeq
		if s.Resync > 0 {
			var err error
			lastSeq, renumbered, err = resync(ctx, tx, s.Resync, db.lastSeq)
			if err != nil {
				return nil, err
			}
		}
		if !s.SyncedAt.IsZero() {
			if err := setCounter(ctx, tx, "last_sync_ns", toNS(s.SyncedAt)); err != nil {
				return nil, err
			}
		}
		return func() { db.depth -= removed; db.lastSeq = lastSeq }, nil
	}, func(error) error { return db.holdSettlement(ctx, s) })
	if err != nil {
		return 0, fmt.Errorf("settle outbox: %w", err)
	}
	return renumbered, nil
}

func resync(ctx context.Context, tx *sql.Tx, serviceSeq, lastSeq int64) (int64, int, error) {
	base := max(serviceSeq, lastSeq)
	var (
		n      int
		lo, hi sql.NullInt64
	)
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*), MIN(seq), MAX(seq) FROM outbox`).Scan(&n, &lo, &hi); err != nil {
		return 0, 0, fmt.Errorf("resync: %w", err)
	}
	if base > presence.MaxSeq-int64(n) {
		// Never past the service's bound, and never wrapping: a seq the
		// service refuses would lose the beat.
		return 0, 0, fmt.Errorf("resync above %d: %w", serviceSeq, errSeqExhausted)
	}
	newLast := base
	if n > 0 {
		// Every new seq is above every old one (base ≥ the counter ≥ any
		// queued seq), so shifting by one constant never collides with a row
		// not yet updated, and the order is kept.
		shift := base + 1 - lo.Int64
		if _, err := tx.ExecContext(ctx, `UPDATE outbox SET seq = seq + ?`, shift); err != nil {
			return 0, 0, fmt.Errorf("resync: renumber: %w", err)
		}
		newLast = hi.Int64 + shift
	}
	if err := setCounter(ctx, tx, "last_seq", newLast); err != nil {
		return 0, 0, err
	}
	return newLast, n, nil
}

// errSeqExhausted: the next seq would pass presence.MaxSeq.
var errSeqExhausted = presence.Errorf(presence.EINVALID, "the beat sequence is exhausted (seq %d reached); re-pair or reset the device", int64(presence.MaxSeq))

// LastSeq is the highest seq this database ever handed out.
func (db *DB) LastSeq() int64 {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.lastSeq
}

// Depth is the number of queued beats.
func (db *DB) Depth() int64 {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.depth
}

// SentSeq is the highest seq sent to the current target (0 when nothing has
// been sent to it yet). A duplicate above it means the service knew seqs this
// database never sent it.
func (db *DB) SentSeq(ctx context.Context) (int64, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.held.target != "" {
		return db.held.sent, nil
	}
	v, err := counter(ctx, db.db, "sent_seq")
	return max(v, db.held.sent), err
}

// MarkSent records that beats up to seq are about to be sent. It writes only
// when seq is above the mark, so retries of one batch cost nothing.
func (db *DB) MarkSent(ctx context.Context, seq int64) error {
	err := db.write(ctx, func(tx *sql.Tx) (func(), error) {
		_, err := tx.ExecContext(ctx, `UPDATE counters SET value = ? WHERE name = 'sent_seq' AND value < ?`, seq, seq)
		return nil, err
	}, func(error) error {
		db.held.sent = max(db.held.sent, seq)
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark sent: %w", err)
	}
	return nil
}

// SetTarget names the service the outbox now sends to (for example its URL
// and device id). Only a hash is kept. When the target differs from the last
// one, the sent mark is reset and SetTarget reports true: the next exchange
// must first learn what that service already holds. An empty target changes
// nothing.
func (db *DB) SetTarget(ctx context.Context, target string) (changed bool, err error) {
	if target == "" {
		return false, nil
	}
	sum := sha256.Sum256([]byte(target))
	h := hex.EncodeToString(sum[:])
	err = db.write(ctx, func(tx *sql.Tx) (func(), error) {
		// What memory holds is in the file by now (see inTxLocked).
		var cur string
		err := tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, keyTarget).Scan(&cur)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
		if cur == h {
			return nil, nil
		}
		changed = true
		if err := putSetting(ctx, tx, keyTarget, h); err != nil {
			return nil, err
		}
		return nil, setCounter(ctx, tx, "sent_seq", 0)
	}, func(error) error {
		cur := db.held.target
		if cur == "" {
			var err error
			if cur, _, err = db.Setting(ctx, keyTarget); err != nil {
				return err
			}
		}
		changed = cur != h
		if changed {
			db.held.target, db.held.sent = h, 0
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("set send target: %w", err)
	}
	return changed, nil
}

// keyTarget is internal: the hash of the service the outbox talks to.
const keyTarget = "send_target"
