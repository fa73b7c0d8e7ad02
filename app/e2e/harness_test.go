//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"

	"github.com/lastseen/lastseen/app/tray/traydbus"
	"github.com/lastseen/lastseen/internal/testutil"
)

// Binary names in the bin dir.
const (
	agentBin  = "lastseen-agent"
	windowBin = "lastseen"
	emptyBin  = "lastseen-emptywindow"
)

// screenSize is the virtual screen testutil.StartXvfb sets up.
const screenSize = testutil.XvfbScreen

// screenshotDir keeps what the tests saw; it is not committed (the good
// ones are copied to docs/screenshots by hand).
const screenshotDir = "screenshots"

// quietXGB sets xgb's package logger once: a reader goroutine of an earlier
// test's connection may still be reading it.
var quietXGB sync.Once

// gate skips unless one of the variables asks for the run. Desktop tests
// start X servers and browsers' worth of processes, so they never run by
// accident in a plain `go test ./...`.
func gate(t *testing.T, vars ...string) {
	t.Helper()
	for _, v := range vars {
		if os.Getenv(v) == "1" {
			return
		}
	}
	t.Skipf("desktop test: set %s=1 to run it (it needs the built binaries, Xvfb, xdotool, dbus-daemon and ImageMagick)", strings.Join(vars, "=1 or "))
}

// built is the path of a built program; a missing one fails the test,
// since a desktop run was asked for and would otherwise test nothing.
func built(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("LASTSEEN_BIN_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "build", "bin")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(abs, name)
	fi, err := os.Stat(p)
	if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		t.Fatalf("%s is not a built program (%v): run `make build` first, or point LASTSEEN_BIN_DIR at the directory holding %s, %s and %s",
			p, err, agentBin, windowBin, emptyBin)
	}
	return p
}

// ------------------------------------------------------------- the desktop

// desktop is one X display and one session bus with a panel stand-in, and
// a temporary home for every program started on it.
type desktop struct {
	t       *testing.T
	display string
	x       *xgb.Conn
	root    xproto.Window
	xdotool string
	importX string // ImageMagick's import
	busAddr string
	conn    *dbus.Conn
	watcher *traydbus.Watcher
	dir     string
	// env is the environment of every program started here: this display
	// and bus, and XDG directories inside dir so nothing touches the
	// user's own files.
	env []string
}

func startDesktop(t *testing.T, ctx context.Context) *desktop {
	t.Helper()
	// A desktop run was asked for (gate): a missing tool fails it rather
	// than passing as a run that tested nothing.
	d := &desktop{
		t:       t,
		xdotool: testutil.MustTool(t, "xdotool"),
		importX: testutil.MustTool(t, "import"),
		dir:     t.TempDir(),
	}
	testutil.MustTool(t, "dbus-daemon")
	testutil.MustTool(t, "Xvfb")
	d.display = testutil.StartXvfb(t)
	// xgb narrates to stderr through its package logger (no ~/.Xauthority,
	// which Xvfb does not need; the reader ending when Xvfb stops); every
	// failure that matters comes back as an error instead.
	quietXGB.Do(func() { xgb.Logger = log.New(io.Discard, "", 0) })
	x, err := xgb.NewConnDisplay(d.display)
	if err != nil {
		t.Fatalf("connect to X display %s: %v", d.display, err)
	}
	t.Cleanup(x.Close)
	d.x = x
	d.root = xproto.Setup(x).DefaultScreen(x).Root

	d.busAddr = testutil.StartSessionBus(t)
	if d.conn, err = dbus.Connect(d.busAddr, dbus.WithContext(ctx)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.conn.Close() })
	if d.watcher, err = traydbus.StartWatcher(d.conn); err != nil {
		t.Fatal(err)
	}

	for _, sub := range []string{"config", "cache", "share", "data"} {
		if err := os.MkdirAll(filepath.Join(d.dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// Later entries win in exec.Cmd.Env, so these override the caller's.
	d.env = append(os.Environ(),
		"DISPLAY="+d.display,
		"XDG_SESSION_TYPE=x11",
		"GDK_BACKEND=x11",
		"WAYLAND_DISPLAY=",
		"DBUS_SESSION_BUS_ADDRESS="+d.busAddr,
		"XDG_CONFIG_HOME="+filepath.Join(d.dir, "config"),
		"XDG_CACHE_HOME="+filepath.Join(d.dir, "cache"),
		"XDG_DATA_HOME="+filepath.Join(d.dir, "share"),
	)
	t.Setenv("DISPLAY", d.display) // for xdotool and import
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// on is the same desktop reporting to t: a subtest must fail through its
// own T, from its own goroutine.
func (d *desktop) on(t *testing.T) *desktop {
	c := *d
	c.t = t
	return &c
}

// dataDir is the Lastseen data dir every program here shares.
func (d *desktop) dataDir() string { return filepath.Join(d.dir, "data") }

// command prepares a program to run on this desktop, its output kept in
// dir/<name>.log (shown when the test fails).
func (d *desktop) command(name, bin string, args ...string) *exec.Cmd {
	d.t.Helper()
	logPath := filepath.Join(d.dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() {
		f.Close()
		if d.t.Failed() {
			b, _ := os.ReadFile(logPath)
			d.t.Logf("%s output:\n%s", name, tail(b, 6000))
		}
	})
	cmd := exec.Command(bin, args...)
	cmd.Env = d.env
	cmd.Stdout, cmd.Stderr = f, f
	return cmd
}

func tail(b []byte, n int) string {
	if len(b) > n {
		return "…" + string(b[len(b)-n:])
	}
	return string(b)
}

// move puts the pointer somewhere new: real input as the X server sees it.
func (d *desktop) move() {
	x := 200 + time.Now().Nanosecond()%800
	if out, err := exec.Command(d.xdotool, "mousemove", strconv.Itoa(x), "400").CombinedOutput(); err != nil {
		d.t.Errorf("xdotool mousemove: %v %s", err, out)
	}
}

// windows lists the mapped top-level windows xdotool finds by name whose
// full title passes match.
func (d *desktop) windows(match func(title string) bool) []xproto.Window {
	out, err := exec.Command(d.xdotool, "search", "--onlyvisible", "--name", "Lastseen").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 1 {
			return nil // nothing matched
		}
		d.t.Fatalf("xdotool search: %v", err)
	}
	var ws []xproto.Window
	for _, f := range strings.Fields(string(out)) {
		id, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			continue
		}
		w := xproto.Window(id)
		if match(d.title(w)) {
			ws = append(ws, w)
		}
	}
	return ws
}

// waitWindow waits for exactly one window passing match to be shown.
func (d *desktop) waitWindow(limit time.Duration, what string, match func(string) bool) (xproto.Window, time.Duration) {
	d.t.Helper()
	var ws []xproto.Window
	took := testutil.WaitUntil(d.t, what+" to be shown", limit, func() bool {
		ws = d.windows(match)
		return len(ws) > 0
	})
	if len(ws) != 1 {
		d.t.Fatalf("%d windows for %s, want 1", len(ws), what)
	}
	return ws[0], took
}

func (d *desktop) atom(name string) xproto.Atom {
	d.t.Helper()
	r, err := xproto.InternAtom(d.x, false, uint16(len(name)), name).Reply()
	if err != nil {
		d.t.Fatalf("intern atom %s: %v", name, err)
	}
	return r.Atom
}

func (d *desktop) property(w xproto.Window, name string) (*xproto.GetPropertyReply, error) {
	return xproto.GetProperty(d.x, false, w, d.atom(name), xproto.GetPropertyTypeAny, 0, 1024).Reply()
}

// title is the window's title as a taskbar shows it: the EWMH UTF-8 name,
// falling back to the ICCCM one.
func (d *desktop) title(w xproto.Window) string {
	for _, name := range []string{"_NET_WM_NAME", "WM_NAME"} {
		r, err := d.property(w, name)
		if err == nil && r.ValueLen > 0 {
			return string(r.Value)
		}
	}
	return ""
}

// waitTitle waits for the window's title to read want, calling poke on
// every look (to keep moving the pointer, say).
func (d *desktop) waitTitle(w xproto.Window, want string, limit time.Duration, poke func()) time.Duration {
	d.t.Helper()
	last := ""
	took, err := testutil.Poll("the window's title to read "+want, limit, func() error {
		if poke != nil {
			poke()
		}
		if last = d.title(w); last != want {
			return fmt.Errorf("it reads %q", last)
		}
		return nil
	})
	if err != nil {
		d.t.Fatal(err)
	}
	return took
}

// windowPID is the process that owns the window (_NET_WM_PID, which GTK
// sets).
func (d *desktop) windowPID(w xproto.Window) int {
	d.t.Helper()
	r, err := d.property(w, "_NET_WM_PID")
	if err != nil || r.Format != 32 || len(r.Value) < 4 {
		d.t.Fatalf("window %d has no _NET_WM_PID: %v", w, err)
	}
	return int(binary.LittleEndian.Uint32(r.Value))
}

// bounds is where the window sits on the screen.
func (d *desktop) bounds(w xproto.Window) image.Rectangle {
	d.t.Helper()
	g, err := xproto.GetGeometry(d.x, xproto.Drawable(w)).Reply()
	if err != nil {
		d.t.Fatalf("geometry of window %d: %v", w, err)
	}
	tr, err := xproto.TranslateCoordinates(d.x, w, d.root, 0, 0).Reply()
	if err != nil {
		d.t.Fatalf("position of window %d: %v", w, err)
	}
	return image.Rect(int(tr.DstX), int(tr.DstY), int(tr.DstX)+int(g.Width), int(tr.DstY)+int(g.Height))
}

// closeWindow asks the window to close the way a window manager does when
// the user clicks its close button: a WM_DELETE_WINDOW client message,
// which the toolkit answers as a close request (never a kill).
func (d *desktop) closeWindow(w xproto.Window) {
	d.t.Helper()
	protocols, del := d.atom("WM_PROTOCOLS"), d.atom("WM_DELETE_WINDOW")
	r, err := d.property(w, "WM_PROTOCOLS")
	if err != nil {
		d.t.Fatalf("read WM_PROTOCOLS: %v", err)
	}
	supported := false
	for i := 0; i+4 <= len(r.Value); i += 4 {
		supported = supported || xproto.Atom(binary.LittleEndian.Uint32(r.Value[i:])) == del
	}
	if !supported {
		d.t.Fatalf("window %d does not take WM_DELETE_WINDOW; a window manager could only kill it", w)
	}
	ev := xproto.ClientMessageEvent{
		Format: 32,
		Window: w,
		Type:   protocols,
		Data:   xproto.ClientMessageDataUnionData32New([]uint32{uint32(del), 0 /* CurrentTime */, 0, 0, 0}),
	}
	if err := xproto.SendEventChecked(d.x, false, w, xproto.EventMaskNoEvent, string(ev.Bytes())).Check(); err != nil {
		d.t.Fatalf("send WM_DELETE_WINDOW: %v", err)
	}
}

// screenshot saves the whole screen (screenshots/NAME-screen.png) and the
// window cut out of it (screenshots/NAME.png), and fails when the window
// shows no rendered content (one flat colour: a blank or crashed webview).
//
// A title that changed says the page's state did, not that the new state
// is painted: the picture is taken once the window shows rendered content
// and two captures in a row agree, so a busy machine that paints late gives
// a later picture rather than a stale or blank one.
func (d *desktop) screenshot(name string, w xproto.Window) string {
	d.t.Helper()
	full := filepath.Join(screenshotDir, name+"-screen.png")
	var (
		win  image.Image
		prev []byte
		n    int
	)
	_, err := testutil.Poll("the window to show a settled, rendered picture", 15*time.Second, func() error {
		var pixels []byte
		win, pixels = d.capture(full, w)
		n = colours(win, 64)
		same := prev != nil && bytes.Equal(pixels, prev)
		prev = pixels
		switch {
		case n < 64:
			return fmt.Errorf("the window shows %d colours", n)
		case !same:
			return errors.New("the picture is still changing")
		}
		return nil
	})
	switch {
	case n < 64:
		d.t.Fatalf("%s: the window shows %d colours; it did not render (%v)", full, n, err)
	case err != nil:
		// An animation never settles; its last frame is as good as any.
		d.t.Logf("%s: %v; keeping the last capture", full, err)
	}
	path := filepath.Join(screenshotDir, name+".png")
	out, err := os.Create(path)
	if err != nil {
		d.t.Fatal(err)
	}
	defer out.Close()
	if err := png.Encode(out, win); err != nil {
		d.t.Fatalf("write %s: %v", path, err)
	}
	abs, _ := filepath.Abs(path)
	d.t.Logf("screenshot %s", abs)
	return path
}

// capture saves the whole screen to full and returns the window cut out of
// it, with its pixels for comparing one capture with the next.
func (d *desktop) capture(full string, w xproto.Window) (image.Image, []byte) {
	d.t.Helper()
	if out, err := exec.Command(d.importX, "-window", "root", full).CombinedOutput(); err != nil {
		d.t.Fatalf("import -window root: %v %s", err, out)
	}
	f, err := os.Open(full)
	if err != nil {
		d.t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		d.t.Fatalf("decode %s: %v", full, err)
	}
	r := d.bounds(w).Intersect(img.Bounds())
	sub, ok := img.(interface {
		SubImage(image.Rectangle) image.Image
	})
	if !ok || r.Empty() {
		d.t.Fatalf("cannot cut window %v out of %s", r, full)
	}
	win := sub.SubImage(r)
	b := win.Bounds()
	pixels := make([]byte, 0, 4*b.Dx()*b.Dy())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := win.At(x, y).RGBA()
			pixels = append(pixels, byte(r>>8), byte(g>>8), byte(bl>>8))
		}
	}
	return win, pixels
}

// colours counts distinct colours in img, stopping at enough: text, icons
// and anti-aliasing give a rendered page hundreds.
func colours(img image.Image, enough int) int {
	seen := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[[4]uint32{r, g, bl, a}] = true
			if len(seen) >= enough {
				return len(seen)
			}
		}
	}
	return len(seen)
}

// ---------------------------------------------------------------- processes

// commOf is a program's name as /proc shows it: cut to 15 bytes.
func commOf(name string) string { return name[:min(len(name), 15)] }

// userHZ is the unit of the CPU times in /proc/PID/stat (USER_HZ, 100 on
// every Linux architecture).
const userHZ = 100

// proc is one process as /proc/PID/stat shows it.
type proc struct {
	PID, PPID    int
	Comm         string
	State        byte
	UTime, STime uint64 // in 1/userHZ s
	// Start (clock ticks after boot) tells a process from a later one
	// that reuses its PID.
	Start uint64
}

func readProc(pid int) (proc, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return proc{}, err
	}
	return parseStat(string(b))
}

// parseStat reads /proc/PID/stat. The command name sits in parentheses and
// may itself hold spaces and parentheses, so fields are counted from the
// last ')'.
func parseStat(s string) (proc, error) {
	open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || close < open {
		return proc{}, fmt.Errorf("malformed stat %q", s)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(s[:open]))
	if err != nil {
		return proc{}, fmt.Errorf("malformed stat %q: %w", s, err)
	}
	f := strings.Fields(s[close+1:])
	// f[0] is field 3 (state); field N is f[N-3].
	if len(f) < 20 {
		return proc{}, fmt.Errorf("malformed stat %q: %d fields", s, len(f))
	}
	p := proc{PID: pid, Comm: s[open+1 : close], State: f[0][0]}
	nums := []*uint64{&p.UTime, &p.STime, &p.Start}
	for i, idx := range []int{11, 12, 19} {
		if *nums[i], err = strconv.ParseUint(f[idx], 10, 64); err != nil {
			return proc{}, fmt.Errorf("malformed stat %q: %w", s, err)
		}
	}
	if p.PPID, err = strconv.Atoi(f[1]); err != nil {
		return proc{}, fmt.Errorf("malformed stat %q: %w", s, err)
	}
	return p, nil
}

// allProcs reads every process. Ones that end while being read are
// skipped.
func allProcs() []proc {
	ents, _ := os.ReadDir("/proc")
	var ps []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, err := readProc(pid); err == nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// tree is root and all its descendants, root first.
func tree(root int) []proc {
	ps := allProcs()
	kids := map[int][]proc{}
	var top *proc
	for i, p := range ps {
		kids[p.PPID] = append(kids[p.PPID], p)
		if p.PID == root {
			top = &ps[i]
		}
	}
	if top == nil {
		return nil
	}
	out := []proc{*top}
	for i := 0; i < len(out); i++ {
		out = append(out, kids[out[i].PID]...)
	}
	return out
}

// alive reports whether this very process still runs (a zombie has ended).
func (p proc) alive() bool {
	now, err := readProc(p.PID)
	return err == nil && now.Start == p.Start && now.State != 'Z' && now.State != 'X'
}

// cpuTicks is the user+system time of the processes still running.
func cpuTicks(ps []proc) uint64 {
	var sum uint64
	for _, p := range ps {
		if now, err := readProc(p.PID); err == nil && now.Start == p.Start {
			sum += now.UTime + now.STime
		}
	}
	return sum
}

// memKB reads "Key:  N kB" lines of a /proc file and sums the keys' values.
func memKB(path string, keys ...string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var sum uint64
	found := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		key, v, ok := strings.Cut(line, ":")
		if !ok || !slices.Contains(keys, key) {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %s: %w", path, line, err)
		}
		sum += n
		found++
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	if found != len(keys) {
		return 0, fmt.Errorf("%s: want lines %v, found %d", path, keys, found)
	}
	return sum, nil
}

// pssKB is the process's proportional set size: its private pages plus its
// share of pages mapped by others, so summing it over processes counts a
// shared library once.
func pssKB(pid int) (uint64, error) {
	return memKB(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss")
}

// ussKB is what the process alone holds (its private pages): unlike PSS it
// does not move when unrelated programs map the same libraries.
func ussKB(pid int) (uint64, error) {
	return memKB(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Private_Clean", "Private_Dirty")
}

func rssKB(pid int) (uint64, error) {
	return memKB(fmt.Sprintf("/proc/%d/status", pid), "VmRSS")
}

// onDisplay lists live WebKit helpers (and windows) started on display:
// whatever is left of a window after it closed. Other programs' webviews on
// other displays are not ours to count.
func onDisplay(display string) []proc {
	var out []proc
	for _, p := range allProcs() {
		if !strings.HasPrefix(p.Comm, "WebKit") && p.Comm != windowBin && p.Comm != commOf(emptyBin) {
			continue
		}
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.PID))
		if err != nil || p.State == 'Z' {
			continue
		}
		for _, kv := range strings.Split(string(env), "\x00") {
			if kv == "DISPLAY="+display {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// -------------------------------------------------------------------- agent

// agent is a running lastseen-agent and a client for its local API.
type agent struct {
	*process
	dir    string
	client *http.Client
}

// process is a program started by a test. Cleanup kills it if it still
// runs, so a failed test leaves nothing behind.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // of Wait, once done is closed
}

// start starts cmd and reaps it when it ends.
func start(t *testing.T, cmd *exec.Cmd) *process {
	t.Helper()
	testutil.DieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		if p.running() {
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *process) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// wait waits up to limit for the program to end and returns how it ended.
func (p *process) wait(limit time.Duration) (err error, ended bool) {
	select {
	case <-p.done:
		return p.err, true
	case <-time.After(limit):
		return nil, false
	}
}

// startAgent runs lastseen-agent on the desktop, sharing its data dir, and
// waits for its local API to answer.
func (d *desktop) startAgent(bin string, args ...string) *agent {
	d.t.Helper()
	cmd := d.command("agent", bin, append([]string{"--data-dir", d.dataDir()}, args...)...)
	a := &agent{process: start(d.t, cmd), dir: d.dataDir(),
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}}
	testutil.WaitUntil(d.t, "the agent's local API to answer", 15*time.Second, func() bool {
		var st localStatus
		return a.get("/local/v1/status", &st) == nil
	})
	return a
}

// agentInfo is <data-dir>/agent.json.
type agentInfo struct {
	URL    string `json:"url"`
	Secret string `json:"secret"`
	PID    int    `json:"pid"`
}

func (a *agent) info() (agentInfo, error) {
	var info agentInfo
	b, err := os.ReadFile(filepath.Join(a.dir, "agent.json"))
	if err != nil {
		return info, err
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, fmt.Errorf("agent.json: %w", err)
	}
	return info, nil
}

// get reads a JSON answer of the agent's local API, as the window does.
func (a *agent) get(path string, out any) error {
	info, err := a.info()
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodGet, info.URL+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+info.Secret)
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

// stop ends the agent as logout does and expects a clean exit.
func (a *agent) stop(t *testing.T) {
	t.Helper()
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("signal the agent: %v", err)
	}
	err, ended := a.wait(10 * time.Second)
	if !ended {
		t.Fatal("the agent did not exit within 10 s of SIGTERM")
	}
	if err != nil {
		t.Fatalf("agent exit: %v", err)
	}
}

// Shapes of the agent's answers (docs/LOCALAPI.md), as far as the tests read them.
type localStatus struct {
	State   string `json:"state"`
	Service struct {
		Kind      string     `json:"kind"`
		Reachable bool       `json:"reachable"`
		LastSync  *time.Time `json:"last_sync"`
		Error     string     `json:"error"`
	} `json:"service"`
	Device struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	} `json:"device"`
	Handle string `json:"handle"`
}

type diagnostics struct {
	OutboxDepth int        `json:"outbox_depth"`
	LastSync    *time.Time `json:"last_sync"`
	LastError   string     `json:"last_error"`
	RSSBytes    int64      `json:"rss_bytes"`
	CPUPercent  float64    `json:"cpu_percent"`
}

type presenceList struct {
	Users []struct {
		Handle  string `json:"handle"`
		Status  string `json:"status"`
		Devices []struct {
			ID     int64  `json:"id"`
			Name   string `json:"name"`
			Status string `json:"status"`
		} `json:"devices"`
	} `json:"users"`
}

// deviceStatus is this device's status as the (local) service tells it.
func (a *agent) deviceStatus() (string, error) {
	var st localStatus
	if err := a.get("/local/v1/status", &st); err != nil {
		return "", err
	}
	var pl presenceList
	if err := a.get("/api/v1/presence", &pl); err != nil {
		return "", err
	}
	for _, u := range pl.Users {
		for _, dv := range u.Devices {
			if dv.ID == st.Device.ID {
				return dv.Status, nil
			}
		}
	}
	return "", fmt.Errorf("device %d (%s) is not in /api/v1/presence", st.Device.ID, st.Device.Name)
}
