package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/lastseen/lastseen/backend/apierror"
	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/ssestream"
)

// Client is a typed client of the v1 API. It speaks the same wire types as
// the handlers. Safe for concurrent use.
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// NewClient returns a client of the service at baseURL (scheme://host[:port],
// optionally with a path prefix) that authenticates with token (a user or
// device token; empty for the public endpoints or a cookie jar in hc). A nil
// hc is a client without a timeout: every call takes a context, and the
// event stream must outlive any fixed timeout.
func NewClient(baseURL, token string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), token: token, hc: hc}
}

// APIError is a failure the service answered with.
type APIError struct {
	Status  int
	Code    string // a presence error code: "invalid", "rate_limited", …
	Message string
	Retry   time.Duration // from Retry-After, zero when absent
}

func (e *APIError) Error() string {
	return fmt.Sprintf("lastseen: %d %s: %s", e.Status, e.Code, e.Message)
}

// Unwrap exposes the domain error, so presence.ErrorCode and
// presence.ErrorMessage work on an *APIError as on a store's error.
func (e *APIError) Unwrap() error { return &presence.Error{Code: e.Code, Message: e.Message} }

// RetryAfter is the server's Retry-After (presence.RetryAfterer).
func (e *APIError) RetryAfter() time.Duration { return e.Retry }

// maxErrorBody bounds how much of a failed response is read.
const maxErrorBody = 64 << 10

// PostHeartbeats sends a batch (device token).
func (c *Client) PostHeartbeats(ctx context.Context, b presence.Batch) (presence.BatchResult, error) {
	var out presence.BatchResult
	err := c.do(ctx, http.MethodPost, "/api/v1/heartbeats", nil, b, &out)
	return out, err
}

// Me is the signed-in user.
func (c *Client) Me(ctx context.Context) (MeResponse, error) {
	var out MeResponse
	err := c.do(ctx, http.MethodGet, "/api/v1/me", nil, nil, &out)
	return out, err
}

// UpdateMe changes the user's name, time zone or public opt-in.
func (c *Client) UpdateMe(ctx context.Context, upd MeUpdate) (MeResponse, error) {
	var out MeResponse
	err := c.do(ctx, http.MethodPatch, "/api/v1/me", nil, upd, &out)
	return out, err
}

// Presence is every user's presence.
func (c *Client) Presence(ctx context.Context) (PresenceResponse, error) {
	var out PresenceResponse
	err := c.do(ctx, http.MethodGet, "/api/v1/presence", nil, nil, &out)
	return out, err
}

// Sessions lists the user's spans.
func (c *Client) Sessions(ctx context.Context, q SessionsQuery) (SessionsResponse, error) {
	v := url.Values{}
	if !q.From.IsZero() {
		v.Set("from", q.From.UTC().Format(time.RFC3339Nano))
	}
	if !q.To.IsZero() {
		v.Set("to", q.To.UTC().Format(time.RFC3339Nano))
	}
	if q.DeviceID != 0 {
		v.Set("device", strconv.FormatInt(q.DeviceID, 10))
	}
	if q.State != "" {
		v.Set("state", q.State)
	}
	var out SessionsResponse
	err := c.do(ctx, http.MethodGet, "/api/v1/sessions", v, nil, &out)
	return out, err
}

// DailyStats is the user's time per day and state.
func (c *Client) DailyStats(ctx context.Context, q DailyStatsQuery) (DailyStatsResponse, error) {
	v := url.Values{}
	for k, s := range map[string]string{"from": q.From, "to": q.To, "tz": q.TZ} {
		if s != "" {
			v.Set(k, s)
		}
	}
	var out DailyStatsResponse
	err := c.do(ctx, http.MethodGet, "/api/v1/stats/daily", v, nil, &out)
	return out, err
}

// Devices lists the user's devices.
func (c *Client) Devices(ctx context.Context) (DevicesResponse, error) {
	var out DevicesResponse
	err := c.do(ctx, http.MethodGet, "/api/v1/devices", nil, nil, &out)
	return out, err
}

// AddDevice adds a device (user token); its token is in the answer only.
func (c *Client) AddDevice(ctx context.Context, name string) (NewDevice, error) {
	var out NewDevice
	err := c.do(ctx, http.MethodPost, "/api/v1/devices", nil, AddDeviceRequest{Name: name}, &out)
	return out, err
}

// RevokeDevice revokes a device and its token (user token).
func (c *Client) RevokeDevice(ctx context.Context, id int64) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/devices/"+strconv.FormatInt(id, 10), nil, nil, nil)
}

// Login signs a browser-like client in with a user token: the session
// cookie lands in hc's cookie jar (give NewClient an http.Client with a Jar).
func (c *Client) Login(ctx context.Context, userToken string) (MeResponse, error) {
	var out MeResponse
	err := c.do(ctx, http.MethodPost, "/api/v1/login", nil, LoginRequest{Token: userToken}, &out)
	return out, err
}

// Logout clears the session cookie.
func (c *Client) Logout(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/api/v1/logout", nil, nil, nil)
}

// Public is a public user's status (no token needed).
func (c *Client) Public(ctx context.Context, handle string) (PublicStatus, error) {
	var out PublicStatus
	err := c.do(ctx, http.MethodGet, "/api/v1/public/"+url.PathEscape(handle), nil, nil, &out)
	return out, err
}

// Badge is a user's SVG badge. For a user without a public status it returns
// the grey "unknown" badge together with an *APIError (404).
func (c *Client) Badge(ctx context.Context, handle string) ([]byte, error) {
	resp, err := c.send(ctx, http.MethodGet, "/badge/"+url.PathEscape(handle)+".svg", nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	svg, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil {
		return nil, fmt.Errorf("read badge: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return svg, &APIError{Status: resp.StatusCode, Code: apierror.CodeOf(resp.StatusCode), Message: "no public status for " + handle}
	}
	return svg, nil
}

// Health is nil while the service is up.
func (c *Client) Health(ctx context.Context) error {
	var out HealthResponse
	if err := c.do(ctx, http.MethodGet, "/healthz", nil, nil, &out); err != nil {
		return err
	}
	if out.Status != "ok" {
		return fmt.Errorf("health: status %q", out.Status)
	}
	return nil
}

// PairingStart is POST /api/v1/pair's answer: what the device shows, and
// the device code it polls with (RFC 8628 §3.2).
type PairingStart struct {
	DeviceCode string
	// UserCode is the code as shown and read aloud: BDFG-HJKL.
	UserCode                string
	VerificationURI         string
	VerificationURIComplete string // VerificationURI with the code in it
	// Interval is how long to wait between polls; ExpiresIn how long the
	// codes live from the answer on.
	Interval, ExpiresIn time.Duration
}

// PairInvalidGrant is the token endpoint's answer to a device code it does
// not know, or one already spent. The other answers are presence's
// PollOutcome names.
const PairInvalidGrant presence.PollOutcome = "invalid_grant"

// PairingPoll is one answer of POST /api/v1/pair/token.
type PairingPoll struct {
	// Outcome is presence.PollApproved when the token is issued, else the
	// RFC 8628 error code: presence.PollPending, PollSlowDown, PollDenied,
	// PollExpired or PairInvalidGrant (a newer server may send others).
	Outcome     presence.PollOutcome
	Description string
	// Interval is the interval the server asks for from now on; zero when
	// it named none.
	Interval time.Duration

	// Set when approved: the device token (shown once), the new device and
	// its user's handle.
	Token  string
	Device presence.Device
	Handle string
}

// StartPairing asks the service to pair this device (no token needed). name
// and os describe the device to the person who approves it.
func (c *Client) StartPairing(ctx context.Context, deviceName, os string) (PairingStart, error) {
	var out PairStartResponse
	in := PairRequest{DeviceName: deviceName, OS: os}
	if err := c.do(ctx, http.MethodPost, "/api/v1/pair", nil, in, &out); err != nil {
		return PairingStart{}, err
	}
	if out.DeviceCode == "" || out.UserCode == "" || out.VerificationURI == "" {
		return PairingStart{}, fmt.Errorf("POST /api/v1/pair: the answer lacks a device code, a user code or a verification URI")
	}
	return PairingStart{
		DeviceCode: out.DeviceCode, UserCode: out.UserCode,
		VerificationURI: out.VerificationURI, VerificationURIComplete: out.VerificationURIComplete,
		Interval: seconds(out.Interval), ExpiresIn: seconds(out.ExpiresIn),
	}, nil
}

// PollPairing asks once whether the pairing of deviceCode was decided. The
// token endpoint's refusals (pending, slow down, denied, expired, invalid
// grant) are answers, not errors: they come back as the PairingPoll's
// Outcome. The error is for everything else: the service cannot be
// reached, or answers otherwise (a rate limit, say: an *APIError).
func (c *Client) PollPairing(ctx context.Context, deviceCode string) (PairingPoll, error) {
	const path = "/api/v1/pair/token"
	b, err := json.Marshal(PairTokenRequest{DeviceCode: deviceCode})
	if err != nil {
		return PairingPoll{}, fmt.Errorf("POST %s: encode: %w", path, err)
	}
	resp, err := c.send(ctx, http.MethodPost, path, nil, bytes.NewReader(b))
	if err != nil {
		return PairingPoll{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil {
		return PairingPoll{}, fmt.Errorf("POST %s: read answer: %w", path, err)
	}
	if resp.StatusCode < 300 {
		var ok PairTokenResponse
		if err := json.Unmarshal(raw, &ok); err != nil || ok.AccessToken == "" {
			return PairingPoll{}, fmt.Errorf("POST %s: an answer without a token", path)
		}
		return PairingPoll{Outcome: presence.PollApproved, Token: ok.AccessToken, Device: ok.Device, Handle: ok.Handle}, nil
	}
	// The RFC's "error" is a string where the usual envelope (a proxy's
	// failure, say) has an object: that one does not decode here.
	var refusal PairTokenError
	if resp.StatusCode < 500 && json.Unmarshal(raw, &refusal) == nil && refusal.Error != "" {
		return PairingPoll{
			Outcome: presence.PollOutcome(refusal.Error), Description: refusal.ErrorDescription,
			Interval: seconds(refusal.Interval),
		}, nil
	}
	return PairingPoll{}, apiError(resp, raw)
}

// seconds reads a JSON count of seconds; a negative one is none.
func seconds(n int64) time.Duration {
	if n <= 0 {
		return 0
	}
	return time.Duration(min(n, int64(24*time.Hour/time.Second))) * time.Second
}

// do sends a JSON request and decodes a JSON answer into out (when not nil).
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encode: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	resp, err := c.send(ctx, method, path, q, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return readAPIError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	// Lenient on purpose: a newer server may add fields.
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

func (c *Client) send(ctx context.Context, method, path string, q url.Values, body io.Reader) (*http.Response, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return resp, nil
}

// readAPIError turns a failed response into an *APIError, ours or not (a
// proxy in between, say: then what can be known from the status).
func readAPIError(resp *http.Response) *APIError {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return apiError(resp, raw)
}

// apiError is the *APIError of a failed response whose body was read.
func apiError(resp *http.Response, raw []byte) *APIError {
	d := apierror.Decode(resp.StatusCode, raw)
	return &APIError{
		Status:  resp.StatusCode,
		Code:    d.Code,
		Message: d.Message,
		Retry:   parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
	}
}

// parseRetryAfter reads delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// Events opens the live stream. lastEventID, when not empty, resumes after
// that event (from EventStream.LastEventID of a previous stream).
func (c *Client) Events(ctx context.Context, lastEventID string) (*EventStream, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/v1/events", nil)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, readAPIError(resp)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		resp.Body.Close()
		return nil, fmt.Errorf("events: answer is %q, not an event stream", resp.Header.Get("Content-Type"))
	}
	r := ssestream.NewReader(resp.Body)
	r.SetLastEventID(lastEventID)
	return &EventStream{body: resp.Body, r: r}, nil
}

// EventStream reads Server-Sent Events. Not safe for concurrent use.
type EventStream struct {
	body io.ReadCloser
	r    *ssestream.Reader
}

// Next blocks for the next event. It returns io.EOF when the server ends the
// stream (shutdown, or this reader fell too far behind): reconnect with
// LastEventID to resume. Comments (keepalives) are skipped.
func (s *EventStream) Next() (SSEEvent, error) {
	for {
		f, err := s.r.Next()
		if err != nil {
			return SSEEvent{}, err
		}
		if !f.Keepalive {
			return SSEEvent(f.Event), nil
		}
	}
}

// LastEventID is the id of the last event read (or the one the stream was
// opened with): pass it to Client.Events to resume.
func (s *EventStream) LastEventID() string { return s.r.LastEventID() }

// Retry is the reconnect delay the server asked for (zero if it did not).
func (s *EventStream) Retry() time.Duration { return s.r.Retry() }

// Close ends the stream.
func (s *EventStream) Close() error { return s.body.Close() }
