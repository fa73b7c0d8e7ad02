package presence

import (
	"errors"
	"fmt"
)

// Error codes. Each maps to exactly one HTTP status in httpapi; anything that
// is not an *Error is internal and its text never leaves the process.
const (
	EINVALID      = "invalid"      // 400: malformed or invalid input
	EUNAUTHORIZED = "unauthorized" // 401: no token, or a bad or revoked one
	EFORBIDDEN    = "forbidden"    // 403: authenticated, but not yours
	ENOTFOUND     = "not_found"    // 404
	ECONFLICT     = "conflict"     // 409: e.g. a handle already taken
	ETOOLARGE     = "too_large"    // 413
	ERATELIMIT    = "rate_limited" // 429
	EUNAVAILABLE  = "unavailable"  // 503: shutting down, store closed
	EINTERNAL     = "internal"     // 500
)

// Error is a domain error: a code the API maps to a status and a message that
// is safe to show to the caller.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for
// any other error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the caller-safe message of err: the *Error's message,
// or a generic text for internal errors (whose details are logged, not shown).
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
