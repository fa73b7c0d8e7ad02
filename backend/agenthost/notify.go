package agenthost

import (
	"context"
	"net/http"
	"strings"

	"github.com/lastseen/lastseen/backend/notify"
)

// Notifications of watched people coming online: for a remote service
// only (on the embedded one this computer's user is alone), one
// notify.Watcher per service in use, started by Run and stopped with its
// service (its context) or the host. Watching someone on the service is
// the opt-in; the "notifications" setting silences them all.

// watchPeople starts following svc's presence for notifications, once the
// host runs; nothing when the command gave no Notifications.
func (h *Host) watchPeople(svc *service, token string) {
	if h.cfg.Notifications == nil {
		return
	}
	w := notify.NewWatcher(notify.Config{
		Service: notify.HTTPService{BaseURL: svc.url, Token: token, Client: h.hc},
		Sender:  h.cfg.Notifications,
		Self: func() string {
			h.mu.Lock()
			defer h.mu.Unlock()
			return svc.id.handle
		},
		Enabled: h.notifyOn.Load,
		Logger:  h.log,
	})
	h.mu.Lock()
	svc.watcher = w
	h.mu.Unlock()
	h.bg.Go(func() {
		select {
		case <-h.running:
		case <-svc.ctx.Done():
			return
		}
		w.Run(svc.ctx)
	})
}

// watchesChanged tells the watcher of the service in use that the window
// just changed the watch list through the proxy, so it reads it again now
// rather than at its next refresh.
func (h *Host) watchesChanged(r *http.Request) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead || !strings.HasPrefix(r.URL.Path, "/api/v1/watches") {
		return
	}
	h.mu.Lock()
	w := h.svc.watcher
	h.mu.Unlock()
	if w != nil {
		w.Nudge()
	}
}

// SetNotifications turns the notifications of watched people on or off,
// and saves the choice.
func (h *Host) SetNotifications(ctx context.Context, on bool) error {
	if err := h.db.SetNotifications(ctx, on); err != nil {
		return err
	}
	h.notifyOn.Store(on)
	return nil
}
