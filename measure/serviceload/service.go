package serviceload

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/sqlite"
	"github.com/lastseen/lastseen/backend/sqlitedb"
)

// lastseend is the service as shipped, in its own process, on a database
// the load prepared.
type lastseend struct {
	bin, db string
	args    []string
	env     []string
	*child
}

// serveArgs are lastseend's arguments: the address, the database, and only
// the settings this run changes (Config.Changed says which).
func (c Config) serveArgs(db string) []string {
	args := []string{"serve", "--addr", "127.0.0.1:0", "--db", db}
	if c.Sync != "" {
		args = append(args, "--sync", c.Sync)
	}
	if c.DeviceRate != (httpapi.Rate{}) {
		args = append(args, "--device-rate", rateArg(c.DeviceRate))
	}
	if c.UserRate != (httpapi.Rate{}) {
		args = append(args, "--user-rate", rateArg(c.UserRate))
	}
	return args
}

func rateArg(r httpapi.Rate) string {
	return strconv.FormatFloat(r.PerSecond, 'f', -1, 64) + "/" + strconv.Itoa(r.Burst)
}

// startLastseend starts bin on db with the run's arguments.
func startLastseend(bin, db string, c Config) (*lastseend, error) {
	env, _ := childEnv()
	s := &lastseend{bin: bin, db: db, args: c.serveArgs(db), env: env}
	return s, s.start()
}

func (s *lastseend) start() error {
	ch, err := startChild("lastseend", s.bin, s.args, s.env)
	if err != nil {
		return err
	}
	s.child = ch
	return nil
}

// restart stops the service and starts it again on the same database, for
// a phase that wants a fresh process (memory read from a clean start).
func (s *lastseend) restart() error {
	if err := s.stop(); err != nil {
		return err
	}
	return s.start()
}

// account is a user of the load, for event streams.
type account struct {
	handle, token string
}

// device is one beating device. Like a real agent, it has one request in
// flight at a time, so its seqs arrive in order: every loop hands a device
// to one goroutine at a time.
type device struct {
	id    int64
	token string
	seq   int64
	// acked is the highest seq a 200 acknowledged, for checking afterwards
	// that the database holds every acknowledged beat.
	acked int64
}

// fleet is the load's users and devices.
type fleet struct {
	devices []*device
	users   []account
	fan     *device // the device phases (d) and (e) flip between states
	// fanHandle is the handle of fan's user, who has a public status
	// (phase (e) subscribes to it).
	fanHandle string
}

// devicesPerUser spreads the devices over users as people have them (a
// laptop and a desktop), not thousands under one account.
const devicesPerUser = 2

// prepareFleet registers the users and devices in the database file
// before the service starts: through the store, as `lastseend user add`
// and `device add` would, without spending thousands of processes. The
// setup writes at synchronous NORMAL (it is not what is measured); the
// service opens the file with its own setting. users is at least enough
// for devices at devicesPerUser each.
func prepareFleet(ctx context.Context, db string, devices, users int) (*fleet, error) {
	users = max(users, (devices+devicesPerUser-1)/devicesPerUser, 1)
	s, err := sqlite.OpenWith(db, presence.Options{}, sqlite.Config{Synchronous: sqlitedb.SyncNormal})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", db, err)
	}
	f := &fleet{}
	ids := make([]int64, users)
	for i := range users {
		u, tok, err := s.CreateUser(ctx, fmt.Sprintf("load%05d", i), fmt.Sprintf("Load %d", i))
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("create user %d: %w", i, err)
		}
		ids[i] = u.ID
		f.users = append(f.users, account{handle: u.Handle, token: tok})
	}
	// The fan device has a user of its own, with a public status: the
	// user's status over all their devices is what phase (e) sees change.
	fanUser, _, err := s.CreateUser(ctx, "load-public", "Load public")
	if err == nil {
		public := true
		fanUser, err = s.UpdateUser(ctx, fanUser.ID, presence.UserUpdate{Public: &public})
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("the fan device's user: %w", err)
	}
	f.fanHandle = fanUser.Handle
	for i := range devices + 1 {
		owner := ids[i%users]
		if i == devices {
			owner = fanUser.ID
		}
		d, tok, err := s.CreateDevice(ctx, owner, fmt.Sprintf("load-%05d", i))
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("create device %d: %w", i, err)
		}
		dev := &device{id: d.ID, token: tok}
		if i == devices {
			f.fan = dev
		} else {
			f.devices = append(f.devices, dev)
		}
	}
	if err := s.Close(); err != nil {
		return nil, fmt.Errorf("close %s: %w", db, err)
	}
	return f, nil
}

// The in-process service below is phase (p)'s: it compares two stores
// behind the same handler, so both run in this process alike.

// server is an HTTP server on a loopback port in this process.
type server struct {
	srv  *http.Server
	ln   net.Listener
	addr string // host:port
	url  string // http://host:port
	done chan struct{}
}

func startServer(h http.Handler, onShutdown func()) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	s := &server{
		srv:  newHTTPServer(h),
		ln:   ln,
		addr: ln.Addr().String(),
		url:  "http://" + ln.Addr().String(),
		done: make(chan struct{}),
	}
	if onShutdown != nil {
		s.srv.RegisterOnShutdown(onShutdown)
	}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

func (s *server) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	<-s.done
	return err
}

// service is lastseend's handler and SQLite store in this process.
type service struct {
	store   *sqlite.Store
	handler *httpapi.Server
	http    *server

	closeOnce sync.Once
	closeErr  error
}

func startService(dir string, c Config) (*service, error) {
	hub := httpapi.NewHub(1024, c.Logger)
	metrics := httpapi.NewMetrics()
	store, err := sqlite.OpenWith(filepath.Join(dir, "load.db"), presence.Options{
		Notify:  hub.Publish,
		Observe: metrics.ObserveBatch,
	}, sqlite.Config{Synchronous: c.Sync})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	h, srv, err := serveStore(store, hub, metrics, c)
	if err != nil {
		return nil, err
	}
	return &service{store: store, handler: h, http: srv}, nil
}

// serveStore puts lastseend's real handler in front of an opened store on
// loopback, with the run's rate limits; it closes the store on failure.
func serveStore(store presence.Store, hub *httpapi.Hub, metrics *httpapi.Metrics, c Config) (*httpapi.Server, *server, error) {
	h, err := httpapi.New(httpapi.Config{
		Store:      store,
		Hub:        hub,
		Metrics:    metrics,
		Logger:     c.Logger,
		DeviceRate: c.DeviceRate,
		UserRate:   c.UserRate,
	})
	if err != nil {
		store.Close()
		return nil, nil, fmt.Errorf("handler: %w", err)
	}
	srv, err := startServer(h, h.Close)
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	return h, srv, nil
}

func (s *service) close() error {
	s.closeOnce.Do(func() {
		s.closeErr = errors.Join(s.http.close(), s.store.Close())
	})
	return s.closeErr
}

// newFleet registers n devices under one user through an open store.
func newFleet(ctx context.Context, s presence.Store, n int) (*fleet, error) {
	u, tok, err := s.CreateUser(ctx, "load", "Load test")
	if err != nil {
		return nil, fmt.Errorf("create user: %w", err)
	}
	f := &fleet{users: []account{{handle: u.Handle, token: tok}}}
	for i := range n {
		d, dt, err := s.CreateDevice(ctx, u.ID, fmt.Sprintf("load-%04d", i))
		if err != nil {
			return nil, fmt.Errorf("create device %d: %w", i, err)
		}
		f.devices = append(f.devices, &device{id: d.ID, token: dt})
	}
	return f, nil
}
