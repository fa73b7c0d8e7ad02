package main

import (
	"context"
	"fmt"

	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/sqlite"
)

// openStore opens the configured store with the service's pulse and clock.
func (m *Main) openStore(ctx context.Context, opts presence.Options) (presence.Store, error) {
	opts.Pulse = m.Config.Pulse
	opts.Now = m.Now
	if m.Config.IsPostgres() {
		s, err := m.openPostgres(ctx, m.Config.DB, opts)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", m.Config.RedactedDB(), err)
		}
		return s, nil
	}
	s, err := sqlite.OpenWith(m.Config.DB, opts, sqlite.Config{Synchronous: m.Config.Sync})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", m.Config.DB, err)
	}
	return s, nil
}
