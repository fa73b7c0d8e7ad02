package app

// The frontend's event channels. This file is the only place that names
// them; the dashboard subscribes with window.runtime.EventsOn (docs/LOCALAPI.md).
const (
	// eventChannel carries each event of the agent's /api/v1/events stream.
	eventChannel = "lastseen:event"
	// connectionChannel carries the stream's ConnState.
	connectionChannel = "lastseen:connection"
)

// ConnState is how the window's link to the agent's event stream stands.
type ConnState string

// The connection states the frontend shows.
const (
	ConnLive         ConnState = "live"         // the stream is open
	ConnReconnecting ConnState = "reconnecting" // it dropped; retrying
	ConnOffline      ConnState = "offline"      // the agent has not answered for a while
)

// StreamEvent is one server-sent event as the frontend receives it: Data is
// the event's JSON text, passed through unparsed.
type StreamEvent struct {
	ID    string `json:"id"`
	Event string `json:"event"`
	Data  string `json:"data"`
}

// frontendEvents are the typed emitters. emit is the Wails runtime's
// EventsEmit bound to the window's context, or a recorder in tests.
type frontendEvents struct {
	emit func(name string, data ...any)
}

// Event forwards a stream event.
func (e frontendEvents) Event(ev StreamEvent) { e.emit(eventChannel, ev) }

// Connection reports a change of the stream's state.
func (e frontendEvents) Connection(s ConnState) { e.emit(connectionChannel, string(s)) }
