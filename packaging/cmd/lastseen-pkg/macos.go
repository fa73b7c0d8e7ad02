package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lastseen/lastseen/backend/autostart"
)

// The macOS layout. The window finds the agent next to its own executable,
// so Contents/MacOS/lastseen-agent is a link into the nested agent bundle,
// whose Info.plist (LSUIElement) keeps the always-on agent out of the Dock.
const (
	appName       = "Lastseen.app"
	agentAppName  = "Lastseen Agent.app"
	bundleID      = "io.lastseen.Lastseen"
	agentBundleID = "io.lastseen.Lastseen.Agent"
	// minMacOS is the oldest macOS Wails v2's WKWebView window supports.
	minMacOS = "10.13"
	// installedApp is where the LaunchAgent expects the app.
	installedApp = "/Applications/" + appName
)

// agentInBundle is the agent bundle's path inside Lastseen.app.
var agentInBundle = filepath.Join("Contents", "Library", "LoginItems", agentAppName)

// plistEntry is one key of a property list's top-level dict; Value is a
// string, a bool or a []string.
type plistEntry struct {
	Key   string
	Value any
}

// renderPlist writes an XML property list, the format plutil -lint checks.
func renderPlist(entries []plistEntry) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString(`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">` + "\n")
	b.WriteString("<plist version=\"1.0\">\n<dict>\n")
	str := func(indent, s string) {
		b.WriteString(indent + "<string>")
		_ = xml.EscapeText(&b, []byte(s))
		b.WriteString("</string>\n")
	}
	for _, e := range entries {
		b.WriteString("\t<key>")
		_ = xml.EscapeText(&b, []byte(e.Key))
		b.WriteString("</key>\n")
		switch v := e.Value.(type) {
		case string:
			str("\t", v)
		case bool:
			if v {
				b.WriteString("\t<true/>\n")
			} else {
				b.WriteString("\t<false/>\n")
			}
		case []string:
			b.WriteString("\t<array>\n")
			for _, s := range v {
				str("\t\t", s)
			}
			b.WriteString("\t</array>\n")
		default:
			return nil, fmt.Errorf("plist key %s: unsupported value %T", e.Key, e.Value)
		}
	}
	b.WriteString("</dict>\n</plist>\n")
	return b.Bytes(), nil
}

// bundlePlist is the Info.plist of one of the two bundles.
func bundlePlist(o options, id, name, exe string, agent bool) []plistEntry {
	entries := []plistEntry{
		{"CFBundleDevelopmentRegion", "en"},
		{"CFBundleIdentifier", id},
		{"CFBundleName", name},
		{"CFBundleDisplayName", name},
		{"CFBundleExecutable", exe},
		{"CFBundleIconFile", "lastseen"},
		{"CFBundlePackageType", "APPL"},
		{"CFBundleInfoDictionaryVersion", "6.0"},
		{"CFBundleShortVersionString", shortVersion(o.version)},
		{"CFBundleVersion", shortVersion(o.version)},
		{"LSMinimumSystemVersion", minMacOS},
		{"LSApplicationCategoryType", "public.app-category.productivity"},
		{"NSHighResolutionCapable", true},
		{"NSHumanReadableCopyright", fmt.Sprintf("© %d Lastseen developers", o.date.Year())},
	}
	if agent {
		// A tray (menu bar) app: no Dock icon, no menu bar of its own.
		entries = append(entries, plistEntry{"LSUIElement", true})
	} else {
		entries = append(entries, plistEntry{"NSSupportsAutomaticGraphicsSwitching", true})
	}
	return entries
}

// launchAgentPlist is ~/Library/LaunchAgents/<label>.plist for an install
// done by hand or by a device manager: the same item the agent writes
// itself when "start at login" is switched on, with the same label, so the
// two never start two agents.
func launchAgentPlist() []plistEntry {
	return []plistEntry{
		{"Label", autostart.LaunchdLabel},
		{"ProgramArguments", []string{filepath.Join(installedApp, agentInBundle, "Contents", "MacOS", "lastseen-agent")}},
		{"RunAtLoad", true},
		{"ProcessType", "Interactive"},
		{"LimitLoadToSessionType", "Aqua"},
	}
}

// shortVersion is the numeric part CFBundleShortVersionString allows
// (up to three integers).
func shortVersion(v string) string {
	if m := describeRE.FindStringSubmatch(v); m != nil {
		return m[1]
	}
	return "0.0.0"
}

// buildMacOS writes the two bundles' Info.plists and icons and the
// LaunchAgent under o.out; a Mac adds the binaries (see the README).
func buildMacOS(o options) error {
	icon, err := loadPNG(filepath.Join(o.root, "build", "appicon.png"))
	if err != nil {
		return err
	}
	icnsData, err := icns(icon)
	if err != nil {
		return fmt.Errorf("icns: %w", err)
	}
	app := filepath.Join(o.out, appName)
	agentApp := filepath.Join(app, agentInBundle)
	if err := os.RemoveAll(app); err != nil {
		return err
	}
	files := []struct {
		path    string
		entries []plistEntry
	}{
		{filepath.Join(app, "Contents", "Info.plist"), bundlePlist(o, bundleID, "Lastseen", "lastseen", false)},
		{filepath.Join(agentApp, "Contents", "Info.plist"), bundlePlist(o, agentBundleID, "Lastseen Agent", "lastseen-agent", true)},
		{filepath.Join(o.out, autostart.LaunchdLabel+".plist"), launchAgentPlist()},
	}
	for _, f := range files {
		data, err := renderPlist(f.entries)
		if err != nil {
			return err
		}
		if err := writeFile(f.path, data); err != nil {
			return err
		}
	}
	for _, bundle := range []string{app, agentApp} {
		if err := writeFile(filepath.Join(bundle, "Contents", "Resources", "lastseen.icns"), icnsData); err != nil {
			return err
		}
		if err := writeFile(filepath.Join(bundle, "Contents", "PkgInfo"), []byte("APPL????")); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(bundle, "Contents", "MacOS"), 0o755); err != nil {
			return err
		}
	}
	link := filepath.Join(app, "Contents", "MacOS", "lastseen-agent")
	target := filepath.Join("..", "Library", "LoginItems", agentAppName, "Contents", "MacOS", "lastseen-agent")
	if err := os.Symlink(target, link); err != nil {
		return fmt.Errorf("agent link: %w", err)
	}
	return nil
}

func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
