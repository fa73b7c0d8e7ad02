package agenthost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/lastseen/lastseen/backend/apierror"
	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/backend/notify"
	"github.com/lastseen/lastseen/backend/presence"
)

// Service kinds, as the local API's status names them.
const (
	kindLocal  = "local"
	kindRemote = "remote"
)

// service is one choice of the service the agent talks to. Every switch
// makes a new one and cancels the old one's context, so whatever still
// works for the old one (a handle lookup, a beat in flight) stops waiting,
// and its late answers are dropped: they are written only while their
// service is still the one in use (Host.svc == s), never by kind.
type service struct {
	ctx    context.Context
	cancel context.CancelFunc
	remote bool
	url    string
	reads  http.Handler // the dashboard's /api/v1 reads
	// watcher announces watched people coming online (remote only; nil
	// without notifications).
	watcher *notify.Watcher

	// Who this device is there; under Host.mu.
	id identity
}

func (s *service) kind() string {
	if s.remote {
		return kindRemote
	}
	return kindLocal
}

// begin makes s the service in use and cancels the one before it.
func (h *Host) begin(s *service) *service {
	s.ctx, s.cancel = context.WithCancel(h.life)
	h.mu.Lock()
	old := h.svc
	h.svc = s
	h.mu.Unlock()
	if old != nil {
		old.cancel()
	}
	return s
}

// learned records what a service said about this device, if s is still
// the service in use.
func (h *Host) learned(s *service, update func(*identity)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.svc == s {
		update(&s.id)
	}
}

// useService points the sender and the dashboard's reads at the embedded
// service (serverURL == "") or at a remote lastseend. handle is the user's
// handle there when already known (a connection test just asked).
func (h *Host) useService(ctx context.Context, serverURL, token, handle string) error {
	if serverURL == "" {
		s, err := h.db.Settings(ctx)
		if err != nil {
			return fmt.Errorf("read local tokens: %w", err)
		}
		userToken := s.LocalUserToken
		reads := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+userToken)
			h.service.ServeHTTP(w, r)
		})
		h.mu.Lock()
		id := h.local
		h.mu.Unlock()
		h.begin(&service{url: h.url, reads: reads, id: id})
		return h.agent.SetUploader(ctx, httpapi.NewClient(h.url, s.LocalDeviceToken, h.hc), kindLocal)
	}
	u, err := checkServerURL(serverURL)
	if err != nil {
		return err
	}
	svc := h.begin(&service{remote: true, url: u.String(), reads: remoteProxy(u, token), id: identity{handle: handle}})
	c := httpapi.NewClient(u.String(), token, h.hc)
	h.watchPeople(svc, token)
	if handle == "" {
		go h.learnHandle(svc, func(ctx context.Context) (string, error) {
			me, err := c.Me(ctx)
			return me.Handle, err
		})
	}
	sum := sha256.Sum256([]byte(token))
	return h.agent.SetUploader(ctx, recordingUploader{c, h, svc}, u.String()+"#"+hex.EncodeToString(sum[:6]))
}

// recordingUploader learns this device's id and name on the remote service
// from the answers to its beats (the API has no "who am I" for devices).
type recordingUploader struct {
	*httpapi.Client
	h   *Host
	svc *service
}

func (r recordingUploader) PostHeartbeats(ctx context.Context, b presence.Batch) (presence.BatchResult, error) {
	res, err := r.Client.PostHeartbeats(ctx, b)
	if err == nil && res.Device.ID != 0 {
		r.h.learned(r.svc, func(id *identity) { id.deviceID, id.deviceName = res.Device.ID, res.Device.Name })
	}
	return res, err
}

// Bounds of the handle lookup.
const (
	meTimeout  = 10 * time.Second
	meRetryMin = time.Second
	meRetryMax = 5 * time.Minute
)

// learnHandle asks the remote service s whose device this is, retrying
// with backoff while it cannot answer; it stops as soon as s is no longer
// the service in use (its context ends), and an answer that comes after
// that is dropped.
func (h *Host) learnHandle(s *service, me func(context.Context) (string, error)) {
	for wait := meRetryMin; ; wait = min(2*wait, meRetryMax) {
		ctx, cancel := context.WithTimeout(s.ctx, meTimeout)
		handle, err := me(ctx)
		cancel()
		if err == nil {
			h.learned(s, func(id *identity) { id.handle = handle })
			return
		}
		if s.ctx.Err() != nil || presence.ErrorCode(err) == presence.EUNAUTHORIZED {
			return
		}
		h.log.Debug("ask the service whose device this is", "url", s.url, "err", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
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

// CheckDeviceToken accepts a device token and nothing else: the agent
// beats as a device, and a user token would let it read and act as the
// whole account.
func CheckDeviceToken(token string) error {
	if kind, err := presence.TokenKindOf(token); err != nil || kind != presence.DeviceToken {
		return presence.Errorf(presence.EINVALID, "the token must be a device token (ls_dev_…): create one in the service's dashboard or with `lastseend device add HANDLE NAME`")
	}
	return nil
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
			apierror.Write(w, http.StatusBadGateway, apierror.Detail{
				Code: presence.EUNAVAILABLE, Message: fmt.Sprintf("cannot reach %s: %v", u.Host, rootCause(err)),
			})
		},
	}
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
// It returns the user's handle there.
func (h *Host) testService(ctx context.Context, serverURL, token string) (handle string, err error) {
	u, err := checkServerURL(serverURL)
	if err != nil {
		return "", err
	}
	if err := CheckDeviceToken(token); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c := httpapi.NewClient(u.String(), token, h.hc)
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
