package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/lastseen/lastseen/measure/serviceload"
)

func TestMain(m *testing.M) {
	serviceload.RunBareIfAsked() // the load starts this test binary again as its bare server
	os.Exit(m.Run())
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--devices", "0"},
		{"--phases", "xyz"},
		{"--concurrency", "500", "--devices", "10"},
		{"--concurrency", "32,x"},
		{"--device-rate", "fast"},
		{"--sync", "off"},
		{"--bogus"},
		{"extra"},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", args, code, errb.String())
		}
	}
}

func TestJSONRun(t *testing.T) {
	if testing.Short() {
		t.Skip("drives the service")
	}
	var out, errb bytes.Buffer
	args := []string{"--json", "--phases", "ad", "--devices", "100", "--concurrency", "2", "--duration", "300ms",
		"--warmup", "0s", "--rounds", "1", "--subscribers", "5", "--changes", "2", "--dir", t.TempDir()}
	if code := run(context.Background(), args, &out, &errb); code != 0 {
		t.Fatalf("exit %d\n%s", code, errb.String())
	}
	var rep serviceload.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	if rep.Throughput == nil || rep.FanOut == nil || rep.Paced != nil || len(rep.Targets) != 2 {
		t.Fatalf("report = %s", out.String())
	}
	if strings.Contains(out.String(), "PASS") {
		t.Error("text report mixed into JSON")
	}
}
