// Package pgtest starts throwaway PostgreSQL clusters for tests: initdb into a
// temporary directory, a server on a unix socket in that directory plus a free
// loopback port, a fresh database per test, and everything removed at the end.
//
// It needs the PostgreSQL server binaries (initdb, postgres). They are looked
// up in $LASTSEEN_PG_BIN, then in /usr/lib/postgresql/<version>/bin (Debian
// and Ubuntu, newest version first), then on $PATH. When they are missing,
// tests are skipped with a message saying so, unless LASTSEEN_REQUIRE_POSTGRES=1
// is set, in which case they fail: CI sets it so a broken install cannot pass
// as a green run.
//
// PostgreSQL refuses to run as root. When the tests run as root, the cluster
// is created and run as the system user "postgres" (the one Debian's
// postgresql package creates; override with $LASTSEEN_PG_USER): the data
// directory is chowned to it and initdb and postgres are started with its
// uid and gid. If no such user exists, create one with
// `useradd --system --home-dir /var/lib/postgresql postgres`.
//
// The server runs with fsync on (the stores promise that an acknowledged
// write survives a crash, so the tests must not cheat on durability) and
// small memory settings, so several clusters fit on a small machine.
//
// One cluster per test binary, started from TestMain:
//
//	var cluster = struct{ dsn string; err error }{}
//
//	func TestMain(m *testing.M) {
//		dsn, stop, err := pgtest.StartCluster()
//		cluster.dsn, cluster.err = dsn, err
//		code := m.Run()
//		stop()
//		os.Exit(code)
//	}
//
//	func TestX(t *testing.T) {
//		if cluster.err != nil {
//			pgtest.Unavailable(t, cluster.err)
//		}
//		dsn := pgtest.NewDatabase(t, cluster.dsn)
//		...
//	}
//
// Or one cluster for one test: dsn := pgtest.Start(t).
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lastseen/lastseen/internal/testutil"
)

// Environment variables the harness reads.
const (
	// EnvRequire, set to 1, turns a missing PostgreSQL into a test failure.
	EnvRequire = testutil.RequirePostgres
	// EnvBin names the directory holding initdb and postgres.
	EnvBin = "LASTSEEN_PG_BIN"
	// EnvUser names the system user the cluster runs as when tests run as root.
	EnvUser = "LASTSEEN_PG_USER"
)

// ErrNotInstalled reports that the PostgreSQL server binaries were not found.
var ErrNotInstalled = errors.New("PostgreSQL server binaries (initdb, postgres) not found: install the postgresql package or set " + EnvBin)

// Unavailable ends a test that needs PostgreSQL when the cluster could not be
// started: a skip when the server is simply not installed, a failure when
// EnvRequire is set or when it is installed but broken.
func Unavailable(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrNotInstalled) {
		testutil.Missing(t, EnvRequire, "%v", err)
	}
	t.Fatalf("PostgreSQL test cluster: %v", err)
}

// Start starts a cluster for this test alone and returns the DSN of a fresh
// database in it. The cluster is stopped and removed when the test ends.
// Prefer StartCluster in TestMain when a package has many tests.
func Start(t testing.TB) string {
	t.Helper()
	dsn, stop, err := StartCluster()
	if err != nil {
		Unavailable(t, err)
	}
	t.Cleanup(stop)
	return NewDatabase(t, dsn)
}

// dbCounter keeps database names unique within a test binary; the names
// carry the test name so a leftover cluster is easy to read.
var dbCounter atomic.Int64

var nonIdent = regexp.MustCompile(`[^a-z0-9_]+`)

// NewDatabase creates an empty database (from template0, so nothing a
// previous test did leaks in) in the cluster reached by clusterDSN, returns
// its DSN, and drops it when the test ends.
func NewDatabase(t testing.TB, clusterDSN string) string {
	t.Helper()
	name := nonIdent.ReplaceAllString(strings.ToLower(t.Name()), "_")
	if len(name) > 40 {
		name = name[:40]
	}
	name = fmt.Sprintf("t%d_%s", dbCounter.Add(1), name)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, clusterDSN)
	if err != nil {
		t.Fatalf("connect to test cluster: %v", err)
	}
	defer conn.Close(ctx)
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident+" TEMPLATE template0 ENCODING 'UTF8'"); err != nil {
		t.Fatalf("create test database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, clusterDSN)
		if err != nil {
			t.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		// FORCE: a store the test forgot to close must not keep the database.
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	cfg, err := pgx.ParseConfig(clusterDSN)
	if err != nil {
		t.Fatalf("parse cluster DSN: %v", err)
	}
	return dsnFor(cfg.Host, int(cfg.Port), cfg.User, name)
}

func dsnFor(host string, port int, user, db string) string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", host, port, user, db)
}

// Cluster is a running throwaway cluster.
type Cluster struct {
	Dir     string // temporary directory holding data/, the socket and the log
	Socket  string // directory of the unix socket
	Port    int    // loopback TCP port (127.0.0.1)
	Version string // server major version, e.g. "15"

	cmd  *exec.Cmd
	done chan struct{} // closed when the server process has exited
	log  string
}

// DSN is the connection string of database db over the unix socket.
func (c *Cluster) DSN(db string) string { return dsnFor(c.Socket, c.Port, "postgres", db) }

// TCPDSN is the connection string of database db over loopback TCP.
func (c *Cluster) TCPDSN(db string) string { return dsnFor("127.0.0.1", c.Port, "postgres", db) }

// StartCluster initialises and starts a cluster and returns the DSN of its
// maintenance database ("postgres", superuser "postgres", trust auth) and a
// stop function that shuts it down and removes its files. The error wraps
// ErrNotInstalled when the binaries are missing.
func StartCluster() (dsn string, stop func(), err error) {
	c, err := Launch(context.Background())
	if err != nil {
		return "", func() {}, err
	}
	return c.DSN("postgres"), func() { _ = c.Stop() }, nil
}

// Launch is StartCluster returning the Cluster itself.
func Launch(ctx context.Context) (*Cluster, error) {
	bin, version, err := findBinaries()
	if err != nil {
		return nil, err
	}
	cred, err := runAs()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "lastseen-pg-")
	if err != nil {
		return nil, fmt.Errorf("create cluster dir: %w", err)
	}
	c := &Cluster{Dir: dir, Socket: filepath.Join(dir, "sock"), Version: version, log: filepath.Join(dir, "server.log")}
	fail := func(err error) (*Cluster, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := os.Mkdir(c.Socket, 0o700); err != nil {
		return fail(fmt.Errorf("create socket dir: %w", err))
	}
	if cred != nil {
		// MkdirTemp makes the directory 0700 root's; the server user must own it.
		if err := chownTree(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fail(fmt.Errorf("hand cluster dir to the postgres user: %w", err))
		}
	}

	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale",
		// Syncing the freshly created template files only costs time: the
		// cluster is thrown away. The server itself runs with fsync on.
		"--no-sync")
	initdb.SysProcAttr = procAttr(cred)
	initdb.Env = serverEnv()
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %w\n%s", err, out))
	}

	// A free port can be taken by somebody else between our probe and the
	// server's bind; try a few.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return fail(err)
		}
		c.Port = port
		if lastErr = c.start(ctx, bin, data, cred); lastErr == nil {
			return c, nil
		}
	}
	return fail(lastErr)
}

func (c *Cluster) start(ctx context.Context, bin, data string, cred *syscall.Credential) error {
	logf, err := os.OpenFile(c.log, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("open server log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(bin, "postgres"),
		"-D", data,
		"-k", c.Socket,
		"-p", strconv.Itoa(c.Port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=on",
		"-c", "synchronous_commit=on",
		"-c", "shared_buffers=16MB",
		"-c", "max_connections=100",
		"-c", "max_wal_size=256MB",
		"-c", "unix_socket_permissions=0777",
		"-c", "logging_collector=off",
		"-c", "log_min_messages=warning",
	)
	cmd.SysProcAttr = procAttr(cred)
	cmd.Env = serverEnv()
	cmd.Stdout = logf
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	c.cmd = cmd
	c.done = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(c.done)
	}()

	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-c.done:
			return fmt.Errorf("postgres exited during start-up:\n%s", c.logTail())
		default:
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(pctx, c.DSN("postgres"))
		cancel()
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = c.Stop()
			return fmt.Errorf("postgres did not accept connections: %v\n%s", err, c.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop shuts the server down (fast shutdown, then kill after a while) and
// removes the cluster's files.
func (c *Cluster) Stop() error {
	var err error
	if c.cmd != nil && c.cmd.Process != nil {
		select {
		case <-c.done:
		default:
			// SIGINT is PostgreSQL's "fast" shutdown: roll back open
			// transactions, checkpoint, exit.
			_ = c.cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-c.done:
			case <-time.After(30 * time.Second):
				_ = c.cmd.Process.Kill()
				<-c.done
				err = errors.New("postgres did not shut down within 30s; killed")
			}
		}
	}
	if rmErr := os.RemoveAll(c.Dir); rmErr != nil && err == nil {
		err = fmt.Errorf("remove cluster dir: %w", rmErr)
	}
	return err
}

// Crash kills the server at once (SIGKILL, no shutdown checkpoint) and starts
// it again on the same data, port and socket, as after a power cut.
// Committed transactions must survive it.
func (c *Cluster) Crash(ctx context.Context) error {
	bin, _, err := findBinaries()
	if err != nil {
		return err
	}
	cred, err := runAs()
	if err != nil {
		return err
	}
	// The whole process group: the postmaster and every backend, so no
	// orphan keeps the shared memory the restarted server checks for.
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	<-c.done
	for attempt := 0; attempt < 20; attempt++ {
		if err = c.start(ctx, bin, filepath.Join(c.Dir, "data"), cred); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond) // orphans still exiting
	}
	return fmt.Errorf("restart after crash: %w", err)
}

func (c *Cluster) logTail() string {
	b, err := os.ReadFile(c.log)
	if err != nil {
		return "(no server log: " + err.Error() + ")"
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(bytes.TrimSpace(b))
}

// findBinaries returns the directory holding initdb and postgres and the
// server's major version.
func findBinaries() (dir, version string, err error) {
	has := func(d string) bool {
		for _, name := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(d, name)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if d := os.Getenv(EnvBin); d != "" {
		if !has(d) {
			return "", "", fmt.Errorf("%s=%s holds no initdb and postgres: %w", EnvBin, d, ErrNotInstalled)
		}
		return d, versionOf(d), nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Newest major version first: "15" before "9.6".
	slices.SortFunc(matches, func(a, b string) int {
		return compareVersions(filepath.Base(filepath.Dir(b)), filepath.Base(filepath.Dir(a)))
	})
	for _, d := range matches {
		if has(d) {
			return d, filepath.Base(filepath.Dir(d)), nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if d := filepath.Dir(p); has(d) {
			return d, versionOf(d), nil
		}
	}
	return "", "", ErrNotInstalled
}

func versionOf(dir string) string {
	out, err := exec.Command(filepath.Join(dir, "postgres"), "--version").Output()
	if err != nil {
		return ""
	}
	f := strings.Fields(string(out)) // "postgres (PostgreSQL) 15.14 (Debian ...)"
	if len(f) >= 3 {
		return strings.SplitN(f[2], ".", 2)[0]
	}
	return ""
}

func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(pa), len(pb)); i++ {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			return x - y
		}
	}
	return 0
}

// runAs returns the credentials to run the server with: nil when the tests
// do not run as root (the server runs as the current user), else the
// postgres system user's.
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	name := os.Getenv(EnvUser)
	if name == "" {
		name = "postgres"
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("running as root and PostgreSQL refuses to: need the system user %q to run the test cluster as (useradd --system %s): %w", name, name, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user %q has a non-numeric uid/gid %s/%s", name, u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

// procAttr runs a child as cred (when set) and has the kernel stop it
// should the test binary die without running its cleanups: a crashed or
// timed-out test must not leave a server behind.
func procAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
}

// serverEnv is a small, predictable environment: no PG* variables of the
// caller's leak into the cluster, and a locale that always exists.
func serverEnv() []string {
	env := []string{"LC_ALL=C", "LANG=C", "TZ=UTC"}
	if p := os.Getenv("PATH"); p != "" {
		env = append(env, "PATH="+p)
	}
	return env
}

func chownTree(root string, uid, gid int) error {
	return filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
