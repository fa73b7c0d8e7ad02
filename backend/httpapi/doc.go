// Package httpapi is the presence service's HTTP face: one route table over a
// presence.Store (DESIGN §3), token and cookie authentication, per-token rate
// limits, strict JSON decoding, failures in apierror's envelope and
// statuses, a Server-Sent Events hub that never blocks the store's writer,
// Prometheus metrics, the public status (JSON, live stream, SVG badge and
// embeddable widget, each at the user's level of detail), the built
// dashboard for browsers, and a typed Go client that speaks the same wire
// types as the handlers.
//
// The response types in wire.go are the contract: the handlers encode them
// and the client decodes them, so the two cannot drift apart.
package httpapi
