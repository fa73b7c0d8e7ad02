package presence

import "time"

// Batch is the body of POST /api/v1/heartbeats. It lives in the domain
// because both ends speak it: the service decodes it, the agent's sender
// encodes it.
type Batch struct {
	SentAt time.Time `json:"sent_at"`
	Beats  []Beat    `json:"beats"`
	// Facts, optional, describe the machine; the agent sends them when it
	// first connects and whenever they change.
	Facts *Facts `json:"facts,omitempty"`
}

// BatchResult is the answer to a Batch.
type BatchResult struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
	// Stale counts accepted beats older than the device's latest: their seq
	// is consumed, nothing else changes.
	Stale    int         `json:"stale"`
	Rejected []Rejection `json:"rejected"`
	// FactsRejected lists each machine fact dropped (too long, not UTF-8);
	// the beats and the other facts were taken all the same.
	FactsRejected []FactRejection `json:"facts_rejected,omitempty"`
	LastSeq       int64           `json:"last_seq"`
	Device        DeviceView      `json:"device"`
}

// FactRejection is one machine fact the service did not store, and why.
type FactRejection struct {
	Fact  string `json:"fact"` // "hostname", "os" or "platform"
	Error string `json:"error"`
}

// DeviceView is a device as the API shows it.
type DeviceView struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	OS     string `json:"os"`
	Status State  `json:"status"`
	// Why is what makes an active device present: input, call or media.
	Why      Why        `json:"why,omitempty"`
	LastSeen *time.Time `json:"last_seen"` // null until its first active beat
	// Version is the agent's version as it last reported it ("" before).
	Version string `json:"version,omitempty"`
}

// View renders a device status for the API.
func (d DeviceStatus) View() DeviceView {
	v := DeviceView{ID: d.ID, Name: d.Name, OS: d.OS, Status: d.Status, Why: d.Presence.Why.Of(d.Status), Version: d.Version}
	if t := d.Presence.LastActive; !t.IsZero() {
		t = t.UTC()
		v.LastSeen = &t
	}
	return v
}

// RetryAfterer is implemented by errors that carry a server's Retry-After
// (the Go client's API errors). Callers back off at least that long.
type RetryAfterer interface {
	RetryAfter() time.Duration
}
