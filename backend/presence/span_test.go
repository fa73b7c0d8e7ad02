package presence

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

// replay folds beats through Merge the way a store does and returns every
// span, finalised or not, oldest first.
func replay(beats []Beat, window time.Duration) []Span {
	var done []Span
	var tail *Span
	for _, b := range beats {
		o := Merge(tail, b, window)
		if o.Closed != nil {
			done = append(done, *o.Closed)
		}
		tail = o.Tail
	}
	if tail != nil {
		done = append(done, *tail)
	}
	return done
}

func TestMerge(t *testing.T) {
	w := DefaultPulse.Window() // 60 s
	type want struct {
		state      State
		start, end int
		closed     bool
	}
	tests := []struct {
		name  string
		beats []Beat
		want  []want
	}{
		{
			// The fixed-increment API this replaces would have added 60 s.
			name:  "two beats one second apart add one second",
			beats: []Beat{{Seq: 1, At: at(0), State: Active}, {Seq: 2, At: at(1), State: Active}},
			want:  []want{{Active, 0, 1, false}},
		},
		{
			name:  "beats within the window extend one span",
			beats: []Beat{{Seq: 1, At: at(0), State: Active}, {Seq: 2, At: at(30), State: Active}, {Seq: 3, At: at(90), State: Active}},
			want:  []want{{Active, 0, 90, false}},
		},
		{
			name:  "a gap of exactly the window still joins",
			beats: []Beat{{Seq: 1, At: at(0), State: Active}, {Seq: 2, At: at(60), State: Active}},
			want:  []want{{Active, 0, 60, false}},
		},
		{
			name:  "a gap longer than the window splits the span at the last beat",
			beats: []Beat{{Seq: 1, At: at(0), State: Active}, {Seq: 2, At: at(30), State: Active}, {Seq: 3, At: at(91), State: Active}},
			want:  []want{{Active, 0, 30, true}, {Active, 91, 91, false}},
		},
		{
			name:  "an explicit offline closes the span at its own time",
			beats: []Beat{{Seq: 1, At: at(0), State: Active}, {Seq: 2, At: at(30), State: Active}, {Seq: 3, At: at(42), State: Offline}},
			want:  []want{{Active, 0, 42, true}},
		},
		{
			name:  "a state change closes at the transition beat and opens the next span there",
			beats: []Beat{{Seq: 1, At: at(0), State: Active}, {Seq: 2, At: at(30), State: Active}, {Seq: 3, At: at(45), State: Idle}, {Seq: 4, At: at(75), State: Idle}},
			want:  []want{{Active, 0, 45, true}, {Idle, 45, 75, false}},
		},
		{
			name:  "a re-sent beat changes nothing",
			beats: []Beat{{Seq: 1, At: at(0), State: Active}, {Seq: 2, At: at(30), State: Active}, {Seq: 2, At: at(30), State: Active}},
			want:  []want{{Active, 0, 30, false}},
		},
		{
			name:  "a late beat from before the tail's end is stale",
			beats: []Beat{{Seq: 1, At: at(0), State: Active}, {Seq: 2, At: at(30), State: Active}, {Seq: 3, At: at(10), State: Away}},
			want:  []want{{Active, 0, 30, false}},
		},
		{
			name:  "offline with nothing open records nothing",
			beats: []Beat{{Seq: 1, At: at(0), State: Offline}},
			want:  nil,
		},
		{
			name:  "after offline the next beat starts afresh",
			beats: []Beat{{Seq: 1, At: at(0), State: Active}, {Seq: 2, At: at(10), State: Offline}, {Seq: 3, At: at(20), State: Active}},
			want:  []want{{Active, 0, 10, true}, {Active, 20, 20, false}},
		},
		{
			name:  "lock then unlock: active, away, active",
			beats: []Beat{{Seq: 1, At: at(0), State: Active}, {Seq: 2, At: at(20), State: Away}, {Seq: 3, At: at(50), State: Away}, {Seq: 4, At: at(70), State: Active}},
			want:  []want{{Active, 0, 20, true}, {Away, 20, 70, true}, {Active, 70, 70, false}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := replay(tt.beats, w)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d spans %+v, want %d", len(got), got, len(tt.want))
			}
			for i, g := range got {
				wt := tt.want[i]
				if g.State != wt.state || !g.Start.Equal(at(wt.start)) || !g.End.Equal(at(wt.end)) || g.Closed != wt.closed {
					t.Errorf("span %d = %s %v..%v closed=%v, want %s +%ds..+%ds closed=%v",
						i, g.State, g.Start.Sub(t0), g.End.Sub(t0), g.Closed, wt.state, wt.start, wt.end, wt.closed)
				}
			}
		})
	}
}

func TestMergeIsPure(t *testing.T) {
	tail := &Span{ID: 7, DeviceID: 3, State: Active, Start: at(0), End: at(10)}
	before := *tail
	o := Merge(tail, Beat{Seq: 2, At: at(20), State: Idle}, time.Minute)
	if *tail != before {
		t.Fatalf("Merge modified its input: %+v", *tail)
	}
	if o.Closed.ID != 7 || o.Tail.DeviceID != 3 || !o.Started {
		t.Fatalf("outcome lost identity: closed=%+v tail=%+v", o.Closed, o.Tail)
	}
}

func TestSpanOpenAt(t *testing.T) {
	s := Span{State: Active, Start: at(0), End: at(30)}
	w := time.Minute
	if !s.OpenAt(at(90), w) || s.OpenAt(at(91), w) {
		t.Fatal("a span stays open for exactly the pulse window after its last beat")
	}
	s.Closed = true
	if s.OpenAt(at(31), w) {
		t.Fatal("a closed span is never open")
	}
}
