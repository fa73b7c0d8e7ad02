package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/lastseen/lastseen/backend/sqlite"
)

// errPostgresBackup is the answer of backup and restore on PostgreSQL, whose
// own tools do it better (consistent, online, any size) than we could.
var errPostgresBackup = errors.New("a PostgreSQL database is backed up and restored with PostgreSQL's own tools: " +
	"pg_dump --format=custom --file=FILE 'postgres://…' to back up, " +
	"pg_restore --clean --if-exists --dbname='postgres://…' FILE to restore (with every lastseend stopped)")

// runBackup is `lastseend backup FILE`: a consistent copy of the SQLite
// database, taken while the service runs.
func runBackup(ctx context.Context, m *Main, args []string) error {
	if m.Config.IsPostgres() {
		return errPostgresBackup
	}
	if err := sqlite.Backup(ctx, m.Config.DB, args[0]); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	size := ""
	if fi, err := os.Stat(args[0]); err == nil {
		size = fmt.Sprintf(" (%d bytes)", fi.Size())
	}
	fmt.Fprintf(m.Stdout, "backed up %s to %s%s\n", m.Config.DB, args[0], size)
	return nil
}

// runRestore is `lastseend restore FILE`: the backup replaces the SQLite
// database, which nothing may have open.
func runRestore(ctx context.Context, m *Main, args []string) error {
	if m.Config.IsPostgres() {
		return errPostgresBackup
	}
	if err := sqlite.Restore(ctx, args[0], m.Config.DB); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	fmt.Fprintf(m.Stdout, "restored %s from %s; start the service again\n", m.Config.DB, args[0])
	return nil
}
