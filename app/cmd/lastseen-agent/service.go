package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/backend/presence"
)

// useService points the sender and the dashboard's reads at the embedded
// service (serverURL == "") or at a remote lastseend.
func (m *Main) useService(ctx context.Context, serverURL, token string) error {
	if serverURL == "" {
		s, err := m.db.Settings(ctx)
		if err != nil {
			return fmt.Errorf("read local tokens: %w", err)
		}
		userToken := s.LocalUserToken
		reads := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+userToken)
			m.service.ServeHTTP(w, r)
		})
		m.mu.Lock()
		m.reads = reads
		m.ident.kind, m.ident.url = "local", m.url
		m.mu.Unlock()
		up := httpapi.NewClient(m.url, s.LocalDeviceToken, m.hc)
		return m.agent.SetUploader(ctx, up, "local")
	}
	u, err := checkServerURL(serverURL)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.reads = remoteProxy(u, token)
	m.ident = identity{kind: "remote", url: u.String()}
	m.mu.Unlock()
	sum := sha256.Sum256([]byte(token))
	c := httpapi.NewClient(u.String(), token, m.hc)
	go m.learnRemoteHandle(c)
	return m.agent.SetUploader(ctx, recordingUploader{c, m}, u.String()+"#"+hex.EncodeToString(sum[:6]))
}

// recordingUploader learns this device's id and name on the remote service
// from the answers to its beats (the API has no "who am I" for devices).
type recordingUploader struct {
	*httpapi.Client
	m *Main
}

func (r recordingUploader) PostHeartbeats(ctx context.Context, b presence.Batch) (presence.BatchResult, error) {
	res, err := r.Client.PostHeartbeats(ctx, b)
	if err == nil && res.Device.ID != 0 {
		r.m.mu.Lock()
		if r.m.ident.kind == "remote" {
			r.m.ident.deviceID, r.m.ident.deviceName = res.Device.ID, res.Device.Name
		}
		r.m.mu.Unlock()
	}
	return res, err
}

// learnRemoteHandle asks the remote service whose device this is, retrying
// while it is unreachable; a later switch makes it give up.
func (m *Main) learnRemoteHandle(c *httpapi.Client) {
	for wait := time.Second; ; wait = min(2*wait, 5*time.Minute) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		me, err := c.Me(ctx)
		cancel()
		m.mu.Lock()
		current := m.ident.kind == "remote"
		if err == nil && current {
			m.ident.handle = me.Handle
		}
		m.mu.Unlock()
		if err == nil || !current || presence.ErrorCode(err) == presence.EUNAUTHORIZED {
			return
		}
		time.Sleep(wait)
	}
}

// checkServerURL accepts http(s) URLs with a host, and nothing else.
func checkServerURL(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(strings.TrimSpace(s), "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, presence.Errorf(presence.EINVALID, "server URL %q must look like https://lastseen.example.com", s)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, presence.Errorf(presence.EINVALID, "server URL must not carry credentials, a query or a fragment")
	}
	return u, nil
}

// remoteProxy forwards the dashboard's reads to a remote service with the
// device token, streaming SSE as it comes.
func remoteProxy(u *url.URL, token string) http.Handler {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Header.Set("Authorization", "Bearer "+token)
			pr.Out.Header.Del("Cookie")
		},
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			writeEnvelope(w, http.StatusBadGateway, presence.EUNAVAILABLE, fmt.Sprintf("cannot reach %s: %v", u.Host, rootCause(err)))
		},
	}
}

func writeEnvelope(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func rootCause(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// testService checks a remote service and device token before the agent
// switches to them: reachable, a Lastseen service, and the token accepted.
func (m *Main) testService(ctx context.Context, serverURL, token string) (handle string, err error) {
	u, err := checkServerURL(serverURL)
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(token, "ls_dev_") {
		return "", presence.Errorf(presence.EINVALID, "the token must be a device token (ls_dev_…): create one in the service's dashboard or with `lastseend device add HANDLE NAME`")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c := httpapi.NewClient(u.String(), token, m.hc)
	if err := c.Health(ctx); err != nil {
		var ae *httpapi.APIError
		if errors.As(err, &ae) {
			return "", presence.Errorf(presence.EUNAVAILABLE, "%s answered %d: is it a Lastseen service?", u.Host, ae.Status)
		}
		return "", presence.Errorf(presence.EUNAVAILABLE, "cannot reach %s: %v", u.Host, rootCause(err))
	}
	me, err := c.Me(ctx)
	if err != nil {
		if presence.ErrorCode(err) == presence.EUNAUTHORIZED {
			return "", presence.Errorf(presence.EINVALID, "%s does not accept this device token (unknown or revoked)", u.Host)
		}
		return "", presence.Errorf(presence.EUNAVAILABLE, "%s: %s", u.Host, presence.ErrorMessage(err))
	}
	return me.Handle, nil
}
