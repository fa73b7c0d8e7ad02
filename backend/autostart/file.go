package autostart

import (
	"fmt"
	"os"
	"path/filepath"
)

// writeFileAtomic replaces path with data so that a crash leaves the old
// file or the new one, never half of one.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("login item: %w", err)
	}
	f, err := os.CreateTemp(dir, ".lastseen-*.tmp")
	if err != nil {
		return fmt.Errorf("login item: %w", err)
	}
	defer os.Remove(f.Name()) // no-op after the rename
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write login item %s: %w", path, err)
	}
	return nil
}
