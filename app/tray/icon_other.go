//go:build !windows

package tray

import "github.com/lastseen/lastseen/app/tray/icons"

// iconBytes is what systray wants for a glyph: a PNG, at twice the panel
// size so HiDPI panels stay sharp (hosts scale it down elsewhere).
func iconBytes(g icons.Glyph) ([]byte, error) { return icons.TrayPNG(g, icons.TraySize2x) }
