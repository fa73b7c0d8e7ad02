package autostart

import (
	"slices"
	"strings"
	"testing"
)

func TestQuoteExecArg(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/usr/bin/lastseen-agent", "/usr/bin/lastseen-agent"},
		{"--interval=30s", "--interval=30s"},
		{"", `""`},
		{"/opt/Last Seen/lastseen-agent", `"/opt/Last Seen/lastseen-agent"`},
		{"it's", `"it's"`},
		{`a"b`, `"a\"b"`},
		{`C:\x`, `"C:\\x"`},
		{"$HOME", `"\$HOME"`},
		{"`id`", "\"\\`id\\`\""},
		{"~/data", `"~/data"`},
		{"a;b&c|d", `"a;b&c|d"`},
		{"*?#()<>", `"*?#()<>"`},
		{"100%", "100%%"},
		{"50% off", `"50%% off"`},
		{"a\tb", "\"a\tb\""},
	}
	for _, tt := range tests {
		if got := quoteExecArg(tt.in); got != tt.want {
			t.Errorf("quoteExecArg(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestFormatExec(t *testing.T) {
	tests := []struct {
		exe  string
		args []string
		want string // as written in the file
	}{
		{"/usr/bin/lastseen-agent", nil, "/usr/bin/lastseen-agent"},
		{"/usr/bin/lastseen-agent", []string{"--data-dir", "/home/ann/My Data"},
			`/usr/bin/lastseen-agent --data-dir "/home/ann/My Data"`},
		// The spec's own example: a backslash in a quoted argument is four in the file.
		{"/bin/x", []string{`a\b`}, `/bin/x "a\\\\b"`},
		{"/bin/x", []string{`say "hi"`}, `/bin/x "say \\"hi\\""`},
		{"/bin/x", []string{"two\nlines"}, `/bin/x "two\nlines"`},
		{"/bin/x", []string{"", "100%"}, `/bin/x "" 100%%`},
	}
	for _, tt := range tests {
		got := formatExec(tt.exe, tt.args)
		if got != tt.want {
			t.Errorf("formatExec(%q, %q) = %s, want %s", tt.exe, tt.args, got, tt.want)
		}
		back, err := parseExec(got)
		if err != nil {
			t.Errorf("parseExec(%s): %v", got, err)
			continue
		}
		if want := append([]string{tt.exe}, tt.args...); !slices.Equal(back, want) {
			t.Errorf("parseExec(%s) = %q, want %q", got, back, want)
		}
	}
}

func TestExecRoundTrip(t *testing.T) {
	nasty := []string{`\`, `\\`, `"`, `\"`, "`", "$", "%", "%%", "%f", " ", "\t", "\r\n", "é ü 日本", `a\`, `'`, "=", "#x", "--flag=a b"}
	for _, a := range nasty {
		args := []string{a, "--x", a + a}
		got, err := parseExec(formatExec("/opt/a b/agent", args))
		if err != nil {
			t.Fatalf("%q: %v", a, err)
		}
		if want := append([]string{"/opt/a b/agent"}, args...); !slices.Equal(got, want) {
			t.Errorf("round trip of %q = %q", args, got)
		}
	}
}

func TestParseExecErrors(t *testing.T) {
	for _, in := range []string{"", "   ", `/bin/x "unterminated`} {
		if got, err := parseExec(in); err == nil {
			t.Errorf("parseExec(%q) = %q, want an error", in, got)
		}
	}
}

func TestEntryEnabled(t *testing.T) {
	tests := []struct {
		name, file string
		want       bool
		wantErr    bool
	}{
		{"ours", string(desktopEntry("/usr/bin/lastseen-agent", nil)), true, false},
		{"hidden", "[Desktop Entry]\nType=Application\nExec=/a\nHidden=true\n", false, false},
		{"gnome switch off", "[Desktop Entry]\nExec=/a\nX-GNOME-Autostart-enabled=false\n", false, false},
		{"gnome switch on", "[Desktop Entry]\nExec=/a\nX-GNOME-Autostart-enabled=true\n", true, false},
		{"hidden false", "[Desktop Entry]\nExec=/a\nHidden=false\n", true, false},
		{"no exec", "[Desktop Entry]\nType=Application\n", false, false},
		{"keys of other groups ignored", "# c\n[Desktop Entry]\nExec=/a\n[Desktop Action x]\nHidden=true\n", true, false},
		{"spaces around =", "[Desktop Entry]\nExec = /a\nHidden = true\n", false, false},
		{"localised keys do not count", "[Desktop Entry]\nExec=/a\nHidden[fr]=true\n", true, false},
		{"not a desktop entry", "Exec=/a\n", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := parseEntry([]byte(tt.file))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseEntry err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && e.enabled() != tt.want {
				t.Errorf("enabled = %v, want %v", e.enabled(), tt.want)
			}
		})
	}
}

func TestDesktopEntryShape(t *testing.T) {
	got := string(desktopEntry("/opt/Last Seen/lastseen-agent", []string{"--headless"}))
	for _, line := range []string{
		"[Desktop Entry]", "Type=Application", "Name=Lastseen",
		`Exec="/opt/Last Seen/lastseen-agent" --headless`, "X-GNOME-Autostart-enabled=true",
	} {
		if !strings.Contains(got, line+"\n") {
			t.Errorf("entry lacks %q:\n%s", line, got)
		}
	}
}
