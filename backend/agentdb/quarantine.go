package agentdb

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// quarantine inserts refused beats and keeps the table within its bound,
// counting what the bound pushes out.
func (db *DB) quarantine(ctx context.Context, tx *sql.Tx, qs []Quarantined, now time.Time) error {
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO quarantine
		(seq, at_ns, state, idle_s, error, quarantined_ns) VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	defer stmt.Close()
	for _, q := range qs {
		at := q.QuarantinedAt
		if at.IsZero() {
			at = now
		}
		reason := q.Error
		if reason == "" {
			reason = "refused by the service"
		}
		if _, err := stmt.ExecContext(ctx, q.Beat.Seq, toNS(q.Beat.At), string(q.Beat.State),
			q.Beat.IdleS, reason, toNS(at)); err != nil {
			return fmt.Errorf("quarantine beat %d: %w", q.Beat.Seq, err)
		}
	}
	var n int64
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM quarantine`).Scan(&n); err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	if over := n - int64(db.opts.MaxQuarantine); over > 0 {
		if _, err := tx.ExecContext(ctx, `DELETE FROM quarantine WHERE id IN
			(SELECT id FROM quarantine ORDER BY id LIMIT ?)`, over); err != nil {
			return fmt.Errorf("quarantine: trim: %w", err)
		}
		if err := addCounter(ctx, tx, "quarantine_dropped", over); err != nil {
			return err
		}
	}
	return nil
}

// Quarantined lists up to limit quarantined beats, most recently refused
// first (those held in memory, see Trouble, before those in the file).
func (db *DB) Quarantined(ctx context.Context, limit int) ([]Quarantined, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []Quarantined
	db.mu.Lock()
	for i := len(db.held.quar) - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, db.held.quar[i])
	}
	db.mu.Unlock()
	if limit -= len(out); limit == 0 {
		return out, nil
	}
	rows, err := db.db.QueryContext(ctx, `SELECT seq, at_ns, state, idle_s, error, quarantined_ns
		FROM quarantine ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("read quarantine: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			q       Quarantined
			at, qat int64
			state   string
		)
		if err := rows.Scan(&q.Beat.Seq, &at, &state, &q.Beat.IdleS, &q.Error, &qat); err != nil {
			return nil, fmt.Errorf("read quarantine: %w", err)
		}
		q.Beat.At, q.Beat.State, q.QuarantinedAt = fromNS(at), presence.State(state), fromNS(qat)
		out = append(out, q)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read quarantine: %w", err)
	}
	return out, nil
}
