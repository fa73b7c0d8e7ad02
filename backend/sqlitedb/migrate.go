package sqlitedb

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Table is where Migrate records each applied migration, one row per
// version, in every Lastseen SQLite database.
const Table = "schema_migrations"

// ErrTooNew is the refusal of a database whose schema is newer than any
// migration this build knows: reading it would misread it, and writing it
// could spoil it for the build that made it.
var ErrTooNew = errors.New("the database is newer than this build")

// Migration is one numbered file: NNNN_name.sql.
type Migration struct {
	Version int
	Name    string // the file name, e.g. "0001_init.sql"
	SQL     string
}

// Migrations reads the *.sql files in dir of fsys (an embedded
// "migrations" folder, say), in version order. Each name must start with a
// positive number and '_', and no two may share a number.
func Migrations(fsys fs.FS, dir string) ([]Migration, error) {
	files, err := fs.Glob(fsys, path.Join(dir, "*.sql"))
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	out := make([]Migration, 0, len(files))
	for _, f := range files {
		name := path.Base(f)
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive number and '_'", name)
		}
		body, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", name, err)
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(body)})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no migrations (%s/*.sql) found", dir)
	}
	slices.SortFunc(out, func(a, b Migration) int { return a.Version - b.Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("migrations %s and %s share version %d", out[i-1].Name, out[i].Name, out[i].Version)
		}
	}
	return out, nil
}

// Migrate applies every migration in dir of fsys newer than the database, each in
// its own transaction together with its row in schema_migrations (stamped
// with now), so a failed migration leaves the previous version intact. A
// database at a version above the highest known is refused with ErrTooNew.
// db should be the writer that Open returns.
func Migrate(db *sql.DB, fsys fs.FS, dir string, now time.Time) error {
	all, err := Migrations(fsys, dir)
	if err != nil {
		return err
	}
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS ` + Table + ` (
		version    INTEGER PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_ns INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("create %s: %w", Table, err)
	}
	current, err := Version(db)
	if err != nil {
		return err
	}
	if latest := all[len(all)-1].Version; current > latest {
		return fmt.Errorf("%w: its schema is at version %d, this build knows up to %d; open it with a newer build", ErrTooNew, current, latest)
	}
	for _, m := range all {
		if m.Version <= current {
			continue
		}
		if err := apply(db, m, now); err != nil {
			return fmt.Errorf("apply migration %s: %w", m.Name, err)
		}
	}
	return nil
}

// Version is the highest migration applied to db, 0 for none.
func Version(db *sql.DB) (int, error) {
	var v int
	if err := db.QueryRow(`SELECT coalesce(max(version), 0) FROM ` + Table).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

func apply(db *sql.DB, m Migration, now time.Time) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.Exec(m.SQL); err != nil {
		return err
	}
	if _, err := tx.Exec(`INSERT INTO `+Table+` (version, name, applied_ns) VALUES (?, ?, ?)`,
		m.Version, m.Name, now.UnixNano()); err != nil {
		return err
	}
	return tx.Commit()
}
