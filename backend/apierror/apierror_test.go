package apierror

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/lastseen/lastseen/backend/presence"
)

func TestStatusOf(t *testing.T) {
	for _, tc := range []struct {
		code   string
		status int
	}{
		{presence.EINVALID, 400},
		{presence.EUNAUTHORIZED, 401},
		{presence.EFORBIDDEN, 403},
		{presence.ENOTFOUND, 404},
		{presence.ECONFLICT, 409},
		{presence.ETOOLARGE, 413},
		{presence.ERATELIMIT, 429},
		{presence.EUNAVAILABLE, 503}, // never 502: that one is Upstream's
		{presence.EINTERNAL, 500},
		{"", 500},
		{"made_up", 500},
	} {
		if got := StatusOf(tc.code); got != tc.status {
			t.Errorf("StatusOf(%q) = %d, want %d", tc.code, got, tc.status)
		}
		// Every status a code maps to reads back as that code.
		if tc.code != "" && tc.code != "made_up" {
			if got := CodeOf(tc.status); got != tc.code {
				t.Errorf("CodeOf(%d) = %q, want %q", tc.status, got, tc.code)
			}
		}
	}
	for status, code := range map[int]string{405: presence.EINVALID, 502: presence.EUNAVAILABLE, 504: presence.EUNAVAILABLE, 418: presence.EINTERNAL} {
		if got := CodeOf(status); got != code {
			t.Errorf("CodeOf(%d) = %q, want %q", status, got, code)
		}
	}
}

func TestFrom(t *testing.T) {
	unavailable := presence.Errorf(presence.EUNAVAILABLE, "the store is closed")
	for _, tc := range []struct {
		name     string
		err      error
		status   int
		code     string
		message  string
		internal bool
	}{
		{"domain error", presence.Errorf(presence.ENOTFOUND, "no such device"), 404, presence.ENOTFOUND, "no such device", false},
		{"wrapped domain error", fmt.Errorf("load: %w", presence.Errorf(presence.ECONFLICT, "taken")), 409, presence.ECONFLICT, "taken", false},
		{"this server unavailable", unavailable, 503, presence.EUNAVAILABLE, "the store is closed", false},
		{"upstream unavailable", Upstream(presence.Errorf(presence.EUNAVAILABLE, "cannot reach x")), 502, presence.EUNAVAILABLE, "cannot reach x", false},
		{"upstream unavailable, wrapped", fmt.Errorf("test: %w", Upstream(unavailable)), 502, presence.EUNAVAILABLE, "the store is closed", false},
		{"upstream refusal keeps its status", Upstream(presence.Errorf(presence.EINVALID, "bad token")), 400, presence.EINVALID, "bad token", false},
		{"status override", WithStatus(405, presence.Errorf(presence.EINVALID, "GET only")), 405, presence.EINVALID, "GET only", false},
		{"internal", errors.New("disk on fire at /var/lib"), 500, presence.EINTERNAL, "internal error", true},
		{"internal stays internal under an override", WithStatus(405, errors.New("secret detail")), 500, presence.EINTERNAL, "internal error", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, d, internal := From(tc.err)
			if status != tc.status || d.Code != tc.code || d.Message != tc.message || internal != tc.internal {
				t.Errorf("From = %d %+v internal=%v, want %d {%s %s} internal=%v", status, d, internal, tc.status, tc.code, tc.message, tc.internal)
			}
		})
	}
	if Upstream(nil) != nil || WithStatus(400, nil) != nil {
		t.Error("a nil error must stay nil")
	}
}

func TestWriteAndDecode(t *testing.T) {
	w := httptest.NewRecorder()
	Write(w, 404, Detail{Code: presence.ENOTFOUND, Message: `no "x"`})
	if w.Code != 404 {
		t.Errorf("status %d", w.Code)
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("content type %q", ct)
	}
	if w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("cache control %q", w.Header().Get("Cache-Control"))
	}
	if got, want := w.Body.String(), `{"error":{"code":"not_found","message":"no \"x\""}}`+"\n"; got != want {
		t.Errorf("body %q, want %q", got, want)
	}
	if d := Decode(404, w.Body.Bytes()); d != (Detail{Code: presence.ENOTFOUND, Message: `no "x"`}) {
		t.Errorf("Decode of our own answer: %+v", d)
	}

	// A caller's own cache policy stands.
	w = httptest.NewRecorder()
	w.Header().Set("Cache-Control", "private, max-age=5")
	Write(w, 503, Detail{Code: presence.EUNAVAILABLE, Message: "later"})
	if w.Header().Get("Cache-Control") != "private, max-age=5" {
		t.Errorf("cache control overwritten: %q", w.Header().Get("Cache-Control"))
	}

	// Not an envelope: a proxy's page, an empty body, a JSON that is not ours.
	for _, tc := range []struct {
		status int
		body   string
		want   Detail
	}{
		{502, "<html>Bad Gateway</html>", Detail{presence.EUNAVAILABLE, "Bad Gateway: <html>Bad Gateway</html>"}},
		{500, "", Detail{presence.EINTERNAL, "Internal Server Error"}},
		{429, `{"error":"slow down"}`, Detail{presence.ERATELIMIT, `Too Many Requests: {"error":"slow down"}`}},
		{599, "", Detail{presence.EINTERNAL, "HTTP 599"}},
	} {
		if got := Decode(tc.status, []byte(tc.body)); got != tc.want {
			t.Errorf("Decode(%d, %q) = %+v, want %+v", tc.status, tc.body, got, tc.want)
		}
	}
	long := strings.Repeat("é", 300)
	d := Decode(502, []byte(long))
	if len(d.Message) > 260 || !utf8.ValidString(d.Message) || !strings.HasSuffix(d.Message, "…") {
		t.Errorf("long body: %d bytes, valid %v: %q", len(d.Message), utf8.ValidString(d.Message), d.Message)
	}
}
