package agenthost

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/backend/localapi"
	"github.com/lastseen/lastseen/backend/presence"
)

// Pairing from the window: the local API asks for codes, the person approves
// them in the browser, and the agent, polling in the background, switches
// itself to the service with the new device token. Local history stays.

// Bounds of pairing from the window.
const (
	// pairAskTimeout bounds asking a service for codes, and each poll.
	pairAskTimeout = 10 * time.Second
	// pairSaveTimeout bounds saving and switching to an approved service.
	pairSaveTimeout = 10 * time.Second
)

// pairings is the Host's pairing from the window: at most one at a time.
type pairings struct {
	// starting makes a start one step: no two starts ask for codes at once.
	starting sync.Mutex
	// clock paces the polls (nil: the system's); tests set it.
	clock PairingClock
	// wg counts the background waits, so Close lets an approval that came
	// in finish saving before the database closes.
	wg sync.WaitGroup

	mu  sync.Mutex
	run *pairRun // the pairing in progress or the last one's outcome; nil: none
}

// pairRun is one pairing the window started.
type pairRun struct {
	cancel context.CancelFunc
	st     localapi.PairStatus // under pairings.mu
}

// CheckServerURL accepts an http(s) URL with a host and nothing else (no
// credentials, query or fragment), and returns it without a trailing slash.
func CheckServerURL(s string) (string, error) {
	u, err := checkServerURL(s)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

// DeviceName is how this computer introduces itself when it asks to be
// paired: its host name, as the local account names it.
func DeviceName() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "this computer"
	}
	return truncate(host, presence.MaxDeviceNameRunes)
}

// DeviceOS is the OS a pairing request names (GOOS-style, like the facts).
func DeviceOS() string { return runtime.GOOS }

func (c *controls) StartPairing(ctx context.Context, r localapi.PairRequest) (localapi.PairStatus, error) {
	h := c.h()
	u, err := CheckServerURL(r.URL)
	if err != nil {
		return localapi.PairStatus{}, err
	}
	name := DeviceName()
	if r.Name != "" {
		if name, err = presence.NormalizeDeviceName(r.Name); err != nil {
			return localapi.PairStatus{}, err
		}
	}
	p := &h.pairs
	p.starting.Lock()
	defer p.starting.Unlock()
	// A new start replaces the pairing in progress: the person asked again.
	p.stop()

	transport := http.DefaultTransport
	if h.hc != nil {
		transport = h.hc.Transport
	}
	client := httpapi.NewClient(u, "", &http.Client{Transport: transport, Timeout: pairAskTimeout})
	askCtx, cancel := context.WithTimeout(ctx, pairAskTimeout)
	start, err := client.StartPairing(askCtx, name, DeviceOS())
	cancel()
	if err != nil {
		return localapi.PairStatus{}, pairStartError(u, err)
	}
	expires := time.Now().Add(start.ExpiresIn).UTC()
	if start.ExpiresIn <= 0 {
		expires = time.Now().Add(presence.PairingTTL).UTC()
	}
	runCtx, stop := context.WithCancel(h.life)
	run := &pairRun{cancel: stop, st: localapi.PairStatus{
		State: localapi.PairPending, URL: u, UserCode: start.UserCode,
		VerificationURI: start.VerificationURI, VerificationURIComplete: start.VerificationURIComplete,
		ExpiresAt: &expires,
	}}
	p.mu.Lock()
	p.run = run
	st := run.st
	p.mu.Unlock()
	p.wg.Go(func() { h.waitPairing(runCtx, run, client, start) })
	h.log.Info("pairing started", "url", u, "user_code", start.UserCode)
	return st, nil
}

// waitPairing waits for the decision on run and, on approval, saves the
// service and switches to it. A run cancelled before the decision leaves
// no trace; one decided is recorded if it is still the Host's.
func (h *Host) waitPairing(ctx context.Context, run *pairRun, client *httpapi.Client, start httpapi.PairingStart) {
	paired, err := WaitPairing(ctx, client, start, h.pairs.clock)
	if err != nil && ctx.Err() != nil {
		return // cancelled: by the window, a new start or Close
	}
	if err == nil {
		// The code is spent: the token exists only here now, so it is saved
		// even when the pairing was cancelled meanwhile.
		err = h.switchToPaired(run.st.URL, paired)
	}
	h.pairs.mu.Lock()
	defer h.pairs.mu.Unlock()
	st := &run.st
	switch {
	case err == nil:
		st.State, st.Handle = localapi.PairApproved, paired.Handle
		st.Device = &localapi.DeviceRef{ID: paired.Device.ID, Name: paired.Device.Name}
		h.log.Info("paired", "url", st.URL, "handle", paired.Handle, "device", paired.Device.Name)
	case errors.Is(err, ErrPairingDenied):
		st.State, st.Error = localapi.PairDenied, "the pairing was denied"
	case errors.Is(err, ErrPairingExpired), errors.Is(err, ErrPairingInvalidGrant):
		st.State, st.Error = localapi.PairExpired, "the code expired before it was approved: start again"
	default:
		st.State, st.Error = localapi.PairFailed, presence.ErrorMessage(err)
		if presence.ErrorCode(err) == presence.EINTERNAL {
			st.Error = err.Error()
		}
		h.log.Warn("pairing failed", "url", st.URL, "err", err)
	}
}

// switchToPaired saves the paired service as the remote service and
// switches to it, exactly as PUT /local/v1/service does.
func (h *Host) switchToPaired(url string, p Paired) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(h.life), pairSaveTimeout)
	defer cancel()
	h.switching.Lock()
	defer h.switching.Unlock()
	if err := h.db.SetServer(ctx, url, p.Token); err != nil {
		return fmt.Errorf("save the paired service: %w", err)
	}
	if err := h.useService(ctx, url, p.Token, p.Handle); err != nil {
		return fmt.Errorf("switch to the paired service: %w", err)
	}
	// The pairing's answer names the device; no beat has to first.
	h.mu.Lock()
	h.svc.id.deviceID, h.svc.id.deviceName = p.Device.ID, p.Device.Name
	h.mu.Unlock()
	return nil
}

// pairStartError says why a service gave no codes, in the local API's terms.
func pairStartError(url string, err error) error {
	var ae *httpapi.APIError
	if !errors.As(err, &ae) {
		return presence.Errorf(presence.EUNAVAILABLE, "cannot reach %s: %v", url, rootCause(err))
	}
	switch {
	case ae.Status == http.StatusNotFound || ae.Status == http.StatusMethodNotAllowed:
		return presence.Errorf(presence.EUNAVAILABLE, "%s does not offer pairing: is it a Lastseen service, and a recent one?", url)
	case ae.Status == http.StatusTooManyRequests:
		return presence.Errorf(presence.ERATELIMIT, "%s: too many pairing requests; try again later", url)
	case ae.Status >= 500:
		return presence.Errorf(presence.EUNAVAILABLE, "%s answered %d: %s", url, ae.Status, ae.Message)
	}
	return presence.Errorf(presence.EINVALID, "%s refused to pair: %s", url, ae.Message)
}

// stop cancels the pairing in progress, if any, and forgets it.
func (p *pairings) stop() {
	p.mu.Lock()
	run := p.run
	p.run = nil
	p.mu.Unlock()
	if run != nil {
		run.cancel()
	}
}

// status is the pairing in progress or the last one's outcome.
func (p *pairings) status() localapi.PairStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run == nil {
		return localapi.PairStatus{State: localapi.PairNone}
	}
	st := p.run.st
	if st.Device != nil {
		d := *st.Device
		st.Device = &d
	}
	return st
}

func (c *controls) Pairing(context.Context) (localapi.PairStatus, error) {
	return c.h().pairs.status(), nil
}

func (c *controls) CancelPairing(context.Context) (localapi.PairStatus, error) {
	p := &c.h().pairs
	p.stop()
	return p.status(), nil
}
