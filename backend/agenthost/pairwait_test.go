package agenthost

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/backend/presence"
)

// pollScript is a service that answers polls from a list, in order, and
// records when it was asked (relative to the start of the test's bubble).
type pollScript struct {
	start   time.Time
	answers []pollAnswer
	asked   []time.Duration
}

type pollAnswer struct {
	poll httpapi.PairingPoll
	err  error
}

func newPollScript(answers ...pollAnswer) *pollScript {
	return &pollScript{start: time.Now(), answers: answers}
}

func (s *pollScript) StartPairing(context.Context, string, string) (httpapi.PairingStart, error) {
	return httpapi.PairingStart{DeviceCode: "ls_pair_x", UserCode: "BDFG-HJKL", VerificationURI: "https://s.example/pair",
		Interval: 5 * time.Second, ExpiresIn: 10 * time.Minute}, nil
}

func (s *pollScript) PollPairing(_ context.Context, code string) (httpapi.PairingPoll, error) {
	s.asked = append(s.asked, time.Since(s.start))
	if code != "ls_pair_x" {
		return httpapi.PairingPoll{Outcome: httpapi.PairInvalidGrant}, nil
	}
	if len(s.answers) == 0 {
		return httpapi.PairingPoll{Outcome: presence.PollPending}, nil
	}
	a := s.answers[0]
	s.answers = s.answers[1:]
	return a.poll, a.err
}

func pollOutcome(o presence.PollOutcome) pollAnswer {
	return pollAnswer{poll: httpapi.PairingPoll{Outcome: o}}
}

var approvedPoll = pollAnswer{poll: httpapi.PairingPoll{Outcome: presence.PollApproved, Token: "ls_dev_new",
	Device: presence.Device{ID: 3, Name: "desk"}, Handle: "ada"}}

func secs(ns ...int) []time.Duration {
	out := make([]time.Duration, len(ns))
	for i, n := range ns {
		out[i] = time.Duration(n) * time.Second
	}
	return out
}

func pairScripted(t *testing.T, s *pollScript) (Paired, error) {
	t.Helper()
	var shown httpapi.PairingStart
	p, err := Pair(context.Background(), s, "desk", "linux", nil, func(st httpapi.PairingStart) { shown = st })
	if shown.UserCode != "BDFG-HJKL" {
		t.Errorf("show got %+v", shown)
	}
	return p, err
}

func TestPendingThenApproved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newPollScript(pollOutcome(presence.PollPending), pollOutcome(presence.PollPending), approvedPoll)
		p, err := pairScripted(t, s)
		if err != nil {
			t.Fatal(err)
		}
		if p.Token != "ls_dev_new" || p.Handle != "ada" || p.Device.Name != "desk" || p.Device.ID != 3 {
			t.Fatalf("paired %+v", p)
		}
		if want := secs(5, 10, 15); !slices.Equal(s.asked, want) {
			t.Fatalf("polled at %v, want %v", s.asked, want)
		}
	})
}

// slow_down adds 5 s for good; an interval the service names wins when it
// is longer.
func TestSlowDownIncreasesTheInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newPollScript(
			pollOutcome(presence.PollPending),
			pollOutcome(presence.PollSlowDown), // 10 s from now on
			pollOutcome(presence.PollPending),
			pollAnswer{poll: httpapi.PairingPoll{Outcome: presence.PollSlowDown, Interval: 20 * time.Second}}, // 15+5 = 20
			pollAnswer{poll: httpapi.PairingPoll{Outcome: presence.PollPending, Interval: 3 * time.Second}},   // shorter: ignored
			approvedPoll,
		)
		if _, err := pairScripted(t, s); err != nil {
			t.Fatal(err)
		}
		if want := secs(5, 10, 20, 30, 50, 70); !slices.Equal(s.asked, want) {
			t.Fatalf("polled at %v, want %v", s.asked, want)
		}
	})
}

func TestPairingEndsWithoutToken(t *testing.T) {
	for _, tc := range []struct {
		answer presence.PollOutcome
		want   error
	}{
		{presence.PollDenied, ErrPairingDenied},
		{presence.PollExpired, ErrPairingExpired},
		{httpapi.PairInvalidGrant, ErrPairingInvalidGrant},
	} {
		t.Run(string(tc.answer), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newPollScript(pollOutcome(presence.PollPending), pollOutcome(tc.answer), approvedPoll)
				p, err := pairScripted(t, s)
				if !errors.Is(err, tc.want) || p.Token != "" {
					t.Fatalf("got %+v, %v; want %v", p, err, tc.want)
				}
				if len(s.asked) != 2 {
					t.Fatalf("polled %d times, want 2: a final answer ends the polling", len(s.asked))
				}
			})
		})
	}
}

func TestUnknownRefusalEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newPollScript(pollOutcome("unsupported_grant_type"), approvedPoll)
		if _, err := pairScripted(t, s); err == nil || !strings.Contains(err.Error(), "unsupported_grant_type") {
			t.Fatalf("err %v", err)
		}
	})
}

func TestContextEndsTheWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newPollScript()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := Pair(ctx, s, "desk", "linux", nil, nil)
			done <- err
		}()
		time.Sleep(12 * time.Second) // two pending polls, then waiting for the third
		cancel()
		synctest.Wait()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err %v, want context.Canceled", err)
			}
		default:
			t.Fatal("Pair still waits after its context ended")
		}
		if want := secs(5, 10); !slices.Equal(s.asked, want) {
			t.Fatalf("polled at %v, want %v", s.asked, want)
		}
	})
}

// An unreachable or overloaded service is asked again; Retry-After is
// honoured when longer than the interval.
func TestTransientFailuresAreRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newPollScript(
			pollAnswer{err: errors.New("connection refused")},
			pollAnswer{err: &httpapi.APIError{Status: 503, Code: presence.EUNAVAILABLE}},
			pollAnswer{err: &httpapi.APIError{Status: 429, Code: presence.ERATELIMIT, Retry: 30 * time.Second}},
			approvedPoll,
		)
		if _, err := pairScripted(t, s); err != nil {
			t.Fatal(err)
		}
		if want := secs(5, 10, 15, 45); !slices.Equal(s.asked, want) {
			t.Fatalf("polled at %v, want %v", s.asked, want)
		}
	})
}

func TestOtherFailuresEndTheWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newPollScript(pollAnswer{err: &httpapi.APIError{Status: 404, Code: presence.ENOTFOUND}}, approvedPoll)
		if _, err := pairScripted(t, s); presence.ErrorCode(err) != presence.ENOTFOUND || len(s.asked) != 1 {
			t.Fatalf("err %v after %d polls", err, len(s.asked))
		}
	})
}

// A service that never answers does not keep the device waiting past the
// codes' life.
func TestUnreachableUntilExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newPollScript()
		for range 200 {
			s.answers = append(s.answers, pollAnswer{err: errors.New("connection refused")})
		}
		_, err := pairScripted(t, s)
		if !errors.Is(err, ErrPairingExpired) || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("err %v", err)
		}
		if n := len(s.asked); n != 120 || s.asked[n-1] != 10*time.Minute {
			t.Fatalf("polled %d times, last at %v; want 120, the last at 10m", n, s.asked[n-1])
		}
	})
}

// The client reads the token endpoint's answers: the RFC's error shape,
// not the usual envelope, and the usual envelope for everything else.
func TestClientReadsTokenAnswers(t *testing.T) {
	var status int
	var body, retry string
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = r.Method + " " + r.URL.Path + " " + string(b)
		if retry != "" {
			w.Header().Set("Retry-After", retry)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	defer srv.Close()
	c := httpapi.NewClient(srv.URL, "", nil)
	ctx := context.Background()

	status, body = 200, `{"device_code":"ls_pair_x","user_code":"BDFG-HJKL","verification_uri":"https://s/pair","verification_uri_complete":"https://s/pair?code=BDFGHJKL","interval":5,"expires_in":600}`
	st, err := c.StartPairing(ctx, "desk", "linux")
	if err != nil || st.DeviceCode != "ls_pair_x" || st.UserCode != "BDFG-HJKL" || st.Interval != 5*time.Second ||
		st.ExpiresIn != 10*time.Minute || st.VerificationURIComplete != "https://s/pair?code=BDFGHJKL" {
		t.Fatalf("start: %+v %v", st, err)
	}
	if got != `POST /api/v1/pair {"device_name":"desk","os":"linux"}` {
		t.Fatalf("start sent %s", got)
	}

	status, body = 400, `{"error":"slow_down","error_description":"poll less often","interval":10}`
	p, err := c.PollPairing(ctx, "ls_pair_x")
	if err != nil || p.Outcome != presence.PollSlowDown || p.Interval != 10*time.Second || p.Description != "poll less often" {
		t.Fatalf("slow_down: %+v %v", p, err)
	}
	if got != `POST /api/v1/pair/token {"device_code":"ls_pair_x"}` {
		t.Fatalf("poll sent %s", got)
	}

	status, body = 200, `{"access_token":"ls_dev_new","token_type":"Bearer","device":{"id":3,"name":"desk","os":"linux"},"handle":"ada"}`
	p, err = c.PollPairing(ctx, "ls_pair_x")
	if err != nil || p.Outcome != presence.PollApproved || p.Token != "ls_dev_new" || p.Device.ID != 3 || p.Handle != "ada" {
		t.Fatalf("approved: %+v %v", p, err)
	}

	status, body, retry = 429, `{"error":{"code":"rate_limited","message":"slow down"}}`, "30"
	_, err = c.PollPairing(ctx, "ls_pair_x")
	var ae *httpapi.APIError
	if !errors.As(err, &ae) || ae.Status != 429 || ae.Code != presence.ERATELIMIT || ae.Retry != 30*time.Second {
		t.Fatalf("rate limited: %v", err)
	}
	retry = ""

	status, body = 400, `{"error":{"code":"invalid","message":"device_code is required"}}`
	if _, err = c.PollPairing(ctx, ""); presence.ErrorCode(err) != presence.EINVALID {
		t.Fatalf("envelope: %v", err)
	}

	status, body = 502, `<html>bad gateway</html>`
	if _, err = c.PollPairing(ctx, "ls_pair_x"); !errors.As(err, &ae) || ae.Status != 502 {
		t.Fatalf("proxy failure: %v", err)
	}
}
