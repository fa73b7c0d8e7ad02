package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/lastseen/lastseen/backend/apierror"
	"github.com/lastseen/lastseen/backend/presence"
)

// Bridge is the one object the window binds for JavaScript
// (window.go.app.Bridge). It forwards the dashboard's requests to the
// agent's local API, adding the per-run secret, so neither the secret nor
// the device token ever reaches JavaScript.
type Bridge struct {
	link   *agentLink
	client *http.Client
	log    *slog.Logger
	// ready is closed once the window has started: bound methods wait on
	// it before touching state (Wails may call them as soon as the page
	// loads).
	ready <-chan struct{}
	// base ends when the window shuts down, cancelling requests in flight.
	base  func() context.Context
	state func() ConnState
	// timeout bounds one request.
	timeout time.Duration
}

// Response is the agent's answer as the dashboard sees it.
type Response struct {
	Status int    `json:"status"`
	Body   string `json:"body"`
}

// maxResponse caps what one answer may hold in memory; the biggest (a long
// sessions range) is far below it.
const maxResponse = 16 << 20

// Request forwards method and path (with query) and a JSON body to the
// agent. Only the agent's APIs (/api/v1/, /local/v1/) are reachable, and not
// the event stream, which arrives on the lastseen:event channel. An agent
// that cannot be reached is answered as 503 with the API's error envelope,
// so the dashboard handles it like any other failure; a malformed call is
// an error.
func (b *Bridge) Request(method, target, body string) (Response, error) {
	<-b.ready
	method = strings.ToUpper(method)
	if err := checkRequest(method, target); err != nil {
		return Response{}, err
	}
	ctx, cancel := context.WithTimeout(b.base(), b.timeout)
	defer cancel()

	info, err := b.link.current()
	if err != nil {
		return unavailable("the Lastseen agent is not running: %v", err), nil
	}
	resp, err := b.do(ctx, info, method, target, body)
	if retryable(resp, err) {
		// The agent may have restarted with a new port or secret.
		if fresh, changed := b.link.reload(); changed {
			resp, err = b.do(ctx, fresh, method, target, body)
		}
	}
	if err != nil {
		if ctx.Err() != nil && b.base().Err() == nil {
			return unavailable("the Lastseen agent did not answer within %v", b.timeout), nil
		}
		return unavailable("cannot reach the Lastseen agent at %s: %v", info.URL, err), nil
	}
	return *resp, nil
}

// Connection is the event stream's current state, for a page that loads
// after the last lastseen:connection event was sent.
func (b *Bridge) Connection() string {
	<-b.ready
	return string(b.state())
}

func (b *Bridge) do(ctx context.Context, info AgentInfo, method, target, body string) (*Response, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, info.URL+target, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+info.Secret)
	req.Header.Set("Accept", "application/json")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("read answer: %w", err)
	}
	if len(data) > maxResponse {
		return nil, fmt.Errorf("answer to %s %s exceeds %d bytes", method, target, maxResponse)
	}
	if resp.StatusCode >= 500 {
		b.log.Warn("agent request failed", "method", method, "path", target, "status", resp.StatusCode)
	}
	return &Response{Status: resp.StatusCode, Body: string(data)}, nil
}

// retryable reports whether a request may be sent again if agent.json now
// names another agent: the one asked is gone (its port refuses, its kept-alive
// connection ends) or no longer takes our secret. A request to a replaced
// agent cannot have reached its successor, so this holds for any method.
func retryable(resp *Response, err error) bool {
	return err != nil || resp.Status == http.StatusUnauthorized
}

// checkRequest is the allow-list: the window reaches nothing but the
// agent's two APIs, by an absolute, clean path.
func checkRequest(method, target string) error {
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return fmt.Errorf("method %q is not allowed", method)
	}
	u, err := url.Parse(target)
	if err != nil {
		return fmt.Errorf("path %q: %w", target, err)
	}
	if u.Scheme != "" || u.Host != "" || u.Opaque != "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("path %q must be a path, not a URL", target)
	}
	// The decoded path must be clean, so neither "/api/v1/../x" nor its
	// escaped forms ("%2e%2e", "%2f") walk out of the prefixes below.
	if path.Clean(u.Path) != u.Path {
		return fmt.Errorf("path %q is not clean", target)
	}
	if !strings.HasPrefix(u.Path, "/api/v1/") && !strings.HasPrefix(u.Path, "/local/v1/") {
		return fmt.Errorf("path %q is outside the agent's APIs (/api/v1/, /local/v1/)", target)
	}
	if u.Path == "/api/v1/events" {
		return errors.New("the event stream is not a request; listen to the lastseen:event channel")
	}
	return nil
}

// unavailable is a synthetic 503 in the API's error envelope. To the window
// the agent is the service it talks to, so an agent that is not there is
// "cannot serve now" (503); 502 stays what the agent says when the remote
// service behind it is down (see apierror).
func unavailable(format string, args ...any) Response {
	body := apierror.Encode(apierror.Detail{Code: presence.EUNAVAILABLE, Message: fmt.Sprintf(format, args...)})
	return Response{Status: http.StatusServiceUnavailable, Body: string(body)}
}
