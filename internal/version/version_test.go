package version

import (
	"runtime/debug"
	"testing"
)

func TestStringPrefersTheLinkerValue(t *testing.T) {
	old := Version
	t.Cleanup(func() { Version = old })
	Version = "1.2.3"
	if got := String(); got != "1.2.3" {
		t.Fatalf("String() = %q, want the value the build set", got)
	}
	Version = "dev"
	if got := String(); got == "" || got == "1.2.3" {
		t.Fatalf("String() without a linker value = %q, want the build info", got)
	}
}

func TestFromBuildInfo(t *testing.T) {
	tests := []struct {
		info debug.BuildInfo
		want string
	}{
		{debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}}, "(devel) go1.26.0"},
		{debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.0.0"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"},
		}}, "v1.0.0 (0123456789ab+dirty) go1.26.0"},
		{debug.BuildInfo{}, "dev"},
	}
	for _, tt := range tests {
		if got := fromBuildInfo(&tt.info); got != tt.want {
			t.Errorf("fromBuildInfo(%+v) = %q, want %q", tt.info, got, tt.want)
		}
	}
}
