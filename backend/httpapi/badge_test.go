package httpapi

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

func TestBadgeMessage(t *testing.T) {
	ago := func(d time.Duration) *time.Time { t := T0.Add(-d); return &t }
	tests := []struct {
		status presence.State
		last   *time.Time
		msg    string
		colour string
	}{
		{presence.Active, ago(0), "online", colourActive},
		{presence.Idle, ago(12 * time.Minute), "idle 12 min", colourIdle},
		{presence.Idle, ago(20 * time.Second), "idle 1 min", colourIdle},
		{presence.Idle, ago(2*time.Hour + 5*time.Minute), "idle 2 h", colourIdle},
		{presence.Idle, nil, "idle", colourIdle},
		{presence.Away, ago(time.Hour), "away", colourAway},
		{presence.Offline, ago(3*time.Hour + 10*time.Minute), "last seen 3 h ago", colourOffline},
		{presence.Offline, ago(5 * time.Minute), "last seen 5 min ago", colourOffline},
		{presence.Offline, ago(30 * time.Second), "last seen just now", colourOffline},
		{presence.Offline, ago(73 * time.Hour), "last seen 3 d ago", colourOffline},
		{presence.Offline, nil, "offline", colourOffline},
	}
	for _, tt := range tests {
		msg, colour := badgeMessage(PublicStatus{Status: tt.status, LastSeen: tt.last}, T0)
		if msg != tt.msg || colour != tt.colour {
			t.Errorf("%s, last seen %v: %q %s, want %q %s", tt.status, tt.last, msg, colour, tt.msg, tt.colour)
		}
	}
}

func TestBadgeSVGIsEscapedAndWellFormed(t *testing.T) {
	svg := badgeSVG(`<script>alert("x")</script>&`, "online", colourActive)
	if strings.Contains(svg, "<script") {
		t.Errorf("unescaped label in %s", svg)
	}
	dec := xml.NewDecoder(strings.NewReader(svg))
	for {
		_, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, svg)
		}
	}
	if textWidth("online") <= textWidth("on") || textWidth("mmm") <= textWidth("iii") {
		t.Errorf("text widths do not grow with the text")
	}
}

func TestBadgeEndpoint(t *testing.T) {
	e := newEnv(t)
	pub := true
	mk := func(handle string, public bool, beats ...presence.Beat) {
		u, _ := e.user(handle)
		_, tok := e.device(u, "desk")
		if public {
			if _, err := e.store.UpdateUser(e.ctx, u.ID, presence.UserUpdate{Public: &pub}); err != nil {
				t.Fatal(err)
			}
		}
		if len(beats) > 0 {
			e.beats(tok, beats...)
		}
	}
	mk("actv", true, beat(1, T0, presence.Active))
	mk("idler", true, beat(1, T0.Add(-12*time.Minute), presence.Active), beat(2, T0, presence.Idle))
	mk("awayer", true, beat(1, T0, presence.Away))
	mk("gone", true, beat(1, T0.Add(-3*time.Hour), presence.Active))
	mk("never", true)
	mk("hidden", false, beat(1, T0, presence.Active))

	tests := []struct {
		path   string
		status int
		text   []string
	}{
		{"/badge/actv.svg", 200, []string{">actv<", ">online<", colourActive}},
		{"/badge/idler.svg", 200, []string{">idle 12 min<", colourIdle}},
		{"/badge/awayer.svg", 200, []string{">away<", colourAway}},
		{"/badge/gone.svg", 200, []string{">last seen 3 h ago<", colourOffline}},
		{"/badge/never.svg", 200, []string{">offline<"}},
		{"/badge/hidden.svg", 404, []string{">lastseen<", ">unknown<"}},
		{"/badge/nobody.svg", 404, []string{">unknown<"}},
		{"/badge/actv", 404, []string{">unknown<"}},
		{"/badge/%3Cscript%3E.svg", 404, []string{">unknown<"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp := e.do(request{method: "GET", path: tt.path})
			if resp.status != tt.status {
				t.Errorf("status %d, want %d", resp.status, tt.status)
			}
			if ct := resp.header.Get("Content-Type"); !strings.HasPrefix(ct, "image/svg+xml") {
				t.Errorf("Content-Type %q", ct)
			}
			if cc := resp.header.Get("Cache-Control"); cc != "public, max-age=15" {
				t.Errorf("Cache-Control %q", cc)
			}
			for _, want := range tt.text {
				if !strings.Contains(string(resp.body), want) {
					t.Errorf("badge lacks %s:\n%s", want, resp.body)
				}
			}
			if strings.Contains(string(resp.body), "<script") {
				t.Errorf("script in the badge")
			}
		})
	}

	t.Run("public JSON", func(t *testing.T) {
		resp := e.do(request{method: "GET", path: "/api/v1/public/idler"})
		if resp.status != 200 || resp.header.Get("Access-Control-Allow-Origin") != "*" || resp.header.Get("Cache-Control") != "public, max-age=15" {
			t.Errorf("status %d headers %v", resp.status, resp.header)
		}
		want := `{"handle":"idler","online":true,"status":"idle","last_seen":"2026-11-25T08:48:00Z"}` + "\n"
		if string(resp.body) != want {
			t.Errorf("body %s, want %s", resp.body, want)
		}
		resp = e.do(request{method: "GET", path: "/api/v1/public/never"})
		if want := `{"handle":"never","online":false,"status":"offline"}` + "\n"; string(resp.body) != want {
			t.Errorf("body %s, want %s", resp.body, want)
		}
	})
}
