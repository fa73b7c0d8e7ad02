// Package importer reads the files people bring their presence history in
// with — Lastseen's own export and an ActivityWatch export — into closed
// spans per source device, checked and bounded: a file is either read
// whole or refused with an error that says what and where, and reading
// never costs more than a small multiple of the file's size.
//
// It also defines Lastseen's export format (Export and its parts), so the
// service writes exactly what it reads back.
package importer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// Format names a kind of file.
type Format string

// The formats Parse reads.
const (
	FormatLastseen      Format = "lastseen"      // GET /api/v1/export
	FormatActivityWatch Format = "activitywatch" // aw-server's GET /api/0/export
)

// File is what Parse found: one Source per device the file holds history of.
type File struct {
	Format  Format
	Sources []Source
}

// Source is one device's history in a file.
type Source struct {
	// Name is the device's name in the file: the device name of a Lastseen
	// export, the host name of an ActivityWatch bucket.
	Name string
	OS   string
	// Spans are closed, oldest first, with no ID and no DeviceID.
	Spans []presence.Span
}

// SpanCount is the number of spans over every source.
func (f File) SpanCount() int {
	n := 0
	for _, s := range f.Sources {
		n += len(s.Spans)
	}
	return n
}

// Bounds on what a file may hold.
const (
	// DefaultMaxSpans bounds the spans (or events) of one file.
	DefaultMaxSpans = 1 << 20
	// MaxFuture is how far past the clock a time may lie before the file
	// is refused: a little clock skew between machines is normal, a time
	// days ahead is a broken file. Spans are cut at the clock either way
	// (the future has not happened).
	MaxFuture = 24 * time.Hour
	// maxDuration bounds one event: longer ones are broken files, and the
	// bound keeps seconds-to-Duration conversions far from overflow.
	maxDuration = 100 * 365 * 24 * time.Hour
)

// Earliest is the earliest time a file may hold: no presence history
// predates it, so an earlier time is a broken file (a zero or epoch
// timestamp, most often, which stores could not tell from "none").
var Earliest = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// Options tune Parse. Zero values take defaults.
type Options struct {
	// Now is the clock spans are cut at (default time.Now).
	Now func() time.Time
	// MaxSpans bounds the spans or events a file may hold (default
	// DefaultMaxSpans); more is ETOOLARGE.
	MaxSpans int
}

func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxSpans <= 0 {
		o.MaxSpans = DefaultMaxSpans
	}
	return o
}

// Parse reads a Lastseen export or an ActivityWatch export, telling them
// apart by shape: an object with "buckets" is ActivityWatch's, one with
// "version" Lastseen's. Every refusal is a presence EINVALID error (or
// ETOOLARGE for too many spans) whose message names the offending field.
func Parse(data []byte, opts Options) (File, error) {
	opts = opts.withDefaults()
	top, err := topLevel(data)
	if err != nil {
		return File{}, err
	}
	p := parser{now: opts.Now().UTC(), maxSpans: opts.MaxSpans}
	switch {
	case top["buckets"] != nil:
		return p.activityWatch(data)
	case top["version"] != nil:
		return p.lastseen(data)
	}
	return File{}, presence.Errorf(presence.EINVALID,
		`not an export this server reads: want a Lastseen export (with "version" and "spans") or an ActivityWatch export (with "buckets")`)
}

// topLevel reads the members of the file's one top-level object, without
// decoding their values.
func topLevel(data []byte) (map[string]json.RawMessage, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, presence.Errorf(presence.EINVALID, "the file is empty: want a JSON export")
	}
	var top map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&top); err != nil {
		return nil, jsonError("", err)
	}
	if top == nil {
		return nil, presence.Errorf(presence.EINVALID, "the file must hold a JSON object, not null")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, presence.Errorf(presence.EINVALID, "the file must hold exactly one JSON value (more follows at byte %d)", dec.InputOffset())
	}
	return top, nil
}

// jsonError turns encoding/json's errors into EINVALID messages; what
// names the value being read ("the file" when empty).
func jsonError(what string, err error) error {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	if what == "" {
		what = "the file"
	}
	switch {
	case errors.As(err, &syntax):
		return presence.Errorf(presence.EINVALID, "%s: malformed JSON at byte %d: %s", what, syntax.Offset, trimJSON(syntax.Error()))
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return presence.Errorf(presence.EINVALID, "%s: malformed JSON: it ends before its value does", what)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return presence.Errorf(presence.EINVALID, "%s must be %s, not %s", what, kindOf(typ), typ.Value)
		}
		return presence.Errorf(presence.EINVALID, "%s: field %q must be %s, not %s", what, typ.Field, kindOf(typ), typ.Value)
	}
	return presence.Errorf(presence.EINVALID, "%s: malformed JSON: %s", what, trimJSON(err.Error()))
}

func kindOf(typ *json.UnmarshalTypeError) string {
	if typ.Type == nil {
		return "something else"
	}
	switch typ.Type.Kind().String() {
	case "string":
		return "a string"
	case "float64", "int64", "int":
		return "a number"
	case "slice":
		return "an array"
	case "map", "struct":
		return "an object"
	}
	return "a " + typ.Type.String()
}

func trimJSON(s string) string {
	if len(s) > 6 && s[:6] == "json: " {
		return s[6:]
	}
	return s
}

// parser carries what every check needs.
type parser struct {
	now      time.Time
	maxSpans int
}

// parseTime reads an RFC 3339 time, or one without a zone (read as UTC,
// as some ActivityWatch versions write them), and checks it lies between
// Earliest and now + MaxFuture.
func (p parser) parseTime(path, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		var err2 error
		if t, err2 = time.ParseInLocation("2006-01-02T15:04:05.999999999", v, time.UTC); err2 != nil {
			return time.Time{}, presence.Errorf(presence.EINVALID, "%s must be an RFC 3339 time such as 2026-11-25T09:00:00Z, not %q", path, clip(v))
		}
	}
	return t.UTC(), p.checkTime(path, t)
}

func (p parser) checkTime(path string, t time.Time) error {
	switch {
	case t.Before(Earliest):
		return presence.Errorf(presence.EINVALID, "%s is %s, before %d: not a time this file can hold", path, t.UTC().Format(time.RFC3339), Earliest.Year())
	case t.After(p.now.Add(MaxFuture)):
		return presence.Errorf(presence.EINVALID, "%s is %s, more than %s after this server's clock (%s)", path,
			t.UTC().Format(time.RFC3339), MaxFuture, p.now.Format(time.RFC3339))
	}
	return nil
}

// clip keeps a quoted value in an error message short.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// cut ends spans at now (the future has not happened) and drops those that
// start after it; zero-length spans are kept only when keepEmpty.
func (p parser) cut(spans []presence.Span, keepEmpty bool) []presence.Span {
	out := spans[:0]
	for _, s := range spans {
		if s.End.After(p.now) {
			s.End = p.now
		}
		if s.Start.After(s.End) || (!keepEmpty && !s.End.After(s.Start)) {
			continue
		}
		s.Closed = true
		out = append(out, s)
	}
	return out
}

func sortSpans(spans []presence.Span) {
	slices.SortStableFunc(spans, func(a, b presence.Span) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return a.End.Compare(b.End)
	})
}

// tooMany is the refusal of a file over MaxSpans.
func (p parser) tooMany(what string, n int) error {
	return presence.Errorf(presence.ETOOLARGE, "the file holds %d %s, more than the %d one import takes: split it", n, what, p.maxSpans)
}

func pathf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
