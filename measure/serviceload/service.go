package serviceload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/sqlite"
)

// server is an HTTP server on a loopback port with the same settings for
// lastseend's handler and the minimal one, so the two differ only in what
// the handler does.
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
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
		},
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

// minimalHandler is the yardstick: it reads the body and answers a 200 JSON
// of the same shape and about the same size as lastseend's answer.
func minimalHandler() http.Handler {
	body := []byte(`{"accepted":1,"duplicates":0,"rejected":[],"last_seq":1,"device":{"id":1,"name":"load","os":"","status":"active","last_seen":"2026-01-01T00:00:00Z"}}` + "\n")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
}

// service is lastseend's real stack on a temporary SQLite file.
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
	store, err := sqlite.Open(filepath.Join(dir, "load.db"), presence.Options{
		Notify:  hub.Publish,
		Observe: metrics.ObserveBatch,
	})
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
// loopback, with the load's rate limits; it closes the store on failure.
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
	devices   []*device
	userToken string // the owner of every device, for SSE
	handle    string
}

// newFleet registers n devices under one user, through the store (the
// service is in this process; going through HTTP would only spend the user
// token's rate limit).
func newFleet(ctx context.Context, s presence.Store, n int) (*fleet, error) {
	u, tok, err := s.CreateUser(ctx, "load", "Load test")
	if err != nil {
		return nil, fmt.Errorf("create user: %w", err)
	}
	f := &fleet{userToken: tok, handle: u.Handle}
	for i := range n {
		d, dt, err := s.CreateDevice(ctx, u.ID, fmt.Sprintf("load-%04d", i))
		if err != nil {
			return nil, fmt.Errorf("create device %d: %w", i, err)
		}
		f.devices = append(f.devices, &device{id: d.ID, token: dt})
	}
	return f, nil
}

// extra adds one more device to the fleet's user.
func (f *fleet) extra(ctx context.Context, s presence.Store, name string) (*device, error) {
	u, err := s.UserByHandle(ctx, f.handle)
	if err != nil {
		return nil, err
	}
	d, tok, err := s.CreateDevice(ctx, u.ID, name)
	if err != nil {
		return nil, fmt.Errorf("create device: %w", err)
	}
	return &device{id: d.ID, token: tok}, nil
}
