package httpapi

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/lastseen/lastseen/backend/password"
	"github.com/lastseen/lastseen/backend/presence"
)

// The signed-in user's own credentials: their browser sessions, their
// named API tokens and their password (Settings). Each needs a user
// credential (a session or a user token): a device token may not speak
// for its user.

// getMySessions is GET /api/v1/me/sessions.
func (s *Server) getMySessions(w http.ResponseWriter, r *http.Request, c caller) error {
	ss, err := s.store.Sessions(r.Context(), c.UserID)
	if err != nil {
		return fmt.Errorf("sessions of user %d: %w", c.UserID, err)
	}
	out := make([]SignInSession, 0, len(ss))
	for _, x := range ss {
		out = append(out, SignInSession{
			ID: x.ID, CreatedAt: x.CreatedAt.UTC(), LastUsed: x.LastUsed.UTC(),
			UserAgent: x.UserAgent, Addr: x.Addr, Current: x.ID == c.SessionID,
		})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// deleteMySession is DELETE /api/v1/me/sessions/{id}: that browser is
// signed out, and its streams end.
func (s *Server) deleteMySession(w http.ResponseWriter, r *http.Request, c caller) error {
	v := r.PathValue("id")
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return presence.Errorf(presence.EINVALID, "session id must be a positive integer, not %q", clip(v, maxValueLen))
	}
	if err := s.store.EndSession(r.Context(), c.UserID, id); err != nil {
		return fmt.Errorf("end session %d: %w", id, err)
	}
	s.endSessionStreams(id)
	if id == c.SessionID {
		http.SetCookie(w, s.sessionCookie(r, "", -1))
	}
	noContent(w)
	return nil
}

// getMyTokens is GET /api/v1/me/tokens.
func (s *Server) getMyTokens(w http.ResponseWriter, r *http.Request, c caller) error {
	ts, err := s.store.APITokens(r.Context(), c.UserID)
	if err != nil {
		return fmt.Errorf("API tokens of user %d: %w", c.UserID, err)
	}
	if ts == nil {
		ts = []presence.APIToken{}
	}
	for i := range ts {
		ts[i].CreatedAt = ts[i].CreatedAt.UTC()
		ts[i].LastUsed = ts[i].LastUsed.UTC()
	}
	writeJSON(w, http.StatusOK, ts)
	return nil
}

// postMyToken is POST /api/v1/me/tokens: a named token for a script, shown once.
func (s *Server) postMyToken(w http.ResponseWriter, r *http.Request, c caller) error {
	var req NewAPITokenRequest
	if err := decodeBody(w, r, maxBodyBytes, &req); err != nil {
		return err
	}
	name, err := presence.NormalizeTokenName(req.Name)
	if err != nil {
		return err
	}
	t, token, err := s.store.CreateAPIToken(r.Context(), c.UserID, name)
	if err != nil {
		return fmt.Errorf("create API token for user %d: %w", c.UserID, err)
	}
	w.Header().Set("Location", "/api/v1/me/tokens/"+t.ID)
	writeJSON(w, http.StatusCreated, NewAPIToken{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt.UTC(), Token: token})
	return nil
}

// deleteMyToken is DELETE /api/v1/me/tokens/{id}: the token stops working,
// and its streams end.
func (s *Server) deleteMyToken(w http.ResponseWriter, r *http.Request, c caller) error {
	id := r.PathValue("id")
	if err := s.store.RevokeAPIToken(r.Context(), c.UserID, id); err != nil {
		return fmt.Errorf("revoke API token: %w", err)
	}
	s.endTokenStreams(id)
	noContent(w)
	return nil
}

// putMyPassword is PUT /api/v1/me/password. The current password is
// required when there is one, and checked under the sign-in limits (a
// stolen session must not become a way to guess it). Every other session
// of the user ends; the one that asked stays.
func (s *Server) putMyPassword(w http.ResponseWriter, r *http.Request, c caller) error {
	var req PasswordChange
	if err := decodeBody(w, r, maxBodyBytes, &req); err != nil {
		return err
	}
	if err := presence.ValidatePassword(req.New); err != nil {
		return err
	}
	u, err := s.store.UserByID(r.Context(), c.UserID)
	if err != nil {
		return fmt.Errorf("user %d: %w", c.UserID, err)
	}
	_, hash, err := s.store.PasswordHash(r.Context(), u.Handle)
	if err != nil {
		return fmt.Errorf("password of user %d: %w", c.UserID, err)
	}
	if hash != "" {
		if req.Current == "" {
			return presence.Errorf(presence.EINVALID, "current: the current password is required to change it")
		}
		addr := addrKey(r.RemoteAddr)
		if err := s.signInAllowed(u.Handle, addr); err != nil {
			return err
		}
		_, ok, err := s.checkPassword(r.Context(), u.Handle, req.Current)
		if err != nil {
			return fmt.Errorf("check password of user %d: %w", c.UserID, err)
		}
		if !ok {
			s.signInFailed(u.Handle, addr)
			// Not 401: the caller is signed in, only the password is wrong.
			return presence.Errorf(presence.EFORBIDDEN, "current: the current password is wrong")
		}
	}
	newHash, err := password.Hash(r.Context(), req.New)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	if err := s.store.SetPassword(r.Context(), c.UserID, newHash); err != nil {
		return fmt.Errorf("set password of user %d: %w", c.UserID, err)
	}
	if _, err := s.store.EndSessions(r.Context(), c.UserID, c.SessionID); err != nil {
		return fmt.Errorf("end the other sessions of user %d: %w", c.UserID, err)
	}
	s.endUserSessionStreams(c.UserID, c.SessionID)
	noContent(w)
	return nil
}

// noContent answers 204.
func noContent(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}
