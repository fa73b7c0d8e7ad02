package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/lastseen/lastseen/backend/apierror"
	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/ssestream"
)

// HTTPService is the Service of a lastseend at BaseURL, asked with a
// device token (which reads for its user).
type HTTPService struct {
	BaseURL string
	Token   string
	// Client sends the requests; it must have no overall timeout (the
	// stream lasts), and http.DefaultClient is used when nil.
	Client *http.Client
	// Silence is how long the stream may stay quiet, keepalives included,
	// before it is taken for dead (a connection a NAT or a sleep cut
	// without telling either end); DefaultSilence when 0.
	Silence time.Duration
}

// DefaultSilence is four of the service's keepalive periods (15 s).
const DefaultSilence = time.Minute

// requestTimeout bounds a read of the watch list or the presence.
const requestTimeout = 30 * time.Second

// Watches is GET /api/v1/watches.
func (s HTTPService) Watches(ctx context.Context) ([]presence.Watch, error) {
	var out struct {
		Watches []presence.Watch `json:"watches"`
	}
	err := s.getJSON(ctx, "/api/v1/watches", &out)
	return out.Watches, err
}

// Presence is GET /api/v1/presence, as each user's status by handle.
func (s HTTPService) Presence(ctx context.Context) (map[string]presence.State, error) {
	var out struct {
		Users []struct {
			Handle string         `json:"handle"`
			Status presence.State `json:"status"`
		} `json:"users"`
	}
	if err := s.getJSON(ctx, "/api/v1/presence", &out); err != nil {
		return nil, err
	}
	m := make(map[string]presence.State, len(out.Users))
	for _, u := range out.Users {
		m[u.Handle] = u.Status
	}
	return m, nil
}

func (s HTTPService) getJSON(ctx context.Context, path string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	resp, err := s.get(ctx, path, "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("GET %s: decode: %w", path, err)
	}
	return nil
}

// get sends a GET and answers a 200; anything else is the service's error.
func (s HTTPService) get(ctx context.Context, path, accept string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(s.BaseURL, "/")+path, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("Authorization", "Bearer "+s.Token)
	hc := s.Client
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		d := apierror.Decode(resp.StatusCode, body)
		return nil, fmt.Errorf("GET %s: %d: %w", path, resp.StatusCode, &presence.Error{Code: d.Code, Message: d.Message})
	}
	return resp, nil
}

// Events opens GET /api/v1/events from now on (no Last-Event-ID: what
// happened while disconnected is in the next snapshot, not announced).
func (s HTTPService) Events(ctx context.Context) (Stream, error) {
	ctx, cancel := context.WithCancel(ctx)
	resp, err := s.get(ctx, "/api/v1/events", "text/event-stream")
	if err != nil {
		cancel()
		return nil, err
	}
	silence := s.Silence
	if silence <= 0 {
		silence = DefaultSilence
	}
	st := &httpStream{body: resp.Body, r: ssestream.NewReader(resp.Body), cancel: cancel, silence: silence}
	st.quiet = time.AfterFunc(silence, st.timedOut)
	return st, nil
}

// httpStream reads presence changes off an event stream, ending it when
// it falls silent for too long.
type httpStream struct {
	body    io.ReadCloser
	r       *ssestream.Reader
	cancel  context.CancelFunc
	silence time.Duration
	quiet   *time.Timer

	mu     sync.Mutex
	silent bool
}

func (s *httpStream) timedOut() {
	s.mu.Lock()
	s.silent = true
	s.mu.Unlock()
	s.cancel()
}

// presenceEvent is what the data of a "presence" event carries that
// matters here.
type presenceEvent struct {
	Handle     string         `json:"handle"`
	DeviceName string         `json:"device_name"`
	UserStatus presence.State `json:"user_status"`
}

// Next is the next presence change; other events and keepalives only
// prove the stream alive.
func (s *httpStream) Next() (Change, error) {
	for {
		f, err := s.r.Next()
		if err != nil {
			s.mu.Lock()
			silent := s.silent
			s.mu.Unlock()
			if silent {
				return Change{}, fmt.Errorf("event stream silent for %s", s.silence)
			}
			return Change{}, err
		}
		s.quiet.Reset(s.silence)
		if f.Keepalive || f.Event.Event != string(presence.EventPresence) {
			continue
		}
		var p presenceEvent
		if err := json.Unmarshal([]byte(f.Data), &p); err != nil || p.Handle == "" {
			continue // not one we can read; the next snapshot will be right
		}
		return Change{Handle: p.Handle, Device: p.DeviceName, Status: p.UserStatus}, nil
	}
}

// Close ends the stream and unblocks Next.
func (s *httpStream) Close() error {
	s.quiet.Stop()
	s.cancel()
	return s.body.Close()
}
