package agentdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/sqlitedb"
)

// DefaultMaxHeld bounds the beats held in memory while the database cannot
// be written: over three days at the default 30 s interval.
const DefaultMaxHeld = 10_000

// held is what the database owes its file while the file cannot be written
// (a full disk, a read-only file system, an I/O error): the beats queued
// and the local-history beats made since, and what the sender learned
// about beats on disk. Nothing the agent produces waits for the disk: the
// beats are sent from memory all the same.
//
// Every write first writes what is held, in its own transaction, so the
// file catches up at the first write that succeeds (the next beat, or the
// sender's next exchange) and keeps the order the beats were made in. What
// is held is lost if the agent stops before the disk comes back; the
// service then tells the next run, by its last_seq, what it already has.
type held struct {
	err   error     // the last write failure; nil while nothing is held
	since time.Time // when the trouble began

	out      []presence.Beat // queued beats, seq ascending, every seq above those on disk
	hist     []presence.Beat // local-history beats not yet folded into the file, in order
	gone     map[int64]bool  // seqs on disk the service settled (acknowledged or quarantined)
	quar     []Quarantined   // beats to quarantine in the file
	sent     int64           // the sent mark, when above the file's
	target   string          // a send target's hash to write ("": none); it resets the file's sent mark
	syncedAt time.Time       // the last successful exchange, when after the file's

	dropped, histDropped, quarDropped int64 // what the memory bound pushed out
}

func (h *held) active() bool { return h.err != nil }

// troubleError marks a write failure injected by Options.FailWrites.
type troubleError struct{ err error }

func (e troubleError) Error() string { return e.err.Error() }
func (e troubleError) Unwrap() error { return e.err }

// diskTrouble reports whether a failed write failed for the file's sake —
// the disk is full, the file or its file system read-only, the device
// failing, another process holding the lock past the busy timeout — rather
// than for what was written. Only such failures are held in memory: a
// write that can never succeed must not block every later one behind it.
func diskTrouble(err error) bool {
	var te troubleError
	if errors.As(err, &te) {
		return true
	}
	return sqliteDiskTrouble(err)
}

// Trouble is the state of the database's writes, for the agent's status.
type Trouble struct {
	// Err is why the file cannot be written ("" while it can).
	Err string
	// Since is when the trouble began (zero while there is none).
	Since time.Time
	// Held is the number of queued beats kept in memory.
	Held int
	// Dropped is the number of queued beats the memory bound dropped, the
	// oldest first (counted in Stats.Dropped once the file is written).
	Dropped int64
}

// Trouble reports whether writes are failing and what is held meanwhile.
func (db *DB) Trouble() Trouble {
	db.mu.Lock()
	defer db.mu.Unlock()
	h := &db.held
	if !h.active() {
		return Trouble{}
	}
	return Trouble{Err: h.err.Error(), Since: h.since, Held: len(h.out), Dropped: h.dropped}
}

// write runs fn in one write transaction with db.mu held (see inTxLocked).
// When the write fails for the file's sake (diskTrouble) and hold is set,
// hold keeps the change in memory instead, still under the lock, and the
// write counts as done; hold returns an error when it cannot.
func (db *DB) write(ctx context.Context, fn func(tx *sql.Tx) (after func(), err error), hold func(cause error) error) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.writeLocked(ctx, fn, hold)
}

// writeRelaxed is write for a change that a power cut may undo without
// losing anything: its commit is not fsynced (synchronous=NORMAL for this
// one transaction), and the next ordinary commit syncs it along with its
// own, since the WAL is one file written in order. A crash of the process
// alone never undoes it.
//
// Only acknowledgements qualify (see Settle): undone, they put beats the
// service already holds back in the outbox, where the next exchange finds
// them duplicates at or below the durable sent mark and settles them
// again. It saves one of the fsyncs every beat costs, and with it a
// thread blocked for a millisecond or so every interval.
func (db *DB) writeRelaxed(ctx context.Context, fn func(tx *sql.Tx) (after func(), err error), hold func(cause error) error) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if _, err := db.db.ExecContext(ctx, `PRAGMA synchronous = NORMAL`); err != nil {
		return db.writeLocked(ctx, fn, hold)
	}
	err := db.writeLocked(ctx, fn, hold)
	db.relaxed = true
	db.restoreSyncLocked() // failing, it is retried before the next commit
	return err
}

// restoreSyncLocked puts the connection back to the durable level after a
// relaxed write. Until it succeeds, every transaction retries it first (see
// inTxLocked): no write that must survive a power cut commits without it.
func (db *DB) restoreSyncLocked() error {
	if !db.relaxed {
		return nil
	}
	if _, err := db.db.ExecContext(context.Background(), `PRAGMA synchronous = `+sqlitedb.SyncFull); err != nil {
		return fmt.Errorf("restore synchronous=FULL: %w", err)
	}
	db.relaxed = false
	return nil
}

func (db *DB) writeLocked(ctx context.Context, fn func(tx *sql.Tx) (after func(), err error), hold func(cause error) error) error {
	err := db.inTxLocked(ctx, fn)
	if err == nil || hold == nil || ctx.Err() != nil || !diskTrouble(err) {
		return err
	}
	if herr := hold(err); herr != nil {
		return errors.Join(err, herr)
	}
	db.noteTrouble(err)
	return nil
}

// noteTrouble records a write failure whose change is held; the first of a
// streak is logged.
func (db *DB) noteTrouble(err error) {
	h := &db.held
	if !h.active() {
		h.since = db.opts.Now()
		db.log.Error("cannot write the agent database; keeping beats in memory until it can", slog.Any("err", err))
	}
	h.err = err
	if h.gone == nil {
		h.gone = map[int64]bool{}
	}
}

// writeHeld writes what is held into tx, ahead of the transaction's own
// change. Local-history beats are folded at once (the fold state rolls
// back with the transaction, see inTxLocked); the returned func clears
// what was held once the commit succeeded.
func (db *DB) writeHeld(ctx context.Context, tx *sql.Tx) (func(), error) {
	h := &db.held
	now := db.opts.Now()
	if h.target != "" {
		if err := putSetting(ctx, tx, keyTarget, h.target); err != nil {
			return nil, err
		}
		if err := setCounter(ctx, tx, "sent_seq", 0); err != nil {
			return nil, err
		}
	}
	if len(h.quar) > 0 {
		if err := db.quarantine(ctx, tx, h.quar, now); err != nil {
			return nil, err
		}
	}
	for seq := range h.gone {
		if _, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE seq = ?`, seq); err != nil {
			return nil, fmt.Errorf("acknowledge beat %d: %w", seq, err)
		}
	}
	for _, b := range h.out {
		if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (seq, at_ns, state, idle_s, since_ns, why, reason) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			b.Seq, toNS(b.At), string(b.State), b.IdleS, sinceNS(b), string(b.Why), string(b.Reason)); err != nil {
			return nil, fmt.Errorf("queue beat: %w", err)
		}
	}
	if err := setCounter(ctx, tx, "last_seq", db.lastSeq); err != nil {
		return nil, err
	}
	if h.sent > 0 {
		if _, err := tx.ExecContext(ctx, `UPDATE counters SET value = ? WHERE name = 'sent_seq' AND value < ?`, h.sent, h.sent); err != nil {
			return nil, fmt.Errorf("write counter sent_seq: %w", err)
		}
	}
	if !h.syncedAt.IsZero() {
		if err := setCounter(ctx, tx, "last_sync_ns", toNS(h.syncedAt)); err != nil {
			return nil, err
		}
	}
	for name, n := range map[string]int64{"dropped": h.dropped, "quarantine_dropped": h.quarDropped} {
		if n > 0 {
			if err := addCounter(ctx, tx, name, n); err != nil {
				return nil, err
			}
		}
	}
	for _, b := range h.hist {
		after, err := db.recordHistory(ctx, tx, b)
		if err != nil {
			return nil, err
		}
		after()
	}
	return func() {
		db.log.Info("the agent database is writable again; wrote what memory held",
			slog.Int("beats", len(h.out)), slog.Int("history_beats", len(h.hist)),
			slog.Int64("dropped", h.dropped), slog.Int64("history_dropped", h.histDropped),
			slog.Duration("after", now.Sub(h.since)))
		db.held = held{}
	}, nil
}

// maxHeld is the bound on each list held in memory.
func (db *DB) maxHeld() int { return db.opts.MaxHeld }

// holdEntry keeps one entry's beats in memory and returns the queued beat
// with its seq. The oldest beats leave when the bound is reached, counted.
func (db *DB) holdEntry(e Entry) (presence.Beat, error) {
	h := &db.held
	var beat presence.Beat
	if e.Send != "" {
		if db.lastSeq >= presence.MaxSeq {
			return presence.Beat{}, errSeqExhausted
		}
		beat = e.queued()
		beat.Seq = db.lastSeq + 1
		if !sinceNS(beat).Valid {
			beat.Since = time.Time{}
		}
		h.out = append(h.out, beat)
		db.lastSeq = beat.Seq
		db.depth++
		if over := len(h.out) - db.maxHeld(); over > 0 {
			h.out = slices.Delete(h.out, 0, over)
			h.dropped += int64(over)
			db.depth -= int64(over)
		}
	}
	if e.Local != "" {
		h.hist = append(h.hist, e.local())
		if over := len(h.hist) - db.maxHeld(); over > 0 {
			h.hist = slices.Delete(h.hist, 0, over)
			h.histDropped += int64(over)
		}
	}
	return beat, nil
}

// holdSettlement applies a settlement the file could not take to what is
// held: beats in memory leave it, beats on disk are marked gone. A resync
// renumbers rows on disk and cannot be held; the sender retries it.
func (db *DB) holdSettlement(ctx context.Context, s Settlement) error {
	if s.Resync > 0 {
		return errors.New("a resync must be written; it will be retried")
	}
	h := &db.held
	now := db.opts.Now()
	settled := make(map[int64]bool, len(s.Delete)+len(s.Quarantine))
	top := s.Through
	for _, seq := range s.Delete {
		settled[seq] = true
		top = max(top, seq)
	}
	for _, q := range s.Quarantine {
		settled[q.Beat.Seq] = true
		top = max(top, q.Beat.Seq)
	}
	// Beats on disk: read (reads still work on a full or read-only disk)
	// before changing anything, so a failing read changes nothing.
	var onDisk []int64
	if top > 0 {
		rows, err := db.db.QueryContext(ctx, `SELECT seq FROM outbox WHERE seq <= ? ORDER BY seq`, top)
		if err != nil {
			return fmt.Errorf("read outbox: %w", err)
		}
		for rows.Next() {
			var seq int64
			if err := rows.Scan(&seq); err != nil {
				rows.Close()
				return fmt.Errorf("read outbox: %w", err)
			}
			if !h.gone[seq] && (seq <= s.Through || settled[seq]) {
				onDisk = append(onDisk, seq)
			}
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("read outbox: %w", err)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read outbox: %w", err)
		}
	}
	if h.gone == nil {
		h.gone = map[int64]bool{}
	}
	for _, seq := range onDisk {
		h.gone[seq] = true
	}
	before := len(h.out)
	h.out = slices.DeleteFunc(h.out, func(b presence.Beat) bool { return b.Seq <= s.Through || settled[b.Seq] })
	db.depth -= int64(len(onDisk) + before - len(h.out))
	for _, q := range s.Quarantine {
		if q.QuarantinedAt.IsZero() {
			q.QuarantinedAt = now
		}
		if q.Error == "" {
			q.Error = "refused by the service"
		}
		h.quar = append(h.quar, q)
	}
	if over := len(h.quar) - db.maxHeld(); over > 0 {
		h.quar = slices.Delete(h.quar, 0, over)
		h.quarDropped += int64(over)
	}
	if s.SyncedAt.After(h.syncedAt) {
		h.syncedAt = s.SyncedAt
	}
	return nil
}

// outboxLocked is Outbox with db.mu held: the file's queued beats less
// those settled meanwhile, then the beats held in memory.
func (db *DB) outboxLocked(ctx context.Context, limit int) ([]presence.Beat, error) {
	h := &db.held
	rows, err := db.db.QueryContext(ctx, `SELECT seq, at_ns, state, idle_s, since_ns, why, reason FROM outbox ORDER BY seq LIMIT ?`, limit+len(h.gone))
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	defer rows.Close()
	var out []presence.Beat
	for rows.Next() {
		var (
			b                  presence.Beat
			at                 int64
			state, why, reason string
			since              sql.NullInt64
		)
		if err := rows.Scan(&b.Seq, &at, &state, &b.IdleS, &since, &why, &reason); err != nil {
			return nil, fmt.Errorf("read outbox: %w", err)
		}
		if h.gone[b.Seq] || len(out) == limit {
			continue
		}
		b.At, b.State, b.Why, b.Reason = fromNS(at), presence.State(state), presence.Why(why), presence.EndReason(reason)
		if since.Valid {
			b.Since = fromNS(since.Int64)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	for _, b := range h.out {
		if len(out) == limit {
			break
		}
		out = append(out, b)
	}
	return out, nil
}

// Flush writes what memory holds, if anything, and reports whether the
// file is current. Every write does this first; Flush is for a moment
// with nothing else to write (Close).
func (db *DB) Flush(ctx context.Context) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if !db.held.active() {
		return nil
	}
	if err := db.inTxLocked(ctx, func(*sql.Tx) (func(), error) { return nil, nil }); err != nil {
		return fmt.Errorf("write what memory holds: %w", err)
	}
	return nil
}
