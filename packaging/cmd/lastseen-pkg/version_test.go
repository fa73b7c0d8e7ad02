package main

import "testing"

func TestPackageVersion(t *testing.T) {
	tests := []struct{ in, want string }{
		{"v1.2.3", "1.2.3"},
		{"1.2.3", "1.2.3"},
		{"v1.2.3-rc1", "1.2.3~rc1"},
		{"v1.2.3-4-gabc1234", "1.2.3+git4.abc1234"},
		{"v1.2.3-4-gabc1234-dirty", "1.2.3+git4.abc1234.dirty"},
		{"v1.2.3-rc.2-1-gabc1234", "1.2.3~rc.2+git1.abc1234"},
		{"a545f0e", "0.0.0+git.a545f0e"},
		{"a545f0e-dirty", "0.0.0+git.a545f0e.dirty"},
		{"dev", "0.0.0+dev"},
	}
	for _, tt := range tests {
		if got, err := packageVersion(tt.in); err != nil || got != tt.want {
			t.Errorf("packageVersion(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "release one", "v1.2.3 ; rm", "../x"} {
		if got, err := packageVersion(bad); err == nil {
			t.Errorf("packageVersion(%q) = %q, want an error", bad, got)
		}
	}
}
