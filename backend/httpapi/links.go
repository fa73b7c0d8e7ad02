package httpapi

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/lastseen/lastseen/backend/password"
	"github.com/lastseen/lastseen/backend/presence"
)

// One-time links: an invite (signup) or a password reset. The URL is
// BASE/welcome#ls_inv_…: the secret sits in the fragment, which browsers
// never send, so it reaches no access log and no Referer; the page reads it
// and posts it here. A link secret is 32 random bytes, so a miss is counted
// like a bad token (per address), never guessed at.

// linkURL is the page that redeems a link.
func (s *Server) linkURL(r *http.Request, secret string) string {
	return s.baseURL(r) + "/welcome#" + secret
}

// errNoLink is the answer to a link that is unknown, expired, spent or
// revoked: which of these it is, is nobody's business.
var errNoLink = presence.Errorf(presence.ENOTFOUND, "this link is not valid (any more): ask for a new one")

// liveLink is the live link of secret, or errNoLink counted against the
// client's address (429 once the address has missed too often).
func (s *Server) liveLink(r *http.Request, secret string) (presence.Link, error) {
	if strings.HasPrefix(secret, presence.LinkPrefix) {
		l, err := s.store.LinkBySecret(r.Context(), secret)
		if err == nil {
			return l, nil
		}
		if presence.ErrorCode(err) != presence.ENOTFOUND {
			return presence.Link{}, fmt.Errorf("link: %w", err)
		}
	}
	if lim := s.countFailure(r); lim != nil {
		return presence.Link{}, lim
	}
	return presence.Link{}, errNoLink
}

// peekLink is POST /api/v1/links/peek: what a link is for, before the
// person fills in the page. A POST, so the secret stays out of URLs.
func (s *Server) peekLink(w http.ResponseWriter, r *http.Request) error {
	var req LinkSecret
	if err := decodeBody(w, r, maxBodyBytes, &req); err != nil {
		return err
	}
	l, err := s.liveLink(r, req.Secret)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, LinkInfo{Purpose: l.Purpose, Handle: l.Handle, Name: l.Name, ExpiresAt: l.ExpiresAt.UTC()})
	return nil
}

// redeemLink is POST /api/v1/links/redeem: a signup creates the user, a
// reset sets the password and ends every session of the user (their
// streams too); either way the browser is then signed in.
func (s *Server) redeemLink(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkOrigin(r); err != nil {
		return err // it signs in: no other site may make a browser do it
	}
	var req RedeemRequest
	if err := decodeBody(w, r, maxBodyBytes, &req); err != nil {
		return err
	}
	if err := presence.ValidatePassword(req.Password); err != nil {
		return presence.Errorf(presence.EINVALID, "password: %s", presence.ErrorMessage(err))
	}
	l, err := s.liveLink(r, req.Secret)
	if err != nil {
		return err
	}
	red := presence.Redemption{}
	if l.Purpose == presence.SignupLink {
		name := req.Name
		if strings.TrimSpace(name) == "" {
			name = l.Name
		}
		if red.Name, err = presence.NormalizeUserName(name); err != nil {
			return err
		}
		if err := presence.ValidateTZ(req.TZ); err != nil {
			return err
		}
		red.TZ = req.TZ
	}
	if red.PasswordHash, err = password.Hash(r.Context(), req.Password); err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	u, err := s.store.RedeemLink(r.Context(), req.Secret, red)
	if err != nil {
		if presence.ErrorCode(err) == presence.ENOTFOUND {
			return errNoLink // spent a moment ago, by another tab
		}
		return fmt.Errorf("redeem link: %w", err)
	}
	if l.Purpose == presence.ResetLink {
		s.endUserSessionStreams(u.ID, 0)
	}
	return s.startSession(w, r, u)
}
