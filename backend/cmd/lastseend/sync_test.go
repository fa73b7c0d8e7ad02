package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// serve fsyncs every commit unless told --sync normal (or LASTSEEN_SYNC).
func TestSyncFlag(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		want string // "" wants a usage error naming --sync
	}{
		{"default is full", []string{"serve"}, nil, "full"},
		{"flag", []string{"serve", "--sync", "normal"}, nil, "normal"},
		{"env twin", []string{"serve"}, map[string]string{"LASTSEEN_SYNC": "normal"}, "normal"},
		{"flag wins", []string{"serve", "--sync=full"}, map[string]string{"LASTSEEN_SYNC": "normal"}, "full"},
		{"any case", []string{"serve", "--sync", "FULL"}, nil, "FULL"},
		{"unknown level", []string{"serve", "--sync", "off"}, nil, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMain()
			m.Stdout, m.Stderr = io.Discard, io.Discard
			m.LookupEnv = func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			err := m.ParseFlags(context.Background(), tt.args)
			if tt.want == "" {
				var ue *UsageError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--sync") {
					t.Fatalf("err = %v, want a usage error naming --sync", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Config.Sync != tt.want {
				t.Errorf("Sync = %q, want %q", m.Config.Sync, tt.want)
			}
		})
	}
}
