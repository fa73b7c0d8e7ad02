package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers the rpm packager
)

// packageRelease is the packaging revision: 1 for every upstream version,
// since the packages are built from the same tree as the binaries.
const packageRelease = "1"

// buildLinux stages the generated files and writes the .deb and the .rpm
// into o.out; it returns their paths.
func buildLinux(o options) ([]string, error) {
	pkgVersion, err := packageVersion(o.version)
	if err != nil {
		return nil, err
	}
	for _, name := range []string{"lastseen", "lastseen-agent", "lastseend"} {
		if fi, err := os.Stat(filepath.Join(o.bin, name)); err != nil || fi.Mode()&0o111 == 0 {
			return nil, fmt.Errorf("binary %s missing or not executable in %s (make dist-linux builds it)", name, o.bin)
		}
	}
	stage, err := os.MkdirTemp("", "lastseen-pkg-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(stage)

	icon, err := loadPNG(filepath.Join(o.root, "build", "appicon.png"))
	if err != nil {
		return nil, err
	}
	if err := writeHicolor(icon, filepath.Join(stage, "icons"), "lastseen"); err != nil {
		return nil, fmt.Errorf("icons: %w", err)
	}
	changelog, err := debianChangelog(pkgVersion+"-"+packageRelease, o)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(stage, "changelog.Debian.gz"), changelog, 0o644); err != nil {
		return nil, err
	}
	if err := stageManPages(filepath.Join(o.root, "packaging", "man"), filepath.Join(stage, "man")); err != nil {
		return nil, err
	}

	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			return p
		}
		return a
	}
	vars := map[string]string{
		"VERSION": pkgVersion,
		"RELEASE": packageRelease,
		"ARCH":    o.arch,
		"BIN":     abs(o.bin),
		"STAGE":   stage,
		"SRC":     abs(filepath.Join(o.root, "packaging")),
		"ASSETS":  abs(filepath.Join(o.root, "build")),
	}
	config, err := loadConfig(filepath.Join(o.root, "packaging", "nfpm.yaml"), vars)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return nil, err
	}
	var written []string
	for _, format := range []string{"deb", "rpm"} {
		p, err := pack(config, format, o)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", format, err)
		}
		written = append(written, p)
	}
	return written, nil
}

// loadConfig reads the nfpm configuration with every ${NAME} replaced from
// vars. The whole text is expanded here, not by nfpm, which leaves file
// paths alone unless each entry asks, and never expands script paths.
func loadConfig(path string, vars map[string]string) (nfpm.Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nfpm.Config{}, err
	}
	var unknown []string
	text := os.Expand(string(raw), func(k string) string {
		v, ok := vars[k]
		if !ok {
			unknown = append(unknown, k)
		}
		return v
	})
	if len(unknown) > 0 {
		return nfpm.Config{}, fmt.Errorf("%s: unknown variables %v", path, unknown)
	}
	config, err := nfpm.ParseWithEnvMapping(strings.NewReader(text), func(k string) string { return "" })
	if err != nil {
		return nfpm.Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return config, nil
}

// pack writes one package in its conventional file name.
func pack(config nfpm.Config, format string, o options) (string, error) {
	info, err := config.Get(format)
	if err != nil {
		return "", err
	}
	info = nfpm.WithDefaults(info)
	info.MTime = o.date
	if err := nfpm.PrepareForPackager(info, format); err != nil {
		return "", err
	}
	packager, err := nfpm.Get(format)
	if err != nil {
		return "", err
	}
	target := filepath.Join(o.out, packager.ConventionalFileName(info))
	f, err := os.Create(target)
	if err != nil {
		return "", err
	}
	info.Target = target
	if err := packager.Package(info, f); err != nil {
		f.Close()
		os.Remove(target)
		return "", err
	}
	return target, f.Close()
}

// debianChangelog is /usr/share/doc/lastseen/changelog.Debian.gz: one entry
// for this build, gzipped without a timestamp so a rebuild is identical.
func debianChangelog(version string, o options) ([]byte, error) {
	var text bytes.Buffer
	fmt.Fprintf(&text, "lastseen (%s) unstable; urgency=medium\n\n", version)
	fmt.Fprintf(&text, "  * Release %s, built from the Lastseen source tree.\n", o.version)
	fmt.Fprintf(&text, "    The changes are in the project's history.\n\n")
	fmt.Fprintf(&text, " -- Lastseen developers <dev@lastseen.io>  %s\n", o.date.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	return gzipBytes(text.Bytes())
}

// stageManPages gzips every page of src into dst, as Debian wants them.
func stageManPages(src, dst string) error {
	pages, err := filepath.Glob(filepath.Join(src, "*.[1-8]"))
	if err != nil || len(pages) == 0 {
		return fmt.Errorf("no manual pages in %s: %v", src, err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, p := range pages {
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		gz, err := gzipBytes(data)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(p)+".gz"), gz, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// gzipBytes compresses at the best level with no name and no time in the
// header (gzip -9n), so a rebuild gives the same bytes.
func gzipBytes(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
