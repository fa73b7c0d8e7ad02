package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// windowStateFile remembers the window's geometry between launches.
const windowStateFile = "window.json"

// Window geometry bounds. The dashboard needs room for a sessions table;
// anything beyond maxDim is a corrupt file, not a screen.
const (
	defaultWidth, defaultHeight = 1100, 760
	minWidth, minHeight         = 640, 480
	maxDim                      = 16384
)

// windowState is the window's size and place. Size and position are those
// of the normal (unmaximised) window, so un-maximising after a restart
// lands where the user left it.
type windowState struct {
	Width       int  `json:"width"`
	Height      int  `json:"height"`
	X           int  `json:"x"`
	Y           int  `json:"y"`
	HasPosition bool `json:"has_position"`
	Maximised   bool `json:"maximised"`
}

func defaultWindowState() windowState {
	return windowState{Width: defaultWidth, Height: defaultHeight}
}

// sane repairs what a hand-edited or truncated file may hold.
func (s windowState) sane() windowState {
	if s.Width < minWidth || s.Width > maxDim || s.Height < minHeight || s.Height > maxDim {
		s.Width, s.Height = defaultWidth, defaultHeight
	}
	if s.X < -maxDim || s.X > maxDim || s.Y < -maxDim || s.Y > maxDim {
		s.X, s.Y, s.HasPosition = 0, 0, false
	}
	return s
}

// loadWindowState reads the saved geometry; a missing file is the default
// and a broken one is the default plus an error to log.
func loadWindowState(dataDir string) (windowState, error) {
	path := filepath.Join(dataDir, windowStateFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return defaultWindowState(), nil
	}
	if err != nil {
		return defaultWindowState(), fmt.Errorf("read %s: %w", path, err)
	}
	s := defaultWindowState()
	if err := json.Unmarshal(b, &s); err != nil {
		return defaultWindowState(), fmt.Errorf("read %s: %w", path, err)
	}
	return s.sane(), nil
}

// saveWindowState writes the geometry atomically: a crash mid-write leaves
// the previous file, never half a file.
func saveWindowState(dataDir string, s windowState) error {
	b, err := json.MarshalIndent(s.sane(), "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dataDir, windowStateFile)
	tmp, err := os.CreateTemp(dataDir, windowStateFile+".*")
	if err != nil {
		return fmt.Errorf("save window state: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("save window state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save window state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save window state: %w", err)
	}
	return nil
}

// screen is a display's logical size.
type screen struct{ Width, Height int }

// placeable reports whether a window at (x, y) would still show at least a
// grip's worth on the screens there are now: a monitor unplugged since the
// last run must not strand the window off-screen. Screens are taken as laid
// out side by side, which is all the platform reports.
func (s windowState) placeable(screens []screen) bool {
	if !s.HasPosition || len(screens) == 0 {
		return false
	}
	const grip = 64
	total, tallest := 0, 0
	for _, sc := range screens {
		total += sc.Width
		tallest = max(tallest, sc.Height)
	}
	return s.X > -s.Width+grip && s.X < total-grip && s.Y >= 0 && s.Y < tallest-grip
}

// windowAPI is what the window-state logic needs of the native window; the
// Wails runtime provides it, tests fake it.
type windowAPI interface {
	Size() (w, h int)
	Position() (x, y int)
	IsMaximised() bool
	SetPosition(x, y int)
	Screens() []screen
}

// capture reads the geometry to save at close. A maximised window keeps the
// previous normal geometry.
func captureWindowState(w windowAPI, prev windowState) windowState {
	if w.IsMaximised() {
		prev.Maximised = true
		return prev
	}
	s := windowState{HasPosition: true}
	s.Width, s.Height = w.Size()
	s.X, s.Y = w.Position()
	return s.sane()
}

// restorePosition moves the window where it was, if that is still on screen.
func restorePosition(w windowAPI, s windowState) bool {
	if s.Maximised || !s.placeable(w.Screens()) {
		return false
	}
	w.SetPosition(s.X, s.Y)
	return true
}
