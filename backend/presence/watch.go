package presence

import (
	"context"
	"time"
)

// Watch is one user asking to be told when another comes online ("tell me
// when they are here"). The desktop agent turns the watched user's coming
// online into a native notification; the service only keeps the list.
type Watch struct {
	Handle    string    `json:"handle"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// MaxWatches bounds one user's watch list.
const MaxWatches = 100

// Watches is the store's side of watches. Both stores pass its contract.
type Watches interface {
	// SetWatch starts watching the user with the handle; watching someone
	// already watched changes nothing and answers the existing watch.
	// ENOTFOUND for an unknown or disabled handle, EINVALID for oneself,
	// ECONFLICT past MaxWatches.
	SetWatch(ctx context.Context, userID int64, handle string) (Watch, error)
	// RemoveWatch stops watching; ENOTFOUND when the user was not watched.
	RemoveWatch(ctx context.Context, userID int64, handle string) error
	// WatchList is the user's watches, by handle.
	WatchList(ctx context.Context, userID int64) ([]Watch, error)
}
