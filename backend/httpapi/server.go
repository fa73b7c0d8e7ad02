package httpapi

import (
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/lastseen/lastseen/backend/apierror"
	"github.com/lastseen/lastseen/backend/presence"
)

// Server is the service's http.Handler.
type Server struct {
	cfg     Config
	store   presence.Store
	hub     *Hub
	metrics *Metrics
	log     *slog.Logger
	now     func() time.Time
	mux     *http.ServeMux
	limiter *limiter  // per token
	hijacks *hijackGC // a collection after a storm of streams
	// failedAuth counts failed authentications per client address.
	failedAuth *limiter
	cop        *http.CrossOriginProtection
	frontend   fs.FS
	hasIndex   bool

	closeOnce sync.Once
	done      chan struct{} // closed by Close: event streams end

	// streams counts live event streams, including those that own their
	// connection and so are invisible to http.Server.Shutdown; streamsMu
	// orders counting one in against Close, and guards the counts below.
	streamsMu sync.Mutex
	streams   sync.WaitGroup
	// streamCount, userStreams (by user id) and deviceStreams (those of
	// device tokens) are the open streams, for the caps; watching tells
	// that watchRevocations runs. bg waits for it.
	streamCount   int
	userStreams   map[int64]int
	deviceStreams int
	watching      bool
	bg            sync.WaitGroup
	// devicesMu makes counting a user's devices and adding one a single
	// step on this server, for MaxDevicesPerUser.
	devicesMu sync.Mutex
	// bufs lends streams a scratch buffer per write, so an idle stream
	// holds none.
	bufs sync.Pool
	// ppl is the People endpoints' state (sign-in limits, use records).
	ppl *peopleState
	// public feeds the public status streams (public_stream.go).
	public *publicHub
}

// handlerFunc is a route's handler. A returned error has not been answered
// yet: the route wrapper maps it to a status, once, in fail.
type handlerFunc func(http.ResponseWriter, *http.Request) error

// New returns a Server for cfg (defaults filled, then validated).
func New(cfg Config) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:         cfg,
		store:       cfg.Store,
		hub:         cfg.Hub,
		metrics:     cfg.Metrics,
		log:         cfg.Logger,
		now:         cfg.Now,
		mux:         http.NewServeMux(),
		limiter:     newLimiter(cfg.Now),
		hijacks:     newHijackGC(time.Now), // resource pacing: the real clock
		failedAuth:  newBoundedLimiter(cfg.Now, maxFailedAuthAddrs),
		cop:         http.NewCrossOriginProtection(),
		frontend:    cfg.Frontend,
		done:        make(chan struct{}),
		userStreams: make(map[int64]int),
		ppl:         newPeopleState(cfg.Now),
	}
	s.bufs.New = func() any {
		b := make([]byte, 0, 2048)
		return &b
	}
	if s.frontend == nil {
		s.frontend = emptyFS{}
	}
	if st, err := fs.Stat(s.frontend, "index.html"); err == nil && !st.IsDir() {
		s.hasIndex = true
	}
	s.metrics.devices.attach(cfg.Store)
	s.public = newPublicHub(s)
	s.hub.tee.p.Store(s.public)
	s.routes()
	return s, nil
}

// frontendRoute is the catch-all that serves the dashboard.
const frontendRoute = "GET /"

// unmatchedRoute is the metrics label of requests no route takes.
const unmatchedRoute = "unmatched"

// routes is the one route table (DESIGN §3).
func (s *Server) routes() {
	s.handle("POST /api/v1/heartbeats", s.authed(deviceAccess, s.postHeartbeats))

	s.handle("GET /api/v1/me", s.authed(readAccess, s.getMe))
	// Changing the user (public opt-in included) is the user's alone: a
	// device token, copied to a machine, may read for its user but not speak for them.
	s.handle("PATCH /api/v1/me", s.authed(userAccess, s.patchMe))
	s.handle("GET /api/v1/presence", s.authed(readAccess, s.getPresence))
	s.handle("GET /api/v1/sessions", s.authed(readAccess, s.getSessions))
	s.handle("GET /api/v1/stats/daily", s.authed(readAccess, s.getDailyStats))
	s.handle("GET /api/v1/stats/summary", s.authed(readAccess, s.getStatsSummary))
	s.handle("GET /api/v1/stats/sessions", s.authed(readAccess, s.getStatsSessions))
	s.handle(eventsRoute, s.authed(readAccess, s.events))

	s.handle("GET /api/v1/watches", s.authed(readAccess, s.getWatches))
	s.handle("PUT /api/v1/watches/{handle}", s.authed(personalAccess, s.putWatch))
	s.handle("DELETE /api/v1/watches/{handle}", s.authed(personalAccess, s.deleteWatch))

	s.handle("GET /api/v1/devices", s.authed(readAccess, s.getDevices))
	s.handle("POST /api/v1/devices", s.authed(userAccess, s.postDevice))
	s.handle("DELETE /api/v1/devices/{id}", s.authed(userAccess, s.deleteDevice))

	s.handle("GET /api/v1/export", s.authed(userAccess, s.getExport))
	s.handle("POST /api/v1/import", s.authed(userAccess, s.postImport))

	s.handle("POST /api/v1/login", s.login)
	s.handle("POST /api/v1/logout", s.logout)
	s.peopleRoutes()

	s.handle("GET /api/v1/public/{handle}", s.getPublic)
	s.handle(publicEventsRoute, s.publicEvents)
	s.handle("OPTIONS /api/v1/public/{handle}/events", s.publicPreflight)
	s.handle("GET /badge/{file}", s.getBadge)
	s.handle("GET /embed/{file}", s.getEmbed)
	s.handle("GET /embed.js", s.getEmbed)

	s.handle("GET /healthz", s.health)
	s.handle("GET /metrics", func(w http.ResponseWriter, r *http.Request) error {
		s.metrics.handler().ServeHTTP(w, r)
		return nil
	})

	s.handle(frontendRoute, s.serveFrontend)
}

// handle registers a route with its instrumentation and error handling.
func (s *Server) handle(pattern string, h handlerFunc) {
	stream := pattern == eventsRoute || pattern == publicEventsRoute
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w}
		if err := h(rec, r); err != nil {
			if rec.wrote {
				// Too late for a status; say so once for whoever debugs it.
				s.log.Warn("request failed after the response began", attrMethod, r.Method, attrPath, r.URL.Path, attrErr, err)
			} else {
				s.fail(rec, r, err)
			}
		}
		route := pattern
		if pattern == frontendRoute && strings.HasPrefix(r.URL.Path, "/api/") {
			route = unmatchedRoute // an unknown API path, answered by unmatched
		}
		s.metrics.request(route, rec.status(), time.Since(start), stream)
	})
}

// ServeHTTP answers every request: security headers first, then the route
// table, and our JSON error for anything the table does not know.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	// Inline styles are allowed because the dashboard's transitions insert
	// style rules at run time; scripts, frames and everything else stay
	// same-origin only.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
	if _, pattern := s.mux.Handler(r); pattern == "" {
		start := time.Now()
		rec := &recorder{ResponseWriter: w}
		s.unmatched(rec, r)
		s.metrics.request(unmatchedRoute, rec.status(), time.Since(start), false)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// unmatched answers a request no route takes: 405 with Allow when the path
// exists under another method, else 404, as JSON like every other failure.
func (s *Server) unmatched(w http.ResponseWriter, r *http.Request) {
	api := strings.HasPrefix(r.URL.Path, "/api/")
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		_, p := s.mux.Handler(probe)
		if p == "" || (api && p == frontendRoute) {
			continue
		}
		allow = append(allow, m)
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		// 405 carries "invalid": the one answer the code table cannot express.
		s.fail(w, r, apierror.WithStatus(http.StatusMethodNotAllowed,
			presence.Errorf(presence.EINVALID, "method %s not allowed here (allowed: %s)", r.Method, strings.Join(allow, ", "))))
		return
	}
	s.fail(w, r, presence.Errorf(presence.ENOTFOUND, "no such endpoint: %s %s", r.Method, r.URL.Path))
}

// Close ends every event stream and waits until they have (for graceful
// shutdown: http.Server.Shutdown waits for handlers, and a stream would
// otherwise never return; a stream that took its connection over is not
// even a handler any more). A stream stuck writing to a stalled client ends
// within streamWriteTimeout. Requests for new streams are refused from then
// on. It does not close the store.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.streamsMu.Lock()
		defer s.streamsMu.Unlock()
		close(s.done)
	})
	s.streams.Wait()
	s.bg.Wait()
}

func (s *Server) closing() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// recorder remembers the status for metrics and whether the response began.
type recorder struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote && code >= 200 {
		r.code, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if !r.wrote {
		r.code, r.wrote = http.StatusOK, true
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.NewResponseController reach the real writer's Flush and
// SetWriteDeadline.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *recorder) status() int {
	if !r.wrote {
		return http.StatusOK
	}
	return r.code
}

// emptyFS is a dashboard that was never built.
type emptyFS struct{}

func (emptyFS) Open(name string) (fs.File, error) {
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}
