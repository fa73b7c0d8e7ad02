package httpapi

import (
	"encoding/json"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/ssestream"
)

// MeResponse is GET/PATCH /api/v1/me.
type MeResponse struct {
	Handle string `json:"handle"`
	Name   string `json:"name"`
	TZ     string `json:"tz"`
	Public bool   `json:"public"`
	// PublicDetail is how much the public status shows: online, state or
	// last_seen (presence.PublicDetail).
	PublicDetail presence.PublicDetail `json:"public_detail"`
	// Admin may manage people (/api/v1/people, /api/v1/invites).
	Admin bool `json:"admin"`
	// HasPassword tells whether changing the password needs the current one.
	HasPassword bool `json:"has_password"`
}

// MeUpdate is the body of PATCH /api/v1/me; absent (nil) fields stay as they are.
type MeUpdate struct {
	Name   *string `json:"name,omitempty"`
	TZ     *string `json:"tz,omitempty"`
	Public *bool   `json:"public,omitempty"`
	// PublicDetail is online, state or last_seen.
	PublicDetail *presence.PublicDetail `json:"public_detail,omitempty"`
}

// PresenceResponse is GET /api/v1/presence: every user on the server.
type PresenceResponse struct {
	Users []UserPresence `json:"users"`
}

// UserPresence is one user's presence over their devices.
type UserPresence struct {
	Handle   string                `json:"handle"`
	Name     string                `json:"name"`
	Status   presence.State        `json:"status"`
	LastSeen *time.Time            `json:"last_seen"` // null until the first active beat
	Devices  []presence.DeviceView `json:"devices"`
}

// SessionsResponse is GET /api/v1/sessions.
type SessionsResponse struct {
	Sessions []Session `json:"sessions"`
}

// Session is one span as the API shows it.
type Session struct {
	ID        int64          `json:"id"`
	DeviceID  int64          `json:"device_id"`
	State     presence.State `json:"state"`
	Why       presence.Why   `json:"why,omitempty"` // active: input, call or media; away: locked
	Start     time.Time      `json:"start"`
	End       time.Time      `json:"end"`
	DurationS int64          `json:"duration_s"` // whole seconds of End − Start
	Open      bool           `json:"open"`       // still running at the time of the read
	// EndReason is why nothing followed the span (presence.Span.Ended):
	// sleep, shutdown, quit, paused, invisible, or silence (no final beat).
	EndReason presence.EndReason `json:"end_reason,omitempty"`
	// Replayed: some of its beats came late, replayed after a network outage.
	Replayed bool `json:"replayed,omitempty"`
}

// SessionsQuery selects spans for Client.Sessions. Zero fields take the
// service's defaults: the last 24 hours, every device, state active. State
// "all" selects every state.
type SessionsQuery struct {
	From, To time.Time
	DeviceID int64
	State    string
}

// DailyStatsResponse is GET /api/v1/stats/daily.
type DailyStatsResponse struct {
	Days []presence.DayTotal `json:"days"`
}

// DailyStatsQuery selects days for Client.DailyStats. Dates are YYYY-MM-DD;
// empty From/To take the last 7 days, empty TZ the user's time zone.
type DailyStatsQuery struct {
	From, To string
	TZ       string
}

// DevicesResponse is GET /api/v1/devices.
type DevicesResponse struct {
	Devices []presence.DeviceView `json:"devices"`
}

// AddDeviceRequest is the body of POST /api/v1/devices.
type AddDeviceRequest struct {
	Name string `json:"name"`
}

// NewDevice is the answer to POST /api/v1/devices. Token is shown this once.
type NewDevice struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Token string `json:"token"`
}

// LoginRequest is the body of POST /api/v1/login: a handle and password,
// or (still accepted) a user token. Either way the answer's cookie holds a
// new server session, never the token.
type LoginRequest struct {
	Handle   string `json:"handle,omitempty"`
	Password string `json:"password,omitempty"`
	Token    string `json:"token,omitempty"`
}

// PublicStatus is GET /api/v1/public/{handle} and the data of each event
// of its stream, as a client reads it: all the world may know of a user
// who opted in (the server renders presence.PublicView). What the user's
// level hides is absent: Status below level state, LastSeen below level
// last_seen (and until the first active beat).
type PublicStatus struct {
	Handle   string         `json:"handle"`
	Online   bool           `json:"online"`
	Status   presence.State `json:"status,omitempty"`
	LastSeen *time.Time     `json:"last_seen,omitempty"`
}

// HealthResponse is GET /healthz when the service is up.
type HealthResponse struct {
	Status string `json:"status"`
}

// PresenceEvent is the data of an SSE "presence" event.
type PresenceEvent struct {
	Handle     string         `json:"handle"`
	DeviceID   int64          `json:"device_id"`
	DeviceName string         `json:"device_name"`
	Status     presence.State `json:"status"`
	Why        presence.Why   `json:"why,omitempty"` // what makes the device present, when active
	UserStatus presence.State `json:"user_status"`
	LastSeen   *time.Time     `json:"last_seen"`
	At         time.Time      `json:"at"`
}

// SessionEvent is the data of an SSE "session" event: a /sessions item plus
// the owner's handle.
type SessionEvent struct {
	Session
	Handle string `json:"handle"`
}

// SSEEvent is one event read from GET /api/v1/events, with decoders for
// its data.
type SSEEvent ssestream.Event

// Presence decodes the data of a "presence" event.
func (e SSEEvent) Presence() (PresenceEvent, error) {
	var p PresenceEvent
	err := json.Unmarshal([]byte(e.Data), &p)
	return p, err
}

// Session decodes the data of a "session" event.
func (e SSEEvent) Session() (SessionEvent, error) {
	var s SessionEvent
	err := json.Unmarshal([]byte(e.Data), &s)
	return s, err
}

// timePtr renders an optional instant: nil for zero, UTC otherwise.
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func sessionOf(sp presence.Span, open bool) Session {
	return Session{
		ID:        sp.ID,
		DeviceID:  sp.DeviceID,
		State:     sp.State,
		Why:       sp.Why.Of(sp.State),
		Start:     sp.Start.UTC(),
		End:       sp.End.UTC(),
		DurationS: int64(sp.Duration() / time.Second),
		Open:      open,
		EndReason: sp.Ended(open),
		Replayed:  sp.Replayed,
	}
}

func meOf(u presence.User) MeResponse {
	return MeResponse{Handle: u.Handle, Name: u.Name, TZ: u.TZ, Public: u.Public, PublicDetail: u.PublicDetail.Or(), Admin: u.Admin}
}
