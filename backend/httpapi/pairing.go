package httpapi

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lastseen/lastseen/backend/presence"
)

// Pairing a computer with a person's account, by the OAuth 2.0 Device
// Authorization Grant (RFC 8628): the agent asks for a pairing (§3.1-3.2)
// and shows the user code; the person, signed in, opens the verification
// URI, checks the device's name and approves (§3.3); the agent polls the
// token endpoint (§3.4) and gets its device token once approved (§3.5).
//
// The user code is short enough to type (8 letters, 20^8 codes), so
// guessing it is what the limits are for: each address and each user may
// look up or decide only so many codes in vain (PairCodeRate), checked
// before the lookup; and each address may start only so many pairings
// (PairRate), each live at most 10 minutes.

// maxOSLen bounds the os a device gives.
const maxOSLen = maxFactLen

// postPair is POST /api/v1/pair (no credential): a pairing starts.
func (s *Server) postPair(w http.ResponseWriter, r *http.Request) error {
	if ok, wait := s.ppl.pairStarts.allow(addrKey(r.RemoteAddr), s.cfg.PairRate); !ok {
		return &limitedError{
			err:   presence.Errorf(presence.ERATELIMIT, "too many pairings started from this address; retry in %ss", retryAfterSeconds(wait)),
			after: wait,
		}
	}
	var req PairRequest
	if err := decodeBody(w, r, maxBodyBytes, &req); err != nil {
		return err
	}
	name, err := presence.NormalizeDeviceName(req.DeviceName)
	if err != nil {
		return presence.Errorf(presence.EINVALID, "device_name: %s", presence.ErrorMessage(err))
	}
	osName := strings.TrimSpace(req.OS)
	if !utf8.ValidString(osName) || len(osName) > maxOSLen || strings.ContainsFunc(osName, unicode.IsControl) {
		return presence.Errorf(presence.EINVALID, "os must be at most %d bytes of text", maxOSLen)
	}
	p, deviceCode, err := s.store.CreatePairing(r.Context(), name, osName)
	if err != nil {
		return fmt.Errorf("create pairing: %w", err)
	}
	base := s.baseURL(r)
	interval := p.Interval
	if interval <= 0 {
		interval = presence.PairingInterval
	}
	writeJSON(w, http.StatusOK, PairStartResponse{
		DeviceCode:              deviceCode,
		UserCode:                presence.DisplayUserCode(p.UserCode),
		VerificationURI:         base + "/pair",
		VerificationURIComplete: base + "/pair?code=" + url.QueryEscape(p.UserCode),
		Interval:                ceilSeconds(interval),
		ExpiresIn:               max(ceilSeconds(p.ExpiresAt.Sub(s.now())), 0),
	})
	return nil
}

// ceilSeconds is d in whole seconds, rounded up.
func ceilSeconds(d time.Duration) int64 { return int64(math.Ceil(d.Seconds())) }

// pairError answers the token endpoint's refusals in RFC 8628's shape.
func pairError(w http.ResponseWriter, status int, code, description string, interval time.Duration) {
	writeJSON(w, status, PairTokenError{Error: code, ErrorDescription: description, Interval: ceilSeconds(interval)})
}

var pollDescriptions = map[presence.PollOutcome]string{
	presence.PollPending:  "waiting for the pairing to be approved",
	presence.PollSlowDown: "polling too fast: wait the interval between polls",
	presence.PollDenied:   "the pairing was denied",
	presence.PollExpired:  "the code expired before it was approved: start again",
}

// postPairToken is POST /api/v1/pair/token (no credential but the device
// code): the device polls, as JSON or as the RFC's form. Every refusal is
// 400 in the RFC's shape (RFC 6749 §5.2), not the usual envelope.
func (s *Server) postPairToken(w http.ResponseWriter, r *http.Request) error {
	req, bad := readPairTokenRequest(w, r)
	if bad != nil {
		pairError(w, http.StatusBadRequest, bad.code, bad.description, 0)
		return nil
	}
	res, err := s.store.PollPairing(r.Context(), req.DeviceCode)
	switch {
	case presence.ErrorCode(err) == presence.ENOTFOUND:
		if lim := s.countFailure(r); lim != nil {
			// Still the RFC's shape: the device reads slow_down and waits.
			w.Header().Set("Retry-After", retryAfterSeconds(lim.after))
			pairError(w, http.StatusTooManyRequests, string(presence.PollSlowDown), "too many unknown device codes from this address", lim.after)
			return nil
		}
		pairError(w, http.StatusBadRequest, "invalid_grant", "unknown or already used device code", 0)
		return nil
	case err != nil:
		return fmt.Errorf("poll pairing: %w", err)
	case res.Outcome != presence.PollApproved:
		pairError(w, http.StatusBadRequest, string(res.Outcome), pollDescriptions[res.Outcome], res.Interval)
		return nil
	}
	u, err := s.store.UserByID(r.Context(), res.Device.UserID)
	if err != nil {
		return fmt.Errorf("user of paired device %d: %w", res.Device.ID, err)
	}
	writeJSON(w, http.StatusOK, PairTokenResponse{AccessToken: res.Token, TokenType: "Bearer", Device: res.Device, Handle: u.Handle})
	return nil
}

// oauthError is a token request refused before the store is asked.
type oauthError struct{ code, description string }

// readPairTokenRequest reads the token request, form-encoded (RFC 8628
// §3.4, grant_type required) or JSON (grant_type optional).
func readPairTokenRequest(w http.ResponseWriter, r *http.Request) (PairTokenRequest, *oauthError) {
	var req PairTokenRequest
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "application/x-www-form-urlencoded" {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
		if err != nil {
			return req, &oauthError{"invalid_request", presence.ErrorMessage(bodyReadError(err, maxBodyBytes))}
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return req, &oauthError{"invalid_request", "the form body is malformed"}
		}
		req.GrantType, req.DeviceCode = form.Get("grant_type"), form.Get("device_code")
		if req.GrantType == "" {
			return req, &oauthError{"invalid_request", "grant_type is required: " + DeviceCodeGrant}
		}
	} else if err := decodeBody(w, r, maxBodyBytes, &req); err != nil {
		return req, &oauthError{"invalid_request", presence.ErrorMessage(err)}
	}
	switch {
	case req.GrantType != "" && req.GrantType != DeviceCodeGrant:
		return req, &oauthError{"unsupported_grant_type", "grant_type must be " + DeviceCodeGrant}
	case req.DeviceCode == "":
		return req, &oauthError{"invalid_request", "device_code is required"}
	}
	return req, nil
}

// codeKeys are the keys a user code lookup is limited by: the address,
// and the user asking.
func codeKeys(r *http.Request, c caller) [2][32]byte {
	var user [8]byte
	binary.BigEndian.PutUint64(user[:], uint64(c.UserID))
	return [2][32]byte{addrKey(r.RemoteAddr), sha256.Sum256(append([]byte("pair-user\x00"), user[:]...))}
}

// pairingCode reads the path's user code, after the limits: an address or
// user that has missed too often is refused before the lookup, so what it
// would learn it does not.
func (s *Server) pairingCode(r *http.Request, c caller) (string, error) {
	for _, k := range codeKeys(r, c) {
		if ok, wait := s.ppl.codeMisses.peek(k, s.cfg.PairCodeRate); !ok {
			return "", &limitedError{
				err:   presence.Errorf(presence.ERATELIMIT, "too many pairing codes tried in vain; retry in %ss", retryAfterSeconds(wait)),
				after: wait,
			}
		}
	}
	return presence.NormalizeUserCode(r.PathValue("user_code"))
}

// codeMissed counts a user code that named no live pending pairing.
func (s *Server) codeMissed(r *http.Request, c caller) error {
	for _, k := range codeKeys(r, c) {
		s.ppl.codeMisses.allow(k, s.cfg.PairCodeRate)
	}
	return presence.Errorf(presence.ENOTFOUND, "no pairing waits for this code: check it, or start again on the computer")
}

// getPairing is GET /api/v1/pair/{user_code}: the device asking, for the
// person to recognise before approving.
func (s *Server) getPairing(w http.ResponseWriter, r *http.Request, c caller) error {
	code, err := s.pairingCode(r, c)
	if err != nil {
		return err
	}
	p, err := s.store.PairingByUserCode(r.Context(), code)
	switch {
	case presence.ErrorCode(err) == presence.ENOTFOUND:
		return s.codeMissed(r, c)
	case err != nil:
		return fmt.Errorf("pairing: %w", err)
	}
	writeJSON(w, http.StatusOK, PairInfo{
		UserCode: presence.DisplayUserCode(p.UserCode), DeviceName: p.DeviceName, OS: p.OS,
		State: p.State, ExpiresAt: p.ExpiresAt.UTC(),
	})
	return nil
}

// postPairing is POST /api/v1/pair/{user_code}: approve (the device will
// join the caller's account at its next poll) or deny.
func (s *Server) postPairing(w http.ResponseWriter, r *http.Request, c caller) error {
	code, err := s.pairingCode(r, c)
	if err != nil {
		return err
	}
	var req PairDecision
	if err := decodeBody(w, r, maxBodyBytes, &req); err != nil {
		return err
	}
	if req.Approve == nil {
		return presence.Errorf(presence.EINVALID, "approve (true or false) is required")
	}
	if *req.Approve {
		// The device is made at the next poll; the cap is checked now,
		// while the person can still act on the answer.
		ds, err := s.store.Devices(r.Context(), c.UserID)
		if err != nil {
			return fmt.Errorf("devices of user %d: %w", c.UserID, err)
		}
		if len(ds) >= s.cfg.MaxDevicesPerUser {
			s.metrics.capped.WithLabelValues(capUserDevices).Inc()
			return presence.Errorf(presence.ECONFLICT, "this user has %d devices, the most allowed: revoke one that is no longer used first", len(ds))
		}
	}
	p, err := s.store.DecidePairing(r.Context(), code, c.UserID, *req.Approve)
	switch {
	case presence.ErrorCode(err) == presence.ENOTFOUND:
		return s.codeMissed(r, c)
	case err != nil:
		return fmt.Errorf("decide pairing: %w", err)
	}
	writeJSON(w, http.StatusOK, PairDecided{State: p.State, DeviceName: p.DeviceName})
	return nil
}
