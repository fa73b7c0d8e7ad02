package presence

import (
	"slices"
	"sort"
	"time"
)

// ImportChunk bounds how many imported spans a store writes in one
// transaction, so a large import never holds the write lock for long and
// heartbeats keep flowing beside it.
const ImportChunk = 2000

// PrepareImport checks spans for Store.ImportSpans and returns them as a
// store writes them: for deviceID, closed, Why normalised (EndReason and
// Replayed kept), times truncated
// to precision (a store's resolution; 0 keeps nanoseconds) and sorted by
// start, then end. It refuses the whole set (EINVALID) for a span of no
// stored state (offline or unknown) or one that ends before it starts.
func PrepareImport(deviceID int64, spans []Span, precision time.Duration) ([]Span, error) {
	out := make([]Span, len(spans))
	for i, s := range spans {
		if !s.State.Valid() || s.State == Offline {
			return nil, Errorf(EINVALID, "span %d has state %q: history holds active, idle and away spans", i, string(s.State))
		}
		if !s.Why.ValidFor(s.State) {
			return nil, Errorf(EINVALID, "span %d has why %q (want input, call, media or nothing; locked for away)", i, string(s.Why))
		}
		if !s.EndReason.Valid() {
			return nil, Errorf(EINVALID, "span %d has end_reason %q (want sleep, shutdown, quit, paused, invisible, silence or nothing)", i, string(s.EndReason))
		}
		if precision > 0 {
			s.Start, s.End = s.Start.Truncate(precision), s.End.Truncate(precision)
		}
		if s.End.Before(s.Start) {
			return nil, Errorf(EINVALID, "span %d ends before it starts", i)
		}
		out[i] = Span{DeviceID: deviceID, State: s.State, Why: s.Why.Of(s.State), Start: s.Start.UTC(), End: s.End.UTC(),
			EndReason: s.EndReason, Replayed: s.Replayed, Closed: true}
	}
	slices.SortStableFunc(out, func(a, b Span) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return a.End.Compare(b.End)
	})
	return out, nil
}

// ImportWindow is the stretch of time in which a device's existing spans
// can conflict with prepared spans: a store reads the spans with
// End >= from and Start <= to, and hands them to PlanImport.
func ImportWindow(prepared []Span) (from, to time.Time) {
	if len(prepared) == 0 {
		return time.Time{}, time.Time{}
	}
	from, to = prepared[0].Start, prepared[0].End
	for _, s := range prepared[1:] {
		if s.End.After(to) {
			to = s.End
		}
	}
	return from, to
}

// PlanImport returns which of prepared (PrepareImport's output) a store
// writes, in order; the rest are skipped. existing are the device's spans
// in ImportWindow (any order, any state), tailStart the start of its open
// tail (zero for none), now the store's clock. A span is skipped when it
// overlaps an existing span or one kept before it (each starts before the
// other ends, or both are the same instant), when it ends after tailStart,
// or when it ends after now. So a second import of the same spans keeps
// nothing, and imported history never reaches the span the next beat may
// extend.
func PlanImport(prepared, existing []Span, tailStart, now time.Time) []Span {
	type key struct{ s, e int64 }
	same := make(map[key]bool, len(existing))
	ex := make([]Span, len(existing))
	copy(ex, existing)
	slices.SortFunc(ex, func(a, b Span) int { return a.Start.Compare(b.Start) })
	// maxEnd[i] is the latest End of ex[0..i]: whether any existing span
	// that starts before t ends after u is one binary search.
	maxEnd := make([]time.Time, len(ex))
	for i, s := range ex {
		maxEnd[i] = s.End
		if i > 0 && maxEnd[i-1].After(s.End) {
			maxEnd[i] = maxEnd[i-1]
		}
		same[key{s.Start.UnixNano(), s.End.UnixNano()}] = true
	}
	var kept []Span
	// Kept spans come in start order: before is the latest End of those
	// that start strictly before the current candidate, at those that
	// start at the same instant.
	var before time.Time
	at := 0
	for _, c := range prepared {
		k := key{c.Start.UnixNano(), c.End.UnixNano()}
		if same[k] || c.End.After(now) || (!tailStart.IsZero() && c.End.After(tailStart)) {
			continue
		}
		if n := sort.Search(len(ex), func(i int) bool { return !ex[i].Start.Before(c.End) }); n > 0 && maxEnd[n-1].After(c.Start) {
			continue // an existing span starts before c ends and ends after c starts
		}
		for ; at < len(kept) && kept[at].Start.Before(c.Start); at++ {
			if kept[at].End.After(before) {
				before = kept[at].End
			}
		}
		if before.After(c.Start) {
			continue
		}
		clash := false
		for _, o := range kept[at:] { // kept spans starting with c
			if o.End.After(c.Start) && c.End.After(o.Start) {
				clash = true
				break
			}
		}
		if clash {
			continue
		}
		same[k] = true
		kept = append(kept, c)
	}
	return kept
}

// WriteImport hands prepared spans (PrepareImport) to write in chunks of
// ImportChunk, one transaction each so heartbeats keep flowing, and adds up
// what each chunk added and skipped. With no span it still calls write
// once, with none, so a store can tell an unknown device from an empty
// import. It stops at the first error, with the counts so far: running the
// same import again adds exactly what is missing.
func WriteImport(prepared []Span, write func(chunk []Span) (added, skipped int, err error)) (added, skipped int, err error) {
	if len(prepared) == 0 {
		_, _, err := write(nil)
		return 0, 0, err
	}
	for len(prepared) > 0 {
		n := min(len(prepared), ImportChunk)
		a, k, err := write(prepared[:n])
		added, skipped = added+a, skipped+k
		if err != nil {
			return added, skipped, err
		}
		prepared = prepared[n:]
	}
	return added, skipped, nil
}
