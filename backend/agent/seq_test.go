package agent

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"sync"
	"testing"

	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/backend/presence"
)

// TestSeqExhaustedOnTheServiceStops: a service that holds a seq for this
// device at or near presence.MaxSeq (a hostile client with the device's
// token sent 2^53, or 2^63−1 before the service bounded seqs) once made
// the agent renumber its queue above it: past the bound every later beat
// was refused and quarantined, and at 2^63−1 the renumbering wrapped. The
// agent now stops sending with a status that says what to do, keeps its
// queue, and never sends a seq the service must refuse.
func TestSeqExhaustedOnTheServiceStops(t *testing.T) {
	if testing.Short() {
		t.Skip("real HTTP")
	}
	for _, top := range []int64{presence.MaxSeq, presence.MaxSeq - 10, 1<<63 - 1} {
		t.Run(strconv.FormatInt(top, 10), func(t *testing.T) {
			var (
				mu    sync.Mutex
				bad   []int64 // seqs the service must refuse
				posts int
			)
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var b presence.Batch
				if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				res := presence.BatchResult{LastSeq: top, Rejected: []presence.Rejection{}}
				mu.Lock()
				posts++
				for _, x := range b.Beats {
					switch {
					case x.CheckForm() != nil:
						bad = append(bad, x.Seq)
						res.Rejected = append(res.Rejected, presence.Rejection{Seq: x.Seq, Error: presence.ErrorMessage(x.CheckForm())})
					case x.Seq <= res.LastSeq:
						res.Duplicates++
					default:
						res.Accepted++
						res.LastSeq = x.Seq
					}
				}
				mu.Unlock()
				w.Header().Set("Content-Type", "application/json")
				json.NewEncoder(w).Encode(res)
			}))
			t.Cleanup(ts.Close)
			refused := func() []int64 {
				mu.Lock()
				defer mu.Unlock()
				return append([]int64(nil), bad...)
			}

			la := startLiveAgent(t, "", nil)
			la.toggle(4)
			queued, err := la.db.Outbox(context.Background(), 100)
			if err != nil {
				t.Fatal(err)
			}
			if err := la.a.SetUploader(context.Background(), httpapi.NewClient(ts.URL, "ls_dev_x", ts.Client()), ts.URL); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the agent to stop, or to send what the service must refuse", func() bool {
				return la.a.Status().SyncError != "" || len(refused()) > 0 || la.drained()
			})
			if b := refused(); len(b) > 0 {
				t.Fatalf("sent seqs %v: past the service's bound", b)
			}
			st := la.a.Status()
			if st.SyncError != SeqExhaustedMessage {
				t.Fatalf("sync error %q, want %q", st.SyncError, SeqExhaustedMessage)
			}
			if la.a.s.canSend() {
				t.Fatal("the sender still means to send")
			}
			// The queue is kept as it was, for a re-paired device.
			left, err := la.db.Outbox(context.Background(), 100)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(left, queued) || la.db.LastSeq() > presence.MaxSeq {
				t.Fatalf("queue %v (last seq %d), want it untouched: %v", left, la.db.LastSeq(), queued)
			}
			if d, _ := la.a.Diagnostics(context.Background()); d.QuarantineCount != 0 {
				t.Fatalf("quarantined %d beats", d.QuarantineCount)
			}
			if n := la.logs.count("sequence is exhausted"); n != 1 {
				t.Fatalf("logged %d times", n)
			}
		})
	}
}
