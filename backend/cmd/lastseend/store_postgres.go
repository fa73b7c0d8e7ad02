package main

import (
	"context"

	"github.com/lastseen/lastseen/backend/postgres"
	"github.com/lastseen/lastseen/backend/presence"
)

// openPostgres opens the PostgreSQL store, logging through the service's log.
func (m *Main) openPostgres(ctx context.Context, dsn string, opts presence.Options) (presence.Store, error) {
	return postgres.OpenConfig(ctx, postgres.Config{DSN: dsn, Options: opts, Logger: m.logger})
}
