package tray

import "github.com/lastseen/lastseen/app/tray/icons"

// iconBytes is what systray wants for a glyph: an .ico on Windows.
func iconBytes(g icons.Glyph) ([]byte, error) { return icons.TrayICO(g) }
