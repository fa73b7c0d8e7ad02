//go:build ignore

// Command gen writes Lastseen's icons into build/ from the drawings in
// app/tray/icons, so packagers and the Wails tooling find ordinary files.
// Run it from the module root after changing a drawing:
//
//	go run build/gen/main.go
//
// The icons package's tests fail when the committed files differ from what
// it draws, so the two cannot drift.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/lastseen/lastseen/app/tray/icons"
)

func main() {
	if err := run("build"); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	files := map[string][]byte{
		"appicon.png":            icons.AppPNG(1024),
		"linux/lastseen-256.png": icons.AppPNG(256),
		"windows/icon.ico":       icons.AppICO(),
	}
	for _, g := range icons.Glyphs() {
		for _, s := range []struct {
			suffix string
			size   int
		}{{"", icons.TraySize}, {"@2x", icons.TraySize2x}} {
			p, err := icons.TrayPNG(g, s.size)
			if err != nil {
				return err
			}
			files[fmt.Sprintf("tray/%s%s.png", g, s.suffix)] = p
		}
		ico, err := icons.TrayICO(g)
		if err != nil {
			return err
		}
		files[fmt.Sprintf("tray/%s.ico", g)] = ico
	}
	for name, data := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return nil
}
