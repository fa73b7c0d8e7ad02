//go:build !cgo

package agentdb

// sqliteDiskTrouble has no SQLite error codes to read without cgo (the
// driver needs cgo, so no write reaches here; this keeps cross-platform
// vetting of the packages above honest).
func sqliteDiskTrouble(error) bool { return false }
