// Package traydbus drives a Linux tray from the outside, the way a desktop
// panel does: it runs a private session bus, stands in for the panel's
// StatusNotifierWatcher, reads an item's com.canonical.dbusmenu layout and
// clicks entries by label. Tests of the tray and end-to-end tests of the
// agent use it; it links no GUI toolkit and nothing of the window.
package traydbus

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"
)

// Names a StatusNotifierItem tray uses on the bus.
const (
	WatcherName = "org.kde.StatusNotifierWatcher"
	WatcherPath = "/StatusNotifierWatcher"
	ItemPath    = "/StatusNotifierItem"
	itemIface   = "org.kde.StatusNotifierItem"
	menuIface   = "com.canonical.dbusmenu"
)

// Bus is a private session bus: a dbus-daemon listening in a temporary
// directory, so tests never touch the user's own session.
type Bus struct {
	// Address is the value for DBUS_SESSION_BUS_ADDRESS.
	Address string
	cmd     *exec.Cmd
	dir     string
	done    chan struct{}
}

// StartBus starts dbus-daemon (which must be on PATH) with its socket in
// dir, a directory the caller owns (t.TempDir()).
func StartBus(ctx context.Context, dir string) (*Bus, error) {
	daemon, err := exec.LookPath("dbus-daemon")
	if err != nil {
		return nil, fmt.Errorf("start session bus: %w", err)
	}
	sock := filepath.Join(dir, "bus")
	cmd := exec.Command(daemon, "--session", "--nofork", "--nopidfile", "--print-address=1",
		"--address=unix:path="+sock)
	dieWithParent(cmd)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start session bus: %w", err)
	}
	// The daemon grumbles on stderr about fd limits it may not raise; keep
	// that for the error message when it fails to start.
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start session bus: %w", err)
	}
	b := &Bus{cmd: cmd, dir: dir, done: make(chan struct{})}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		for sc.Scan() { // keep the pipe drained
		}
	}()
	go func() { cmd.Wait(); close(b.done) }()
	select {
	case addr, ok := <-lines:
		if !ok || addr == "" {
			b.Close()
			return nil, fmt.Errorf("start session bus: dbus-daemon printed no address: %s", strings.TrimSpace(stderr.String()))
		}
		b.Address = strings.TrimSpace(addr)
		return b, nil
	case <-ctx.Done():
		b.Close()
		return nil, fmt.Errorf("start session bus: %w", ctx.Err())
	}
}

// Connect opens a new connection to the bus.
func (b *Bus) Connect(ctx context.Context) (*dbus.Conn, error) {
	conn, err := dbus.Connect(b.Address, dbus.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", b.Address, err)
	}
	return conn, nil
}

// Env is the environment entry that points a child process at the bus.
func (b *Bus) Env() string { return "DBUS_SESSION_BUS_ADDRESS=" + b.Address }

// Close stops the daemon and waits for it.
func (b *Bus) Close() error {
	if b.cmd.Process == nil {
		return nil
	}
	_ = b.cmd.Process.Kill()
	select {
	case <-b.done:
	case <-time.After(5 * time.Second):
		return errors.New("dbus-daemon did not exit")
	}
	return nil
}

// Watcher is a minimal StatusNotifierWatcher that also claims a host is
// registered: what a panel provides for tray icons to show. It records the
// items that register.
type Watcher struct {
	conn  *dbus.Conn
	props *prop.Properties

	mu      sync.Mutex
	items   []string // "unique-bus-name/object/path"
	changed chan struct{}
}

// StartWatcher exports a watcher on conn and takes its well-known name. A
// tray already running notices the name appear and registers.
func StartWatcher(conn *dbus.Conn) (*Watcher, error) {
	w := &Watcher{conn: conn, changed: make(chan struct{})}
	if err := conn.Export(watcherMethods{w}, WatcherPath, WatcherName); err != nil {
		return nil, fmt.Errorf("export watcher: %w", err)
	}
	props, err := prop.Export(conn, WatcherPath, map[string]map[string]*prop.Prop{
		WatcherName: {
			"RegisteredStatusNotifierItems":  {Value: []string{}, Emit: prop.EmitTrue},
			"IsStatusNotifierHostRegistered": {Value: true, Emit: prop.EmitTrue},
			"ProtocolVersion":                {Value: int32(0), Emit: prop.EmitTrue},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("export watcher properties: %w", err)
	}
	w.props = props
	reply, err := conn.RequestName(WatcherName, dbus.NameFlagDoNotQueue)
	if err != nil {
		return nil, fmt.Errorf("request %s: %w", WatcherName, err)
	}
	if reply != dbus.RequestNameReplyPrimaryOwner {
		return nil, fmt.Errorf("request %s: name already owned", WatcherName)
	}
	return w, nil
}

// Close gives up the watcher's name, as a panel that quits does.
func (w *Watcher) Close() error {
	if _, err := w.conn.ReleaseName(WatcherName); err != nil {
		return fmt.Errorf("release %s: %w", WatcherName, err)
	}
	return nil
}

// Items lists the registered items as "bus-name/path".
func (w *Watcher) Items() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.items)
}

// WaitItem waits until an item has registered and returns the bus name it
// registered from: the destination for ItemMenu and ItemTooltip.
func (w *Watcher) WaitItem(ctx context.Context) (string, error) {
	for {
		w.mu.Lock()
		items, changed := w.items, w.changed
		w.mu.Unlock()
		if len(items) > 0 {
			dest, _, _ := strings.Cut(items[0], "/")
			return dest, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return "", fmt.Errorf("wait for a tray item to register: %w", ctx.Err())
		}
	}
}

// watcherMethods keeps the D-Bus methods off Watcher's Go API.
type watcherMethods struct{ w *Watcher }

// RegisterStatusNotifierItem is the watcher's D-Bus method. Items pass
// either their object path (as fyne's systray does) or a bus name.
func (m watcherMethods) RegisterStatusNotifierItem(sender dbus.Sender, service string) *dbus.Error {
	entry := service
	if strings.HasPrefix(service, "/") {
		entry = string(sender) + service
	} else {
		entry = service + ItemPath
	}
	w := m.w
	w.mu.Lock()
	if !slices.Contains(w.items, entry) {
		w.items = append(w.items, entry)
	}
	items := slices.Clone(w.items)
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
	w.props.SetMust(WatcherName, "RegisteredStatusNotifierItems", items)
	_ = w.conn.Emit(WatcherPath, WatcherName+".StatusNotifierItemRegistered", entry)
	return nil
}

// RegisterStatusNotifierHost is the watcher's D-Bus method; hosts are
// accepted and forgotten, this watcher always reports one.
func (m watcherMethods) RegisterStatusNotifierHost(service string) *dbus.Error { return nil }

// ItemName is the well-known name fyne's systray takes for process pid.
func ItemName(pid int) string { return fmt.Sprintf("org.kde.StatusNotifierItem-%d-1", pid) }

// ItemTooltip reads the item's tooltip title.
func ItemTooltip(ctx context.Context, conn *dbus.Conn, dest string) (string, error) {
	var v dbus.Variant
	err := conn.Object(dest, ItemPath).CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, itemIface, "ToolTip").Store(&v)
	if err != nil {
		return "", fmt.Errorf("read tooltip of %s: %w", dest, err)
	}
	// (s a(iiay) s s): icon name, icon pixmaps, title, description.
	fields, ok := v.Value().([]any)
	if !ok || len(fields) < 3 {
		return "", fmt.Errorf("read tooltip of %s: unexpected value %v", dest, v)
	}
	title, _ := fields[2].(string)
	return title, nil
}

// IconPixmap is one image of an item's icon: ARGB32 in network byte order.
type IconPixmap struct {
	W, H int32
	ARGB []byte
}

// ItemIcon reads the item's icon pixmaps.
func ItemIcon(ctx context.Context, conn *dbus.Conn, dest string) ([]IconPixmap, error) {
	var v dbus.Variant
	err := conn.Object(dest, ItemPath).CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, itemIface, "IconPixmap").Store(&v)
	if err != nil {
		return nil, fmt.Errorf("read icon of %s: %w", dest, err)
	}
	var px []IconPixmap
	if err := dbus.Store([]any{v.Value()}, &px); err != nil {
		return nil, fmt.Errorf("read icon of %s: %w", dest, err)
	}
	return px, nil
}

// Menu is an item's exported com.canonical.dbusmenu.
type Menu struct {
	conn *dbus.Conn
	obj  dbus.BusObject
}

// ItemMenu finds the menu the item at dest exports (its Menu property).
func ItemMenu(ctx context.Context, conn *dbus.Conn, dest string) (*Menu, error) {
	var v dbus.Variant
	err := conn.Object(dest, ItemPath).CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, itemIface, "Menu").Store(&v)
	if err != nil {
		return nil, fmt.Errorf("read menu path of %s: %w", dest, err)
	}
	path, ok := v.Value().(dbus.ObjectPath)
	if !ok {
		return nil, fmt.Errorf("read menu path of %s: unexpected value %v", dest, v)
	}
	return &Menu{conn: conn, obj: conn.Object(dest, path)}, nil
}

// Node is one menu entry as a panel sees it.
type Node struct {
	ID        int32
	Label     string
	Enabled   bool
	Visible   bool
	Separator bool
	// Checkable is true for "checkmark" and "radio" toggles; Checked is
	// their state.
	Checkable bool
	Checked   bool
	Children  []Node
}

// Layout reads the whole menu tree. Some trays answer a first request with
// one level only (fyne's systray does, for libdbusmenu's sake), so
// submenus that come back empty are fetched on their own.
func (m *Menu) Layout(ctx context.Context) (Node, error) {
	return m.layout(ctx, 0)
}

func (m *Menu) layout(ctx context.Context, id int32) (Node, error) {
	var rev uint32
	var raw struct {
		ID       int32
		Props    map[string]dbus.Variant
		Children []dbus.Variant
	}
	err := m.obj.CallWithContext(ctx, menuIface+".GetLayout", 0, id, int32(-1), []string{}).Store(&rev, &raw)
	if err != nil {
		return Node{}, fmt.Errorf("GetLayout(%d): %w", id, err)
	}
	n := nodeOf(raw.ID, raw.Props)
	submenu, _ := raw.Props["children-display"].Value().(string)
	if submenu == "submenu" && len(raw.Children) == 0 && id != 0 {
		return n, nil // a truly empty submenu
	}
	for _, cv := range raw.Children {
		fields, ok := cv.Value().([]any)
		if !ok || len(fields) != 3 {
			return Node{}, fmt.Errorf("GetLayout(%d): unexpected child %v", id, cv)
		}
		cid, _ := fields[0].(int32)
		props, _ := fields[1].(map[string]dbus.Variant)
		kids, _ := fields[2].([]dbus.Variant)
		child := nodeOf(cid, props)
		display, _ := props["children-display"].Value().(string)
		if len(kids) > 0 || display == "submenu" {
			sub, err := m.layout(ctx, cid)
			if err != nil {
				return Node{}, err
			}
			child.Children = sub.Children
		}
		n.Children = append(n.Children, child)
	}
	return n, nil
}

func nodeOf(id int32, props map[string]dbus.Variant) Node {
	n := Node{ID: id, Enabled: true, Visible: true}
	if v, ok := props["label"].Value().(string); ok {
		n.Label = v
	}
	if v, ok := props["enabled"].Value().(bool); ok {
		n.Enabled = v
	}
	if v, ok := props["visible"].Value().(bool); ok {
		n.Visible = v
	}
	if v, _ := props["type"].Value().(string); v == "separator" {
		n.Separator = true
	}
	if v, _ := props["toggle-type"].Value().(string); v == "checkmark" || v == "radio" {
		n.Checkable = true
	}
	switch v := props["toggle-state"].Value().(type) {
	case int32:
		n.Checked = v == 1
	case int64:
		n.Checked = v == 1
	case int:
		n.Checked = v == 1
	}
	return n
}

// Find walks labels down the tree ("Pause", "30 minutes").
func (n Node) Find(labels ...string) (Node, bool) {
	cur := n
	for _, l := range labels {
		i := slices.IndexFunc(cur.Children, func(c Node) bool { return !c.Separator && c.Label == l })
		if i < 0 {
			return Node{}, false
		}
		cur = cur.Children[i]
	}
	return cur, true
}

// String renders the tree one entry a line, like a panel would draw it:
// "[x]" checked, "(off)" disabled, "(hidden)" invisible.
func (n Node) String() string {
	var b strings.Builder
	var walk func(Node, string)
	walk = func(n Node, indent string) {
		for _, c := range n.Children {
			b.WriteString(indent)
			switch {
			case c.Separator:
				b.WriteString("---\n")
				continue
			case c.Checkable && c.Checked:
				b.WriteString("[x] ")
			case c.Checkable:
				b.WriteString("[ ] ")
			}
			b.WriteString(c.Label)
			if !c.Enabled {
				b.WriteString(" (off)")
			}
			if !c.Visible {
				b.WriteString(" (hidden)")
			}
			b.WriteString("\n")
			walk(c, indent+"  ")
		}
	}
	walk(n, "")
	return b.String()
}

// Click finds the entry by its label path and sends it the "clicked" event
// a panel sends when the user picks it.
func (m *Menu) Click(ctx context.Context, labels ...string) error {
	root, err := m.Layout(ctx)
	if err != nil {
		return err
	}
	n, ok := root.Find(labels...)
	if !ok {
		return fmt.Errorf("no menu entry %q in:\n%s", strings.Join(labels, " › "), root)
	}
	call := m.obj.CallWithContext(ctx, menuIface+".Event", 0, n.ID, "clicked", dbus.MakeVariant(""), uint32(time.Now().Unix()))
	if call.Err != nil {
		return fmt.Errorf("click %q: %w", strings.Join(labels, " › "), call.Err)
	}
	return nil
}
