package presence

import "time"

// PublicDetail is how much a user who opted in to a public status shows the
// world. Every public output (the JSON, the badge, the live stream, the
// embeddable widget) goes through PublicViewOf, so each level hides the
// same things everywhere.
type PublicDetail string

// Public detail levels, each showing what the one before it does and more.
const (
	// PublicOnline: online or not, nothing else.
	PublicOnline PublicDetail = "online"
	// PublicState: plus the state (active, idle, away, offline).
	PublicState PublicDetail = "state"
	// PublicLastSeen: plus the time of the last active beat.
	PublicLastSeen PublicDetail = "last_seen"
)

// DefaultPublicDetail is the level of a user who never chose one: what the
// public status showed before levels existed.
const DefaultPublicDetail = PublicLastSeen

// ParsePublicDetail checks a level; "" is the default.
func ParsePublicDetail(s string) (PublicDetail, error) {
	switch d := PublicDetail(s); d {
	case "":
		return DefaultPublicDetail, nil
	case PublicOnline, PublicState, PublicLastSeen:
		return d, nil
	}
	return "", Errorf(EINVALID, "public_detail must be %q, %q or %q", PublicOnline, PublicState, PublicLastSeen)
}

// Or is d, or the default when d is unset.
func (d PublicDetail) Or() PublicDetail {
	if d == "" {
		return DefaultPublicDetail
	}
	return d
}

// PublicView is all the world may know of a user at their level. Fields a
// level hides are nil, and the JSON leaves them out.
type PublicView struct {
	Handle   string     `json:"handle"`
	Online   bool       `json:"online"`
	Status   *State     `json:"status,omitempty"`
	LastSeen *time.Time `json:"last_seen,omitempty"`
}

// PublicViewOf is the public view of a user whose status over all devices
// is status and whose last active beat was lastSeen (zero: never).
func PublicViewOf(handle string, detail PublicDetail, status State, lastSeen time.Time) PublicView {
	v := PublicView{Handle: handle, Online: status.Online()}
	detail = detail.Or()
	if detail == PublicState || detail == PublicLastSeen {
		v.Status = &status
	}
	if detail == PublicLastSeen && !lastSeen.IsZero() {
		t := lastSeen.UTC()
		v.LastSeen = &t
	}
	return v
}
