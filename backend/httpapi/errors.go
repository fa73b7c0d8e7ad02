package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// Log attribute keys, one spelling everywhere.
const (
	attrErr     = "err"
	attrMethod  = "method"
	attrPath    = "path"
	attrUser    = "user_id"
	attrDropped = "dropped"
)

// statusOf is the one mapping from domain error codes to HTTP statuses.
func statusOf(code string) int {
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

// codeOf is statusOf's inverse, for the client reading a failure whose body
// is not ours (a proxy's 502 page, say).
func codeOf(status int) string {
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

// limitedError is a rate-limit refusal that knows when to come back.
type limitedError struct {
	err   *presence.Error
	after time.Duration
}

func (e *limitedError) Error() string             { return e.err.Error() }
func (e *limitedError) Unwrap() error             { return e.err }
func (e *limitedError) RetryAfter() time.Duration { return e.after }

// retryAfterSeconds renders a Retry-After value: whole seconds, rounded up,
// at least 1 (a client told "0" would hammer straight back).
func retryAfterSeconds(d time.Duration) string {
	s := int64(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}

// fail answers a request with err. Domain errors keep their message;
// anything else is logged here, once, and the caller only reads
// "internal error".
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := presence.ErrorCode(err)
	msg := presence.ErrorMessage(err)
	status := statusOf(code)
	switch {
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away mid-request: nobody reads the answer and
		// nothing is wrong with the service.
		s.log.Debug("request cancelled by client", attrMethod, r.Method, attrPath, r.URL.Path)
		code, msg, status = presence.EUNAVAILABLE, "request cancelled", http.StatusServiceUnavailable
	case status == http.StatusInternalServerError:
		s.log.Error("request failed", attrMethod, r.Method, attrPath, r.URL.Path, attrErr, err)
		code, msg = presence.EINTERNAL, "internal error"
	}
	var se *statusError
	if errors.As(err, &se) {
		status = se.status
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="lastseen"`)
	}
	var ra presence.RetryAfterer
	if errors.As(err, &ra) && status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", retryAfterSeconds(ra.RetryAfter()))
	}
	writeJSON(w, status, ErrorBody{Error: ErrorDetail{Code: code, Message: msg}})
}

// writeJSON sends v with status. API answers are private to the token that
// asked, so nothing caches them unless a handler says otherwise first.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
	}
	body, err := json.Marshal(v)
	if err != nil {
		// Only our own wire types get here; they always marshal.
		body = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
		status = http.StatusInternalServerError
	}
	body = append(body, '\n')
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
