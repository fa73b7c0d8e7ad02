package autostart

import "strings"

// windowsCommandLine builds a Run value: the program always in quotes (a
// path under "Program Files" has spaces; a Windows path cannot hold a
// quote), then each argument quoted the way CommandLineToArgvW and the C
// runtime split it back: backslashes are literal except before a quote,
// where they are doubled, and the quote is escaped.
func windowsCommandLine(exe string, args []string) string {
	var b strings.Builder
	b.WriteByte('"')
	b.WriteString(exe)
	b.WriteByte('"')
	for _, a := range args {
		b.WriteByte(' ')
		b.WriteString(quoteWindowsArg(a))
	}
	return b.String()
}

func quoteWindowsArg(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n\v\"") {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	slashes := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			slashes++
		case '"':
			b.WriteString(strings.Repeat(`\`, slashes+1))
			slashes = 0
		default:
			slashes = 0
		}
		b.WriteByte(c)
	}
	// Backslashes before the closing quote are doubled so it stays a quote.
	b.WriteString(strings.Repeat(`\`, slashes))
	b.WriteByte('"')
	return b.String()
}

// splitWindowsArgs splits a command line's arguments (after the program)
// the way CommandLineToArgvW does; it checks windowsCommandLine in tests
// on every platform.
func splitWindowsArgs(s string) []string {
	var (
		out     []string
		cur     strings.Builder
		inArg   bool
		quoted  bool
		slashes int
	)
	flush := func() {
		cur.WriteString(strings.Repeat(`\`, slashes))
		slashes = 0
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			slashes++
			inArg = true
		case c == '"':
			cur.WriteString(strings.Repeat(`\`, slashes/2))
			inArg = true
			if slashes%2 == 1 {
				cur.WriteByte('"')
			} else if quoted && i+1 < len(s) && s[i+1] == '"' {
				cur.WriteByte('"') // "" inside quotes is a literal quote
				i++
			} else {
				quoted = !quoted
			}
			slashes = 0
		case (c == ' ' || c == '\t') && !quoted:
			flush()
			if inArg {
				out = append(out, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			flush()
			cur.WriteByte(c)
			inArg = true
		}
	}
	flush()
	if inArg {
		out = append(out, cur.String())
	}
	return out
}

// startupDisabled reads an Explorer StartupApproved value: its first byte
// is odd (0x03, seen also 0x07) when the user disabled the entry, even
// (0x02, 0x06) when enabled.
func startupDisabled(b []byte) bool {
	return len(b) > 0 && b[0]&1 == 1
}
