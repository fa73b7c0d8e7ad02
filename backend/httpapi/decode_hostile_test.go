package httpapi

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// Hostile heartbeat bodies: one bad time after a mass of nested arrays, so
// that naming the bad field means walking everything before it.

// deepBody nests arrays thousands of levels deep (encoding/json itself
// stops at 10 000): the body that cost seconds of CPU and hundreds of MiB
// when naming the field built the whole path at every level.
func deepBody(size int) []byte {
	const depth = 5000
	one := strings.Repeat("[", depth) + strings.Repeat("]", depth)
	return hostileBatch(size, one)
}

// wideBody stays within the shape limits (16 levels, arrays of at most
// maxArrayLen) with as many containers and tokens as fit: the worst a body
// that is decoded at all can do.
func wideBody(size int) []byte {
	const depth = maxDepth - 2      // under the batch object and beats
	per := size/(maxArrayLen-1) + 8 // bytes per beats element
	zeros := max((per-2*depth)/2, 1)
	one := strings.Repeat("[", depth) + strings.TrimSuffix(strings.Repeat("0,", zeros), ",") + strings.Repeat("]", depth)
	return hostileBatch(size, one)
}

// manyBody is a beats array of a great many tiny elements, each of which
// the decoder would make a Beat for.
func manyBody(size int) []byte { return hostileBatch(size, "0") }

func hostileBatch(size int, elem string) []byte {
	var b strings.Builder
	b.WriteString(`{"beats":[`)
	tail := `],"sent_at":"soon"}`
	for b.Len()+len(elem)+1+len(tail) < size {
		if b.Len() > len(`{"beats":[`) {
			b.WriteByte(',')
		}
		b.WriteString(elem)
	}
	b.WriteString(tail)
	return []byte(b.String())
}

// wellFormedBody is a valid batch of about size bytes: as many beats as
// the shape limits let through, spaced out (pretty-printed JSON, say) to
// make up the size.
func wellFormedBody(size int) []byte {
	const beat = `{"seq":%d,"at":%q,"state":"active","idle_s":0}`
	one := len(fmt.Sprintf(beat, 1000, T0.Format(time.RFC3339Nano)))
	n := min(maxArrayLen, size/(one+1))
	pad := strings.Repeat(" ", max(size/n-one-1, 0))
	var b strings.Builder
	fmt.Fprintf(&b, `{"sent_at":%q,"beats":[`, T0.Format(time.RFC3339))
	for i := 1; i <= n; i++ {
		if i > 1 {
			b.WriteByte(',')
		}
		b.WriteString(pad)
		fmt.Fprintf(&b, beat, i, T0.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano))
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// allocated is what f allocates, in bytes and objects.
func allocated(f func()) (bytes, objects uint64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc, after.Mallocs - before.Mallocs
}

// TestDecodeHostileIsBounded: a hostile body costs memory in proportion to
// its size, not to its size times its depth, and one deeper than the cap
// is refused before it is decoded, naming the depth.
func TestDecodeHostileIsBounded(t *testing.T) {
	const size = 1 << 20
	for _, tc := range []struct {
		name string
		body []byte
		msg  string
	}{
		{"deep", deepBody(size), fmt.Sprintf("body nests deeper than %d levels", maxDepth)},
		{"wide", wideBody(size), `field "sent_at" must be an RFC 3339 time such as 2026-11-25T09:00:00Z, not "soon"`},
		{"many", manyBody(size), fmt.Sprintf("an array in the body holds more than %d elements", maxArrayLen)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			bytes, objects := allocated(func() {
				var b presence.Batch
				err = decodeStrict(tc.body, &b)
			})
			if code := presence.ErrorCode(err); (code != presence.EINVALID && code != presence.ETOOLARGE) || !strings.Contains(presence.ErrorMessage(err), tc.msg) {
				t.Errorf("decode: %v, want a refusal with %q", err, tc.msg)
			}
			// Decoding keeps a copy of the body, grown by doubling, and a
			// slice of at most maxArrayLen beats; everything else is small
			// change. The old walk allocated some 300 MiB for "deep", and
			// the decoder alone 40 MiB for "many".
			if limit := uint64(8 * len(tc.body)); bytes > limit {
				t.Errorf("decoding %d bytes allocated %d bytes (limit %d)", len(tc.body), bytes, limit)
			}
			if objects > 50_000 {
				t.Errorf("decoding %d bytes made %d allocations (limit 50000)", len(tc.body), objects)
			}
		})
	}
}

// TestDeepBodyRefused: through the handler, a body past the depth cap is a
// 400 that says how deep a body may be.
func TestDeepBodyRefused(t *testing.T) {
	e := newEnv(t)
	u, _ := e.user("ann")
	_, dev := e.device(u, "laptop")
	for _, depth := range []int{maxDepth + 1, 5000} {
		body := `{"sent_at":"2026-11-25T09:00:00Z","beats":[],"facts":{"os":` + strings.Repeat("[", depth-2) + strings.Repeat("]", depth-2) + `}}`
		resp := e.do(request{method: http.MethodPost, path: "/api/v1/heartbeats", token: dev, body: body})
		if resp.status != http.StatusBadRequest {
			t.Fatalf("depth %d: status %d, want 400: %s", depth, resp.status, resp.body)
		}
		if msg := resp.apiError(t).Message; !strings.Contains(msg, fmt.Sprintf("deeper than %d levels", maxDepth)) {
			t.Errorf("depth %d: message %q does not name the depth allowed", depth, msg)
		}
	}
	// At the cap the body is decoded (and refused for what it holds).
	body := `{"sent_at":"2026-11-25T09:00:00Z","beats":[],"facts":{"os":` + strings.Repeat("[", maxDepth-2) + strings.Repeat("]", maxDepth-2) + `}}`
	resp := e.do(request{method: http.MethodPost, path: "/api/v1/heartbeats", token: dev, body: body})
	if msg := resp.apiError(t).Message; resp.status != http.StatusBadRequest || !strings.Contains(msg, `field "facts.os" must be a string`) {
		t.Fatalf("depth %d: status %d %q, want 400 naming facts.os", maxDepth, resp.status, msg)
	}
}

// BenchmarkDecodeHostile compares the worst bodies with a well-formed
// batch of the same size: the hostile ones must cost no more per byte.
//
//	go test -run '^$' -bench BenchmarkDecodeHostile ./backend/httpapi
func BenchmarkDecodeHostile(b *testing.B) {
	for _, size := range []int{100 << 10, 1 << 20} {
		for _, tc := range []struct {
			name string
			body []byte
		}{
			{"well-formed", wellFormedBody(size)},
			{"wide", wideBody(size)},
			{"deep", deepBody(size)},
			{"many", manyBody(size)},
		} {
			b.Run(fmt.Sprintf("%s/%dKiB", tc.name, size>>10), func(b *testing.B) {
				b.SetBytes(int64(len(tc.body)))
				b.ReportAllocs()
				var batch presence.Batch
				if err := decodeStrict(tc.body, &batch); (err == nil) != (tc.name == "well-formed") {
					b.Fatalf("%s: %v", tc.name, err)
				}
				for b.Loop() {
					batch = presence.Batch{}
					_ = decodeStrict(tc.body, &batch)
				}
			})
		}
	}
}
