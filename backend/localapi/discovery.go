package localapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// DiscoveryFile is the file in the agent's data dir that tells the window
// where the local API listens: the agent writes it once it serves, and
// removes it when it stops.
const DiscoveryFile = "agent.json"

// Discovery is the content of DiscoveryFile: the local API's loopback URL
// and the per-run secret every request must carry. Because of the secret
// it is written owner-only.
type Discovery struct {
	URL     string `json:"url"`
	Secret  string `json:"secret"`
	PID     int    `json:"pid"`
	Version string `json:"version"`
}

// WriteDiscovery writes d to dir's DiscoveryFile, owner-only (0600), and
// atomically: a reader sees the old file or the new one, never half of one.
func WriteDiscovery(dir string, d Discovery) (err error) {
	b, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("write %s: %w", DiscoveryFile, err)
	}
	// CreateTemp makes the file 0600 before a byte of the secret is in it.
	f, err := os.CreateTemp(dir, DiscoveryFile+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", DiscoveryFile, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("write %s: %w", DiscoveryFile, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", DiscoveryFile, err)
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, DiscoveryFile)); err != nil {
		return fmt.Errorf("write %s: %w", DiscoveryFile, err)
	}
	return nil
}

// RemoveDiscovery removes dir's DiscoveryFile; a missing file is no error.
func RemoveDiscovery(dir string) error {
	if err := os.Remove(filepath.Join(dir, DiscoveryFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", DiscoveryFile, err)
	}
	return nil
}

// ReadDiscovery reads and checks dir's DiscoveryFile: it must hold a secret
// and an http URL on a loopback address, so the secret is only ever sent
// to this machine, whatever the file says. The URL comes back without a
// trailing slash. A missing file is an error wrapping os.ErrNotExist.
func ReadDiscovery(dir string) (Discovery, error) {
	path := filepath.Join(dir, DiscoveryFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return Discovery{}, fmt.Errorf("read %s: %w", path, err)
	}
	var d Discovery
	if err := json.Unmarshal(b, &d); err != nil {
		return Discovery{}, fmt.Errorf("read %s: %w", path, err)
	}
	if d.Secret == "" {
		return Discovery{}, fmt.Errorf("read %s: no secret", path)
	}
	u, err := url.Parse(d.URL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return Discovery{}, fmt.Errorf("read %s: url %q is not http://host:port", path, d.URL)
	}
	if !isLoopback(u.Hostname()) {
		return Discovery{}, fmt.Errorf("read %s: url %q is not a loopback address", path, d.URL)
	}
	d.URL = strings.TrimRight(d.URL, "/")
	return d, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
