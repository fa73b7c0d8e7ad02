// Package presence is Lastseen's domain: presence states and their precedence,
// heartbeats and their validation, the pure rule that merges beats into spans,
// device and user presence with a time-to-live, daily totals as the union of
// device intervals, and the clock-skew shift.
//
// It imports only the standard library. Stores, HTTP handlers and the agent
// hang off it; none of them is imported here.
package presence
