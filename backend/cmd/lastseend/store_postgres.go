package main

import (
	"context"
	"errors"

	"github.com/lastseen/lastseen/backend/presence"
)

// openPostgres opens the PostgreSQL store.
func openPostgres(ctx context.Context, dsn string, opts presence.Options) (presence.Store, error) {
	return nil, errors.New("PostgreSQL support is not built into this lastseend yet")
}
