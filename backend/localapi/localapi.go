// Package localapi is the agent's loopback API for the dashboard window: the
// local controls (mode, settings, service, history, diagnostics) and, under
// /api/v1/, the service reads, which the agent answers from its embedded
// service or forwards to a remote one. Every request carries the per-run
// secret; the device token never leaves the agent.
package localapi

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/lastseen/lastseen/backend/apierror"
	"github.com/lastseen/lastseen/backend/presence"
)

// Controls is what the local API needs of the agent; the agent's host
// implements it over the agent loop, its database and the login item. The
// handler checks a request's shape; the Controls check its values (a mode's
// name, a setting's range against the agent's bounds) and answer EINVALID.
type Controls interface {
	Status(ctx context.Context) (Status, error)
	SetMode(ctx context.Context, m ModeRequest) (Status, error)
	Settings(ctx context.Context) (Settings, error)
	UpdateSettings(ctx context.Context, u SettingsUpdate) (Settings, error)
	TestService(ctx context.Context, s ServiceRequest) (ServiceCheck, error)
	SetService(ctx context.Context, s ServiceRequest) (Settings, error)
	History(ctx context.Context, from, to time.Time) ([]presence.Span, error)
	Diagnostics(ctx context.Context) (Diagnostics, error)
	// StartPairing asks the service at r.URL for pairing codes and waits
	// for the person's decision in the background, replacing any pairing
	// still in progress; on approval the agent switches to that service.
	StartPairing(ctx context.Context, r PairRequest) (PairStatus, error)
	// Pairing is the pairing in progress, or the last one's outcome.
	Pairing(ctx context.Context) (PairStatus, error)
	// CancelPairing stops waiting for a pending pairing and forgets the
	// last one's outcome; an approved pairing stays done.
	CancelPairing(ctx context.Context) (PairStatus, error)
}

// Status is GET /local/v1/status.
type Status struct {
	Mode      string         `json:"mode"`
	ModeUntil *time.Time     `json:"mode_until"`
	State     presence.State `json:"state"`
	// Why is what makes an active machine present: "input", or with
	// count_calls_and_media on, "call" or "media"; "" unless active.
	Why             presence.Why   `json:"why"`
	SentState       presence.State `json:"sent_state"`
	IdleS           int64          `json:"idle_s"`
	ActivityBackend string         `json:"activity_backend"`
	Service         ServiceStatus  `json:"service"`
	Device          DeviceRef      `json:"device"`
	Handle          string         `json:"handle"`
	TodayActiveS    int64          `json:"today_active_s"`
	// LocalStoreError says the agent's database cannot be written (a full
	// or read-only disk): beats are kept in memory and sent from there
	// until it can. "" when all is well.
	LocalStoreError string `json:"local_store_error"`
	// Pairing is GET /local/v1/pair's answer, so a window that shows the
	// status learns of an approval without asking twice.
	Pairing PairStatus `json:"pairing"`
}

// ServiceStatus says which service the agent talks to and how that goes.
type ServiceStatus struct {
	Kind      string     `json:"kind"` // "local" or "remote"
	URL       string     `json:"url"`
	Reachable bool       `json:"reachable"`
	LastSync  *time.Time `json:"last_sync"`
	Error     string     `json:"error"`
}

// DeviceRef names this device on its service.
type DeviceRef struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// ModeRequest is PUT /local/v1/mode.
type ModeRequest struct {
	Mode  string `json:"mode"`
	ForS  int64  `json:"for_s,omitempty"`
	Until string `json:"until,omitempty"` // "tomorrow"
}

// Settings is GET /local/v1/settings.
type Settings struct {
	ServerURL    string `json:"server_url"`
	HasToken     bool   `json:"has_token"`
	IdleAfterS   int64  `json:"idle_after_s"`
	IntervalS    int64  `json:"interval_s"`
	StartAtLogin bool   `json:"start_at_login"`
	// CountCallsAndMedia: a call or a video keeps the user active without
	// input while the screen is unlocked (opt-in).
	CountCallsAndMedia bool `json:"count_calls_and_media"`
	// Notifications: a native notification when a watched person comes
	// online (remote service only; default on).
	Notifications bool `json:"notifications"`
}

// SettingsUpdate is PUT /local/v1/settings; nil fields stay as they are.
// Controls.UpdateSettings checks the ranges.
type SettingsUpdate struct {
	IdleAfterS         *int64 `json:"idle_after_s,omitempty"`
	IntervalS          *int64 `json:"interval_s,omitempty"`
	StartAtLogin       *bool  `json:"start_at_login,omitempty"`
	CountCallsAndMedia *bool  `json:"count_calls_and_media,omitempty"`
	Notifications      *bool  `json:"notifications,omitempty"`
}

// ServiceRequest is POST /local/v1/service/test and PUT /local/v1/service.
// An empty ServerURL (PUT only) switches back to local mode.
type ServiceRequest struct {
	ServerURL string `json:"server_url"`
	Token     string `json:"token"`
}

// ServiceCheck is a successful connection test.
type ServiceCheck struct {
	OK     bool   `json:"ok"`
	Handle string `json:"handle"`
	Device string `json:"device"`
}

// PairRequest is POST /local/v1/pair: the service to pair this computer with.
type PairRequest struct {
	URL string `json:"url"`
	// Name is what the service calls this computer; its host name when empty.
	Name string `json:"name,omitempty"`
}

// Pairing states, as PairStatus.State names them.
const (
	PairNone     = "none"     // no pairing started since the agent started, or cancelled
	PairPending  = "pending"  // waiting for the person to approve the code
	PairApproved = "approved" // approved: the agent uses the service now
	PairDenied   = "denied"
	PairExpired  = "expired" // the code expired, or the service no longer knows it
	PairFailed   = "failed"  // the service could not be asked; Error says why
)

// PairStatus is GET /local/v1/pair, and the answer to POST and DELETE.
type PairStatus struct {
	State string `json:"state"`
	// URL is the service being paired with.
	URL string `json:"url,omitempty"`
	// UserCode is the code the person checks in the browser: BDFG-HJKL.
	// The window opens VerificationURIComplete, which carries it.
	UserCode                string     `json:"user_code,omitempty"`
	VerificationURI         string     `json:"verification_uri,omitempty"`
	VerificationURIComplete string     `json:"verification_uri_complete,omitempty"`
	ExpiresAt               *time.Time `json:"expires_at,omitempty"`
	// Handle and Device say who approved it and what this computer is
	// called there (approved only).
	Handle string     `json:"handle,omitempty"`
	Device *DeviceRef `json:"device,omitempty"`
	// Error says why a pairing ended without approval.
	Error string `json:"error,omitempty"`
}

// Diagnostics is GET /local/v1/diagnostics.
type Diagnostics struct {
	ActivityBackend string `json:"activity_backend"`
	// IdleOrder names the idle backends the agent tries, in order; those
	// before ActivityBackend were unavailable.
	IdleOrder     []string         `json:"idle_order,omitempty"`
	LockBackend   string           `json:"lock_backend"`
	SignalBackend string           `json:"signal_backend"` // calls and media; "none" without
	OutboxDepth   int64            `json:"outbox_depth"`
	OutboxDropped int64            `json:"outbox_dropped"`
	Quarantine    []QuarantineItem `json:"quarantine"`
	LastSync      *time.Time       `json:"last_sync"`
	LastError     string           `json:"last_error"`
	CPUPercent    float64          `json:"cpu_percent"`
	RSSBytes      uint64           `json:"rss_bytes"`
	Version       string           `json:"version"`
	DataDir       string           `json:"data_dir"`
	UptimeS       int64            `json:"uptime_s"`
	// LocalStoreError is Status.LocalStoreError and since when; meanwhile
	// memory holds HeldInMemory queued beats (counted in OutboxDepth), and
	// its bound dropped HeldDropped.
	LocalStoreError      string     `json:"local_store_error"`
	LocalStoreErrorSince *time.Time `json:"local_store_error_since"`
	HeldInMemory         int        `json:"held_in_memory"`
	HeldDropped          int64      `json:"held_dropped"`
}

// QuarantineItem is a beat the service refused, kept with its reason.
type QuarantineItem struct {
	Seq           int64          `json:"seq"`
	At            time.Time      `json:"at"`
	State         presence.State `json:"state"`
	Error         string         `json:"error"`
	QuarantinedAt time.Time      `json:"quarantined_at"`
}

// SessionItem is one span as /api/v1/sessions shows it.
type SessionItem struct {
	ID        int64          `json:"id"`
	DeviceID  int64          `json:"device_id"`
	State     presence.State `json:"state"`
	Why       presence.Why   `json:"why,omitempty"` // active: input, call or media; away: locked
	Start     time.Time      `json:"start"`
	End       time.Time      `json:"end"`
	DurationS int64          `json:"duration_s"`
	Open      bool           `json:"open"`
	// EndReason is why nothing followed the span, as the service's
	// sessions say it (presence.Span.Ended).
	EndReason presence.EndReason `json:"end_reason,omitempty"`
}

// Config wires the handler.
type Config struct {
	// Secret is the per-run secret every request must present as a bearer token.
	Secret   string
	Controls Controls
	// Service answers /api/v1/ (the embedded service acting as the local user,
	// or a proxy to the remote one). The handler strips the caller's
	// Authorization before passing the request on.
	Service http.Handler
	Logger  *slog.Logger
	Now     func() time.Time
	// Window is the pulse window, to tell which history spans are open.
	Window time.Duration
}

// Handler serves the local API.
type Handler struct {
	cfg Config
	mux *http.ServeMux
}

// New returns the local API handler.
func New(cfg Config) (*Handler, error) {
	if len(cfg.Secret) < 16 {
		return nil, errors.New("localapi: secret must be at least 16 characters")
	}
	if cfg.Controls == nil || cfg.Service == nil {
		return nil, errors.New("localapi: Controls and Service are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Window == 0 {
		cfg.Window = presence.DefaultPulse.Window()
	}
	h := &Handler{cfg: cfg, mux: http.NewServeMux()}
	h.routes()
	return h, nil
}

func (h *Handler) routes() {
	m := h.mux
	m.HandleFunc("GET /local/v1/status", h.status)
	m.HandleFunc("PUT /local/v1/mode", h.setMode)
	m.HandleFunc("GET /local/v1/settings", h.settings)
	m.HandleFunc("PUT /local/v1/settings", h.updateSettings)
	m.HandleFunc("POST /local/v1/service/test", h.testService)
	m.HandleFunc("PUT /local/v1/service", h.setService)
	m.HandleFunc("GET /local/v1/history", h.history)
	m.HandleFunc("GET /local/v1/diagnostics", h.diagnostics)
	m.HandleFunc("POST /local/v1/pair", h.startPairing)
	m.HandleFunc("GET /local/v1/pair", h.pairing)
	m.HandleFunc("DELETE /local/v1/pair", h.cancelPairing)
	m.HandleFunc("/local/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, presence.Errorf(presence.ENOTFOUND, "no local API route %s %s", r.Method, r.URL.Path))
	})
	m.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del("Authorization")
		r.Header.Del("Cookie")
		h.cfg.Service.ServeHTTP(w, r)
	})
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, presence.Errorf(presence.ENOTFOUND, "not found"))
	})
}

// ServeHTTP checks the secret, then routes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="lastseen-agent"`)
		h.fail(w, r, presence.Errorf(presence.EUNAUTHORIZED, "the local API needs the agent's secret"))
		return
	}
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(h.cfg.Secret)) == 1
}

func (h *Handler) status(w http.ResponseWriter, r *http.Request) {
	st, err := h.cfg.Controls.Status(r.Context())
	h.reply(w, r, st, err)
}

func (h *Handler) setMode(w http.ResponseWriter, r *http.Request) {
	var m ModeRequest
	if err := decode(w, r, &m); err != nil {
		h.fail(w, r, err)
		return
	}
	st, err := h.cfg.Controls.SetMode(r.Context(), m)
	h.reply(w, r, st, err)
}

func (h *Handler) settings(w http.ResponseWriter, r *http.Request) {
	s, err := h.cfg.Controls.Settings(r.Context())
	h.reply(w, r, s, err)
}

func (h *Handler) updateSettings(w http.ResponseWriter, r *http.Request) {
	var u SettingsUpdate
	if err := decode(w, r, &u); err != nil {
		h.fail(w, r, err)
		return
	}
	s, err := h.cfg.Controls.UpdateSettings(r.Context(), u)
	h.reply(w, r, s, err)
}

func (h *Handler) testService(w http.ResponseWriter, r *http.Request) {
	var s ServiceRequest
	if err := decode(w, r, &s); err != nil {
		h.fail(w, r, err)
		return
	}
	if s.ServerURL == "" {
		h.fail(w, r, presence.Errorf(presence.EINVALID, "server_url is required"))
		return
	}
	// Testing a service is reaching it: its unavailability is the
	// upstream's (502), not the agent's.
	c, err := h.cfg.Controls.TestService(r.Context(), s)
	h.reply(w, r, c, apierror.Upstream(err))
}

func (h *Handler) setService(w http.ResponseWriter, r *http.Request) {
	var s ServiceRequest
	if err := decode(w, r, &s); err != nil {
		h.fail(w, r, err)
		return
	}
	out, err := h.cfg.Controls.SetService(r.Context(), s)
	h.reply(w, r, out, apierror.Upstream(err))
}

func (h *Handler) history(w http.ResponseWriter, r *http.Request) {
	now := h.cfg.Now()
	from, to := now.Add(-24*time.Hour), now
	q := r.URL.Query()
	for name, dst := range map[string]*time.Time{"from": &from, "to": &to} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				h.fail(w, r, presence.Errorf(presence.EINVALID, "%s must be an RFC 3339 time", name))
				return
			}
			*dst = t
		}
	}
	if !to.After(from) {
		h.fail(w, r, presence.Errorf(presence.EINVALID, "to must be after from"))
		return
	}
	spans, err := h.cfg.Controls.History(r.Context(), from, to)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	items := make([]SessionItem, 0, len(spans))
	for _, s := range spans {
		open := s.OpenAt(now, h.cfg.Window)
		items = append(items, SessionItem{
			ID: s.ID, DeviceID: s.DeviceID, State: s.State, Why: s.Why.Of(s.State),
			Start: s.Start.UTC(), End: s.End.UTC(),
			DurationS: int64(s.Duration() / time.Second),
			Open:      open,
			EndReason: s.Ended(open),
		})
	}
	h.reply(w, r, map[string]any{"local": true, "sessions": items}, nil)
}

func (h *Handler) diagnostics(w http.ResponseWriter, r *http.Request) {
	d, err := h.cfg.Controls.Diagnostics(r.Context())
	if d.Quarantine == nil {
		d.Quarantine = []QuarantineItem{}
	}
	h.reply(w, r, d, err)
}

func (h *Handler) startPairing(w http.ResponseWriter, r *http.Request) {
	var p PairRequest
	if err := decode(w, r, &p); err != nil {
		h.fail(w, r, err)
		return
	}
	if strings.TrimSpace(p.URL) == "" {
		h.fail(w, r, presence.Errorf(presence.EINVALID, "url is required"))
		return
	}
	// Starting asks the service for codes: its failure is the upstream's.
	st, err := h.cfg.Controls.StartPairing(r.Context(), p)
	h.reply(w, r, st, apierror.Upstream(err))
}

func (h *Handler) pairing(w http.ResponseWriter, r *http.Request) {
	st, err := h.cfg.Controls.Pairing(r.Context())
	h.reply(w, r, st, err)
}

func (h *Handler) cancelPairing(w http.ResponseWriter, r *http.Request) {
	st, err := h.cfg.Controls.CancelPairing(r.Context())
	h.reply(w, r, st, err)
}

func (h *Handler) reply(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		h.cfg.Logger.Debug("local api: write response", "err", err)
	}
}

// fail writes the error envelope with apierror's status (503 when the agent
// cannot serve, 502 for an unavailable remote service marked with
// apierror.Upstream); internal errors are logged here, once.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, detail, internal := apierror.From(err)
	if internal {
		h.cfg.Logger.Error("local api", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	apierror.Write(w, status, detail)
}

// decode reads one strict JSON object of at most 64 KiB.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var ute *json.UnmarshalTypeError
		switch {
		case errors.As(err, &mbe):
			return presence.Errorf(presence.ETOOLARGE, "body larger than 64 KiB")
		case errors.As(err, &ute):
			return presence.Errorf(presence.EINVALID, "field %q must be %s", ute.Field, ute.Type)
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			return presence.Errorf(presence.EINVALID, "%s", strings.TrimPrefix(err.Error(), "json: "))
		case errors.Is(err, io.EOF):
			return presence.Errorf(presence.EINVALID, "empty body")
		}
		return presence.Errorf(presence.EINVALID, "malformed JSON: %v", err)
	}
	if dec.More() {
		return presence.Errorf(presence.EINVALID, "body must hold one JSON object")
	}
	return nil
}
