package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/lastseen/lastseen/backend/presence"
)

// Watches: "tell me when they come online". The service keeps each user's
// list (presence.Watches); the desktop agent reads it and turns a watched
// person's coming online into a native notification. The window manages
// the list through the agent, which holds only a device token, so these
// routes take personalAccess.

// WatchesResponse is GET /api/v1/watches.
type WatchesResponse struct {
	Watches []presence.Watch `json:"watches"`
}

// getWatches is GET /api/v1/watches: the caller's watches, by handle.
func (s *Server) getWatches(w http.ResponseWriter, r *http.Request, c caller) error {
	ws, err := s.store.WatchList(r.Context(), c.UserID)
	if err != nil {
		return fmt.Errorf("watches of user %d: %w", c.UserID, err)
	}
	if ws == nil {
		ws = []presence.Watch{}
	}
	writeJSON(w, http.StatusOK, WatchesResponse{Watches: ws})
	return nil
}

// putWatch is PUT /api/v1/watches/{handle}: start watching (idempotent;
// no body). 404 for a handle nobody has, 400 for oneself, 409 past
// presence.MaxWatches.
func (s *Server) putWatch(w http.ResponseWriter, r *http.Request, c caller) error {
	handle, err := watchHandle(r)
	if err != nil {
		return err
	}
	wt, err := s.store.SetWatch(r.Context(), c.UserID, handle)
	if err != nil {
		return fmt.Errorf("watch %q: %w", handle, err)
	}
	writeJSON(w, http.StatusOK, wt)
	return nil
}

// deleteWatch is DELETE /api/v1/watches/{handle}: stop watching; 404 when
// the handle was not watched.
func (s *Server) deleteWatch(w http.ResponseWriter, r *http.Request, c caller) error {
	handle, err := watchHandle(r)
	if err != nil {
		return err
	}
	if err := s.store.RemoveWatch(r.Context(), c.UserID, handle); err != nil {
		return fmt.Errorf("unwatch %q: %w", handle, err)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// watchHandle reads the route's handle. One that no user can have is a
// 404 like an unknown one, without a read.
func watchHandle(r *http.Request) (string, error) {
	h := r.PathValue("handle")
	if presence.ValidateHandle(h) != nil {
		return "", presence.Errorf(presence.ENOTFOUND, "no user %q", clip(h, maxValueLen))
	}
	return h, nil
}

// Watches lists the caller's watches.
func (c *Client) Watches(ctx context.Context) ([]presence.Watch, error) {
	var out WatchesResponse
	err := c.do(ctx, http.MethodGet, "/api/v1/watches", nil, nil, &out)
	return out.Watches, err
}

// Watch starts watching handle (idempotent).
func (c *Client) Watch(ctx context.Context, handle string) (presence.Watch, error) {
	var out presence.Watch
	err := c.do(ctx, http.MethodPut, "/api/v1/watches/"+url.PathEscape(handle), nil, nil, &out)
	return out, err
}

// Unwatch stops watching handle.
func (c *Client) Unwatch(ctx context.Context, handle string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/watches/"+url.PathEscape(handle), nil, nil, nil)
}
