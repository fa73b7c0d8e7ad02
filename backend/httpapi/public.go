package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// The public status: a user who opted in shows the world, at the level of
// detail they chose (presence.PublicDetail), whether they are online, as
// JSON, a badge, a live stream and an embeddable script. Every one of them
// asks publicLookup first and renders presence.PublicViewOf, so a user who
// did not opt in is the same 404 as a handle nobody has, and each level
// hides the same things everywhere.

// publicCache is how long public status and badges may be cached: short, so
// a status page is at most one beat interval behind.
const publicCache = "public, max-age=15"

// getPublic is GET /api/v1/public/{handle}: the opt-in public status.
func (s *Server) getPublic(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Cache-Control", publicCache)
	v, err := s.publicStatus(r.Context(), r.PathValue("handle"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// publicStatus is a public user's view, read from the store. Users who did
// not opt in are ENOTFOUND, exactly like handles that do not exist.
func (s *Server) publicStatus(ctx context.Context, handle string) (presence.PublicView, error) {
	u, err := s.publicLookup(ctx, handle)
	if err != nil {
		return presence.PublicView{}, err
	}
	status, lastSeen, err := s.userPresence(ctx, u.ID)
	if err != nil {
		return presence.PublicView{}, fmt.Errorf("devices of %q: %w", handle, err)
	}
	return presence.PublicViewOf(u.Handle, u.PublicDetail, status, lastSeen), nil
}

// publicLookup finds the user behind a public handle. An invalid handle, an
// unknown one, a user who did not opt in and a disabled one all get the
// same error, after the same one read (an invalid handle skips it: nobody
// can have one).
func (s *Server) publicLookup(ctx context.Context, handle string) (presence.User, error) {
	notFound := presence.Errorf(presence.ENOTFOUND, "no public status for %q", clip(handle, maxValueLen))
	if presence.ValidateHandle(handle) != nil {
		return presence.User{}, notFound
	}
	u, err := s.store.UserByHandle(ctx, handle)
	switch {
	case presence.ErrorCode(err) == presence.ENOTFOUND:
		return presence.User{}, notFound
	case err != nil:
		return presence.User{}, fmt.Errorf("user %q: %w", handle, err)
	case !shownPublicly(u):
		return presence.User{}, notFound
	}
	return u, nil
}

// shownPublicly reports whether u's status is public: opted in, and not
// disabled by an administrator (someone who left keeps no public trace).
func shownPublicly(u presence.User) bool { return u.Public && !u.Disabled }

// userPresence is a user's status over all their devices and their last
// active beat (zero: never).
func (s *Server) userPresence(ctx context.Context, userID int64) (presence.State, time.Time, error) {
	ds, err := s.store.Devices(ctx, userID)
	if err != nil {
		return presence.Offline, time.Time{}, err
	}
	status := presence.Offline
	ps := make([]presence.DevicePresence, 0, len(ds))
	for _, d := range ds {
		status = presence.Highest(status, d.Status)
		ps = append(ps, d.Presence)
	}
	return status, presence.LastSeen(ps), nil
}

// publicPreflight answers a CORS preflight for the public, read-only
// routes: any origin may read them, without credentials. A browser sends
// one only when a request carries a header outside the safelist, such as
// an EventSource's Last-Event-ID on reconnect.
func (s *Server) publicPreflight(w http.ResponseWriter, _ *http.Request) error {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "GET, HEAD")
	h.Set("Access-Control-Allow-Headers", "Last-Event-ID, Cache-Control, Accept")
	h.Set("Access-Control-Max-Age", "86400")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// publicChanged tells the public streams that a user changed: opting out
// ends their streams, a new level of detail re-renders their view. Called
// after this server changed a user; changes made elsewhere (another
// instance, the command line) are found by the feeds' own check.
func (s *Server) publicChanged(u presence.User) { s.public.userChanged(u) }
