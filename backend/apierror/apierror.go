// Package apierror is the one error contract of every Lastseen HTTP API: the
// service's /api/v1, the agent's local API and the window's bridge to it all
// answer a failure with the same envelope,
//
//	{"error": {"code": "not_found", "message": "no such device"}}
//
// whose code is a presence error code, and with the status this package maps
// that code to. Clients read failures back with Decode.
//
// 503 or 502. Both carry the code "unavailable"; the status tells whose
// failure it is:
//
//   - 503 Service Unavailable: the server that answered cannot serve now
//     (its store is closed, its disk fails, it is shutting down, or, for the
//     window, the agent is not running). Retry later; nothing else helps.
//   - 502 Bad Gateway: the server that answered is fine, but the service it
//     stands in front of is not: the agent's local API could not reach the
//     remote lastseend, or that service answered something that is not a
//     Lastseen answer. The agent's own data (its local history, its
//     controls) still answers.
//
// A gateway marks such failures with Upstream; nothing else answers 502.
// docs/LOCALAPI.md states the same contract for the window's side.
package apierror

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/lastseen/lastseen/backend/presence"
)

// Body is the body of every failed request.
type Body struct {
	Error Detail `json:"error"`
}

// Detail is a failure's code (a presence error code) and its message, which
// is safe to show to the caller.
type Detail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// StatusOf is the one mapping from domain error codes to HTTP statuses. An
// unknown code is internal: 500.
func StatusOf(code string) int {
	switch code {
	case presence.EINVALID:
		return http.StatusBadRequest
	case presence.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case presence.EFORBIDDEN:
		return http.StatusForbidden
	case presence.ENOTFOUND:
		return http.StatusNotFound
	case presence.ECONFLICT:
		return http.StatusConflict
	case presence.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case presence.ERATELIMIT:
		return http.StatusTooManyRequests
	case presence.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// CodeOf is StatusOf's inverse, for a client reading a failure whose body is
// not an envelope (a proxy's error page, say). 502 and 504 read as
// unavailable too: retrying later is all a client can do about them.
func CodeOf(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusMethodNotAllowed:
		return presence.EINVALID
	case http.StatusUnauthorized:
		return presence.EUNAUTHORIZED
	case http.StatusForbidden:
		return presence.EFORBIDDEN
	case http.StatusNotFound:
		return presence.ENOTFOUND
	case http.StatusConflict:
		return presence.ECONFLICT
	case http.StatusRequestEntityTooLarge:
		return presence.ETOOLARGE
	case http.StatusTooManyRequests:
		return presence.ERATELIMIT
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		return presence.EUNAVAILABLE
	}
	return presence.EINTERNAL
}

// statusError answers with its own status instead of its code's.
type statusError struct {
	status int
	err    error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

// WithStatus makes err answer with status while keeping its code and
// message, for the few answers the code table cannot express (405 carries
// "invalid"). A nil err stays nil.
func WithStatus(status int, err error) error {
	if err == nil {
		return nil
	}
	return &statusError{status: status, err: err}
}

// Upstream marks err as coming from the service a gateway forwards to: if it
// says that service is unavailable, it answers 502, not 503 (see the package
// doc). Any other err is returned as it is, so a gateway may wrap everything
// its upstream call returns.
func Upstream(err error) error {
	if presence.ErrorCode(err) != presence.EUNAVAILABLE {
		return err
	}
	return WithStatus(http.StatusBadGateway, err)
}

// From is what err answers with: its status and envelope. An error without a
// domain code is internal, answered 500 "internal error": its text never
// leaves the process, and the caller logs it (internal reports which).
func From(err error) (status int, d Detail, internal bool) {
	code := presence.ErrorCode(err)
	status = StatusOf(code)
	if status == http.StatusInternalServerError {
		return status, Detail{Code: presence.EINTERNAL, Message: "internal error"}, true
	}
	var se *statusError
	if errors.As(err, &se) {
		status = se.status
	}
	return status, Detail{Code: code, Message: presence.ErrorMessage(err)}, false
}

// Encode is the envelope of d as JSON, ending in a newline.
func Encode(d Detail) []byte {
	b, err := json.Marshal(Body{Error: d})
	if err != nil {
		// Two strings always marshal.
		return []byte(`{"error":{"code":"internal","message":"internal error"}}` + "\n")
	}
	return append(b, '\n')
}

// Write answers with status and the envelope of d. Failures are private to
// the request that met them, so nothing caches them unless the caller said
// otherwise first.
func Write(w http.ResponseWriter, status int, d Detail) {
	body := Encode(d)
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// Decode reads a failed answer: the envelope's code and message when the
// body is one, else the code CodeOf gives the status and a message made of
// the status text and the start of the body.
func Decode(status int, body []byte) Detail {
	var b Body
	if json.Unmarshal(body, &b) == nil && b.Error.Code != "" {
		return b.Error
	}
	msg := http.StatusText(status)
	if msg == "" {
		msg = "HTTP " + strconv.Itoa(status)
	}
	if snippet := strings.TrimSpace(string(body)); snippet != "" {
		if len(snippet) > 200 {
			snippet = strings.ToValidUTF8(snippet[:200], "") + "…"
		}
		msg += ": " + snippet
	}
	return Detail{Code: CodeOf(status), Message: msg}
}
