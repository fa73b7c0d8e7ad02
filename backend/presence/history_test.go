package presence

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

var h0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// iv is a span of state st from minute a to minute b after h0.
func iv(st State, a, b int) Span {
	return Span{State: st, Start: h0.Add(time.Duration(a) * time.Minute), End: h0.Add(time.Duration(b) * time.Minute)}
}

func minutes(spans []Span) string {
	var parts []string
	for _, s := range spans {
		parts = append(parts, fmt.Sprintf("%s %d-%d", s.State, int(s.Start.Sub(h0)/time.Minute), int(s.End.Sub(h0)/time.Minute)))
	}
	return strings.Join(parts, ", ")
}

func TestPlanImport(t *testing.T) {
	A, I := Active, Idle
	now := h0.Add(1000 * time.Minute)
	cases := []struct {
		name      string
		in, have  []Span
		tailStart int // minutes; -1 for no open tail
		want      string
	}{
		{"empty device takes everything", []Span{iv(A, 0, 10), iv(I, 10, 20)}, nil, -1, "active 0-10, idle 10-20"},
		{"touching is not overlapping", []Span{iv(A, 10, 20)}, []Span{iv(I, 0, 10), iv(I, 20, 30)}, -1, "active 10-20"},
		{"overlap with an existing span of any state is skipped", []Span{iv(A, 5, 15), iv(A, 30, 40)}, []Span{iv(I, 0, 10)}, -1, "active 30-40"},
		{"inside an existing span is skipped", []Span{iv(A, 2, 3)}, []Span{iv(I, 0, 10)}, -1, ""},
		{"covering an existing span is skipped", []Span{iv(A, 0, 100)}, []Span{iv(I, 40, 41)}, -1, ""},
		{"a long existing span far before still counts", []Span{iv(A, 500, 510)}, []Span{iv(I, 0, 600), iv(A, 601, 602)}, -1, ""},
		{"the same spans again add nothing", []Span{iv(A, 0, 10), iv(I, 10, 20)}, []Span{iv(A, 0, 10), iv(I, 10, 20)}, -1, ""},
		{"a lone beat again adds nothing", []Span{iv(A, 5, 5)}, []Span{iv(A, 5, 5)}, -1, ""},
		{"a lone beat at an edge is kept", []Span{iv(A, 10, 10)}, []Span{iv(I, 0, 10)}, -1, "active 10-10"},
		{"a lone beat inside a span is skipped", []Span{iv(A, 5, 5)}, []Span{iv(I, 0, 10)}, -1, ""},
		{"overlaps within the import: the first wins", []Span{iv(A, 0, 10), iv(I, 5, 15), iv(I, 10, 20)}, nil, -1, "active 0-10, idle 10-20"},
		{"same start within the import: the shorter comes first and wins", []Span{iv(A, 0, 0), iv(A, 0, 10), iv(I, 0, 5)}, nil, -1, "active 0-0, idle 0-5"},
		{"nothing after the open tail began", []Span{iv(A, 0, 10), iv(A, 20, 31), iv(A, 40, 50)}, nil, 30, "active 0-10"},
		{"up to the tail's start is fine", []Span{iv(A, 20, 30)}, nil, 30, "active 20-30"},
		{"nothing ends after now", []Span{iv(A, 990, 1001), iv(A, 900, 1000)}, nil, -1, "active 900-1000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in, err := PrepareImport(7, tc.in, 0)
			if err != nil {
				t.Fatal(err)
			}
			var tail time.Time
			if tc.tailStart >= 0 {
				tail = h0.Add(time.Duration(tc.tailStart) * time.Minute)
			}
			got := PlanImport(in, tc.have, tail, now)
			if minutes(got) != tc.want {
				t.Errorf("kept %q, want %q", minutes(got), tc.want)
			}
			for _, s := range got {
				if !s.Closed || s.DeviceID != 7 {
					t.Errorf("kept %+v: want closed, device 7", s)
				}
			}
		})
	}
}

func TestPrepareImport(t *testing.T) {
	for _, bad := range []Span{iv(Offline, 0, 1), iv("busy", 0, 1), iv(Active, 2, 1), {State: Active, Why: "vibes", Start: h0, End: h0}} {
		if _, err := PrepareImport(1, []Span{iv(Active, 0, 1), bad}, 0); ErrorCode(err) != EINVALID {
			t.Errorf("%+v: %v, want EINVALID", bad, err)
		}
	}
	in := []Span{
		{State: Idle, Why: ByCall, Start: h0.Add(90 * time.Minute), End: h0.Add(100*time.Minute + 1500)},
		{State: Active, Start: h0.Add(time.Minute + 999), End: h0.Add(2 * time.Minute)},
	}
	got, err := PrepareImport(3, in, time.Microsecond)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].State != Active || got[0].Why != ByInput || !got[0].Start.Equal(h0.Add(time.Minute)) {
		t.Errorf("first %+v: want the active span first, why input, start truncated to the microsecond", got[0])
	}
	if got[1].Why != "" || !got[1].End.Equal(h0.Add(100*time.Minute+time.Microsecond)) {
		t.Errorf("second %+v: want no why on idle, end truncated", got[1])
	}
	if in[0].Why != ByCall {
		t.Error("PrepareImport changed its input")
	}
}
