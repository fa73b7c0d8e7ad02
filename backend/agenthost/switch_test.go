package agenthost

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/backend/presence"
)

// bareHost is just enough Host for switching between services.
func bareHost() *Host {
	return &Host{log: slog.New(slog.DiscardHandler), life: context.Background()}
}

func remoteAt(url string) *service { return &service{remote: true, url: url} }

// A handle lookup for a service the agent has since left must not name the
// user on the service it uses now, even when both are remote.
func TestLateHandleFromPreviousServiceIsDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := bareHost()
		a := h.begin(remoteAt("https://a.example"))
		answer := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			// A slow service answers whatever its request's context says.
			h.learnHandle(a, func(context.Context) (string, error) { <-answer; return "ada", nil })
		}()
		synctest.Wait() // the lookup for a is in flight
		h.begin(remoteAt("https://b.example"))
		close(answer)
		<-done
		if kind, url, id := h.current(); id.handle != "" {
			t.Fatalf("after switching to %s (%s), the handle is %q: a's late answer was written onto b", url, kind, id.handle)
		}
	})
}

// A switch ends the previous service's lookup at once, even while it waits
// to retry; it never asks the old service again.
func TestSwitchStopsTheHandleLookup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := bareHost()
		a := h.begin(remoteAt("https://a.example"))
		var asked atomic.Int32
		done := make(chan struct{})
		go func() {
			defer close(done)
			h.learnHandle(a, func(context.Context) (string, error) {
				if asked.Add(1) > 1 {
					// Only a lookup that missed the switch asks again; end
					// it, so a failing run does not retry forever.
					return "", presence.Errorf(presence.EUNAUTHORIZED, "asked again")
				}
				return "", errors.New("connection refused")
			})
		}()
		synctest.Wait() // a failed once and waits to retry
		if n := asked.Load(); n != 1 {
			t.Fatalf("asked %d times before the switch, want 1", n)
		}
		h.begin(remoteAt("https://b.example"))
		synctest.Wait()
		select {
		case <-done:
		default:
			t.Fatal("the lookup for the previous service still waits to retry after the switch")
		}
		if n := asked.Load(); n != 1 {
			t.Fatalf("the previous service was asked %d times, want 1", n)
		}
	})
}

// While the service in use cannot answer, the lookup retries with a
// doubling wait, and stops for good on a refused token.
func TestHandleLookupRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := bareHost()
		a := h.begin(remoteAt("https://a.example"))
		start := time.Now()
		var at []time.Duration
		h.learnHandle(a, func(context.Context) (string, error) {
			at = append(at, time.Since(start))
			if len(at) < 3 {
				return "", errors.New("connection refused")
			}
			return "ada", nil
		})
		if len(at) != 3 || at[0] != 0 || at[1] != time.Second || at[2] != 3*time.Second {
			t.Fatalf("asked at %v, want [0s 1s 3s]", at)
		}
		if _, _, id := h.current(); id.handle != "ada" {
			t.Fatalf("handle %q, want ada", id.handle)
		}

		b := h.begin(remoteAt("https://b.example"))
		asked := 0
		h.learnHandle(b, func(context.Context) (string, error) {
			asked++
			return "", presence.Errorf(presence.EUNAUTHORIZED, "revoked")
		})
		if asked != 1 {
			t.Fatalf("a refused token was asked %d times, want 1", asked)
		}
	})
}

// The device id and name learned from a beat's answer belong to the service
// that answered: a beat still in flight at a switch does not relabel the
// new service's device.
func TestLateBeatAnswerFromPreviousServiceIsDropped(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"accepted":1,"rejected":[],"last_seq":1,"device":{"id":7,"name":"desk"}}`))
	}))
	defer srv.Close()
	h := bareHost()
	batch := presence.Batch{SentAt: time.Now(), Beats: []presence.Beat{{Seq: 1, At: time.Now(), State: presence.Active}}}

	a := h.begin(remoteAt(srv.URL))
	old := recordingUploader{httpapi.NewClient(srv.URL, "ls_dev_a", nil), h, a}
	h.begin(remoteAt("https://b.example"))
	if _, err := old.PostHeartbeats(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if _, _, id := h.current(); id.deviceID != 0 || id.deviceName != "" {
		t.Fatalf("the previous service's answer labelled this one's device: %+v", id)
	}

	c := h.begin(remoteAt(srv.URL))
	cur := recordingUploader{httpapi.NewClient(srv.URL, "ls_dev_c", nil), h, c}
	if _, err := cur.PostHeartbeats(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if _, _, id := h.current(); id.deviceID != 7 || id.deviceName != "desk" {
		t.Fatalf("the service in use answered device 7 desk, status has %+v", id)
	}
}
