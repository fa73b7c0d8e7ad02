// Package tray is the agent's tray icon and menu: a view over the agent
// core. The core sends Status values; the tray turns each into a menu model
// (BuildMenu, pure and table-tested) and copies it onto native items; clicks
// come back as calls on Actions. It never holds state of its own beyond what
// it last showed. RunAgent wires it to the agent's host through the small
// Agent interface, so the agent's command only hands the host over.
//
// On Linux and the BSDs the tray is a StatusNotifierItem with a
// com.canonical.dbusmenu menu on the session bus (fyne.io/systray, pure Go);
// on Windows and macOS it is the native notification area or menu bar. With
// no tray host the agent keeps working and says so once in its log.
//
// The window (package app) must not import this package: it links the
// systray library, which takes the main thread for itself.
package tray

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"fyne.io/systray"

	"github.com/lastseen/lastseen/app/tray/icons"
)

// Options configure Run.
type Options struct {
	Actions Actions
	// Updates carries the core's status; each one redraws the menu. A
	// closed channel leaves the last status shown.
	Updates <-chan Status
	Logger  *slog.Logger
	// Now is the clock for pause ends; time.Now when nil.
	Now func() time.Time
}

// refreshEvery re-renders the menu without a new status so relative texts
// ("tomorrow 09:00" becoming "09:00" after midnight) stay true.
const refreshEvery = time.Minute

// Run shows the tray and blocks until ctx ends or the user picks Quit (after
// Actions.Quit returns). It must be called from the main goroutine (macOS
// draws menus only on the main thread) and at most once per process, since
// the systray library keeps process-wide state.
//
// When no tray can be shown (no session bus on Linux) Run logs it once,
// keeps draining Updates and blocks until ctx ends.
func Run(ctx context.Context, o Options) error {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	if err := watchHost(ctx, o.Logger); errors.Is(err, errNoSessionBus) {
		// Without a bus systray can export nothing, and its quit path would
		// then dereference a connection it never made.
		for {
			select {
			case <-ctx.Done():
				return nil
			case _, ok := <-o.Updates:
				if !ok {
					o.Updates = nil
				}
			}
		}
	} else if err != nil {
		o.Logger.Warn("cannot watch for a system tray host", "error", err)
	}

	restore := redirectStdLog(o.Logger)
	defer restore()

	c := &controller{opts: o, items: map[string]*systray.MenuItem{}, shown: map[string]Item{}, clicks: make(chan string, 8)}
	var runErr error
	func() {
		defer func() {
			if r := recover(); r != nil {
				runErr = fmt.Errorf("system tray: %v", r)
			}
		}()
		runNative(func() { c.ready(ctx) }, func() { c.loop(ctx) })
	}()
	return runErr
}

// controller owns the native items. Only its loop goroutine touches them
// after ready returns.
type controller struct {
	opts   Options
	status Status
	items  map[string]*systray.MenuItem
	shown  map[string]Item // what each native item shows now
	icon   icons.Glyph
	tip    string
	clicks chan string
}

// ready builds the menu and shows the first status; runNative has hosts
// see the tray only once it returns, so they never see a half-built menu.
func (c *controller) ready(ctx context.Context) {
	if runtime.GOOS != "darwin" {
		// The StatusNotifierItem title names the app; on macOS a title is
		// text drawn beside the icon, which we do not want.
		systray.SetTitle("Lastseen")
	}
	m := c.menu()
	c.create(ctx, nil, m.Items)
	c.apply(m)
}

func (c *controller) menu() Menu {
	m := BuildMenu(c.status, c.opts.Now())
	m.Items = c.opts.Actions.disableMissing(m.Items)
	return m
}

// create makes the native items once; apply updates them in place, so item
// IDs (and hosts' open menus) survive every status change.
func (c *controller) create(ctx context.Context, parent *systray.MenuItem, items []Item) {
	for _, it := range items {
		if it.Separator {
			if parent == nil {
				systray.AddSeparator()
			} else {
				parent.AddSeparator()
			}
			continue
		}
		var mi *systray.MenuItem
		switch {
		case parent == nil && it.Checkable:
			mi = systray.AddMenuItemCheckbox(it.Label, "", it.Checked)
		case parent == nil:
			mi = systray.AddMenuItem(it.Label, "")
		case it.Checkable:
			mi = parent.AddSubMenuItemCheckbox(it.Label, "", it.Checked)
		default:
			mi = parent.AddSubMenuItem(it.Label, "")
		}
		c.items[it.ID] = mi
		c.shown[it.ID] = Item{ID: it.ID, Label: it.Label, Checkable: it.Checkable, Checked: it.Checked}
		if len(it.Children) > 0 {
			c.create(ctx, mi, it.Children)
		} else {
			go c.forward(ctx, it.ID, mi.ClickedCh)
		}
	}
}

// forward moves one item's clicks to the loop. systray drops a click when
// nobody is receiving, so every item keeps a receiver of its own.
func (c *controller) forward(ctx context.Context, id string, clicked <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-clicked:
			if !ok {
				return
			}
			select {
			case c.clicks <- id:
			case <-ctx.Done():
				return
			}
		}
	}
}

func (c *controller) apply(m Menu) {
	if m.Icon != c.icon {
		b, err := iconBytes(m.Icon)
		if err != nil {
			c.opts.Logger.Error("draw tray icon", "icon", string(m.Icon), "error", err)
		} else {
			systray.SetIcon(b)
			c.icon = m.Icon
		}
	}
	if m.Tooltip != c.tip {
		systray.SetTooltip(m.Tooltip)
		c.tip = m.Tooltip
	}
	c.applyItems(m.Items)
}

func (c *controller) applyItems(items []Item) {
	for _, it := range items {
		if it.Separator {
			continue
		}
		mi, was := c.items[it.ID], c.shown[it.ID]
		if mi == nil {
			continue
		}
		if it.Label != was.Label {
			mi.SetTitle(it.Label)
		}
		if it.Checked != was.Checked {
			if it.Checked {
				mi.Check()
			} else {
				mi.Uncheck()
			}
		}
		if it.Disabled != was.Disabled {
			if it.Disabled {
				mi.Disable()
			} else {
				mi.Enable()
			}
		}
		if it.Hidden != was.Hidden {
			if it.Hidden {
				mi.Hide()
			} else {
				mi.Show()
			}
		}
		c.shown[it.ID] = Item{ID: it.ID, Label: it.Label, Checkable: it.Checkable, Checked: it.Checked, Disabled: it.Disabled, Hidden: it.Hidden}
		c.applyItems(it.Children)
	}
}

// loop applies each status and click until ctx ends or Quit is picked,
// then has the library quit.
func (c *controller) loop(ctx context.Context) {
	tick := time.NewTicker(refreshEvery)
	defer tick.Stop()
	updates := c.opts.Updates
	for {
		select {
		case <-ctx.Done():
			systray.Quit()
			return
		case s, ok := <-updates:
			if !ok {
				updates = nil
				continue
			}
			c.status = s
			c.apply(c.menu())
		case <-tick.C:
			c.apply(c.menu())
		case id := <-c.clicks:
			c.opts.Logger.Debug("tray menu clicked", "item", id)
			if c.opts.Actions.dispatch(id, c.status, c.opts.Now()) {
				systray.Quit()
				return
			}
		}
	}
}
