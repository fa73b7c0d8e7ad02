package autostart

import (
	"slices"
	"testing"
)

func TestLaunchAgentPlist(t *testing.T) {
	want := `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>app.lastseen.agent</string>
	<key>ProgramArguments</key>
	<array>
		<string>/Applications/Lastseen.app/Contents/MacOS/lastseen-agent</string>
		<string>--data-dir</string>
		<string>/Users/ann/Lastseen &amp; Co &lt;test&gt;</string>
	</array>
	<key>RunAtLoad</key>
	<true/>
	<key>ProcessType</key>
	<string>Interactive</string>
	<key>LimitLoadToSessionType</key>
	<string>Aqua</string>
</dict>
</plist>
`
	got := string(launchAgentPlist("/Applications/Lastseen.app/Contents/MacOS/lastseen-agent",
		[]string{"--data-dir", "/Users/ann/Lastseen & Co <test>"}))
	if got != want {
		t.Errorf("plist:\n%s\nwant:\n%s", got, want)
	}
}

func TestPlistRoundTrip(t *testing.T) {
	tests := [][]string{
		nil,
		{"--headless"},
		{"a\"b", "it's", "<&>", "two\nlines", "\ttab", "", "日本"},
	}
	for _, args := range tests {
		data := launchAgentPlist("/Apps/L S/agent", args)
		d, err := parsePlistDict(data)
		if err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		want := append([]string{"/Apps/L S/agent"}, args...)
		if got := d["ProgramArguments"].Array; !slices.Equal(got, want) {
			t.Errorf("ProgramArguments = %q, want %q", got, want)
		}
		if d["Label"].Str != LaunchdLabel {
			t.Errorf("Label = %q", d["Label"].Str)
		}
		if ok, err := plistEnabled(data, "x"); err != nil || !ok {
			t.Errorf("plistEnabled = %v, %v; want true", ok, err)
		}
	}
}

func TestPlistEnabled(t *testing.T) {
	const head = `<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>Label</key><string>app.lastseen.agent</string>`
	tests := []struct {
		name, body string
		want, err  bool
	}{
		{"runs at load", `<key>ProgramArguments</key><array><string>/a</string></array><key>RunAtLoad</key><true/>`, true, false},
		{"Program key", `<key>Program</key><string>/a</string><key>RunAtLoad</key><true/>`, true, false},
		{"disabled", `<key>ProgramArguments</key><array><string>/a</string></array><key>RunAtLoad</key><true/><key>Disabled</key><true/>`, false, false},
		{"not at load", `<key>ProgramArguments</key><array><string>/a</string></array><key>RunAtLoad</key><false/>`, false, false},
		{"nothing to run", `<key>RunAtLoad</key><true/>`, false, false},
		{"other types skipped", `<key>Nice</key><integer>5</integer><key>Env</key><dict><key>A</key><string>b</string></dict><key>ProgramArguments</key><array><string>/a</string></array><key>RunAtLoad</key><true/>`, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := plistEnabled([]byte(head+tt.body+`</dict></plist>`), "x")
			if (err != nil) != tt.err || got != tt.want {
				t.Errorf("plistEnabled = %v, %v; want %v (error %v)", got, err, tt.want, tt.err)
			}
		})
	}
	for _, bad := range []string{"", "not xml <", `<plist version="1.0"><array/></plist>`} {
		if _, err := plistEnabled([]byte(bad), "x"); err == nil {
			t.Errorf("plistEnabled(%q): want an error", bad)
		}
	}
}
