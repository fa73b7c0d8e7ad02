package httpapi

import (
	"fmt"
	"html"
	"math"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lastseen/lastseen/backend/apierror"
	"github.com/lastseen/lastseen/backend/presence"
)

// Badge colours, shields.io's palette.
const (
	colourActive  = "#4c1"    // brightgreen
	colourIdle    = "#dfb317" // yellow
	colourAway    = "#fe7d37" // orange
	colourOffline = "#9f9f9f" // lightgrey
	colourLabel   = "#555"
)

// getBadge is GET /badge/{handle}.svg: a shields.io-style badge of a public
// user's status. Anyone else gets a grey "unknown" badge with a 404, so an
// <img> still shows something sensible and monitors still see the failure.
func (s *Server) getBadge(w http.ResponseWriter, r *http.Request) error {
	handle, ok := strings.CutSuffix(r.PathValue("file"), ".svg")
	status := http.StatusOK
	label, msg, colour := "lastseen", "unknown", colourOffline
	if ok {
		v, err := s.publicStatus(r.Context(), handle)
		switch code := presence.ErrorCode(err); {
		case err == nil:
			label = v.Handle
			msg, colour = badgeMessage(publicStatusOf(v), s.now())
		case code == presence.ENOTFOUND:
			status = http.StatusNotFound
		default:
			status = apierror.StatusOf(code)
			if status == http.StatusInternalServerError {
				s.log.Error("badge failed", attrPath, r.URL.Path, attrErr, err)
			}
			msg = "unavailable"
		}
	} else {
		status = http.StatusNotFound
	}
	h := w.Header()
	h.Set("Content-Type", "image/svg+xml; charset=utf-8")
	h.Set("Cache-Control", publicCache)
	// An SVG opened on its own is a document: let it style itself, nothing more.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(badgeSVG(label, msg, colour)))
	return nil
}

// badgeMessage is the right half of the badge: "online", "idle 12 min",
// "away", "last seen 3 h ago" (or "offline" for someone never seen active),
// as much of it as the view holds: without a status (level online) only
// "online" or "offline", without a last seen no times.
func badgeMessage(ps PublicStatus, now time.Time) (string, string) {
	if ps.Status == "" {
		if ps.Online {
			return "online", colourActive
		}
		return "offline", colourOffline
	}
	var since time.Duration
	if ps.LastSeen != nil {
		since = max(now.Sub(*ps.LastSeen), 0)
	}
	switch ps.Status {
	case presence.Active:
		return "online", colourActive
	case presence.Idle:
		if ps.LastSeen == nil {
			return "idle", colourIdle
		}
		return "idle " + shortDuration(since), colourIdle
	case presence.Away:
		return "away", colourAway
	}
	if ps.LastSeen == nil {
		return "offline", colourOffline
	}
	if since < time.Minute {
		return "last seen just now", colourOffline
	}
	return "last seen " + shortDuration(since) + " ago", colourOffline
}

// shortDuration renders a duration as a badge has room for: "1 min",
// "12 min", "3 h", "4 d".
func shortDuration(d time.Duration) string {
	switch {
	case d < time.Hour:
		return fmt.Sprintf("%d min", max(int(d/time.Minute), 1))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h", int(d/time.Hour))
	}
	return fmt.Sprintf("%d d", int(d/(24*time.Hour)))
}

// badgeSVG draws a flat badge. Text is escaped (a handle is user input, and
// an SVG is a document that could carry script); widths come from Verdana
// 11px metrics, as shields.io does, so the text fits without a font probe.
func badgeSVG(label, msg, colour string) string {
	label, msg = badgeText(label), badgeText(msg)
	lw := textWidth(label) + 10
	mw := textWidth(msg) + 10
	total := lw + mw
	l, m := html.EscapeString(label), html.EscapeString(msg)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="20" role="img" aria-label="%s: %s">`, total, l, m)
	fmt.Fprintf(&b, `<title>%s: %s</title>`, l, m)
	b.WriteString(`<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>`)
	fmt.Fprintf(&b, `<clipPath id="r"><rect width="%d" height="20" rx="3" fill="#fff"/></clipPath>`, total)
	fmt.Fprintf(&b, `<g clip-path="url(#r)"><rect width="%d" height="20" fill="%s"/><rect x="%d" width="%d" height="20" fill="%s"/><rect width="%d" height="20" fill="url(#s)"/></g>`,
		lw, colourLabel, lw, mw, colour, total)
	b.WriteString(`<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" text-rendering="geometricPrecision" font-size="11">`)
	for _, t := range []struct {
		x    float64
		text string
	}{{float64(lw) / 2, l}, {float64(lw) + float64(mw)/2, m}} {
		fmt.Fprintf(&b, `<text x="%.1f" y="15" fill="#010101" fill-opacity=".3">%s</text><text x="%.1f" y="14">%s</text>`, t.x, t.text, t.x, t.text)
	}
	b.WriteString(`</g></svg>`)
	return b.String()
}

// textWidth approximates s's width in Verdana 11px, in whole pixels.
func textWidth(s string) int {
	w := 0.0
	for _, r := range s {
		switch {
		case strings.ContainsRune("ijl.,:;'|!", r):
			w += 3.1
		case strings.ContainsRune("frt ()[]-", r):
			w += 4.6
		case strings.ContainsRune("mw", r):
			w += 10.7
		case strings.ContainsRune("MW", r):
			w += 11.9
		case r >= 'A' && r <= 'Z':
			w += 7.6
		case r >= '0' && r <= '9':
			w += 7.0
		case r < 128:
			w += 6.6
		default:
			w += 8.0 // wider than most Latin letters: better roomy than clipped
		}
	}
	return int(math.Ceil(w))
}

// badgeText is s as XML can carry it: invalid UTF-8 and the characters XML
// 1.0 forbids (controls, lone surrogates, U+FFFE/FFFF) become U+FFFD. Line
// breaks and tabs go too: a badge is one line, and XML would read a
// carriage return back as a newline.
func badgeText(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == utf8.RuneError, r < 0x20, r >= 0x7f && r < 0xa0,
			r >= 0xd800 && r < 0xe000, r == 0xfffe, r == 0xffff:
			return utf8.RuneError
		}
		return r
	}, strings.ToValidUTF8(s, string(utf8.RuneError)))
}

// publicStatusOf is a view as a client reads it.
func publicStatusOf(v presence.PublicView) PublicStatus {
	ps := PublicStatus{Handle: v.Handle, Online: v.Online, LastSeen: v.LastSeen}
	if v.Status != nil {
		ps.Status = *v.Status
	}
	return ps
}
