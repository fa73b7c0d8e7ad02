package autostart

import (
	"slices"
	"testing"
)

func TestWindowsCommandLine(t *testing.T) {
	tests := []struct {
		exe  string
		args []string
		want string
	}{
		{`C:\Program Files\Lastseen\lastseen-agent.exe`, nil, `"C:\Program Files\Lastseen\lastseen-agent.exe"`},
		{`C:\L\a.exe`, []string{"--headless"}, `"C:\L\a.exe" --headless`},
		{`C:\L\a.exe`, []string{"--data-dir", `C:\Users\Ann\My Data\`}, `"C:\L\a.exe" --data-dir "C:\Users\Ann\My Data\\"`},
		{`C:\L\a.exe`, []string{`C:\plain\path\`}, `"C:\L\a.exe" C:\plain\path\`},
		{`C:\L\a.exe`, []string{`say "hi"`}, `"C:\L\a.exe" "say \"hi\""`},
		{`C:\L\a.exe`, []string{`a\"b`}, `"C:\L\a.exe" "a\\\"b"`},
		{`C:\L\a.exe`, []string{""}, `"C:\L\a.exe" ""`},
	}
	for _, tt := range tests {
		got := windowsCommandLine(tt.exe, tt.args)
		if got != tt.want {
			t.Errorf("windowsCommandLine(%q, %q) = %s, want %s", tt.exe, tt.args, got, tt.want)
		}
	}
}

func TestWindowsArgsRoundTrip(t *testing.T) {
	nasty := []string{``, ` `, `\`, `\\`, `"`, `\"`, `a\`, `a\\`, `a b\`, `"quoted"`, `x"y"z`, `tab	here`, `%PATH%`, `^&|<>`, `日本`}
	for _, a := range nasty {
		args := []string{a, "--x", a + " " + a}
		line := windowsCommandLine(`C:\L\a.exe`, args)
		rest := line[len(`"C:\L\a.exe"`):]
		if got := splitWindowsArgs(rest); !slices.Equal(got, args) {
			t.Errorf("%s splits to %q, want %q", line, got, args)
		}
	}
}

func TestStartupDisabled(t *testing.T) {
	tests := []struct {
		b    []byte
		want bool
	}{
		{nil, false},
		{[]byte{0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, false},
		{[]byte{0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, false},
		{[]byte{0x03, 0, 0, 0, 0x9a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f, 0xd9, 0x01}, true},
		{[]byte{0x07}, true},
	}
	for _, tt := range tests {
		if got := startupDisabled(tt.b); got != tt.want {
			t.Errorf("startupDisabled(% x) = %v, want %v", tt.b, got, tt.want)
		}
	}
}
