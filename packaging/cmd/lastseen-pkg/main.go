// Command lastseen-pkg lays out Lastseen's release artefacts that are not
// binaries, and packs the Linux packages around the binaries `make dist`
// built:
//
//	lastseen-pkg linux --version V --bin DIR --out build/dist
//	    the .deb and the .rpm (nfpm used as a library, configured by
//	    packaging/nfpm.yaml), with hicolor icons drawn from build/appicon.png
//	    and a Debian changelog for V
//	lastseen-pkg macos --version V --out build/dist/macos
//	    Lastseen.app and its nested "Lastseen Agent.app" (LSUIElement): the
//	    Info.plists, the icon and the LaunchAgent, ready for the binaries a
//	    Mac builds (see the README)
//
// It is a build tool: no shipped binary links it.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "lastseen-pkg:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage: lastseen-pkg linux|macos --version V --out DIR [--bin DIR]")

// options are the command line of both subcommands.
type options struct {
	version string // the version the binaries report (git describe)
	out     string
	bin     string // linux: where the three binaries are
	arch    string // linux: GOARCH of the binaries
	root    string // the repository: packaging/ and build/ are found under it
	date    time.Time
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	cmd := args[0]
	fs := flag.NewFlagSet("lastseen-pkg "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.version, "version", "", "the release `version` (git describe --tags), required")
	fs.StringVar(&o.out, "out", "", "output `directory`, required")
	fs.StringVar(&o.bin, "bin", "", "linux: `directory` holding lastseen, lastseen-agent and lastseend")
	fs.StringVar(&o.arch, "arch", runtime.GOARCH, "linux: the binaries' GOARCH")
	fs.StringVar(&o.root, "root", ".", "the repository's `directory`")
	if err := fs.Parse(args[1:]); err != nil {
		return errUsage
	}
	if o.version == "" || o.out == "" || fs.NArg() > 0 {
		return errUsage
	}
	o.date = releaseDate()
	switch cmd {
	case "linux":
		if o.bin == "" {
			return fmt.Errorf("linux needs --bin: %w", errUsage)
		}
		files, err := buildLinux(o)
		if err != nil {
			return err
		}
		for _, f := range files {
			fmt.Fprintln(stdout, f)
		}
		return nil
	case "macos":
		if err := buildMacOS(o); err != nil {
			return err
		}
		fmt.Fprintln(stdout, filepath.Join(o.out, appName))
		return nil
	}
	return errUsage
}

// releaseDate is the time stamped into packages and changelogs:
// SOURCE_DATE_EPOCH when set (reproducible builds), else now.
func releaseDate() time.Time {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		var sec int64
		if _, err := fmt.Sscan(s, &sec); err == nil {
			return time.Unix(sec, 0).UTC()
		}
	}
	return time.Now().UTC().Truncate(time.Second)
}
