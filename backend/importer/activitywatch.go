package importer

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// ActivityWatch export: the JSON of aw-server's GET /api/0/export,
//
//	{"buckets": {"aw-watcher-afk_HOST": {"type": "afkstatus", "hostname": "HOST",
//	  "events": [{"timestamp": "…", "duration": 12.5, "data": {"status": "not-afk"}}]}, …}}
//
// Only the AFK buckets (type "afkstatus", or an id starting with
// "aw-watcher-afk") hold presence; window, editor and web buckets are
// ignored. The mapping:
//
//   - "not-afk" is active (present by input): aw-watcher-afk reports it
//     while there is keyboard or mouse input;
//   - "afk" is idle: it begins at the last input, as Lastseen's idle does.
//     ActivityWatch cannot tell a locked screen from an untouched one, so
//     nothing becomes away;
//   - events of one status that overlap or touch are merged into one span,
//     zero-length events are dropped, and where an afk event overlaps a
//     not-afk one, not-afk wins (the idle span is cut around it), the same
//     precedence Lastseen gives active over idle.
//
// Each AFK bucket is one Source, named by its host.
type awExport struct {
	Buckets map[string]awBucket `json:"buckets"`
}

type awBucket struct {
	ID       string            `json:"id"`
	Type     string            `json:"type"`
	Client   string            `json:"client"`
	Hostname string            `json:"hostname"`
	Events   []json.RawMessage `json:"events"`
}

type awEvent struct {
	Timestamp *string     `json:"timestamp"`
	Duration  json.Number `json:"duration"`
	Data      struct {
		Status *string `json:"status"`
	} `json:"data"`
}

// afk reports whether a bucket holds aw-watcher-afk's presence events.
func (b awBucket) afk(key string) bool {
	return b.Type == "afkstatus" || strings.HasPrefix(key, "aw-watcher-afk") || strings.HasPrefix(b.ID, "aw-watcher-afk")
}

func (p parser) activityWatch(data []byte) (File, error) {
	var x awExport
	if err := json.Unmarshal(data, &x); err != nil {
		return File{}, jsonError("ActivityWatch export", err)
	}
	keys := make([]string, 0, len(x.Buckets))
	events := 0
	for k, b := range x.Buckets {
		if b.afk(k) {
			keys = append(keys, k)
			events += len(b.Events)
		}
	}
	if len(keys) == 0 {
		return File{}, presence.Errorf(presence.EINVALID,
			"the ActivityWatch export holds no AFK bucket (aw-watcher-afk): there is no presence in it to import")
	}
	if events > p.maxSpans {
		return File{}, p.tooMany("AFK events", events)
	}
	slices.Sort(keys) // map order is random; the answer must not be
	f := File{Format: FormatActivityWatch}
	for _, k := range keys {
		src, err := p.awBucket(k, x.Buckets[k])
		if err != nil {
			return File{}, err
		}
		f.Sources = append(f.Sources, src)
	}
	return f, nil
}

func (p parser) awBucket(key string, b awBucket) (Source, error) {
	var active, idle []interval
	for i, raw := range b.Events {
		path := pathf("buckets[%q].events[%d]", key, i)
		var e awEvent
		if err := json.Unmarshal(raw, &e); err != nil {
			return Source{}, jsonError(path, err)
		}
		if e.Timestamp == nil {
			return Source{}, presence.Errorf(presence.EINVALID, "%s.timestamp is missing", path)
		}
		start, err := p.parseTime(path+".timestamp", *e.Timestamp)
		if err != nil {
			return Source{}, err
		}
		d, err := awDuration(path+".duration", e.Duration)
		if err != nil {
			return Source{}, err
		}
		end := start.Add(d)
		if err := p.checkTime(path+" (timestamp + duration)", end); err != nil {
			return Source{}, err
		}
		if e.Data.Status == nil {
			return Source{}, presence.Errorf(presence.EINVALID, `%s.data.status is missing (want "afk" or "not-afk")`, path)
		}
		if d == 0 {
			continue // a ping that lasted no time says nothing
		}
		switch *e.Data.Status {
		case "not-afk":
			active = append(active, interval{start, end})
		case "afk":
			idle = append(idle, interval{start, end})
		default:
			return Source{}, presence.Errorf(presence.EINVALID, `%s.data.status is %q, want "afk" or "not-afk"`, path, clip(*e.Data.Status))
		}
	}
	active = union(active)
	idle = subtract(union(idle), active)
	spans := make([]presence.Span, 0, len(active)+len(idle))
	for _, iv := range active {
		spans = append(spans, presence.Span{State: presence.Active, Why: presence.ByInput, Start: iv.start, End: iv.end})
	}
	for _, iv := range idle {
		spans = append(spans, presence.Span{State: presence.Idle, Start: iv.start, End: iv.end})
	}
	sortSpans(spans)
	name := b.Hostname
	if name == "" || name == "unknown" {
		name = strings.TrimPrefix(strings.TrimPrefix(key, "aw-watcher-afk"), "_")
	}
	if n, err := presence.NormalizeDeviceName(name); err == nil {
		name = n
	} else {
		name = "ActivityWatch"
	}
	return Source{Name: name, Spans: p.cut(spans, false)}, nil
}

// awDuration reads an event's duration in seconds: a finite number, not
// negative, at most maxDuration; a missing one is zero.
func awDuration(path string, n json.Number) (time.Duration, error) {
	if n == "" {
		return 0, nil
	}
	sec, err := strconv.ParseFloat(string(n), 64)
	switch {
	case err != nil || math.IsNaN(sec) || math.IsInf(sec, 0):
		return 0, presence.Errorf(presence.EINVALID, "%s must be a number of seconds, not %s", path, clip(string(n)))
	case sec < 0:
		return 0, presence.Errorf(presence.EINVALID, "%s is %s: a duration must not be negative", path, clip(string(n)))
	case sec > maxDuration.Seconds():
		return 0, presence.Errorf(presence.EINVALID, "%s is %s seconds, more than a hundred years", path, clip(string(n)))
	}
	return time.Duration(math.Round(sec * float64(time.Second))), nil
}

// interval is a half-open stretch of time.
type interval struct{ start, end time.Time }

// union merges overlapping and touching intervals, sorted by start.
func union(ivs []interval) []interval {
	slices.SortFunc(ivs, func(a, b interval) int { return a.start.Compare(b.start) })
	out := ivs[:0]
	for _, iv := range ivs {
		if n := len(out); n > 0 && !iv.start.After(out[n-1].end) {
			if iv.end.After(out[n-1].end) {
				out[n-1].end = iv.end
			}
			continue
		}
		out = append(out, iv)
	}
	return out
}

// subtract removes from a what b covers; both are sorted and disjoint
// (union's output).
func subtract(a, b []interval) []interval {
	var out []interval
	j := 0
	for _, iv := range a {
		for j < len(b) && !b[j].end.After(iv.start) {
			j++ // b[j] ends before iv begins, and before every later iv
		}
		cur := iv.start
		for k := j; k < len(b) && b[k].start.Before(iv.end); k++ {
			if b[k].start.After(cur) {
				out = append(out, interval{cur, b[k].start})
			}
			if b[k].end.After(cur) {
				cur = b[k].end
			}
		}
		if iv.end.After(cur) {
			out = append(out, interval{cur, iv.end})
		}
	}
	return out
}
