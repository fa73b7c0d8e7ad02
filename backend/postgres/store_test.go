package postgres

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/postgres/pgtest"
	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/storetest"
)

// cluster is the one PostgreSQL cluster this test binary starts (TestMain);
// every test gets its own database in it.
var cluster struct {
	dsn string
	err error
}

func TestMain(m *testing.M) {
	dsn, stop, err := pgtest.StartCluster()
	cluster.dsn, cluster.err = dsn, err
	code := m.Run()
	stop()
	os.Exit(code)
}

// newDatabase returns the DSN of a fresh database, or skips (or fails, with
// LASTSEEN_REQUIRE_POSTGRES=1) when PostgreSQL is not installed.
func newDatabase(t testing.TB) string {
	t.Helper()
	if cluster.err != nil {
		pgtest.Unavailable(t, cluster.err)
	}
	return pgtest.NewDatabase(t, cluster.dsn)
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Open {
		dsn := newDatabase(t)
		return func(opts presence.Options) (presence.Store, error) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			return Open(ctx, dsn, opts)
		}
	})
}
