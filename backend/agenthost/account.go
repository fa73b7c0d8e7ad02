package agenthost

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"strings"
	"unicode/utf8"

	"github.com/lastseen/lastseen/backend/agentdb"
	"github.com/lastseen/lastseen/backend/presence"
)

// ensureLocalAccount makes sure the embedded service has this computer's
// user and device, creating them on first run (and again if the local
// store lost them).
func (h *Host) ensureLocalAccount(ctx context.Context, s agentdb.Settings) error {
	if s.LocalUserToken != "" && s.LocalDeviceToken != "" {
		if p, err := h.store.Authenticate(ctx, s.LocalDeviceToken); err == nil {
			return h.loadLocalIdentity(ctx, p)
		}
		h.log.Warn("the local service no longer knows this device; creating it again")
	}
	base := localHandle()
	var u presence.User
	var userToken string
	var err error
	for i := 1; i <= 20; i++ {
		handle := base
		if i > 1 {
			handle = fmt.Sprintf("%s-%d", base, i)
		}
		u, userToken, err = h.store.CreateUser(ctx, handle, displayName())
		if presence.ErrorCode(err) != presence.ECONFLICT {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("create local user: %w", err)
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "this computer"
	}
	dev, devToken, err := h.store.CreateDevice(ctx, u.ID, truncate(host, 64))
	if err != nil {
		return fmt.Errorf("create local device: %w", err)
	}
	if err := h.db.SetLocalTokens(ctx, userToken, devToken); err != nil {
		return fmt.Errorf("save local tokens: %w", err)
	}
	h.log.Info("created the local account", "handle", u.Handle, "device", dev.Name)
	return h.loadLocalIdentity(ctx, presence.Principal{Kind: presence.DeviceToken, UserID: u.ID, DeviceID: dev.ID})
}

func (h *Host) loadLocalIdentity(ctx context.Context, p presence.Principal) error {
	u, err := h.store.UserByID(ctx, p.UserID)
	if err != nil {
		return fmt.Errorf("local user: %w", err)
	}
	ds, err := h.store.DeviceStatus(ctx, p.DeviceID)
	if err != nil {
		return fmt.Errorf("local device: %w", err)
	}
	h.mu.Lock()
	h.local = identity{handle: u.Handle, deviceID: p.DeviceID, deviceName: ds.Name}
	h.mu.Unlock()
	return nil
}

// localHandle derives the local user's handle from the OS account name:
// lowercase letters, digits, '-' and '_', at most 35 (room for a "-20"
// suffix within the 39 a handle may have), "me" when nothing is left.
func localHandle() string {
	name := "me"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	return handleFrom(name)
}

func handleFrom(name string) string {
	if i := strings.LastIndexAny(name, `\/`); i >= 0 { // DOMAIN\user on Windows
		name = name[i+1:]
	}
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case r == '.' || r == ' ':
			b.WriteRune('-')
		}
	}
	handle := strings.TrimLeft(b.String(), "-_")
	if len(handle) > 35 {
		handle = handle[:35]
	}
	if handle == "" {
		return "me"
	}
	return handle
}

// displayName is the account's full name when the OS has one.
func displayName() string {
	if u, err := user.Current(); err == nil {
		if n := strings.TrimSpace(strings.Split(u.Name, ",")[0]); n != "" {
			return n
		}
		return u.Username
	}
	return ""
}

// truncate cuts s to at most n bytes of valid UTF-8, at a rune boundary:
// a hostname is whatever the OS says, and a name cut inside a rune is not
// text.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
