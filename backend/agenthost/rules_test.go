package agenthost

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/lastseen/lastseen/backend/presence"
)

func TestHandleFrom(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"ada", "ada"},
		{"Ada.Lovelace", "ada-lovelace"},
		{`CORP\grace`, "grace"},
		{"Grace Hopper", "grace-hopper"},
		{"_-x", "x"},
		{"ü", "me"},
		{"", "me"},
		{strings.Repeat("a", 50), strings.Repeat("a", 35)},
	} {
		if got := handleFrom(tt.in); got != tt.want {
			t.Errorf("handleFrom(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if h := localHandle(); h == "" || len(h) > 39 || strings.ToLower(h) != h {
		t.Fatalf("localHandle() = %q", h)
	}
}

func TestCheckServerURL(t *testing.T) {
	for _, ok := range []string{"https://p.example.com", "http://127.0.0.1:8080/", "https://host/prefix"} {
		if _, err := checkServerURL(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "p.example.com", "ftp://x", "https://user:pw@x", "https://x/?q=1", "javascript:alert(1)"} {
		if _, err := checkServerURL(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestCheckDeviceToken(t *testing.T) {
	for _, tt := range []struct {
		token string
		ok    bool
	}{
		{"ls_dev_abc", true},
		{"ls_usr_abc", false}, // a user token would act as the whole account
		{"ls_abc", false},
		{"", false},
		{"dev_abc", false},
	} {
		err := CheckDeviceToken(tt.token)
		if (err == nil) != tt.ok {
			t.Errorf("CheckDeviceToken(%q) = %v, want ok=%v", tt.token, err, tt.ok)
		}
		if err != nil && presence.ErrorCode(err) != presence.EINVALID {
			t.Errorf("CheckDeviceToken(%q): code %q, want EINVALID", tt.token, presence.ErrorCode(err))
		}
	}
}

// TestTruncateKeepsUTF8: the local device's name comes from the hostname,
// which may be long and need not be UTF-8; cut, it stays text.
func TestTruncateKeepsUTF8(t *testing.T) {
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"desk", 64, "desk"},
		{strings.Repeat("é", 40), 64, strings.Repeat("é", 32)},
		{"a" + strings.Repeat("é", 40), 64, "a" + strings.Repeat("é", 31)},
		{"desk\xff", 64, "desk\uFFFD"},
	} {
		if got := truncate(tt.in, tt.n); got != tt.want || !utf8.ValidString(got) || len(got) > tt.n {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}
