package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/lastseen/lastseen/backend/presence"
)

// attrBy is the log attribute of the administrator who acted.
const attrBy = "by_user_id"

// peopleRoutes are the People endpoints: sign-in sessions, API tokens and
// password of the user; one-time links; the admin's people and invites;
// pairing a device (RFC 8628).
func (s *Server) peopleRoutes() {
	s.handle("GET /api/v1/me/sessions", s.authed(userAccess, s.getMySessions))
	s.handle("DELETE /api/v1/me/sessions/{id}", s.authed(userAccess, s.deleteMySession))
	s.handle("GET /api/v1/me/tokens", s.authed(userAccess, s.getMyTokens))
	s.handle("POST /api/v1/me/tokens", s.authed(userAccess, s.postMyToken))
	s.handle("DELETE /api/v1/me/tokens/{id}", s.authed(userAccess, s.deleteMyToken))
	s.handle("PUT /api/v1/me/password", s.authed(userAccess, s.putMyPassword))

	s.handle("POST /api/v1/links/peek", s.peekLink)
	s.handle("POST /api/v1/links/redeem", s.redeemLink)

	s.handle("GET /api/v1/people", s.adminOnly(s.getPeople))
	s.handle("PATCH /api/v1/people/{handle}", s.adminOnly(s.patchPerson))
	s.handle("DELETE /api/v1/people/{handle}/sessions", s.adminOnly(s.deletePersonSessions))
	s.handle("POST /api/v1/people/{handle}/reset", s.adminOnly(s.postPersonReset))
	s.handle("GET /api/v1/invites", s.adminOnly(s.getInvites))
	s.handle("POST /api/v1/invites", s.adminOnly(s.postInvite))
	s.handle("DELETE /api/v1/invites/{id}", s.adminOnly(s.deleteInvite))

	s.handle("POST /api/v1/pair", s.postPair)
	s.handle("POST /api/v1/pair/token", s.postPairToken)
	s.handle("GET /api/v1/pair/{user_code}", s.authed(userAccess, s.getPairing))
	s.handle("POST /api/v1/pair/{user_code}", s.authed(userAccess, s.postPairing))
}

// adminOnly wraps h with authentication by a user credential and the rule
// that the user be an admin (403 otherwise), read from the store on every
// request so a demotion counts at once.
func (s *Server) adminOnly(h func(http.ResponseWriter, *http.Request, caller, presence.User) error) handlerFunc {
	return s.authed(userAccess, func(w http.ResponseWriter, r *http.Request, c caller) error {
		me, err := s.store.UserByID(r.Context(), c.UserID)
		if err != nil {
			return fmt.Errorf("user %d: %w", c.UserID, err)
		}
		if !me.Admin {
			return presence.Errorf(presence.EFORBIDDEN, "this needs an administrator")
		}
		return h(w, r, c, me)
	})
}

// person is the user named by the path's handle; ENOTFOUND if none.
func (s *Server) person(ctx context.Context, handle string) (presence.User, error) {
	if presence.ValidateHandle(handle) != nil {
		return presence.User{}, presence.Errorf(presence.ENOTFOUND, "no user %q", clip(handle, maxValueLen))
	}
	u, err := s.store.UserByHandle(ctx, handle)
	if err != nil {
		return presence.User{}, fmt.Errorf("user %q: %w", handle, err)
	}
	return u, nil
}

// personOf is u as the admin's list shows them.
func (s *Server) personOf(ctx context.Context, u presence.User, pres map[int64]presence.UserPresence) (Person, error) {
	ss, err := s.store.Sessions(ctx, u.ID)
	if err != nil {
		return Person{}, fmt.Errorf("sessions of user %d: %w", u.ID, err)
	}
	p := Person{Handle: u.Handle, Name: u.Name, Admin: u.Admin, Disabled: u.Disabled, Status: presence.Offline, Sessions: len(ss)}
	if up, ok := pres[u.ID]; ok {
		p.Status, p.LastSeen = up.Status, timePtr(up.LastSeen)
	}
	return p, nil
}

func (s *Server) presenceByUser(ctx context.Context) (map[int64]presence.UserPresence, error) {
	ps, err := s.store.Presence(ctx)
	if err != nil {
		return nil, fmt.Errorf("presence: %w", err)
	}
	out := make(map[int64]presence.UserPresence, len(ps))
	for _, p := range ps {
		out[p.User.ID] = p
	}
	return out, nil
}

// getPeople is GET /api/v1/people.
func (s *Server) getPeople(w http.ResponseWriter, r *http.Request, _ caller, _ presence.User) error {
	users, err := s.store.Users(r.Context())
	if err != nil {
		return fmt.Errorf("users: %w", err)
	}
	pres, err := s.presenceByUser(r.Context())
	if err != nil {
		return err
	}
	out := make([]Person, 0, len(users))
	for _, u := range users {
		p, err := s.personOf(r.Context(), u, pres)
		if err != nil {
			return err
		}
		out = append(out, p)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// patchPerson is PATCH /api/v1/people/{handle}: disable or enable a user,
// make or unmake an admin. Nobody disables themselves (they could not undo
// it), and the last enabled admin stays one (nobody could manage people).
// Disabling ends the user's sessions (the store does) and every stream of
// theirs (here).
func (s *Server) patchPerson(w http.ResponseWriter, r *http.Request, c caller, _ presence.User) error {
	var req PersonUpdate
	if err := decodeBody(w, r, maxBodyBytes, &req); err != nil {
		return err
	}
	if req.Disabled == nil && req.Admin == nil {
		return presence.Errorf(presence.EINVALID, "send disabled or admin (or both)")
	}
	s.ppl.adminMu.Lock()
	defer s.ppl.adminMu.Unlock()
	target, err := s.person(r.Context(), r.PathValue("handle"))
	if err != nil {
		return err
	}
	if req.Disabled != nil && *req.Disabled && target.ID == c.UserID {
		return presence.Errorf(presence.ECONFLICT, "you cannot disable yourself")
	}
	losesAdmin := target.Admin && !target.Disabled &&
		((req.Admin != nil && !*req.Admin) || (req.Disabled != nil && *req.Disabled))
	if losesAdmin {
		users, err := s.store.Users(r.Context())
		if err != nil {
			return fmt.Errorf("users: %w", err)
		}
		others := 0
		for _, u := range users {
			if u.ID != target.ID && u.Admin && !u.Disabled {
				others++
			}
		}
		if others == 0 {
			return presence.Errorf(presence.ECONFLICT, "%s is the last administrator: make someone else one first", target.Handle)
		}
	}
	u, err := s.store.UpdateUser(r.Context(), target.ID, presence.UserUpdate{Admin: req.Admin, Disabled: req.Disabled})
	if err != nil {
		return fmt.Errorf("update user %d: %w", target.ID, err)
	}
	if u.Disabled {
		s.endUserStreams(u.ID)
	}
	s.log.Info("user changed by an administrator", "handle", u.Handle, "admin", u.Admin, "disabled", u.Disabled, attrBy, c.UserID)
	pres, err := s.presenceByUser(r.Context())
	if err != nil {
		return err
	}
	p, err := s.personOf(r.Context(), u, pres)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

// deletePersonSessions is DELETE /api/v1/people/{handle}/sessions: sign
// the user out everywhere (their tokens and devices keep working).
func (s *Server) deletePersonSessions(w http.ResponseWriter, r *http.Request, c caller, _ presence.User) error {
	u, err := s.person(r.Context(), r.PathValue("handle"))
	if err != nil {
		return err
	}
	n, err := s.store.EndSessions(r.Context(), u.ID, 0)
	if err != nil {
		return fmt.Errorf("end sessions of user %d: %w", u.ID, err)
	}
	s.endUserSessionStreams(u.ID, 0)
	s.log.Info("sessions ended by an administrator", "handle", u.Handle, "sessions", n, attrBy, c.UserID)
	writeJSON(w, http.StatusOK, EndedSessions{Ended: n})
	return nil
}

// postPersonReset is POST /api/v1/people/{handle}/reset: a password reset
// link for the admin to hand over. Redeeming it ends the user's sessions.
func (s *Server) postPersonReset(w http.ResponseWriter, r *http.Request, c caller, _ presence.User) error {
	u, err := s.person(r.Context(), r.PathValue("handle"))
	if err != nil {
		return err
	}
	l, secret, err := s.store.CreateLink(r.Context(), presence.Link{Purpose: presence.ResetLink, Handle: u.Handle, CreatedBy: c.UserID})
	if err != nil {
		return fmt.Errorf("reset link for %q: %w", u.Handle, err)
	}
	s.log.Info("password reset link made by an administrator", "handle", u.Handle, attrBy, c.UserID)
	writeJSON(w, http.StatusOK, ResetLink{URL: s.linkURL(r, secret), ExpiresAt: l.ExpiresAt.UTC()})
	return nil
}

func inviteOf(l presence.Link) Invite {
	return Invite{ID: l.ID, Handle: l.Handle, Name: l.Name, Admin: l.Admin, CreatedAt: l.CreatedAt.UTC(), ExpiresAt: l.ExpiresAt.UTC()}
}

// getInvites is GET /api/v1/invites: the pending invites (reset links are
// not listed: they belong to their user).
func (s *Server) getInvites(w http.ResponseWriter, r *http.Request, _ caller, _ presence.User) error {
	ls, err := s.store.Links(r.Context())
	if err != nil {
		return fmt.Errorf("links: %w", err)
	}
	out := []Invite{}
	for _, l := range ls {
		if l.Purpose == presence.SignupLink {
			out = append(out, inviteOf(l))
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// postInvite is POST /api/v1/invites: an invite link, shown this once.
func (s *Server) postInvite(w http.ResponseWriter, r *http.Request, c caller, _ presence.User) error {
	var req InviteRequest
	if err := decodeBody(w, r, maxBodyBytes, &req); err != nil {
		return err
	}
	if err := presence.ValidateHandle(req.Handle); err != nil {
		return err
	}
	name, err := presence.NormalizeUserName(req.Name)
	if err != nil {
		return err
	}
	l, secret, err := s.store.CreateLink(r.Context(), presence.Link{
		Purpose: presence.SignupLink, Handle: req.Handle, Name: name, Admin: req.Admin, CreatedBy: c.UserID,
	})
	if err != nil {
		return fmt.Errorf("invite %q: %w", req.Handle, err)
	}
	s.log.Info("invite made by an administrator", "handle", l.Handle, "admin", l.Admin, attrBy, c.UserID)
	inv := inviteOf(l)
	inv.URL = s.linkURL(r, secret)
	w.Header().Set("Location", "/api/v1/invites/"+strconv.FormatInt(l.ID, 10))
	writeJSON(w, http.StatusCreated, inv)
	return nil
}

// deleteInvite is DELETE /api/v1/invites/{id}: the link stops working.
func (s *Server) deleteInvite(w http.ResponseWriter, r *http.Request, _ caller, _ presence.User) error {
	v := r.PathValue("id")
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return presence.Errorf(presence.EINVALID, "invite id must be a positive integer, not %q", clip(v, maxValueLen))
	}
	if err := s.store.RevokeLink(r.Context(), id); err != nil {
		return fmt.Errorf("revoke invite %d: %w", id, err)
	}
	noContent(w)
	return nil
}

// baseURL is where people reach the service: Config.BaseURL, or else what
// the request says (https on TLS or X-Forwarded-Proto: https; the host from
// X-Forwarded-Host, else Host). Trusting the forwarded headers here is
// safe: the URL goes back only to whoever sent them, in this answer.
func (s *Server) baseURL(r *http.Request) string {
	if s.cfg.BaseURL != "" {
		return s.cfg.BaseURL
	}
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(firstValue(r.Header.Get("X-Forwarded-Proto")), "https") {
		scheme = "https"
	}
	host := r.Host
	if fh := firstValue(r.Header.Get("X-Forwarded-Host")); fh != "" && plainHost(fh) {
		host = fh
	}
	if !plainHost(host) {
		host = "localhost"
	}
	return scheme + "://" + host
}

// firstValue is the first of a comma-separated header's values (proxies append).
func firstValue(v string) string {
	first, _, _ := strings.Cut(v, ",")
	return strings.TrimSpace(first)
}

// plainHost reports whether h is a host[:port] and nothing else.
func plainHost(h string) bool {
	if h == "" || strings.ContainsAny(h, "/?#@\\ \t") {
		return false
	}
	u, err := url.Parse("http://" + h)
	return err == nil && u.Host == h && u.Path == ""
}
