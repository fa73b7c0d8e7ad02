package httpapi

import (
	"context"

	"github.com/lastseen/lastseen/backend/presence"
)

// Ending a credential ends the event streams it opened: a stream is
// authenticated once, when it opens, so without this a revoked credential
// would keep hearing everyone's presence for as long as its connection
// lasts. What this server ends itself it cuts at once (the end* methods);
// what is ended elsewhere (another instance, the command line) the
// revocation watcher finds within RevocationCheck (endRevokedCredentials).

// endStreams ends the streams whose credential matches and counts them.
func (s *Server) endStreams(why string, match func(credential) bool, attrs ...any) {
	if n := s.hub.end(match); n > 0 {
		s.metrics.revoked.Add(float64(n))
		s.log.Info("event streams ended: "+why, append(attrs, "streams", n)...)
	}
}

// endSessionStreams ends the streams of an ended browser session.
func (s *Server) endSessionStreams(session int64) {
	s.ppl.touched.forget(touchKey(presence.Principal{SessionID: session}))
	s.endStreams("session ended", func(o credential) bool { return o.session == session }, "session_id", session)
}

// endTokenStreams ends the streams of a revoked API token.
func (s *Server) endTokenStreams(token string) {
	s.ppl.touched.forget(touchKey(presence.Principal{TokenID: token}))
	s.endStreams("API token revoked", func(o credential) bool { return o.token == token }, "token_id", token)
}

// endUserSessionStreams ends the streams of the user's sessions but
// except's (0: all of them), after the store ended those sessions.
func (s *Server) endUserSessionStreams(user, except int64) {
	s.endStreams("sessions ended", func(o credential) bool {
		return o.user == user && o.session != 0 && o.session != except
	}, attrUser, user)
}

// endUserStreams ends every stream of a disabled user, whatever opened it.
func (s *Server) endUserStreams(user int64) {
	s.endStreams("user disabled", func(o credential) bool { return o.user == user }, attrUser, user)
}

// endRevokedCredentials ends the streams of users disabled, sessions ended
// and API tokens revoked outside this server. It reads the users once (a
// small table), and for each user with streams of sessions or API tokens
// their live sessions or tokens: a few reads per streaming user per check.
func (s *Server) endRevokedCredentials(ctx context.Context, creds []credential) {
	type kinds struct{ sessions, tokens bool }
	byUser := map[int64]*kinds{}
	for _, o := range creds {
		c := byUser[o.user]
		if c == nil {
			c = &kinds{}
			byUser[o.user] = c
		}
		c.sessions = c.sessions || o.session != 0
		c.tokens = c.tokens || o.token != ""
	}
	if len(byUser) == 0 {
		return
	}
	users, err := s.store.Users(ctx)
	if err != nil {
		s.log.Debug("revocation check: users unavailable", attrErr, err)
		return
	}
	disabled := make(map[int64]bool, len(users))
	for _, u := range users {
		disabled[u.ID] = u.Disabled
	}
	for id, c := range byUser {
		if disabled[id] {
			s.endUserStreams(id)
			continue
		}
		if c.sessions {
			ss, err := s.store.Sessions(ctx, id)
			if err != nil {
				s.log.Debug("revocation check: sessions unavailable", attrUser, id, attrErr, err)
			} else {
				live := make(map[int64]bool, len(ss))
				for _, x := range ss {
					live[x.ID] = true
				}
				s.endStreams("session ended elsewhere", func(o credential) bool {
					return o.user == id && o.session != 0 && !live[o.session]
				}, attrUser, id)
			}
		}
		if c.tokens {
			ts, err := s.store.APITokens(ctx, id)
			if err != nil {
				s.log.Debug("revocation check: API tokens unavailable", attrUser, id, attrErr, err)
			} else {
				live := make(map[string]bool, len(ts))
				for _, x := range ts {
					live[x.ID] = true
				}
				s.endStreams("API token revoked elsewhere", func(o credential) bool {
					return o.user == id && o.token != "" && !live[o.token]
				}, attrUser, id)
			}
		}
	}
}
