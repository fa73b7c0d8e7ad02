package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/lastseen/lastseen/backend/apierror"
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

// fail answers a request with err in the envelope and status of apierror.
// Domain errors keep their message; anything else is logged here, once, and
// the caller only reads "internal error".
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, detail, internal := apierror.From(err)
	switch {
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away mid-request: nobody reads the answer and
		// nothing is wrong with the service.
		s.log.Debug("request cancelled by client", attrMethod, r.Method, attrPath, r.URL.Path)
		status, detail = http.StatusServiceUnavailable, apierror.Detail{Code: presence.EUNAVAILABLE, Message: "request cancelled"}
	case internal:
		s.log.Error("request failed", attrMethod, r.Method, attrPath, r.URL.Path, attrErr, err)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="lastseen"`)
	}
	// A refusal that knows when to come back says so: rate limits (429) and
	// a store too busy to take more now (503, e.g. its write queue full).
	var ra presence.RetryAfterer
	if errors.As(err, &ra) && (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable) {
		w.Header().Set("Retry-After", retryAfterSeconds(ra.RetryAfter()))
	}
	apierror.Write(w, status, detail)
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
		apierror.Write(w, http.StatusInternalServerError, apierror.Detail{Code: presence.EINTERNAL, Message: "internal error"})
		return
	}
	body = append(body, '\n')
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
