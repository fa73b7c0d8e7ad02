package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/storetest"
)

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Open {
		path := filepath.Join(t.TempDir(), "lastseen.db")
		return func(opts presence.Options) (presence.Store, error) {
			return Open(path, opts)
		}
	})
}
