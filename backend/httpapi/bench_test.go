package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// BenchmarkHeartbeatHandler posts batches straight into the handler (no
// network), each answered only after the real SQLite store committed it.
// "serial" is one device waiting for each commit (latency); "parallel" is
// many devices at once (throughput: the store's writer group-commits them).
func BenchmarkHeartbeatHandler(b *testing.B) {
	for _, tc := range []struct {
		name     string
		beats    int
		parallel bool
	}{
		{"serial/beats=1", 1, false},
		{"serial/beats=100", 100, false},
		{"parallel/beats=1", 1, true},
		{"parallel/beats=20", 20, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			e := newEnv(b, func(c *Config) {
				c.DeviceRate = Rate{PerSecond: 1e9, Burst: 1 << 30} // measure the handler, not the limiter
			})
			u, _ := e.user("bench")
			const devices = 64
			toks := make([]string, devices)
			for i := range toks {
				_, toks[i] = e.device(u, fmt.Sprintf("d%d", i))
			}
			// The service's clock follows the beats so none is judged too old
			// or too new, however long the run.
			var seqs [devices]atomic.Int64
			var next, tick atomic.Int64
			post := func(dev int) {
				tok := toks[dev]
				base := seqs[dev].Add(int64(tc.beats)) - int64(tc.beats)
				beats := make([]presence.Beat, tc.beats)
				now := T0.Add(time.Duration(tick.Add(1)) * time.Millisecond)
				e.clock.Set(now)
				for i := range beats {
					beats[i] = presence.Beat{Seq: base + int64(i) + 1, At: now.Add(time.Duration(i) * time.Microsecond), State: presence.Active}
				}
				body, _ := json.Marshal(presence.Batch{SentAt: now, Beats: beats})
				req := httptest.NewRequest(http.MethodPost, "/api/v1/heartbeats", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+tok)
				rec := httptest.NewRecorder()
				e.srv.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			if tc.parallel {
				b.SetParallelism(devices / max(1, testingProcs()))
				b.RunParallel(func(pb *testing.PB) {
					dev := int(next.Add(1)-1) % devices
					for pb.Next() {
						post(dev)
					}
				})
			} else {
				for range b.N {
					post(0)
				}
			}
			b.ReportMetric(float64(b.N*tc.beats)/time.Since(start).Seconds(), "beats/s")
		})
	}
}

func testingProcs() int { return runtime.GOMAXPROCS(0) }
