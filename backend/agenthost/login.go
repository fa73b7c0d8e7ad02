package agenthost

import (
	"context"
	"errors"
	"os"
	"path/filepath"
)

// keyLoginItemOffered records that the login item was turned on once.
const keyLoginItemOffered = "login_item_offered"

// StartAtLogin reports whether the login item is on; one that cannot be
// read counts as off (the settings page says why: controls.Settings).
func (h *Host) StartAtLogin() bool {
	on, err := h.cfg.Login.Enabled()
	if err != nil {
		h.log.Debug("read login item", "err", err)
	}
	return on
}

// SetStartAtLogin writes or removes the login item that runs this agent,
// and remembers the choice.
func (h *Host) SetStartAtLogin(ctx context.Context, on bool) error {
	if !on {
		if err := h.cfg.Login.Disable(); err != nil {
			return err
		}
		return h.db.SetStartAtLogin(ctx, false)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return err
	}
	if err := h.cfg.Login.Enable(exe, h.cfg.LoginArgs); err != nil {
		return err
	}
	return h.db.SetStartAtLogin(ctx, true)
}

// OfferLoginItem turns the login item on once, the first time the agent
// runs with a tray; after that only the user's choice counts.
func (h *Host) OfferLoginItem(ctx context.Context) {
	if _, done, err := h.db.Setting(ctx, keyLoginItemOffered); err != nil || done {
		return
	}
	if err := h.SetStartAtLogin(ctx, true); err != nil {
		h.log.Warn("could not add the login item", "err", err)
	}
	if err := h.db.SetSetting(ctx, keyLoginItemOffered, "true"); err != nil {
		h.log.Warn("remember login item", "err", err)
	}
}

// noLoginItem stands in where the system has no login item.
type noLoginItem struct{}

var errNoLoginItem = errors.New("this system has no login item for the agent")

func (noLoginItem) Enabled() (bool, error)        { return false, nil }
func (noLoginItem) Enable(string, []string) error { return errNoLoginItem }
func (noLoginItem) Disable() error                { return nil }
