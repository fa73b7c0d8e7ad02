package autostart

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// The XDG Desktop Entry Specification's Exec key: arguments separated by
// spaces; an argument holding a reserved character is enclosed in double
// quotes, inside which ", `, $ and \ are escaped with a backslash; a literal
// % is written %%. The value as a whole is then a "string" whose own
// escapes (\\, \n, \t, \r, \s) apply first when reading — so a backslash in
// a quoted argument ends up as four in the file.

const execReserved = " \t\n\"'\\><~|&;$*?#()`"

// quoteExecArg quotes one argument (or the program) for Exec.
func quoteExecArg(s string) string {
	var b strings.Builder
	if s != "" && !strings.ContainsAny(s, execReserved) {
		b.WriteString(s)
	} else {
		b.WriteByte('"')
		for _, r := range s {
			switch r {
			case '"', '`', '$', '\\':
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		}
		b.WriteByte('"')
	}
	return strings.ReplaceAll(b.String(), "%", "%%")
}

// formatExec builds the Exec value as it is written in the file.
func formatExec(exe string, args []string) string {
	parts := make([]string, 0, 1+len(args))
	parts = append(parts, quoteExecArg(exe))
	for _, a := range args {
		parts = append(parts, quoteExecArg(a))
	}
	return escapeString(strings.Join(parts, " "))
}

// escapeString applies the key-file escapes of a "string" value.
func escapeString(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		case ' ':
			if i == 0 {
				b.WriteString(`\s`)
			} else {
				b.WriteByte(c)
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// unescapeString undoes escapeString; an unknown escape is kept as written.
func unescapeString(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case '\\':
			b.WriteByte('\\')
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case 's':
			b.WriteByte(' ')
		default:
			b.WriteByte('\\')
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// parseExec splits an Exec value as read from the file into the program
// and its arguments.
func parseExec(v string) ([]string, error) {
	s := unescapeString(v)
	var (
		out []string
		cur strings.Builder
		in  bool // inside an argument
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		case c == '"':
			in = true
			closed := false
			for i++; i < len(s); i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"`$\\", s[i+1]) >= 0 {
					i++
					cur.WriteByte(s[i])
					continue
				}
				if s[i] == '"' {
					closed = true
					break
				}
				cur.WriteByte(s[i])
			}
			if !closed {
				return nil, fmt.Errorf("Exec: unterminated quote in %q", v)
			}
		default:
			in = true
			cur.WriteByte(c)
		}
	}
	if in {
		out = append(out, cur.String())
	}
	for i := range out {
		out[i] = strings.ReplaceAll(out[i], "%%", "%")
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("Exec is empty")
	}
	return out, nil
}

// desktopEntry renders the autostart entry.
func desktopEntry(exe string, args []string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "[Desktop Entry]\n")
	fmt.Fprintf(&b, "Type=Application\n")
	fmt.Fprintf(&b, "Version=1.5\n")
	fmt.Fprintf(&b, "Name=%s\n", displayName)
	fmt.Fprintf(&b, "Comment=%s\n", entryComment)
	fmt.Fprintf(&b, "Exec=%s\n", formatExec(exe, args))
	fmt.Fprintf(&b, "Terminal=false\n")
	fmt.Fprintf(&b, "X-GNOME-Autostart-enabled=true\n")
	return b.Bytes()
}

// maskEntry is the per-user entry that hides a system-wide one of the
// same name (XDG Autostart: Hidden=true means "as if it did not exist").
func maskEntry() []byte {
	return []byte("[Desktop Entry]\nType=Application\nName=" + displayName + "\nHidden=true\n")
}

// entry is what matters of a parsed desktop entry.
type entry struct {
	keys map[string]string // of the [Desktop Entry] group, raw values
}

// parseEntry reads the [Desktop Entry] group. Other groups, comments and
// localised keys are skipped.
func parseEntry(data []byte) (entry, error) {
	e := entry{keys: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	group, seen := "", false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
			continue
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			group = line[1 : len(line)-1]
			seen = seen || group == "Desktop Entry"
			continue
		}
		if group != "Desktop Entry" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		if _, dup := e.keys[k]; !dup { // the first wins, as in GLib
			e.keys[k] = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil {
		return entry{}, err
	}
	if !seen {
		return entry{}, fmt.Errorf("no [Desktop Entry] group")
	}
	return e, nil
}

func (e entry) bool(key string) (value, set bool) {
	switch e.keys[key] {
	case "true", "1":
		return true, true
	case "false", "0":
		return false, true
	}
	return false, false
}

// enabled applies the XDG Autostart rules a session manager follows.
func (e entry) enabled() bool {
	if hidden, _ := e.bool("Hidden"); hidden {
		return false
	}
	if on, set := e.bool("X-GNOME-Autostart-enabled"); set && !on {
		return false
	}
	return e.keys["Exec"] != ""
}
