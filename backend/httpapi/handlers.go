package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lastseen/lastseen/backend/presence"
)

// Query limits.
const (
	defaultSessionsSpan = 24 * time.Hour
	maxSessionsSpan     = 366 * 24 * time.Hour
	maxFactLen          = 128
)

// postHeartbeats is POST /api/v1/heartbeats.
//
// Invalid beats are rejected one by one (with their seq and reason) while
// the rest are applied. A batch whose every beat was rejected still answers
// 200 with accepted 0: the batch was read and judged, and the agent must
// drop those beats rather than resend them. A batch over MaxBatchBeats is
// 413, like one over MaxBatchBytes: both are size limits, and the agent's
// answer to either is to split.
func (s *Server) postHeartbeats(w http.ResponseWriter, r *http.Request, c caller) error {
	var b presence.Batch
	if err := decodeBody(w, r, presence.MaxBatchBytes, &b); err != nil {
		return err
	}
	switch {
	case len(b.Beats) == 0:
		return presence.Errorf(presence.EINVALID, "beats must not be empty")
	case len(b.Beats) > presence.MaxBatchBeats:
		return presence.Errorf(presence.ETOOLARGE, "a batch holds at most %d beats, got %d: split it", presence.MaxBatchBeats, len(b.Beats))
	}
	facts, factsRejected := cleanFacts(b.Facts)
	valid, rejected := presence.PrepareBatch(b.SentAt, b.Beats, s.now(), s.cfg.Limits)
	res := presence.BatchResult{Rejected: rejected}
	if res.Rejected == nil {
		res.Rejected = []presence.Rejection{}
	}
	if len(valid) > 0 || facts != nil {
		ir, err := s.store.Ingest(r.Context(), c.DeviceID, valid, facts)
		if err != nil {
			return fmt.Errorf("ingest %d beats of device %d: %w", len(valid), c.DeviceID, err)
		}
		res.Accepted, res.Duplicates, res.Stale, res.LastSeq, res.Device = ir.Accepted, ir.Duplicates, ir.Stale, ir.LastSeq, ir.Device.View()
		res.Rejected = append(res.Rejected, ir.Rejected...)
	} else {
		ds, err := s.store.DeviceStatus(r.Context(), c.DeviceID)
		if err != nil {
			return fmt.Errorf("device %d status: %w", c.DeviceID, err)
		}
		res.LastSeq, res.Device = ds.Presence.LastSeq, ds.View()
	}
	s.metrics.countBeats(res.Accepted, res.Duplicates, len(res.Rejected))
	res.FactsRejected = factsRejected
	writeJSON(w, http.StatusOK, res)
	return nil
}

// cleanFacts drops the facts the service will not store: longer than
// maxFactLen bytes, or not UTF-8. A bad fact is dropped alone, never the
// batch (its beats matter more than a hostname), and never stored cut
// short, which could read as another machine's name; the device keeps
// what it had. The answer lists each one dropped. Nil when nothing is
// left to store.
func cleanFacts(f *presence.Facts) (*presence.Facts, []presence.FactRejection) {
	if f == nil {
		return nil, nil
	}
	out := *f
	var rejected []presence.FactRejection
	for _, fact := range []struct {
		name string
		v    *string
	}{{"hostname", &out.Hostname}, {"os", &out.OS}, {"platform", &out.Platform}} {
		switch {
		case !utf8.ValidString(*fact.v):
			rejected = append(rejected, presence.FactRejection{Fact: fact.name, Error: "not valid UTF-8; dropped"})
		case len(*fact.v) > maxFactLen:
			rejected = append(rejected, presence.FactRejection{Fact: fact.name, Error: fmt.Sprintf("longer than %d bytes (%d); dropped", maxFactLen, len(*fact.v))})
		default:
			continue
		}
		*fact.v = ""
	}
	if out == (presence.Facts{}) {
		return nil, rejected
	}
	return &out, rejected
}

// getMe is GET /api/v1/me.
func (s *Server) getMe(w http.ResponseWriter, r *http.Request, c caller) error {
	u, err := s.store.UserByID(r.Context(), c.UserID)
	if err != nil {
		return fmt.Errorf("user %d: %w", c.UserID, err)
	}
	me, err := s.me(r.Context(), u)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, me)
	return nil
}

// patchMe is PATCH /api/v1/me: name, time zone, public opt-in.
func (s *Server) patchMe(w http.ResponseWriter, r *http.Request, c caller) error {
	var req MeUpdate
	if err := decodeBody(w, r, maxBodyBytes, &req); err != nil {
		return err
	}
	// Checked here too, so a bad field is the caller's 400 before any store work.
	upd, err := presence.UserUpdate{Name: req.Name, TZ: req.TZ, Public: req.Public, PublicDetail: req.PublicDetail}.Normalize()
	if err != nil {
		return err
	}
	u, err := s.store.UpdateUser(r.Context(), c.UserID, upd)
	if err != nil {
		return fmt.Errorf("update user %d: %w", c.UserID, err)
	}
	s.publicChanged(u)
	me, err := s.me(r.Context(), u)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, me)
	return nil
}

// getPresence is GET /api/v1/presence: every user on the server.
func (s *Server) getPresence(w http.ResponseWriter, r *http.Request, _ caller) error {
	users, err := s.store.Presence(r.Context())
	if err != nil {
		return fmt.Errorf("presence: %w", err)
	}
	out := PresenceResponse{Users: make([]UserPresence, 0, len(users))}
	for _, u := range users {
		out.Users = append(out.Users, UserPresence{
			Handle:   u.User.Handle,
			Name:     u.User.Name,
			Status:   u.Status,
			LastSeen: timePtr(u.LastSeen),
			Devices:  deviceViews(u.Devices),
		})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func deviceViews(ds []presence.DeviceStatus) []presence.DeviceView {
	out := make([]presence.DeviceView, 0, len(ds))
	for _, d := range ds {
		out = append(out, d.View())
	}
	return out
}

// getSessions is GET /api/v1/sessions?from=&to=&device=&state=.
func (s *Server) getSessions(w http.ResponseWriter, r *http.Request, c caller) error {
	q := r.URL.Query()
	now := s.now()
	// Without to, the range is open-ended: a span that starts this very
	// second (or a beat a little ahead of the service's clock) is included.
	to, err := queryTime(q.Get("to"), "to", time.Time{})
	if err != nil {
		return err
	}
	end := to
	if end.IsZero() {
		end = now
	}
	from, err := queryTime(q.Get("from"), "from", end.Add(-defaultSessionsSpan))
	if err != nil {
		return err
	}
	switch {
	case !to.IsZero() && !from.Before(to):
		return presence.Errorf(presence.EINVALID, "from must be before to")
	case end.Sub(from) > maxSessionsSpan:
		return presence.Errorf(presence.EINVALID, "from and to may be at most 366 days apart")
	}
	states, err := queryStates(q["state"])
	if err != nil {
		return err
	}
	sq := presence.SpanQuery{UserID: c.UserID, States: states, From: from, To: to}
	if v := q.Get("device"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			return presence.Errorf(presence.EINVALID, "device must be a device id (a positive integer), not %q", v)
		}
		if err := s.ownDevice(r.Context(), c.UserID, id); err != nil {
			return err
		}
		sq.DeviceID = id
	}
	spans, err := s.store.Spans(r.Context(), sq)
	if err != nil {
		return fmt.Errorf("spans of user %d: %w", c.UserID, err)
	}
	window := s.store.Pulse().Window()
	out := SessionsResponse{Sessions: make([]Session, 0, len(spans))}
	for _, sp := range spans {
		out.Sessions = append(out.Sessions, sessionOf(sp, sp.OpenAt(now, window)))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// ownDevice answers ENOTFOUND for a device that is not the user's, exactly as
// for one that does not exist, so ids of other users' devices leak nothing.
func (s *Server) ownDevice(ctx context.Context, userID, deviceID int64) error {
	ds, err := s.store.DeviceStatus(ctx, deviceID)
	if err == nil && ds.UserID == userID {
		return nil
	}
	if err == nil || presence.ErrorCode(err) == presence.ENOTFOUND {
		return presence.Errorf(presence.ENOTFOUND, "no device %d", deviceID)
	}
	return fmt.Errorf("device %d: %w", deviceID, err)
}

func queryTime(v, name string, def time.Time) (time.Time, error) {
	if v == "" {
		return def, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, presence.Errorf(presence.EINVALID, "%s must be an RFC 3339 time such as 2026-11-25T09:00:00Z, not %q", name, v)
	}
	return t, nil
}

// queryStates reads state= (repeated or comma-separated): default active,
// "all" for every state.
func queryStates(vals []string) ([]presence.State, error) {
	if len(vals) == 0 {
		return []presence.State{presence.Active}, nil
	}
	var out []presence.State
	for _, v := range vals {
		for name := range strings.SplitSeq(v, ",") {
			name = strings.TrimSpace(name)
			if name == "all" {
				return nil, nil
			}
			st, err := presence.ParseState(name)
			if err != nil {
				return nil, presence.Errorf(presence.EINVALID, "state: %s, or all", presence.ErrorMessage(err))
			}
			out = append(out, st)
		}
	}
	return out, nil
}

// getDailyStats is GET /api/v1/stats/daily?from=&to=&tz=.
func (s *Server) getDailyStats(w http.ResponseWriter, r *http.Request, c caller) error {
	rg, err := s.statsRange(r, c)
	if err != nil {
		return err
	}
	spans, err := s.store.Spans(r.Context(), presence.SpanQuery{UserID: c.UserID, From: rg.from, To: rg.end})
	if err != nil {
		return fmt.Errorf("spans of user %d: %w", c.UserID, err)
	}
	out := DailyStatsResponse{Days: presence.DailyTotals(spans, rg.loc, rg.from, rg.to)}
	if out.Days == nil {
		out.Days = []presence.DayTotal{}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// getDevices is GET /api/v1/devices.
func (s *Server) getDevices(w http.ResponseWriter, r *http.Request, c caller) error {
	ds, err := s.store.Devices(r.Context(), c.UserID)
	if err != nil {
		return fmt.Errorf("devices of user %d: %w", c.UserID, err)
	}
	writeJSON(w, http.StatusOK, DevicesResponse{Devices: deviceViews(ds)})
	return nil
}

// postDevice is POST /api/v1/devices: a new device and its token, shown once.
func (s *Server) postDevice(w http.ResponseWriter, r *http.Request, c caller) error {
	var req AddDeviceRequest
	if err := decodeBody(w, r, maxBodyBytes, &req); err != nil {
		return err
	}
	name, err := presence.NormalizeDeviceName(req.Name)
	if err != nil {
		return err
	}
	// Each device brings a token with its own rate limit: the cap keeps
	// one account from minting its way past the per-token limits. Several
	// instances may each let one more through at the same moment; the
	// bound stays.
	s.devicesMu.Lock()
	defer s.devicesMu.Unlock()
	ds, err := s.store.Devices(r.Context(), c.UserID)
	if err != nil {
		return fmt.Errorf("devices of user %d: %w", c.UserID, err)
	}
	if len(ds) >= s.cfg.MaxDevicesPerUser {
		s.metrics.capped.WithLabelValues(capUserDevices).Inc()
		return presence.Errorf(presence.ECONFLICT, "this user has %d devices, the most allowed: revoke one that is no longer used first", len(ds))
	}
	d, token, err := s.store.CreateDevice(r.Context(), c.UserID, name)
	if err != nil {
		return fmt.Errorf("create device for user %d: %w", c.UserID, err)
	}
	w.Header().Set("Location", "/api/v1/devices/"+strconv.FormatInt(d.ID, 10))
	writeJSON(w, http.StatusCreated, NewDevice{ID: d.ID, Name: d.Name, Token: token})
	return nil
}

// deleteDevice is DELETE /api/v1/devices/{id}: revoke a device and its token.
func (s *Server) deleteDevice(w http.ResponseWriter, r *http.Request, c caller) error {
	v := r.PathValue("id")
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return presence.Errorf(presence.EINVALID, "device id must be a positive integer, not %q", v)
	}
	if err := s.store.RevokeDevice(r.Context(), c.UserID, id); err != nil {
		return fmt.Errorf("revoke device %d: %w", id, err)
	}
	// Its token no longer opens anything; what it opened ends too.
	s.endDeviceStreams(id)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// health is GET /healthz: 200 while the store answers, 503 once it is closed
// or the server is shutting down.
func (s *Server) health(w http.ResponseWriter, r *http.Request) error {
	if s.closing() {
		return presence.Errorf(presence.EUNAVAILABLE, "shutting down")
	}
	if _, err := s.store.Presence(r.Context()); err != nil {
		if presence.ErrorCode(err) != presence.EUNAVAILABLE {
			s.log.Error("health check failed", attrErr, err)
		}
		return presence.Errorf(presence.EUNAVAILABLE, "store unavailable")
	}
	writeJSON(w, http.StatusOK, HealthResponse{Status: "ok"})
	return nil
}
