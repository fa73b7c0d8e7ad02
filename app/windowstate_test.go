package app

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWindowStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	got, err := loadWindowState(dir)
	if err != nil || got != defaultWindowState() {
		t.Fatalf("first run = %+v, %v; want defaults", got, err)
	}
	want := windowState{Width: 1280, Height: 900, X: 40, Y: 60, HasPosition: true}
	if err := saveWindowState(dir, want); err != nil {
		t.Fatal(err)
	}
	if got, err = loadWindowState(dir); err != nil || got != want {
		t.Errorf("reloaded %+v, %v; want %+v", got, err, want)
	}
	// No temporary files are left behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data dir holds %d files, want only %s", len(entries), windowStateFile)
	}
}

func TestWindowStateBrokenFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, windowStateFile), []byte(`{"width": 12`), 0o600)
	got, err := loadWindowState(dir)
	if err == nil {
		t.Error("no error for a truncated file")
	}
	if got != defaultWindowState() {
		t.Errorf("got %+v, want defaults", got)
	}
}

func TestWindowStateSane(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in, out windowState
	}{
		{"fine", windowState{Width: 800, Height: 600, X: 10, Y: 10, HasPosition: true}, windowState{Width: 800, Height: 600, X: 10, Y: 10, HasPosition: true}},
		{"too small", windowState{Width: 100, Height: 600}, windowState{Width: defaultWidth, Height: defaultHeight}},
		{"absurd", windowState{Width: 800, Height: 1 << 20}, windowState{Width: defaultWidth, Height: defaultHeight}},
		{"far away", windowState{Width: 800, Height: 600, X: 1 << 20, Y: 5, HasPosition: true}, windowState{Width: 800, Height: 600}},
	} {
		if got := tc.in.sane(); got != tc.out {
			t.Errorf("%s: sane = %+v, want %+v", tc.name, got, tc.out)
		}
	}
}

func TestPlaceable(t *testing.T) {
	one := []screen{{1920, 1080}}
	two := []screen{{1920, 1080}, {2560, 1440}}
	at := func(x, y int) windowState {
		return windowState{Width: 1000, Height: 700, X: x, Y: y, HasPosition: true}
	}
	for _, tc := range []struct {
		name    string
		s       windowState
		screens []screen
		want    bool
	}{
		{"on the screen", at(100, 100), one, true},
		{"on the second screen", at(3000, 200), two, true},
		{"second screen unplugged", at(3000, 200), one, false},
		{"partly off the left edge", at(-900, 100), one, true},
		{"all but gone off the left", at(-990, 100), one, false},
		{"above the top", at(100, -20), one, false},
		{"below the bottom", at(100, 1070), one, false},
		{"never saved", windowState{Width: 1000, Height: 700}, one, false},
		{"no screen information", at(100, 100), nil, false},
	} {
		if got := tc.s.placeable(tc.screens); got != tc.want {
			t.Errorf("%s: placeable = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// fakeWindow is a native window for the geometry logic.
type fakeWindow struct {
	w, h, x, y int
	maximised  bool
	screens    []screen
	moved      bool
}

func (f *fakeWindow) Size() (int, int)     { return f.w, f.h }
func (f *fakeWindow) Position() (int, int) { return f.x, f.y }
func (f *fakeWindow) IsMaximised() bool    { return f.maximised }
func (f *fakeWindow) SetPosition(x, y int) { f.x, f.y, f.moved = x, y, true }
func (f *fakeWindow) Screens() []screen    { return f.screens }

var _ windowAPI = (*fakeWindow)(nil)

func TestCaptureAndRestore(t *testing.T) {
	prev := windowState{Width: 900, Height: 700, X: 20, Y: 30, HasPosition: true}

	normal := &fakeWindow{w: 1200, h: 800, x: 50, y: 60}
	if got := captureWindowState(normal, prev); got != (windowState{Width: 1200, Height: 800, X: 50, Y: 60, HasPosition: true}) {
		t.Errorf("normal window captured as %+v", got)
	}
	// Maximised: remember that, but keep the normal geometry for later.
	max := &fakeWindow{w: 1920, h: 1080, maximised: true}
	if got := captureWindowState(max, prev); got != (windowState{Width: 900, Height: 700, X: 20, Y: 30, HasPosition: true, Maximised: true}) {
		t.Errorf("maximised window captured as %+v", got)
	}

	f := &fakeWindow{screens: []screen{{1920, 1080}}}
	if !restorePosition(f, prev) || f.x != 20 || f.y != 30 {
		t.Errorf("not restored: %+v", f)
	}
	f = &fakeWindow{screens: []screen{{1920, 1080}}}
	if restorePosition(f, windowState{Width: 900, Height: 700, X: 5000, Y: 30, HasPosition: true}) || f.moved {
		t.Error("moved the window off-screen")
	}
	if restorePosition(f, windowState{Width: 900, Height: 700, X: 20, Y: 30, HasPosition: true, Maximised: true}) || f.moved {
		t.Error("moved a window that opens maximised")
	}
}
