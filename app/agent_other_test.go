//go:build !(linux || darwin)

package app

import "testing"

func checkOwnSession(*testing.T, int) {}
