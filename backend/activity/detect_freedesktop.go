//go:build linux || freebsd || netbsd || openbsd || dragonfly

package activity

import "context"

// idleCandidates are tried in order. The X11 counter comes first in an X11
// session (it is the server's own, and cheap), and is never offered in a
// Wayland one. Mutter's monitor answers on GNOME under both; the
// ScreenSaver interface covers KDE and others (GNOME refuses
// GetSessionIdleTime, so the probe moves on). In a Wayland session the
// compositor's own idle protocols follow: ext-idle-notify-v1 (wlroots
// compositors, KWin 6), then org_kde_kwin_idle (older wlroots and KWin).
func idleCandidates(c Config) []candidate[IdleSource] {
	var cs []candidate[IdleSource]
	if x11Session(c.Getenv) {
		cs = append(cs, candidate[IdleSource]{X11Name, func(ctx context.Context) (IdleSource, error) {
			x, err := openX11(ctx, c.Getenv("DISPLAY"))
			if err != nil {
				return nil, err
			}
			if x.syncErr != nil {
				c.Logger.Info("idle source cannot wait for input; it will be polled", logBackend, X11Name, logErr, x.syncErr)
			}
			return x.source(), nil
		}})
	}
	cs = append(cs,
		candidate[IdleSource]{MutterName, func(ctx context.Context) (IdleSource, error) {
			return openBusIdle(ctx, c.Getenv, mutterIdle, "GetIdletime")
		}},
		candidate[IdleSource]{ScreenSaverName, func(ctx context.Context) (IdleSource, error) {
			return openBusIdle(ctx, c.Getenv, freedesktopSaver, "GetSessionIdleTime")
		}},
	)
	if waylandSession(c.Getenv) {
		for _, proto := range []wlIdleProtocol{extIdleNotify, kdeIdle} {
			cs = append(cs, candidate[IdleSource]{proto.name, func(ctx context.Context) (IdleSource, error) {
				return openWaylandIdle(ctx, c, proto)
			}})
		}
	}
	return cs
}

// watcherCandidates: logind for sleep, wake and the session's lock hint;
// the screen saver's ActiveChanged for desktops whose locker does not set
// LockedHint (and as a second opinion; the merge drops repeats).
func watcherCandidates(c Config) []candidate[Watcher] {
	return []candidate[Watcher]{
		{LogindName, func(ctx context.Context) (Watcher, error) { return openLogind(ctx, c) }},
		{"screensaver", func(ctx context.Context) (Watcher, error) { return openSaverWatcher(ctx, c) }},
	}
}
