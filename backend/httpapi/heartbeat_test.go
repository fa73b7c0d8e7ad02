package httpapi

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

func TestHeartbeatErrors(t *testing.T) {
	e := newEnv(t)
	ann, annTok := e.user("ann")
	_, devTok := e.device(ann, "laptop")
	revoked, revokedTok := e.device(ann, "old")
	if err := e.store.RevokeDevice(e.ctx, ann.ID, revoked.ID); err != nil {
		t.Fatal(err)
	}
	ok := beatJSON(1, T0, "active")
	many := make([]string, presence.MaxBatchBeats+1)
	for i := range many {
		many[i] = beatJSON(int64(i+1), T0, "active")
	}
	huge := batchJSON(ok) + strings.Repeat(" ", 2<<20) // 2 MiB, mostly padding

	tests := []struct {
		name   string
		req    request
		status int
		code   string
		msg    string // the message contains this
	}{
		{"malformed JSON", request{body: `{"beats":[`}, 400, presence.EINVALID, "malformed JSON"},
		{"syntax error", request{body: `{"beats":[}`}, 400, presence.EINVALID, "malformed JSON at byte 11"},
		{"not an object", request{body: `[1,2]`}, 400, presence.EINVALID, "body must be an object, not array"},
		{"seq of the wrong type", request{body: batchJSON(ok, `{"seq":"two","at":"2026-11-25T09:00:00Z","state":"active"}`)}, 400, presence.EINVALID, `field "beats[1].seq" must be an integer, not string`},
		{"fractional seq", request{body: batchJSON(`{"seq":1.5,"at":"2026-11-25T09:00:00Z","state":"active"}`)}, 400, presence.EINVALID, `field "beats[0].seq" must be an integer`},
		{"state of the wrong type", request{body: batchJSON(`{"seq":1,"at":"2026-11-25T09:00:00Z","state":3}`)}, 400, presence.EINVALID, `field "beats[0].state" must be a string`},
		{"beats not an array", request{body: `{"beats":{"seq":1}}`}, 400, presence.EINVALID, `field "beats" must be an array, not object`},
		{"time that is not a time", request{body: batchJSON(ok, `{"seq":2,"at":"yesterday","state":"active"}`)}, 400, presence.EINVALID, `field "beats[1].at" must be an RFC 3339 time`},
		{"bad sent_at", request{body: `{"sent_at":"noon","beats":[` + ok + `]}`}, 400, presence.EINVALID, `field "sent_at" must be an RFC 3339 time`},
		{"unknown top-level field", request{body: `{"beats":[` + ok + `],"device":"x"}`}, 400, presence.EINVALID, `unknown field "device"`},
		{"unknown beat field", request{body: batchJSON(`{"seq":1,"at":"2026-11-25T09:00:00Z","state":"active","mood":"good"}`)}, 400, presence.EINVALID, `unknown field "beats[0].mood"`},
		{"two JSON values", request{body: batchJSON(ok) + batchJSON(ok)}, 400, presence.EINVALID, "exactly one JSON value"},
		{"empty body", request{body: ""}, 400, presence.EINVALID, "body is empty"},
		{"empty batch", request{body: `{"sent_at":"2026-11-25T09:00:00Z","beats":[]}`}, 400, presence.EINVALID, "beats must not be empty"},
		{"no beats at all", request{body: `{}`}, 400, presence.EINVALID, "beats must not be empty"},
		{"1001 beats", request{body: batchJSON(many...)}, 413, presence.ETOOLARGE, "at most 1000 beats, got 1001"},
		{"2 MiB body", request{body: huge}, 413, presence.ETOOLARGE, "body exceeds 1 MiB"},

		{"no token", request{token: "-", body: batchJSON(ok)}, 401, presence.EUNAUTHORIZED, "sign in"},
		{"not a bearer header", request{token: "-", header: map[string]string{"Authorization": "Basic YW5uOnB3"}, body: batchJSON(ok)}, 401, presence.EUNAUTHORIZED, "Bearer"},
		{"garbage token", request{token: "hello", body: batchJSON(ok)}, 401, presence.EUNAUTHORIZED, ""},
		{"unknown device token", request{token: "ls_dev_" + strings.Repeat("A", 43), body: batchJSON(ok)}, 401, presence.EUNAUTHORIZED, ""},
		{"revoked device token", request{token: revokedTok, body: batchJSON(ok)}, 401, presence.EUNAUTHORIZED, ""},
		{"user token posting heartbeats", request{token: annTok, body: batchJSON(ok)}, 403, presence.EFORBIDDEN, "heartbeats need a device token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.req
			req.method, req.path = http.MethodPost, "/api/v1/heartbeats"
			switch req.token {
			case "":
				req.token = devTok
			case "-":
				req.token = ""
			}
			resp := e.do(req)
			if resp.status != tt.status {
				t.Fatalf("status %d, want %d; body %s", resp.status, tt.status, resp.body)
			}
			got := resp.apiError(t)
			if got.Code != tt.code || !strings.Contains(got.Message, tt.msg) {
				t.Errorf("error %+v, want code %s and a message with %q", got, tt.code, tt.msg)
			}
			if tt.status == 401 && resp.header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
		})
	}
	// Nothing of the refused batches may have reached the store.
	st, err := e.store.DeviceStatus(e.ctx, mustDevice(t, e, ann, "laptop").ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Presence.LastSeq != 0 {
		t.Errorf("a refused batch was applied: last_seq %d", st.Presence.LastSeq)
	}
}

func mustDevice(t *testing.T, e *env, u presence.User, name string) presence.DeviceStatus {
	t.Helper()
	ds, err := e.store.Devices(e.ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.Name == name {
			return d
		}
	}
	t.Fatalf("no device %q", name)
	return presence.DeviceStatus{}
}

// Beats are judged one by one: the bad ones are listed, the rest applied.
func TestHeartbeatRejections(t *testing.T) {
	e := newEnv(t)
	ann, _ := e.user("ann")
	d, tok := e.device(ann, "laptop")

	type want struct {
		accepted, duplicates int
		rejected             map[int64]string // seq → part of the reason
		lastSeq              int64
		status               presence.State
	}
	steps := []struct {
		name  string
		beats []presence.Beat
		want  want
	}{
		{"a good beat", []presence.Beat{beat(1, T0.Add(-time.Minute), presence.Active)},
			want{1, 0, nil, 1, presence.Active}},
		{"a beat a year old among good ones", []presence.Beat{
			beat(2, T0.Add(-30*time.Second), presence.Active),
			beat(3, T0.AddDate(-1, 0, 0), presence.Active),
			beat(4, T0, presence.Active),
		}, want{2, 0, map[int64]string{3: "older than"}, 4, presence.Active}},
		{"a beat an hour in the future", []presence.Beat{beat(5, T0.Add(time.Hour), presence.Active)},
			want{0, 0, map[int64]string{5: "in the future"}, 4, presence.Active}},
		{"a re-sent seq", []presence.Beat{beat(4, T0, presence.Active), beat(5, T0.Add(time.Second), presence.Idle)},
			want{1, 1, nil, 5, presence.Idle}},
		{"an unknown state, a zero seq and a repeat within the batch", []presence.Beat{
			{Seq: 6, At: T0.Add(2 * time.Second), State: "sleeping"},
			{Seq: 0, At: T0.Add(2 * time.Second), State: presence.Idle},
			beat(7, T0.Add(3*time.Second), presence.Idle),
			beat(7, T0.Add(3*time.Second), presence.Idle),
		}, want{1, 0, map[int64]string{6: "unknown state", 0: "seq must be a positive integer", 7: "repeated"}, 7, presence.Idle}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			res := e.beats(tok, st.beats...)
			if res.Accepted != st.want.accepted || res.Duplicates != st.want.duplicates || res.LastSeq != st.want.lastSeq {
				t.Errorf("accepted %d duplicates %d last_seq %d, want %d %d %d", res.Accepted, res.Duplicates, res.LastSeq, st.want.accepted, st.want.duplicates, st.want.lastSeq)
			}
			if res.Rejected == nil {
				t.Errorf("rejected is nil, want a list")
			}
			if len(res.Rejected) != len(st.want.rejected) {
				t.Errorf("rejected %+v, want %v", res.Rejected, st.want.rejected)
			}
			for _, r := range res.Rejected {
				if w, ok := st.want.rejected[r.Seq]; !ok || !strings.Contains(r.Error, w) {
					t.Errorf("rejection %+v, want one of %v", r, st.want.rejected)
				}
			}
			if res.Device.ID != d.ID || res.Device.Name != "laptop" || res.Device.Status != st.want.status {
				t.Errorf("device %+v, want laptop %s", res.Device, st.want.status)
			}
		})
	}

	t.Run("every beat rejected is still a processed batch", func(t *testing.T) {
		resp := e.do(request{method: "POST", path: "/api/v1/heartbeats", token: tok,
			body: batchJSON(beatJSON(8, T0.AddDate(-1, 0, 0), "active"), beatJSON(9, T0.Add(time.Hour), "active"))})
		if resp.status != http.StatusOK {
			t.Fatalf("status %d: %s", resp.status, resp.body)
		}
		for _, k := range []string{`"accepted":0`, `"duplicates":0`, `"last_seq":7`, `"rejected":[{"seq":8`, `"device":{"id":`} {
			if !strings.Contains(string(resp.body), k) {
				t.Errorf("body %s lacks %s", resp.body, k)
			}
		}
	})

	t.Run("an empty rejection list is [] not null", func(t *testing.T) {
		resp := e.do(request{method: "POST", path: "/api/v1/heartbeats", token: tok, body: batchJSON(beatJSON(10, T0.Add(4*time.Second), "idle"))})
		if !strings.Contains(string(resp.body), `"rejected":[]`) {
			t.Errorf("body %s, want \"rejected\":[]", resp.body)
		}
	})

	t.Run("clock skew is corrected from sent_at", func(t *testing.T) {
		// The device's clock runs an hour fast: its beat "an hour ahead" is now.
		res, err := e.client(tok).PostHeartbeats(e.ctx, presence.Batch{
			SentAt: T0.Add(time.Hour + 5*time.Second),
			Beats:  []presence.Beat{beat(11, T0.Add(time.Hour+10*time.Second), presence.Active)},
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Accepted != 1 || len(res.Rejected) != 0 {
			t.Errorf("skewed batch: %+v, want the beat accepted", res)
		}
	})

	t.Run("counted in metrics", func(t *testing.T) {
		body := string(e.do(request{method: "GET", path: "/metrics"}).body)
		for _, want := range []string{
			`lastseen_beats_total{result="accepted"} 7`,
			`lastseen_beats_total{result="duplicate"} 1`,
			`lastseen_beats_total{result="rejected"} 7`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.DeviceRate = Rate{PerSecond: 0.5, Burst: 2}
		c.UserRate = Rate{PerSecond: 1, Burst: 1}
	})
	ann, userTok := e.user("ann")
	_, tok := e.device(ann, "laptop")
	_, otherTok := e.device(ann, "desktop")
	post := func(tok string, seq int64) response {
		return e.do(request{method: "POST", path: "/api/v1/heartbeats", token: tok, body: batchJSON(beatJSON(seq, e.clock.Now(), "active"))})
	}
	for i := range 2 {
		if r := post(tok, int64(i+1)); r.status != 200 {
			t.Fatalf("beat %d within the burst: %d %s", i, r.status, r.body)
		}
	}
	r := post(tok, 3)
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("third beat: %d, want 429", r.status)
	}
	if got := r.apiError(t); got.Code != presence.ERATELIMIT {
		t.Errorf("code %s, want rate_limited", got.Code)
	}
	if ra := r.header.Get("Retry-After"); ra != "2" {
		t.Errorf("Retry-After %q, want 2 (whole seconds until one token at 0.5/s)", ra)
	}
	t.Run("per token, not per address", func(t *testing.T) {
		if r := post(otherTok, 1); r.status != 200 {
			t.Errorf("another token from the same address: %d", r.status)
		}
	})
	t.Run("the client reports Retry-After", func(t *testing.T) {
		_, err := e.client(tok).PostHeartbeats(e.ctx, presence.Batch{Beats: []presence.Beat{beat(3, T0, presence.Active)}})
		var ra presence.RetryAfterer
		if presence.ErrorCode(err) != presence.ERATELIMIT || !asRetry(err, &ra) || ra.RetryAfter() != 2*time.Second {
			t.Errorf("client error %v, want rate_limited with RetryAfter 2s", err)
		}
	})
	t.Run("refills with time", func(t *testing.T) {
		e.clock.Advance(2 * time.Second)
		if r := post(tok, 3); r.status != 200 {
			t.Errorf("after 2 s: %d %s", r.status, r.body)
		}
	})
	t.Run("user tokens have their own rate", func(t *testing.T) {
		if r := e.do(request{method: "GET", path: "/api/v1/me", token: userTok}); r.status != 200 {
			t.Fatalf("first read: %d", r.status)
		}
		r := e.do(request{method: "GET", path: "/api/v1/me", token: userTok})
		if r.status != 429 || r.header.Get("Retry-After") != "1" {
			t.Errorf("second read: %d Retry-After %q, want 429 and 1", r.status, r.header.Get("Retry-After"))
		}
	})
}
