package agenthost

import (
	"strings"
	"testing"

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
