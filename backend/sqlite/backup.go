package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/lastseen/lastseen/backend/sqlitedb"
)

// Backup writes a consistent copy of the database at dbPath to dest, while
// a service may be running on it and writing: VACUUM INTO reads one
// snapshot (WAL lets the writer go on meanwhile) and writes a compact,
// single-file database. The copy is owner-only (0600), like the database.
// It is written beside dest and renamed over it once complete and synced,
// so dest is never half written; an older file at dest is replaced.
func Backup(ctx context.Context, dbPath, dest string) error {
	if err := existingFile(dbPath, "database"); err != nil {
		return err
	}
	if same, err := sameFile(dbPath, dest); err != nil || same {
		if err == nil {
			err = fmt.Errorf("the backup %s would overwrite the database itself; choose another file", dest)
		}
		return err
	}
	// Shared, like a store: a restore cannot replace the file mid-copy.
	lock, err := sqlitedb.LockShared(dbPath, sqlitedb.DefaultBusyTimeout)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	// The writer connection: SQLite counts VACUUM INTO as a write, which a
	// query_only reader refuses, though it only reads the source.
	db, err := sqlitedb.Open(dbPath, sqlitedb.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := lastseenVersion(ctx, db, dbPath); err != nil {
		return err
	}
	tmp, err := tempBeside(dest, ".backup")
	if err != nil {
		return err
	}
	defer removeDB(tmp)
	// VACUUM INTO writes into an existing file when it is empty: this one,
	// created 0600, so the copy is private from its first byte.
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, tmp); err != nil {
		return fmt.Errorf("back up %s: %w", dbPath, err)
	}
	return commitFile(tmp, dest)
}

// Restore replaces the database at dbPath with the backup at src. It
// refuses a file that is not a Lastseen database, is damaged, or was made
// by a newer build (sqlitedb.ErrTooNew), and refuses while anything has the
// database open (sqlitedb.ErrInUse): stop the service first. The backup is
// copied beside dbPath, checked there, synced and renamed over the
// database in one step, after the old database's -wal and -shm are
// removed (a stale WAL must never be replayed into the restored file).
// src is left as it was.
func Restore(ctx context.Context, src, dbPath string) error {
	if err := existingFile(src, "backup"); err != nil {
		return err
	}
	if same, err := sameFile(src, dbPath); err != nil || same {
		if err == nil {
			err = fmt.Errorf("%s is the database itself; restore from a backup file", src)
		}
		return err
	}
	// Restoring into a new place is an explicit choice (unlike a mistyped
	// --db), so its folder may be made here.
	if err := os.MkdirAll(filepath.Dir(dbPath), 0o700); err != nil {
		return fmt.Errorf("restore into %s: %w", dbPath, err)
	}
	lock, err := sqlitedb.LockExclusive(dbPath)
	if err != nil {
		if errors.Is(err, sqlitedb.ErrInUse) {
			return fmt.Errorf("%w; stop the service (and any lastseend command) using it, then restore", err)
		}
		return err
	}
	defer lock.Unlock()
	tmp, err := tempBeside(dbPath, ".restore")
	if err != nil {
		return err
	}
	defer removeDB(tmp)
	if err := copyFile(src, tmp); err != nil {
		return err
	}
	// A copy of a live database comes with its WAL: bring it along, so the
	// check below folds it in instead of losing its commits.
	if err := copyFile(src+"-wal", tmp+"-wal"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := checkBackup(ctx, tmp, src); err != nil {
		return err
	}
	for _, p := range []string{dbPath + "-wal", dbPath + "-shm", dbPath + "-journal"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove the old %s: %w", filepath.Base(p), err)
		}
	}
	return commitFile(tmp, dbPath)
}

// checkBackup opens the copy at tmp and checks it is a whole Lastseen
// database this build can open, then leaves it one self-contained file
// (rollback journal mode, its WAL folded in). src names it in errors.
func checkBackup(ctx context.Context, tmp, src string) error {
	db, err := sqlitedb.Open(tmp, sqlitedb.Options{})
	if err != nil {
		return fmt.Errorf("%s is not a SQLite database: %w", src, err)
	}
	defer db.Close()
	var check string
	if err := db.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&check); err != nil {
		return fmt.Errorf("%s is not a SQLite database: %w", src, err)
	}
	if check != "ok" {
		return fmt.Errorf("%s is damaged (%s); restore another backup", src, check)
	}
	if _, err := lastseenVersion(ctx, db, src); err != nil {
		return err
	}
	var mode string
	if err := db.QueryRowContext(ctx, `PRAGMA journal_mode = DELETE`).Scan(&mode); err != nil {
		return fmt.Errorf("prepare %s: %w", src, err)
	}
	return db.Close()
}

// lastseenVersion is the schema version of a Lastseen database, or an
// error saying why db is not one this build can open.
func lastseenVersion(ctx context.Context, db *sql.DB, name string) (int, error) {
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?`, sqlitedb.Table).Scan(&n); err != nil {
		return 0, fmt.Errorf("%s is not a SQLite database: %w", name, err)
	}
	if n == 0 {
		return 0, fmt.Errorf("%s is not a Lastseen database (it has no %s table)", name, sqlitedb.Table)
	}
	v, err := sqlitedb.Version(db)
	if err != nil {
		return 0, err
	}
	all, err := sqlitedb.Migrations(migrations, "migrations")
	if err != nil {
		return 0, err
	}
	switch latest := all[len(all)-1].Version; {
	case v == 0:
		return 0, fmt.Errorf("%s is not a Lastseen database (no migration applied)", name)
	case v > latest:
		return 0, fmt.Errorf("%s: %w: its schema is at version %d, this build knows up to %d; use a newer build", name, sqlitedb.ErrTooNew, v, latest)
	}
	return v, nil
}

func existingFile(path, what string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no %s at %s", what, path)
	}
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s %s is not a regular file", what, path)
	}
	return nil
}

// sameFile reports whether b names the database a or one of its
// companions (an existing b is compared by identity, so links count).
func sameFile(a, b string) (bool, error) {
	aa, err := filepath.Abs(a)
	if err != nil {
		return false, err
	}
	bb, err := filepath.Abs(b)
	if err != nil {
		return false, err
	}
	for _, suffix := range []string{"", "-wal", "-shm", "-journal", sqlitedb.LockSuffix} {
		if bb == aa+suffix {
			return true, nil
		}
	}
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb), nil
}

// tempBeside creates an empty owner-only file in path's directory, for a
// file that will be renamed to path.
func tempBeside(path, kind string) (string, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+kind+"-*")
	if err != nil {
		return "", err
	}
	name := f.Name()
	if err := errors.Join(f.Chmod(0o600), f.Close()); err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}

// commitFile makes tmp durable and renames it to path, then syncs the
// directory so the rename itself survives a crash.
func commitFile(tmp, path string) error {
	f, err := os.OpenFile(tmp, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := errors.Join(f.Chmod(0o600), f.Sync(), f.Close()); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync() // not every system syncs directories; the rename is done either way
		d.Close()
	}
	return nil
}

// removeDB removes a temporary database file and its companions, if they
// are still there.
func removeDB(path string) {
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal", path + sqlitedb.LockSuffix} {
		os.Remove(p)
	}
}
