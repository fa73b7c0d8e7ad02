package importer

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// ExportVersion is the version of the export format this build writes and
// reads.
const ExportVersion = 1

// Export is Lastseen's export (GET /api/v1/export), in the order the service
// streams it. Spans are every span of every device of the user, the open
// ones as they stood at ExportedAt; Daily are the days with any presence, in
// the user's time zone. On import, spans are grouped by DeviceID and named
// by Devices; a span whose device is not listed (a revoked one) goes to a
// source named "device ID".
type Export struct {
	Version    int                 `json:"version"`
	ExportedAt time.Time           `json:"exported_at"`
	User       ExportUser          `json:"user"`
	Devices    []ExportDevice      `json:"devices"`
	Spans      []ExportSpan        `json:"spans"`
	Daily      []presence.DayTotal `json:"daily"`
}

// ExportUser is who the export belongs to.
type ExportUser struct {
	Handle string `json:"handle"`
	Name   string `json:"name"`
	TZ     string `json:"tz"`
}

// ExportDevice is one device of the user.
type ExportDevice struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	OS   string `json:"os"`
}

// ExportSpan is one span. DurationS is whole seconds of End − Start, for
// readers that do not want to parse times; import ignores it. EndReason
// and Replayed say why nothing followed the span and whether its beats
// came late (presence.Span); exports that predate them import as neither.
type ExportSpan struct {
	DeviceID  int64              `json:"device_id"`
	State     presence.State     `json:"state"`
	Why       presence.Why       `json:"why,omitempty"`
	Start     time.Time          `json:"start"`
	End       time.Time          `json:"end"`
	DurationS int64              `json:"duration_s"`
	EndReason presence.EndReason `json:"end_reason,omitempty"`
	Replayed  bool               `json:"replayed,omitempty"`
}

// ExportSpanOf is how the service writes a span.
func ExportSpanOf(s presence.Span) ExportSpan {
	return ExportSpan{
		DeviceID:  s.DeviceID,
		State:     s.State,
		Why:       s.Why.Of(s.State),
		Start:     s.Start.UTC(),
		End:       s.End.UTC(),
		DurationS: int64(s.Duration() / time.Second),
		EndReason: s.EndReason,
		Replayed:  s.Replayed,
	}
}

// lsFile is the export as Parse reads it: times and states as strings, so
// a bad one is reported with its place in the file.
type lsFile struct {
	Version json.Number `json:"version"`
	Devices []struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
		OS   string `json:"os"`
	} `json:"devices"`
	Spans []json.RawMessage `json:"spans"`
}

type lsSpan struct {
	DeviceID int64   `json:"device_id"`
	State    string  `json:"state"`
	Why      string  `json:"why"`
	Start    *string `json:"start"`
	End      *string `json:"end"`
	Reason   string  `json:"end_reason"`
	Replayed bool    `json:"replayed"`
}

func (p parser) lastseen(data []byte) (File, error) {
	var x lsFile
	if err := json.Unmarshal(data, &x); err != nil {
		return File{}, jsonError("Lastseen export", err)
	}
	if v, err := strconv.Atoi(string(x.Version)); err != nil || v != ExportVersion {
		return File{}, presence.Errorf(presence.EINVALID, "Lastseen export version %s: this server reads version %d", clip(string(x.Version)), ExportVersion)
	}
	if len(x.Spans) > p.maxSpans {
		return File{}, p.tooMany("spans", len(x.Spans))
	}
	f := File{Format: FormatLastseen}
	index := map[int64]int{} // device id → its source
	for i, d := range x.Devices {
		name, err := presence.NormalizeDeviceName(d.Name)
		if err != nil {
			return File{}, presence.Errorf(presence.EINVALID, "devices[%d].name: %s", i, presence.ErrorMessage(err))
		}
		if _, dup := index[d.ID]; dup {
			return File{}, presence.Errorf(presence.EINVALID, "devices[%d].id %d is listed twice", i, d.ID)
		}
		index[d.ID] = len(f.Sources)
		f.Sources = append(f.Sources, Source{Name: name, OS: clip(d.OS)})
	}
	for i, raw := range x.Spans {
		path := pathf("spans[%d]", i)
		var s lsSpan
		if err := json.Unmarshal(raw, &s); err != nil {
			return File{}, jsonError(path, err)
		}
		sp, err := p.lsSpan(path, s)
		if err != nil {
			return File{}, err
		}
		k, ok := index[s.DeviceID]
		if !ok {
			// A revoked device is not listed; its spans keep their own source.
			k = len(f.Sources)
			index[s.DeviceID] = k
			f.Sources = append(f.Sources, Source{Name: "device " + strconv.FormatInt(s.DeviceID, 10)})
		}
		f.Sources[k].Spans = append(f.Sources[k].Spans, sp)
	}
	for i := range f.Sources {
		sortSpans(f.Sources[i].Spans)
		// A lone beat (a zero-length span) is part of the history it came from.
		f.Sources[i].Spans = p.cut(f.Sources[i].Spans, true)
	}
	return f, nil
}

func (p parser) lsSpan(path string, s lsSpan) (presence.Span, error) {
	st, err := presence.ParseState(s.State)
	if err != nil {
		return presence.Span{}, presence.Errorf(presence.EINVALID, "%s.state: %s", path, presence.ErrorMessage(err))
	}
	if st == presence.Offline {
		return presence.Span{}, presence.Errorf(presence.EINVALID, "%s.state is offline: history holds only active, idle and away spans", path)
	}
	why := presence.Why(s.Why)
	if !why.ValidFor(st) {
		return presence.Span{}, presence.Errorf(presence.EINVALID, "%s.why is %q, want input, call, media or nothing (locked for away)", path, clip(s.Why))
	}
	reason := presence.EndReason(s.Reason)
	if !reason.Valid() {
		return presence.Span{}, presence.Errorf(presence.EINVALID, "%s.end_reason is %q, want sleep, shutdown, quit, paused, invisible, silence or nothing", path, clip(s.Reason))
	}
	if s.Start == nil || s.End == nil {
		return presence.Span{}, presence.Errorf(presence.EINVALID, "%s needs both start and end", path)
	}
	start, err := p.parseTime(path+".start", *s.Start)
	if err != nil {
		return presence.Span{}, err
	}
	end, err := p.parseTime(path+".end", *s.End)
	if err != nil {
		return presence.Span{}, err
	}
	if end.Before(start) {
		return presence.Span{}, presence.Errorf(presence.EINVALID, "%s ends (%s) before it starts (%s)", path, end.Format(time.RFC3339), start.Format(time.RFC3339))
	}
	return presence.Span{State: st, Why: why.Of(st), Start: start, End: end, EndReason: reason, Replayed: s.Replayed}, nil
}
