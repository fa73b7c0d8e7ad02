//go:build !testutil_tag

package main

const tagged = ""
