package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
)

// hicolorSizes are the sizes desktops look for in the hicolor theme.
var hicolorSizes = []int{16, 22, 24, 32, 48, 64, 128, 256, 512}

// loadPNG reads the square app icon every size is drawn from.
func loadPNG(path string) (*image.RGBA, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	b := img.Bounds()
	if b.Dx() != b.Dy() {
		return nil, fmt.Errorf("%s: %dx%d is not square", path, b.Dx(), b.Dy())
	}
	rgba := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(rgba, rgba.Bounds(), img, b.Min, draw.Src)
	return rgba, nil
}

// downscale shrinks a square image to size×size by averaging every source
// pixel whose centre falls in a destination pixel (a box filter), on
// premultiplied colour so transparent edges do not turn dark. It only
// shrinks: the icon is drawn large.
func downscale(src *image.RGBA, size int) *image.RGBA {
	n := src.Bounds().Dx()
	dst := image.NewRGBA(image.Rect(0, 0, size, size))
	span := func(i int) (int, int) { // source pixels [lo, hi) under destination pixel i
		lo, hi := i*n/size, (i+1)*n/size
		if hi <= lo {
			hi = lo + 1
		}
		return lo, hi
	}
	for y := range size {
		y0, y1 := span(y)
		for x := range size {
			x0, x1 := span(x)
			var r, g, b, a, count uint64
			for sy := y0; sy < y1; sy++ {
				row := src.Pix[sy*src.Stride:]
				for sx := x0; sx < x1; sx++ {
					p := row[sx*4 : sx*4+4]
					r += uint64(p[0])
					g += uint64(p[1])
					b += uint64(p[2])
					a += uint64(p[3])
					count++
				}
			}
			o := dst.Pix[y*dst.Stride+x*4:]
			half := count / 2
			o[0], o[1], o[2], o[3] = uint8((r+half)/count), uint8((g+half)/count), uint8((b+half)/count), uint8((a+half)/count)
		}
	}
	return dst
}

func encodePNG(img image.Image) ([]byte, error) {
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeHicolor writes DIR/hicolor/NxN/apps/NAME.png for every hicolor size.
func writeHicolor(src *image.RGBA, dir, name string) error {
	for _, size := range hicolorSizes {
		data, err := encodePNG(downscale(src, size))
		if err != nil {
			return err
		}
		p := filepath.Join(dir, "hicolor", fmt.Sprintf("%dx%d", size, size), "apps", name+".png")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// icns is Apple's icon container with PNG members (macOS 10.7 and later):
// "icns", the total length, then per size a type, a length and the PNG.
func icns(src *image.RGBA) ([]byte, error) {
	members := []struct {
		typ  string
		size int
	}{
		{"icp4", 16}, {"icp5", 32}, {"ic07", 128}, {"ic08", 256}, {"ic09", 512}, {"ic10", 1024},
	}
	var body bytes.Buffer
	for _, m := range members {
		img := src
		if m.size < src.Bounds().Dx() {
			img = downscale(src, m.size)
		} else if m.size > src.Bounds().Dx() {
			continue
		}
		data, err := encodePNG(img)
		if err != nil {
			return nil, err
		}
		body.WriteString(m.typ)
		_ = binary.Write(&body, binary.BigEndian, uint32(8+len(data)))
		body.Write(data)
	}
	var out bytes.Buffer
	out.WriteString("icns")
	_ = binary.Write(&out, binary.BigEndian, uint32(8+body.Len()))
	out.Write(body.Bytes())
	return out.Bytes(), nil
}
