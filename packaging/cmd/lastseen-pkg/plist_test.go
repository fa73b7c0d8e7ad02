package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/autostart"
)

// plist is a parsed XML property list's top-level dict: string, bool and
// array-of-string values, which is all ours hold.
type plist map[string]any

const plistDoctype = `plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd"`

// parsePlist checks what plutil -lint would on a Mac for our files: well-formed
// XML, Apple's DOCTYPE, <plist version="1.0"> around one <dict> of <key>
// and value pairs with no key twice, and only known value elements.
func parsePlist(data []byte) (plist, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	out := plist{}
	var doctype bool
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return nil, fmt.Errorf("no <plist> element")
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.Directive:
			doctype = strings.TrimSpace(strings.TrimPrefix(string(t), "DOCTYPE")) == plistDoctype
		case xml.StartElement:
			if !doctype {
				return nil, fmt.Errorf("missing or wrong DOCTYPE before <%s>", t.Name.Local)
			}
			if t.Name.Local != "plist" || len(t.Attr) != 1 || t.Attr[0].Name.Local != "version" || t.Attr[0].Value != "1.0" {
				return nil, fmt.Errorf("root is <%s %v>, want <plist version=\"1.0\">", t.Name.Local, t.Attr)
			}
			var root struct {
				Dict struct {
					Items []struct {
						XMLName xml.Name
						Text    string   `xml:",chardata"`
						Strings []string `xml:"string"`
						Inner   []byte   `xml:",innerxml"`
					} `xml:",any"`
				} `xml:"dict"`
			}
			if err := d.DecodeElement(&root, &t); err != nil {
				return nil, err
			}
			items := root.Dict.Items
			if len(items) == 0 || len(items)%2 != 0 {
				return nil, fmt.Errorf("dict has %d elements, want key/value pairs", len(items))
			}
			for i := 0; i < len(items); i += 2 {
				k, v := items[i], items[i+1]
				if k.XMLName.Local != "key" {
					return nil, fmt.Errorf("element %d is <%s>, want <key>", i, k.XMLName.Local)
				}
				if _, dup := out[k.Text]; dup {
					return nil, fmt.Errorf("key %s twice", k.Text)
				}
				switch v.XMLName.Local {
				case "string":
					out[k.Text] = v.Text
				case "true", "false":
					if len(bytes.TrimSpace(v.Inner)) != 0 {
						return nil, fmt.Errorf("%s: <%s> must be empty", k.Text, v.XMLName.Local)
					}
					out[k.Text] = v.XMLName.Local == "true"
				case "array":
					out[k.Text] = v.Strings
				default:
					return nil, fmt.Errorf("%s: unexpected value <%s>", k.Text, v.XMLName.Local)
				}
			}
			for {
				tok, err := d.Token()
				if err == io.EOF {
					return out, nil
				}
				if err != nil {
					return nil, err
				}
				if _, ok := tok.(xml.StartElement); ok {
					return nil, fmt.Errorf("content after </plist>")
				}
			}
		}
	}
}

func readPlist(t *testing.T, path string) plist {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := parsePlist(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return p
}

// checkMacOSLayout checks the bundle layout `lastseen-pkg macos` writes.
func checkMacOSLayout(t *testing.T, dir string) {
	t.Helper()
	app := filepath.Join(dir, appName)
	agentApp := filepath.Join(app, agentInBundle)
	required := []string{"CFBundleIdentifier", "CFBundleName", "CFBundleExecutable", "CFBundlePackageType",
		"CFBundleShortVersionString", "CFBundleVersion", "CFBundleInfoDictionaryVersion", "LSMinimumSystemVersion", "CFBundleIconFile"}
	for _, b := range []struct {
		dir, id, exe string
		uiElement    bool
	}{
		{app, bundleID, "lastseen", false},
		{agentApp, agentBundleID, "lastseen-agent", true},
	} {
		p := readPlist(t, filepath.Join(b.dir, "Contents", "Info.plist"))
		for _, k := range required {
			if s, ok := p[k].(string); !ok || s == "" {
				t.Errorf("%s Info.plist: %s missing or not a string", b.dir, k)
			}
		}
		if p["CFBundleIdentifier"] != b.id || p["CFBundleExecutable"] != b.exe || p["CFBundlePackageType"] != "APPL" {
			t.Errorf("%s Info.plist: id %v, executable %v, type %v", b.dir, p["CFBundleIdentifier"], p["CFBundleExecutable"], p["CFBundlePackageType"])
		}
		if ui, _ := p["LSUIElement"].(bool); ui != b.uiElement {
			t.Errorf("%s Info.plist: LSUIElement %v, want %v", b.dir, p["LSUIElement"], b.uiElement)
		}
		icon, err := os.ReadFile(filepath.Join(b.dir, "Contents", "Resources", p["CFBundleIconFile"].(string)+".icns"))
		if err != nil || !bytes.HasPrefix(icon, []byte("icns")) {
			t.Errorf("%s: icon missing or not icns: %v", b.dir, err)
		}
	}
	// The window finds the agent next to itself.
	target, err := os.Readlink(filepath.Join(app, "Contents", "MacOS", "lastseen-agent"))
	if err != nil || filepath.Clean(filepath.Join(app, "Contents", "MacOS", target)) != filepath.Join(agentApp, "Contents", "MacOS", "lastseen-agent") {
		t.Errorf("Contents/MacOS/lastseen-agent links to %q (%v), want the nested agent bundle's executable", target, err)
	}
	la := readPlist(t, filepath.Join(dir, autostart.LaunchdLabel+".plist"))
	args, _ := la["ProgramArguments"].([]string)
	if la["Label"] != autostart.LaunchdLabel || la["RunAtLoad"] != true || len(args) != 1 ||
		!strings.HasPrefix(args[0], "/Applications/Lastseen.app/") || !strings.HasSuffix(args[0], "/Contents/MacOS/lastseen-agent") {
		t.Errorf("LaunchAgent: %v", la)
	}
}

func TestMacOSLayout(t *testing.T) {
	dir := t.TempDir()
	o := options{version: "v1.4.0-3-gabcdef1", out: dir, root: "../../..", date: time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)}
	if err := buildMacOS(o); err != nil {
		t.Fatal(err)
	}
	checkMacOSLayout(t, dir)
	p := readPlist(t, filepath.Join(dir, appName, "Contents", "Info.plist"))
	if p["CFBundleShortVersionString"] != "1.4.0" {
		t.Errorf("CFBundleShortVersionString %v, want 1.4.0", p["CFBundleShortVersionString"])
	}
	// Building twice replaces the layout (the agent link included).
	if err := buildMacOS(o); err != nil {
		t.Fatalf("second build: %v", err)
	}
}

func TestParsePlistRejects(t *testing.T) {
	head := `<?xml version="1.0" encoding="UTF-8"?>` + "\n<!DOCTYPE " + plistDoctype + ">\n"
	for name, doc := range map[string]string{
		"no doctype":    `<?xml version="1.0"?><plist version="1.0"><dict><key>a</key><string>b</string></dict></plist>`,
		"unclosed":      head + `<plist version="1.0"><dict><key>a</key><string>b</dict></plist>`,
		"key twice":     head + `<plist version="1.0"><dict><key>a</key><true/><key>a</key><false/></dict></plist>`,
		"value missing": head + `<plist version="1.0"><dict><key>a</key></dict></plist>`,
		"wrong root":    head + `<plist version="2.0"><dict><key>a</key><true/></dict></plist>`,
		"unknown value": head + `<plist version="1.0"><dict><key>a</key><data>x</data></dict></plist>`,
	} {
		if _, err := parsePlist([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	ok, err := renderPlist([]plistEntry{{"S", "a <&> b"}, {"B", true}, {"A", []string{"x", "y"}}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := parsePlist(ok)
	if err != nil || p["S"] != "a <&> b" || p["B"] != true || len(p["A"].([]string)) != 2 {
		t.Fatalf("round trip: %v %v\n%s", p, err, ok)
	}
}
