// Package frontend hands the built dashboard (frontend/dist) to the Wails
// window and to lastseend, which serve the same files.
package frontend

import (
	"embed"
	"io/fs"
)

//go:embed all:dist
var dist embed.FS

// Dist is the built dashboard, rooted at its index.html. Before the frontend
// is built it holds only .gitkeep; callers show a hint instead of a page.
func Dist() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // "dist" is a literal directory in this package
	}
	return sub
}

// Built reports whether Dist holds a built dashboard.
func Built() bool {
	_, err := fs.Stat(Dist(), "index.html")
	return err == nil
}
