package main

import (
	"image"
	"image/color"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestDownscaleAveragesPremultiplied(t *testing.T) {
	// Left half opaque red, right half transparent: one pixel of half-red
	// at half alpha, not a dark fringe.
	src := image.NewRGBA(image.Rect(0, 0, 4, 4))
	for y := range 4 {
		for x := range 2 {
			src.Set(x, y, color.RGBA{255, 0, 0, 255})
		}
	}
	got := downscale(src, 1).RGBAAt(0, 0)
	if got.A < 127 || got.A > 128 || got.R != got.A || got.G != 0 {
		t.Fatalf("downscale = %v, want premultiplied half red at half alpha", got)
	}
	for _, size := range []int{1, 3, 4} {
		if b := downscale(src, size).Bounds(); b.Dx() != size || b.Dy() != size {
			t.Errorf("downscale to %d gave %v", size, b)
		}
	}
}

func TestNfpmConfig(t *testing.T) {
	vars := map[string]string{
		"VERSION": "1.2.3", "RELEASE": "1", "ARCH": "amd64", "BIN": "/bin-dir", "STAGE": "/stage",
		"SRC": "/src/packaging", "ASSETS": "/src/build",
	}
	config, err := loadConfig(filepath.Join(repoRoot, "packaging", "nfpm.yaml"), vars)
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"deb", "rpm"} {
		info, err := config.Get(format)
		if err != nil {
			t.Fatal(err)
		}
		dst := map[string]string{}
		for _, c := range info.Contents {
			dst[c.Destination] = c.Type
		}
		unit := "/lib/systemd/system/lastseend.service"
		if format == "rpm" {
			unit = "/usr/lib/systemd/system/lastseend.service"
		}
		for _, want := range []string{"/usr/bin/lastseen", "/usr/bin/lastseen-agent", "/usr/bin/lastseend",
			"/usr/share/applications/lastseen.desktop", "/usr/share/metainfo/io.lastseen.Lastseen.metainfo.xml",
			"/usr/share/icons/hicolor/", "/usr/share/man/man1/", "/usr/share/doc/lastseen/copyright", unit} {
			if _, ok := dst[want]; !ok {
				t.Errorf("%s: %s not packaged", format, want)
			}
		}
		if dst["/etc/default/lastseend"] != "config|noreplace" {
			t.Errorf("%s: /etc/default/lastseend is %q, want a conffile (config|noreplace)", format, dst["/etc/default/lastseend"])
		}
		if len(info.Depends) == 0 {
			t.Errorf("%s: no runtime dependencies", format)
		}
		for _, d := range info.Depends {
			if strings.Contains(d, "-dev") {
				t.Errorf("%s depends on %s: runtime libraries only", format, d)
			}
		}
		want := "libwebkit2gtk-4.1-0"
		if format == "rpm" {
			want = "webkit2gtk4.1"
		}
		if !slices.ContainsFunc(info.Depends, func(d string) bool { return strings.HasPrefix(d, want) }) {
			t.Errorf("%s depends on %v, want %s", format, info.Depends, want)
		}
	}
	if _, err := loadConfig(filepath.Join(repoRoot, "packaging", "nfpm.yaml"), map[string]string{}); err == nil {
		t.Error("a config with its variables unset was accepted")
	}
}
