package icons

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// buildDir is the module's build/ folder, where build/gen writes the icons.
const buildDir = "../../../build"

// TestCommittedFilesMatch keeps build/ in step with the drawings: it
// compares pixels, not bytes, so a change in Go's PNG compressor does not
// count as drift.
func TestCommittedFilesMatch(t *testing.T) {
	check := func(t *testing.T, name string, want image.Image) {
		t.Helper()
		f, err := os.ReadFile(filepath.Join(buildDir, name))
		if err != nil {
			t.Fatalf("%v (run: go run build/gen/main.go)", err)
		}
		got, err := png.Decode(bytes.NewReader(f))
		if err != nil {
			t.Fatalf("decode %s: %v", name, err)
		}
		if !samePixels(got, want) {
			t.Errorf("%s differs from what package icons draws; run: go run build/gen/main.go", name)
		}
	}
	check(t, "appicon.png", AppImage(1024))
	for _, g := range Glyphs() {
		for _, s := range []struct {
			suffix string
			size   int
		}{{"", TraySize}, {"@2x", TraySize2x}} {
			img, err := TrayImage(g, s.size)
			if err != nil {
				t.Fatal(err)
			}
			check(t, fmt.Sprintf("tray/%s%s.png", g, s.suffix), img)
		}
	}
}

func samePixels(a, b image.Image) bool {
	if a.Bounds() != b.Bounds() {
		return false
	}
	for y := a.Bounds().Min.Y; y < a.Bounds().Max.Y; y++ {
		for x := a.Bounds().Min.X; x < a.Bounds().Max.X; x++ {
			r1, g1, b1, a1 := a.At(x, y).RGBA()
			r2, g2, b2, a2 := b.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 || a1 != a2 {
				return false
			}
		}
	}
	return true
}

func TestGlyphsAreDistinctAndShaped(t *testing.T) {
	seen := map[string]Glyph{}
	for _, g := range Glyphs() {
		img, err := TrayImage(g, TraySize)
		if err != nil {
			t.Fatal(err)
		}
		// Corners stay transparent (a round mark on any panel colour)...
		if a := img.NRGBAAt(0, 0).A; a != 0 {
			t.Errorf("%s: corner alpha %d, want 0", g, a)
		}
		// ...and only the hollow offline ring leaves its centre empty.
		centre := img.NRGBAAt(TraySize/2, TraySize/2-4)
		if hollow := centre.A == 0; hollow != (g == Offline) {
			t.Errorf("%s: centre alpha %d", g, centre.A)
		}
		key := string(img.Pix)
		if other, dup := seen[key]; dup {
			t.Errorf("%s draws the same pixels as %s", g, other)
		}
		seen[key] = g
	}
	if _, err := TrayPNG("sleeping", TraySize); err == nil {
		t.Error("unknown glyph: no error")
	}
}

func TestICO(t *testing.T) {
	ico, err := TrayICO(Active)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	if le.Uint16(ico[0:]) != 0 || le.Uint16(ico[2:]) != 1 {
		t.Fatalf("bad ico header % x", ico[:6])
	}
	n := int(le.Uint16(ico[4:]))
	if n != 3 {
		t.Fatalf("%d images, want 3", n)
	}
	for i := range n {
		dir := ico[6+16*i:]
		size, off := le.Uint32(dir[8:]), le.Uint32(dir[12:])
		cfg, err := png.DecodeConfig(bytes.NewReader(ico[off : off+size]))
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if int(dir[0]) != cfg.Width {
			t.Errorf("entry %d: directory says %d px, image is %d", i, dir[0], cfg.Width)
		}
	}
	app := AppICO()
	if got := int(le.Uint16(app[4:])); got != 7 {
		t.Errorf("app ico has %d images, want 7", got)
	}
	// The 256-pixel entry is written as 0, as the format requires.
	if last := app[6+16*6]; last != 0 {
		t.Errorf("256 px entry width byte = %d, want 0", last)
	}
	if _, err := ICO(AppPNG(300)); err == nil {
		t.Error("ICO accepted a 300 px image")
	}
	if _, err := ICO([]byte("not a png")); err == nil {
		t.Error("ICO accepted garbage")
	}
}
