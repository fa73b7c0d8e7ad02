// Command hello is what the tests of BuildBinary build: it prints its build
// tag.
package main

import "fmt"

func main() { fmt.Println("hello" + tagged) }
