package autostart

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
)

// launchAgentPlist renders the launchd agent: run the agent at login
// (RunAtLoad) in the user's GUI session (Aqua). No KeepAlive: a user who
// quits the agent from its tray means it.
func launchAgentPlist(exe string, args []string) []byte {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString(`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">` + "\n")
	b.WriteString(`<plist version="1.0">` + "\n<dict>\n")
	key := func(k string) { fmt.Fprintf(&b, "\t<key>%s</key>\n", k) }
	str := func(indent, s string) {
		b.WriteString(indent + "<string>")
		xml.EscapeText(&b, []byte(s))
		b.WriteString("</string>\n")
	}
	key("Label")
	str("\t", LaunchdLabel)
	key("ProgramArguments")
	b.WriteString("\t<array>\n")
	str("\t\t", exe)
	for _, a := range args {
		str("\t\t", a)
	}
	b.WriteString("\t</array>\n")
	key("RunAtLoad")
	b.WriteString("\t<true/>\n")
	key("ProcessType")
	str("\t", "Interactive")
	key("LimitLoadToSessionType")
	str("\t", "Aqua")
	b.WriteString("</dict>\n</plist>\n")
	return b.Bytes()
}

// plistValue is one top-level value of a plist dict: a string, a boolean,
// or an array of strings (what a launch agent's keys we read are made of).
type plistValue struct {
	Str   string
	Bool  *bool
	Array []string
}

// parsePlistDict reads the top-level dict of an XML property list. Values
// of other types (numbers, nested dicts) are skipped.
func parsePlistDict(data []byte) (map[string]plistValue, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	out := map[string]plistValue{}
	depth, key := 0, ""
	inDict := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("plist: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case depth == 2 && t.Name.Local == "dict":
				inDict = true
			case depth == 3 && inDict && t.Name.Local == "key":
				var k string
				if err := d.DecodeElement(&k, &t); err != nil {
					return nil, fmt.Errorf("plist key: %w", err)
				}
				key = k
				depth--
			case depth == 3 && inDict:
				v, err := decodePlistValue(d, t)
				if err != nil {
					return nil, fmt.Errorf("plist %s: %w", key, err)
				}
				if key != "" {
					out[key] = v
				}
				key = ""
				depth--
			}
		case xml.EndElement:
			depth--
		}
	}
	if !inDict {
		return nil, fmt.Errorf("plist: no top-level dict")
	}
	return out, nil
}

func decodePlistValue(d *xml.Decoder, t xml.StartElement) (plistValue, error) {
	switch t.Name.Local {
	case "string":
		var s string
		err := d.DecodeElement(&s, &t)
		return plistValue{Str: s}, err
	case "true", "false":
		b := t.Name.Local == "true"
		return plistValue{Bool: &b}, d.Skip()
	case "array":
		var a struct {
			Strings []string `xml:"string"`
		}
		err := d.DecodeElement(&a, &t)
		return plistValue{Array: a.Strings}, err
	}
	return plistValue{}, d.Skip()
}

// plistEnabled judges a launch agent file the way launchd would start it at
// login: it parses, runs at load, and is not Disabled.
func plistEnabled(data []byte, path string) (bool, error) {
	d, err := parsePlistDict(data)
	if err != nil {
		return false, fmt.Errorf("login item %s: %w", path, err)
	}
	if v := d["Disabled"]; v.Bool != nil && *v.Bool {
		return false, nil
	}
	if v := d["RunAtLoad"]; v.Bool == nil || !*v.Bool {
		return false, nil
	}
	return len(d["ProgramArguments"].Array) > 0 || d["Program"].Str != "", nil
}
