package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/lastseen/lastseen/backend/presence"
)

// Column lists and scanners shared by every query that reads users or
// devices, so the cache is always filled the same way.
const (
	userCols   = `u.id, u.handle, u.name, u.tz, u.public, u.public_detail, u.admin, u.disabled, u.created_at`
	deviceCols = `d.id, d.user_id, d.name, d.os, d.platform, d.hostname, d.version, d.created_at,
		d.revoked_at IS NOT NULL, d.state, d.last_beat, d.last_active, d.last_seq, d.expired_beat, d.why`
)

func scanUser(row pgx.Row, extra ...any) (presence.User, error) {
	var u presence.User
	err := row.Scan(append([]any{&u.ID, &u.Handle, &u.Name, &u.TZ, &u.Public, &u.PublicDetail, &u.Admin, &u.Disabled, &u.CreatedAt}, extra...)...)
	u.CreatedAt = u.CreatedAt.UTC()
	return u, err
}

// deviceRow is a device as read from the table, with extra columns a query
// may add after deviceCols.
type deviceRow struct {
	devEntry
	revoked bool
}

func (r *deviceRow) dest() []any {
	return []any{&r.dev.ID, &r.dev.UserID, &r.dev.Name, &r.dev.OS, &r.dev.Platform, &r.dev.Hostname, &r.dev.Version, &r.dev.CreatedAt,
		&r.revoked, &r.pres.State, (*nullTime)(&r.pres.LastBeat), (*nullTime)(&r.pres.LastActive), &r.pres.LastSeq,
		(*nullTime)(&r.expired), &r.pres.Why}
}

func (r *deviceRow) fix() {
	r.dev.CreatedAt = r.dev.CreatedAt.UTC()
	r.dev.Revoked = r.revoked
	r.pres.DeviceID, r.pres.UserID = r.dev.ID, r.dev.UserID
}

func scanDevice(row pgx.Row, extra ...any) (deviceRow, error) {
	var r deviceRow
	err := row.Scan(append(r.dest(), extra...)...)
	r.fix()
	return r, err
}

// nullTime scans a nullable timestamptz into a time.Time: zero for NULL,
// UTC otherwise.
type nullTime time.Time

func (t *nullTime) ScanTimestamptz(v pgtype.Timestamptz) error {
	if !v.Valid {
		*t = nullTime{}
		return nil
	}
	*t = nullTime(v.Time.UTC())
	return nil
}

// dbTime is how a time goes into a nullable timestamptz column.
func dbTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// refresh re-reads devices and users changed in the database since since
// (database time; zero reads everything and replaces the cache) and returns
// the database time to pass next time. Rows are re-read with a margin, since
// a row's updated_at is its transaction's start, not its commit.
func (s *Store) refresh(ctx context.Context, since time.Time) (time.Time, error) {
	const margin = 30 * time.Second
	full := since.IsZero()
	from := since.Add(-margin)
	if full {
		from = time.Time{}
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT now()`)
	b.Queue(`SELECT `+userCols+` FROM users u WHERE u.updated_at >= $1`, from)
	b.Queue(`SELECT `+deviceCols+` FROM devices d WHERE d.updated_at >= $1`, from)
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	var at time.Time
	if err := br.QueryRow().Scan(&at); err != nil {
		return time.Time{}, fmt.Errorf("refresh: %w", err)
	}
	rows, _ := br.Query()
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (presence.User, error) { return scanUser(r) })
	if err != nil {
		return time.Time{}, fmt.Errorf("refresh users: %w", err)
	}
	rows, _ = br.Query()
	devs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (deviceRow, error) { return scanDevice(r) })
	if err != nil {
		return time.Time{}, fmt.Errorf("refresh devices: %w", err)
	}
	if err := br.Close(); err != nil {
		return time.Time{}, fmt.Errorf("refresh: %w", err)
	}
	if full {
		entries := make([]devEntry, len(devs))
		for i, d := range devs {
			entries[i] = d.devEntry
		}
		s.cache.replaceAll(users, entries)
		return at, nil
	}
	for _, u := range users {
		s.cache.putUser(u)
	}
	for _, d := range devs {
		s.cache.putDevice(d.devEntry)
	}
	return at, nil
}

// loadDevices reads the given devices and puts them in the cache; it is the
// database check behind every "this device looks expired" in memory.
func (s *Store) loadDevices(ctx context.Context, ids []int64) error {
	rows, err := s.pool.Query(ctx, `SELECT `+deviceCols+` FROM devices d WHERE d.id = ANY($1)`, ids)
	if err != nil {
		return fmt.Errorf("read devices: %w", err)
	}
	devs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (deviceRow, error) { return scanDevice(r) })
	if err != nil {
		return fmt.Errorf("read devices: %w", err)
	}
	seen := map[int64]bool{}
	for _, d := range devs {
		s.cache.putDevice(d.devEntry)
		seen[d.dev.ID] = true
	}
	for _, id := range ids {
		if !seen[id] {
			s.cache.forgetDevice(id)
		}
	}
	return nil
}

// pgCode returns the SQLSTATE of a PostgreSQL error, "" for other errors.
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
)

// dbError wraps a failed database operation. Errors that mean the database
// cannot be reached or is going away also carry EUNAVAILABLE, so callers
// answer 503 and clients retry, instead of a 500 that reads like a bug.
func dbError(op string, err error) error {
	if unavailable(err) {
		return fmt.Errorf("%s: %w: %w", op, presence.Errorf(presence.EUNAVAILABLE, "database unavailable, retry later"), err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func unavailable(err error) bool {
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || errors.As(err, &ne) || pgconn.SafeToRetry(err) || pgconn.Timeout(err) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	// SQLSTATE classes 08 (connection exception), 53 (insufficient
	// resources) and 57P (operator intervention: shutdown, restart).
	code := pgCode(err)
	return strings.HasPrefix(code, "08") || strings.HasPrefix(code, "53") || strings.HasPrefix(code, "57P")
}
