package httpapi

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lastseen/lastseen/backend/presence"
)

// maxErrorMessage bounds what a refusal may quote back: a hostile body must
// not be echoed whole.
const maxErrorMessage = 1024

// FuzzDecodeBatch feeds the heartbeat decode path (strict decode, then the
// batch's own checks) anything at all: it never panics, every refusal is
// the caller's (invalid or too large, never internal) with a short message,
// and whatever it accepts re-encodes.
func FuzzDecodeBatch(f *testing.F) {
	for _, seed := range []string{
		batchJSON(beatJSON(1, T0, "active")),
		batchJSON(beatJSON(1, T0, "active"), beatJSON(2, T0.Add(time.Second), "idle")),
		`{"sent_at":"2026-11-25T09:00:00Z","beats":[{"seq":1,"at":"2026-11-25T09:00:00Z","state":"active","idle_s":0,"since":"2026-11-25T08:59:00Z","why":"input"}],"facts":{"hostname":"h","os":"linux","platform":"x"}}`,
		`{"beats":[{"seq":1,"at":"yesterday"}]}`,
		`{"beats":[{"seq":"1"}]}`,
		`{"beats":[{"sEq":1,"bogus":2}]}`,
		`{"beats":[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}`,
		`{"sent_at":1}{}`,
		`{"beats":[{"seq":1,"at":"2026-11-25T09:00:00Z","state":"active","\u0073eq":2}]}`,
		"\xff\xfe{",
		``,
	} {
		f.Add([]byte(seed))
	}
	now := T0
	f.Fuzz(func(t *testing.T, body []byte) {
		var b presence.Batch
		err := decodeStrict(body, &b)
		if err != nil {
			checkRefusal(t, err, presence.EINVALID, presence.ETOOLARGE)
			return
		}
		if len(b.Beats) > presence.MaxBatchBeats {
			return // the handler answers 413 before looking further
		}
		valid, rejected := presence.PrepareBatch(b.SentAt, b.Beats, now, presence.DefaultLimits)
		if len(valid)+len(rejected) > len(b.Beats) {
			t.Fatalf("%d valid + %d rejected out of %d beats", len(valid), len(rejected), len(b.Beats))
		}
		if facts, _ := cleanFacts(b.Facts); facts != nil {
			for _, v := range []string{facts.Hostname, facts.OS, facts.Platform} {
				if !utf8.ValidString(v) || len(v) > maxFactLen {
					t.Fatalf("fact %q kept", v)
				}
			}
		}
		if _, err := json.Marshal(b); err != nil {
			t.Fatalf("accepted a batch that does not re-encode: %v", err)
		}
	})
}

// checkRefusal fails unless err is a domain error with one of codes and a
// message fit to send back.
func checkRefusal(t *testing.T, err error, codes ...string) {
	t.Helper()
	code := presence.ErrorCode(err)
	ok := false
	for _, c := range codes {
		ok = ok || code == c
	}
	msg := presence.ErrorMessage(err)
	if !ok || msg == "" || len(msg) > maxErrorMessage {
		t.Fatalf("refusal %q (%d bytes): %v; want one of %v with a short message", code, len(msg), err, codes)
	}
}

// FuzzLastEventID: any header or query value either reads as the
// non-negative id it spells or is refused as invalid.
func FuzzLastEventID(f *testing.F) {
	for _, seed := range []struct{ header, query string }{
		{"42", ""}, {"", "7"}, {"-1", ""}, {"9223372036854775808", ""}, {"+5", ""}, {" 5", ""}, {"0x10", ""}, {"", "1e3"},
	} {
		f.Add(seed.header, seed.query)
	}
	f.Fuzz(func(t *testing.T, header, query string) {
		r := httptest.NewRequest("GET", "/api/v1/events?last_event_id="+url.QueryEscape(query), nil)
		if header != "" {
			r.Header["Last-Event-Id"] = []string{header}
		}
		id, replay, err := lastEventID(r)
		v := header
		if v == "" {
			v = query
		}
		switch {
		case err != nil:
			checkRefusal(t, err, presence.EINVALID)
			if replay || id != 0 {
				t.Fatalf("refused %q yet replay=%v id=%d", v, replay, id)
			}
		case v == "":
			if replay || id != 0 {
				t.Fatalf("no id given, yet replay=%v id=%d", replay, id)
			}
		default:
			want, perr := strconv.ParseInt(v, 10, 64)
			if !replay || id < 0 || perr != nil || id != want {
				t.Fatalf("%q read as %d (replay %v)", v, id, replay)
			}
		}
	})
}

// FuzzBadge: whatever the handle and status, the badge is well-formed XML
// whose title says exactly what was drawn.
func FuzzBadge(f *testing.F) {
	for _, seed := range []struct {
		handle, status string
		agoS           int64
	}{
		{"ann", "active", 0}, {"bob", "idle", 300}, {"carol", "offline", 86400 * 3}, {"<script>&amp;", "away", -5},
		{"\x00\x01\r\n", "\xff", 1}, {"émile", "online\"'", 59}, {"]]>", "offline", 1 << 40},
	} {
		f.Add(seed.handle, seed.status, seed.agoS)
	}
	now := T0
	f.Fuzz(func(t *testing.T, handle, status string, agoS int64) {
		ps := PublicStatus{Handle: handle, Status: presence.State(status)}
		if agoS >= 0 {
			seen := now.Add(-time.Duration(min(agoS, 1<<33)) * time.Second)
			ps.LastSeen = &seen
		}
		msg, colour := badgeMessage(ps, now)
		svg := badgeSVG(handle, msg, colour)

		dec := xml.NewDecoder(strings.NewReader(svg))
		var title bytes.Buffer
		inTitle, texts := false, 0
		for {
			tok, err := dec.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("badge for %q/%q is not XML: %v\n%s", handle, status, err, svg)
			}
			switch tok := tok.(type) {
			case xml.StartElement:
				inTitle = tok.Name.Local == "title"
				if tok.Name.Local == "text" {
					texts++
				}
				if tok.Name.Local == "script" || tok.Name.Local == "foreignObject" {
					t.Fatalf("badge for %q holds a <%s>", handle, tok.Name.Local)
				}
			case xml.EndElement:
				inTitle = false
			case xml.CharData:
				if inTitle {
					title.Write(tok)
				}
			}
		}
		if texts != 4 {
			t.Fatalf("badge for %q has %d text elements, want 4:\n%s", handle, texts, svg)
		}
		if want := badgeText(handle) + ": " + badgeText(msg); title.String() != want {
			t.Fatalf("title %q, want %q", title.String(), want)
		}
	})
}
