// Package icons draws Lastseen's marks: the app icon and one tray glyph per
// presence state. They are drawn in Go rather than shipped as files so the
// tray (which links no GUI toolkit) and the window embed nothing that could
// drift from build/; build/gen writes the same images there for packagers,
// and a test holds the committed files to what this package draws.
//
// It imports only the standard library.
package icons

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/png"
)

// Glyph names a tray icon.
type Glyph string

// The tray glyphs. Each presence state has one; Paused covers a manual pause.
const (
	Active  Glyph = "active"  // green dot
	Idle    Glyph = "idle"    // amber dot
	Away    Glyph = "away"    // grey-blue dot
	Offline Glyph = "offline" // hollow grey ring
	Paused  Glyph = "paused"  // slate dot with a pause sign
)

// Glyphs lists every tray glyph.
func Glyphs() []Glyph { return []Glyph{Active, Idle, Away, Offline, Paused} }

// Tray sizes: panels draw tray icons at 22 logical pixels; 44 serves HiDPI.
const (
	TraySize   = 22
	TraySize2x = 44
)

// Colours of the marks, shared with the dashboard's palette.
var (
	green     = color.NRGBA{0x22, 0xc5, 0x5e, 0xff}
	greenRim  = color.NRGBA{0x15, 0x80, 0x3d, 0xff}
	amber     = color.NRGBA{0xf5, 0x9e, 0x0b, 0xff}
	amberRim  = color.NRGBA{0xb4, 0x53, 0x09, 0xff}
	greyBlue  = color.NRGBA{0x64, 0x74, 0x8b, 0xff}
	greyBlRim = color.NRGBA{0x33, 0x41, 0x55, 0xff}
	grey      = color.NRGBA{0x9c, 0xa3, 0xaf, 0xff}
	slate     = color.NRGBA{0x94, 0xa3, 0xb8, 0xff}
	slateRim  = color.NRGBA{0x47, 0x55, 0x69, 0xff}
	white     = color.NRGBA{0xff, 0xff, 0xff, 0xff}
	ink       = color.NRGBA{0x1e, 0x29, 0x3b, 0xff}
)

// layer is one flat shape of a mark; layers are painted in order.
type layer struct {
	inside func(x, y float64) bool // in unit coordinates, origin top-left
	c      color.NRGBA
}

func circle(cx, cy, r float64) func(x, y float64) bool {
	return func(x, y float64) bool { return sq(x-cx)+sq(y-cy) <= r*r }
}

func ring(cx, cy, outer, inner float64) func(x, y float64) bool {
	return func(x, y float64) bool {
		d := sq(x-cx) + sq(y-cy)
		return d <= outer*outer && d >= inner*inner
	}
}

func rect(x0, y0, x1, y1 float64) func(x, y float64) bool {
	return func(x, y float64) bool { return x >= x0 && x <= x1 && y >= y0 && y <= y1 }
}

func roundedRect(x0, y0, x1, y1, r float64) func(x, y float64) bool {
	return func(x, y float64) bool {
		if x < x0 || x > x1 || y < y0 || y > y1 {
			return false
		}
		// Distance to the inner rectangle whose corners are the arcs' centres.
		cx := max(x0+r-x, 0, x-(x1-r))
		cy := max(y0+r-y, 0, y-(y1-r))
		return cx*cx+cy*cy <= r*r
	}
}

func sq(v float64) float64 { return v * v }

func withAlpha(c color.NRGBA, a uint8) color.NRGBA { c.A = a; return c }

func appLayers() []layer {
	return []layer{
		{roundedRect(0.08, 0.08, 0.92, 0.92, 0.2), ink},
		{ring(0.5, 0.5, 0.335, 0.285), withAlpha(green, 0x70)},
		{circle(0.5, 0.5, 0.2), green},
	}
}

func glyphLayers(g Glyph) ([]layer, error) {
	dot := func(fill, rim color.NRGBA) []layer {
		return []layer{
			{circle(0.5, 0.5, 0.42), rim},
			{circle(0.5, 0.5, 0.35), fill},
		}
	}
	switch g {
	case Active:
		return dot(green, greenRim), nil
	case Idle:
		return dot(amber, amberRim), nil
	case Away:
		return dot(greyBlue, greyBlRim), nil
	case Offline:
		// Hollow: nothing is being shared, so nothing is filled.
		return []layer{{ring(0.5, 0.5, 0.41, 0.27), grey}}, nil
	case Paused:
		return append(dot(slate, slateRim),
			layer{rect(0.35, 0.3, 0.45, 0.7), white},
			layer{rect(0.55, 0.3, 0.65, 0.7), white},
		), nil
	}
	return nil, fmt.Errorf("unknown tray glyph %q", g)
}

// render paints layers into a size×size image, 4×4 samples per pixel so
// edges are smooth at 22 pixels as much as at 1024.
func render(size int, layers []layer) *image.NRGBA {
	const n = 4
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	for py := range size {
		for px := range size {
			var r, g, b, a float64 // premultiplied sums
			for sy := range n {
				for sx := range n {
					x := (float64(px) + (float64(sx)+0.5)/n) / float64(size)
					y := (float64(py) + (float64(sy)+0.5)/n) / float64(size)
					var cr, cg, cb, ca float64
					for _, l := range layers {
						if !l.inside(x, y) {
							continue
						}
						la := float64(l.c.A) / 255
						cr = float64(l.c.R)/255*la + cr*(1-la)
						cg = float64(l.c.G)/255*la + cg*(1-la)
						cb = float64(l.c.B)/255*la + cb*(1-la)
						ca = la + ca*(1-la)
					}
					r, g, b, a = r+cr, g+cg, b+cb, a+ca
				}
			}
			const samples = n * n
			if a == 0 {
				continue
			}
			img.SetNRGBA(px, py, color.NRGBA{
				R: uint8(r/a*255 + 0.5),
				G: uint8(g/a*255 + 0.5),
				B: uint8(b/a*255 + 0.5),
				A: uint8(a/samples*255 + 0.5),
			})
		}
	}
	return img
}

func encode(img image.Image) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic("encode png to memory: " + err.Error()) // cannot fail on a bytes.Buffer
	}
	return buf.Bytes()
}

// AppImage is the app icon: a green presence dot pinging on a dark tile.
func AppImage(size int) *image.NRGBA { return render(size, appLayers()) }

// AppPNG is AppImage encoded as PNG.
func AppPNG(size int) []byte { return encode(AppImage(size)) }

// TrayImage draws a tray glyph at size pixels.
func TrayImage(g Glyph, size int) (*image.NRGBA, error) {
	l, err := glyphLayers(g)
	if err != nil {
		return nil, err
	}
	return render(size, l), nil
}

// TrayPNG is TrayImage encoded as PNG.
func TrayPNG(g Glyph, size int) ([]byte, error) {
	img, err := TrayImage(g, size)
	if err != nil {
		return nil, err
	}
	return encode(img), nil
}

// TrayICO is the glyph as a Windows icon holding 16, 24 and 32 pixel images,
// the sizes the notification area picks from across DPI settings.
func TrayICO(g Glyph) ([]byte, error) {
	var pngs [][]byte
	for _, s := range []int{16, 24, 32} {
		p, err := TrayPNG(g, s)
		if err != nil {
			return nil, err
		}
		pngs = append(pngs, p)
	}
	return ICO(pngs...)
}

// AppICO is the app icon as a Windows icon (16 to 256 pixels).
func AppICO() []byte {
	var pngs [][]byte
	for _, s := range []int{16, 24, 32, 48, 64, 128, 256} {
		pngs = append(pngs, AppPNG(s))
	}
	ico, err := ICO(pngs...)
	if err != nil {
		panic(err) // our own PNGs, every size ≤ 256
	}
	return ico
}

// ICO packs PNG images into an .ico file. Windows Vista and later read PNG
// entries directly, so no BMP conversion is needed.
func ICO(pngs ...[]byte) ([]byte, error) {
	type entry struct {
		w, h int
		data []byte
	}
	entries := make([]entry, 0, len(pngs))
	for i, p := range pngs {
		cfg, err := png.DecodeConfig(bytes.NewReader(p))
		if err != nil {
			return nil, fmt.Errorf("ico image %d: %w", i, err)
		}
		if cfg.Width > 256 || cfg.Height > 256 {
			return nil, fmt.Errorf("ico image %d is %dx%d; an icon entry is at most 256x256", i, cfg.Width, cfg.Height)
		}
		entries = append(entries, entry{cfg.Width, cfg.Height, p})
	}
	var buf bytes.Buffer
	le := binary.LittleEndian
	header := make([]byte, 6)
	le.PutUint16(header[2:], 1) // type: icon
	le.PutUint16(header[4:], uint16(len(entries)))
	buf.Write(header)
	offset := 6 + 16*len(entries)
	for _, e := range entries {
		dir := make([]byte, 16)
		dir[0] = byte(e.w % 256) // 0 means 256
		dir[1] = byte(e.h % 256)
		le.PutUint16(dir[4:], 1)  // colour planes
		le.PutUint16(dir[6:], 32) // bits per pixel
		le.PutUint32(dir[8:], uint32(len(e.data)))
		le.PutUint32(dir[12:], uint32(offset))
		buf.Write(dir)
		offset += len(e.data)
	}
	for _, e := range entries {
		buf.Write(e.data)
	}
	return buf.Bytes(), nil
}
