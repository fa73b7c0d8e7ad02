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
}

// MeUpdate is the body of PATCH /api/v1/me; absent (nil) fields stay as they are.
type MeUpdate struct {
	Name   *string `json:"name,omitempty"`
	TZ     *string `json:"tz,omitempty"`
	Public *bool   `json:"public,omitempty"`
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
	Why       presence.Why   `json:"why,omitempty"` // active only: input, call or media
	Start     time.Time      `json:"start"`
	End       time.Time      `json:"end"`
	DurationS int64          `json:"duration_s"` // whole seconds of End − Start
	Open      bool           `json:"open"`       // still running at the time of the read
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

// LoginRequest is the body of POST /api/v1/login.
type LoginRequest struct {
	Token string `json:"token"`
}

// PublicStatus is GET /api/v1/public/{handle}: all the world may know of a
// user who opted in.
type PublicStatus struct {
	Handle   string         `json:"handle"`
	Status   presence.State `json:"status"`
	Online   bool           `json:"online"`
	LastSeen *time.Time     `json:"last_seen"`
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
	}
}

func meOf(u presence.User) MeResponse {
	return MeResponse{Handle: u.Handle, Name: u.Name, TZ: u.TZ, Public: u.Public}
}
