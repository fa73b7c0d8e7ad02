package serviceload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/backend/postgres"
	"github.com/lastseen/lastseen/backend/postgres/pgtest"
	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/sqlite"
)

// TargetPostgresRatio is what phase (p) holds lastseend on PostgreSQL to:
// at least half the beats per second of the same load on SQLite. A network
// round trip per group commit and a server of its own cost something; more
// than half would mean the group commit is not doing its job.
const TargetPostgresRatio = 0.5

// pgLoadDB is the database phase (p) creates in its throwaway cluster.
const pgLoadDB = "lastseen_load"

// Phase (p)'s fleet and the per-token limits it runs under.
const pDevices = 200

var pRate = httpapi.Rate{PerSecond: 1e6, Burst: 1e6}

// StoreComparison is phase (p): the same closed-loop ingest through
// lastseend's handler on SQLite and on PostgreSQL, in alternating rounds,
// then every acknowledged beat looked up in each database.
type StoreComparison struct {
	SQLite   RunStats `json:"sqlite"`
	Postgres RunStats `json:"postgres"`
	Ratio    float64  `json:"ratio"` // PostgreSQL / SQLite beats per second
	// Acknowledged is how many beats a 200 acknowledged on each store,
	// warm-up included; Lost is how many of those a fresh store opened on
	// the database afterwards does not have (each device's last_seq must
	// reach its last acknowledged seq).
	SQLiteAcknowledged   int64  `json:"sqlite_acknowledged"`
	SQLiteLost           int64  `json:"sqlite_lost"`
	PostgresAcknowledged int64  `json:"postgres_acknowledged"`
	PostgresLost         int64  `json:"postgres_lost"`
	PostgresVersion      string `json:"postgres_version"`
	// Note says what this phase changed from the defaults.
	Note string `json:"note"`
}

// pass is the target: the ratio, no failed request, nothing lost.
func (p *StoreComparison) pass() bool {
	return p.Ratio >= TargetPostgresRatio && p.SQLite.Failed == 0 && p.Postgres.Failed == 0 &&
		p.SQLiteLost == 0 && p.PostgresLost == 0 && p.PostgresAcknowledged > 0
}

func (p *StoreComparison) target() Target {
	return Target{"PostgreSQL vs SQLite throughput", fmt.Sprintf("≥ %.2f×, no failed request, every 200 committed", TargetPostgresRatio), p.Ratio, "×", p.pass()}
}

func (p *StoreComparison) writeText(w io.Writer, rounds int, run func(string, RunStats)) {
	fmt.Fprintf(w, "(p) lastseend on PostgreSQL %s vs SQLite, in this process, closed loop, same client and devices, %d alternating rounds\n", p.PostgresVersion, rounds)
	fmt.Fprintf(w, "    CHANGED for this phase: %s\n", p.Note)
	run("on SQLite", p.SQLite)
	run("on PostgreSQL", p.Postgres)
	fmt.Fprintf(w, "    ratio PostgreSQL/SQLite: %.2f\n", p.Ratio)
	fmt.Fprintf(w, "    acknowledged beats missing from the database afterwards: SQLite %d of %d, PostgreSQL %d of %d\n\n",
		p.SQLiteLost, p.SQLiteAcknowledged, p.PostgresLost, p.PostgresAcknowledged)
}

// storeSide is one service of phase (p) and how to look at its database
// once the service is closed.
type storeSide struct {
	name   string
	store  presence.Store
	url    string
	close  func() error
	reopen func(context.Context) (presence.Store, error)
}

// runStoreComparison is phase (p). It starts a throwaway PostgreSQL cluster
// (pgtest: the server binaries must be installed), a fresh SQLite service
// under dir, registers the same number of devices on each, drives both with
// identical clients, and finally closes both services and checks that every
// beat a 200 acknowledged is in the database.
func runStoreComparison(ctx context.Context, c Config, dir string) (*StoreComparison, error) {
	// This phase compares stores, not limits: its devices beat far faster
	// than agents do, so it raises the per-token limits, and says so.
	c.Devices = min(c.Devices, pDevices)
	c.DeviceRate, c.UserRate = pRate, pRate
	conns := min(c.maxConcurrency(), c.Devices)
	res := &StoreComparison{Note: fmt.Sprintf("%d devices, %d connections; per-token rate limits raised to %s for this phase", c.Devices, conns, rateArg(pRate))}
	clusterDSN, stop, err := pgtest.StartCluster()
	if err != nil {
		return nil, fmt.Errorf("start PostgreSQL: %w", err)
	}
	defer stop()
	dsn, version, err := createLoadDatabase(ctx, clusterDSN)
	if err != nil {
		return nil, err
	}
	if f := strings.Fields(version); len(f) > 0 {
		res.PostgresVersion = f[0] // "15.4", without the packager's suffix
	}

	sqliteDir, err := os.MkdirTemp(dir, "sqlite-")
	if err != nil {
		return nil, fmt.Errorf("database dir: %w", err)
	}
	lite, err := startService(sqliteDir, c)
	if err != nil {
		return nil, err
	}
	defer lite.close()
	pg, err := startPostgresService(ctx, dsn, c)
	if err != nil {
		return nil, err
	}
	defer pg.close()

	sides := []*storeSide{
		{name: "SQLite", store: lite.store, url: lite.http.url, close: lite.close,
			reopen: func(context.Context) (presence.Store, error) {
				return sqlite.Open(filepath.Join(sqliteDir, "load.db"), presence.Options{})
			}},
		{name: "PostgreSQL", store: pg.store, url: pg.http.url, close: pg.close,
			reopen: func(ctx context.Context) (presence.Store, error) {
				return postgres.Open(ctx, dsn, presence.Options{})
			}},
	}
	fleets := make([]*fleet, len(sides))
	targets := make([]*target, len(sides))
	for i, s := range sides {
		if fleets[i], err = newFleet(ctx, s.store, c.Devices); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		targets[i] = &target{cl: newClient(s.url, conns, true), devs: fleets[i].devices}
		defer targets[i].cl.close()
	}

	// The warm-up's answers count for the durability check (every 200 is
	// checked) but not for the rates.
	warm := make([]*tally, len(sides))
	run := func(i int, t *target, d time.Duration) (*tally, time.Duration) {
		return closedLoop(ctx, t.cl, t.devs, conns, c.BatchSize, d)
	}
	for i, t := range targets {
		warm[i] = &tally{}
		if c.Warmup > 0 {
			warm[i], _ = run(i, t, c.Warmup)
		}
	}
	if err := alternate(ctx, c, targets, run); err != nil {
		return nil, err
	}
	res.SQLite = statsOf(&targets[0].t, targets[0].spent)
	res.Postgres = statsOf(&targets[1].t, targets[1].spent)
	if res.SQLite.PerSecond > 0 {
		res.Ratio = res.Postgres.PerSecond / res.SQLite.PerSecond
	}
	// A failure in the warm-up is a failure all the same.
	for i, st := range []*RunStats{&res.SQLite, &res.Postgres} {
		st.Failed += warm[i].failed
		if st.FirstError == "" {
			st.FirstError = warm[i].firstErr
		}
	}

	// Close first: a 200 must not depend on a store that is still running.
	for i, s := range sides {
		if err := s.close(); err != nil {
			return nil, fmt.Errorf("close %s service: %w", s.name, err)
		}
		acked, lost, err := verifyCommitted(ctx, s, fleets[i])
		if err != nil {
			return nil, fmt.Errorf("check %s: %w", s.name, err)
		}
		if i == 0 {
			res.SQLiteAcknowledged, res.SQLiteLost = acked, lost
		} else {
			res.PostgresAcknowledged, res.PostgresLost = acked, lost
		}
	}
	return res, nil
}

// verifyCommitted opens a fresh store on the side's database and counts the
// acknowledged beats whose device's last_seq does not reach them.
func verifyCommitted(ctx context.Context, s *storeSide, f *fleet) (acked, lost int64, err error) {
	st, err := s.reopen(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("reopen: %w", err)
	}
	defer st.Close()
	u, err := st.UserByHandle(ctx, f.users[0].handle)
	if err != nil {
		return 0, 0, err
	}
	devs, err := st.Devices(ctx, u.ID)
	if err != nil {
		return 0, 0, err
	}
	have := make(map[int64]int64, len(devs))
	for _, d := range devs {
		have[d.ID] = d.Presence.LastSeq
	}
	for _, d := range f.devices {
		acked += d.acked
		if missing := d.acked - have[d.id]; missing > 0 {
			lost += missing
		}
	}
	return acked, lost, nil
}

// createLoadDatabase creates phase (p)'s database in the cluster and
// returns its DSN over loopback TCP (as a service on another machine would
// reach it, rather than the cluster's unix socket) and the server version.
func createLoadDatabase(ctx context.Context, clusterDSN string) (dsn, version string, err error) {
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := pgx.Connect(cctx, clusterDSN)
	if err != nil {
		return "", "", fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(cctx, "CREATE DATABASE "+pgx.Identifier{pgLoadDB}.Sanitize()+" TEMPLATE template0 ENCODING 'UTF8'"); err != nil {
		return "", "", fmt.Errorf("create database: %w", err)
	}
	if err := conn.QueryRow(cctx, "SHOW server_version").Scan(&version); err != nil {
		return "", "", fmt.Errorf("server version: %w", err)
	}
	cfg := conn.Config()
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", cfg.User, cfg.Port, pgLoadDB), version, nil
}

// pgService is lastseend's real stack on PostgreSQL.
type pgService struct {
	store *postgres.Store
	http  *server

	closeOnce sync.Once
	closeErr  error
}

func startPostgresService(ctx context.Context, dsn string, c Config) (*pgService, error) {
	hub := httpapi.NewHub(1024, c.Logger)
	metrics := httpapi.NewMetrics()
	store, err := postgres.OpenConfig(ctx, postgres.Config{
		DSN:    dsn,
		Logger: c.Logger,
		Options: presence.Options{
			Notify:  hub.Publish,
			Observe: metrics.ObserveBatch,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL store: %w", err)
	}
	_, srv, err := serveStore(store, hub, metrics, c)
	if err != nil {
		return nil, err
	}
	return &pgService{store: store, http: srv}, nil
}

// close stops the server, then the store (which commits what it accepted).
func (s *pgService) close() error {
	s.closeOnce.Do(func() {
		s.closeErr = errors.Join(s.http.close(), s.store.Close())
	})
	return s.closeErr
}
